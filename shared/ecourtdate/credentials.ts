import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CachedSecret } from '#shared/clients/cached-secret.ts';
import { CredentialsError } from '#shared/errors.ts';

export interface ClientCredentials {
  readonly clientId: string;
  readonly clientSecret: string;
}

/**
 * The eCourtDate API client credentials, read from Secrets Manager (`{"client_id","client_secret"}`) and
 * cached per container for `ttlMs`. `get({ refresh: true })` re-reads at once (the 401 path: the secret may
 * have been rotated). Concurrent callers share one read.
 */
export class CredentialsSource {
  readonly #secret: CachedSecret<ClientCredentials>;

  constructor(options: {
    client: SecretsManagerClient;
    secretId: string;
    ttlMs: number;
    now?: () => number;
  }) {
    this.#secret = new CachedSecret({
      ...options,
      parse: parseCredentials,
      readError: (name, cause) =>
        new CredentialsError(`could not read the eCourtDate client secret ${options.secretId}: ${name}`, {
          cause,
        }),
    });
  }

  /** How many times the secret has been read (for tests and the local run's summary). */
  get reads(): number {
    return this.#secret.reads;
  }

  /** The credentials, from the cache when fresh; `refresh` re-reads at once. Throws `CredentialsError`. */
  async get(options: { refresh?: boolean } = {}): Promise<ClientCredentials> {
    return this.#secret.get(options.refresh ? 0 : undefined);
  }
}

/**
 * Validates the secret's JSON (docs/deploy.md, "Put the API client credentials in the secret"). A UTF-8 byte order
 * mark before it, as a Windows editor saves a file, is ignored. Throws `CredentialsError` naming the missing
 * or malformed field, never its value.
 * @example parseCredentials('{"client_id":"abc","client_secret":"xyz"}', 'relay/staging')
 */
export function parseCredentials(secretString: string | undefined, secretId: string): ClientCredentials {
  if (!secretString) throw new CredentialsError(`secret ${secretId} has no SecretString`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(secretString.startsWith('\uFEFF') ? secretString.slice(1) : secretString);
  } catch {
    throw new CredentialsError(
      `secret ${secretId} is not JSON; expected {"client_id": "...", "client_secret": "..."}`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null) {
    throw new CredentialsError(
      `secret ${secretId} is not a JSON object; expected {"client_id": "...", "client_secret": "..."}`,
    );
  }
  const record = parsed as Record<string, unknown>;
  for (const field of ['client_id', 'client_secret'] as const) {
    const value = record[field];
    if (typeof value !== 'string' || value.trim() === '') {
      throw new CredentialsError(`secret ${secretId}: field ${field} is missing or empty`);
    }
  }
  return { clientId: record.client_id as string, clientSecret: record.client_secret as string };
}
