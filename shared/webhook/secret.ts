import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
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
  readonly #client: SecretsManagerClient;
  readonly #secretId: string;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #onRead: ((secrets: WebhookSecrets) => void) | undefined;
  #cached: { value: WebhookSecrets; readAt: number } | undefined;
  #inflight: Promise<WebhookSecrets> | undefined;
  #reads = 0;

  /** `ttlMs`: how long a read value is used; `onRead`: called with each value read (e.g. to check it). */
  constructor(options: {
    client: SecretsManagerClient;
    secretId: string;
    ttlMs: number;
    now?: () => number;
    onRead?: (secrets: WebhookSecrets) => void;
  }) {
    this.#client = options.client;
    this.#secretId = options.secretId;
    this.#ttlMs = options.ttlMs;
    this.#now = options.now ?? Date.now;
    this.#onRead = options.onRead;
  }

  /** How many times the secret has been read. */
  get reads(): number {
    return this.#reads;
  }

  /**
   * The last value read, however old, or undefined before the first successful read: what a signature is
   * checked against when a read fails (docs/webhooks.md, "The secret").
   */
  get lastKnown(): WebhookSecrets | undefined {
    return this.#cached?.value;
  }

  /** The secrets, from the cache when fresh. Throws `WebhookSecretError` when they cannot be read. */
  async get(options: { refreshIfOlderThanMs?: number } = {}): Promise<WebhookSecrets> {
    const cached = this.#cached;
    const age = cached ? this.#now() - cached.readAt : Number.POSITIVE_INFINITY;
    const maxAge = Math.min(this.#ttlMs, options.refreshIfOlderThanMs ?? Number.POSITIVE_INFINITY);
    if (cached && age < maxAge) return cached.value;
    this.#inflight ??= this.#read().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #read(): Promise<WebhookSecrets> {
    this.#reads += 1;
    let secretString: string | undefined;
    try {
      const out = await this.#client.send(new GetSecretValueCommand({ SecretId: this.#secretId }));
      secretString = out.SecretString;
    } catch (error) {
      const name = error instanceof Error ? error.name : 'UnknownError';
      throw new WebhookSecretError(`could not read the webhook secret ${this.#secretId}: ${name}`, {
        cause: error,
      });
    }
    const value = parseWebhookSecret(secretString, this.#secretId);
    this.#cached = { value, readAt: this.#now() };
    this.#onRead?.(value);
    return value;
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
