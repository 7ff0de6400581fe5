import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CachedSecret } from '#shared/clients/cached-secret.ts';
import { WebhookSecretError } from '#shared/webhook/errors.ts';

/**
 * The shared secret(s) signatures are checked against: `current`, and during a rotation `previous`.
 */
export interface WebhookSecrets {
  readonly current: string;
  readonly previous?: string | undefined;
}

/** eCourtDate accepts a shared secret of at most this many characters (docs/webhooks.md, "Set up"). */
export const ECOURTDATE_SECRET_MAX_CHARS = 24;

/**
 * True when a secret (current or previous) is longer than eCourtDate's Console takes, in characters (code
 * points): the Console cannot hold it, so deliveries will not verify (docs/webhooks.md, "The secret").
 */
export function exceedsEcourtdateMax(secrets: WebhookSecrets): boolean {
  return [secrets.current, secrets.previous].some(
    (secret) => secret !== undefined && [...secret].length > ECOURTDATE_SECRET_MAX_CHARS,
  );
}

/**
 * The webhook secret, read from Secrets Manager (one per stage) and cached per container for `ttlMs`, like the
 * API client secret. `get({ refreshIfOlderThanMs })` re-reads when the cached value is older than that: a
 * signature that does not verify may mean the secret was rotated, but a stream of forged requests must not turn
 * into a stream of Secrets Manager reads. Concurrent callers share one read.
 */
export class WebhookSecretSource {
  readonly #secret: CachedSecret<WebhookSecrets>;

  /** `ttlMs`: how long a read value is used; `onRead`: called with each value read (e.g. to check it). */
  constructor(options: {
    client: SecretsManagerClient;
    secretId: string;
    ttlMs: number;
    now?: () => number;
    onRead?: (secrets: WebhookSecrets) => void;
  }) {
    this.#secret = new CachedSecret({
      ...options,
      parse: parseWebhookSecret,
      readError: (name, cause) =>
        new WebhookSecretError(`could not read the webhook secret ${options.secretId}: ${name}`, { cause }),
    });
  }

  /** How many times the secret has been read. */
  get reads(): number {
    return this.#secret.reads;
  }

  /**
   * The last value read, however old, or undefined before the first successful read: what a signature is
   * checked against when a read fails (docs/webhooks.md, "The secret").
   */
  get lastKnown(): WebhookSecrets | undefined {
    return this.#secret.lastKnown;
  }

  /** The secrets, from the cache when fresh. Throws `WebhookSecretError` when they cannot be read. */
  async get(options: { refreshIfOlderThanMs?: number } = {}): Promise<WebhookSecrets> {
    return this.#secret.get(options.refreshIfOlderThanMs);
  }
}

/**
 * Parses the secret's value. The stack creates it as JSON `{"secret": "..."}`; a rotation may add
 * `"previous_secret"` so deliveries signed with either verify while the Console is being updated. A value that is
 * not a JSON object is taken as the secret itself (an operator who pasted the plain string), without the white
 * space around it (a trailing newline from `--secret-string file://...`). Errors name the problem, never the
 * value.
 *
 * @example parseWebhookSecret('{"secret":"abc","previous_secret":"xyz"}', 'relay/webhook')
 */
export function parseWebhookSecret(secretString: string | undefined, secretId: string): WebhookSecrets {
  if (!secretString || secretString.trim() === '') {
    throw new WebhookSecretError(`secret ${secretId} has no SecretString`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(secretString);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { current: secretString.trim() };
  }
  const record = parsed as Record<string, unknown>;
  const current = record.secret;
  if (typeof current !== 'string' || current === '') {
    throw new WebhookSecretError(
      `secret ${secretId}: field secret is missing or empty; expected {"secret": "..."}`,
    );
  }
  const previous = record.previous_secret;
  if (previous !== undefined && (typeof previous !== 'string' || previous === '')) {
    throw new WebhookSecretError(`secret ${secretId}: field previous_secret must be a non-empty string`);
  }
  return { current, previous };
}
