import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** Options of {@link CachedSecret}. */
export interface CachedSecretOptions<T> {
  readonly client: SecretsManagerClient;
  readonly secretId: string;
  /** How long a read value is used, ms. */
  readonly ttlMs: number;
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
  /**
   * Turns the secret's `SecretString` into the value. Throws its own error, naming the problem and never the
   * value; nothing is cached then.
   */
  readonly parse: (secretString: string | undefined, secretId: string) => T;
  /**
   * The error to throw when `GetSecretValue` fails, from the AWS error's name only: SDK messages can quote
   * request data. The AWS error goes along as `cause`.
   */
  readonly readError: (errorName: string, cause: unknown) => Error;
  /** Called with each value read. */
  readonly onRead?: (value: T) => void;
}

/**
 * A Secrets Manager secret read once per `ttlMs` per container, parsed, and cached. Concurrent callers share
 * one read. The API client secret (shared/ecourtdate/credentials.ts) and the webhook secret
 * (shared/webhook/secret.ts) are both read through it (docs/deploy.md, "Put the API client credentials in the secret";
 * docs/webhooks.md, "The secret").
 *
 * @example
 * const secret = new CachedSecret({ client, secretId, ttlMs: 300_000, parse, readError });
 * const value = await secret.get(); // from the cache while it is younger than ttlMs
 */
export class CachedSecret<T> {
  readonly #options: CachedSecretOptions<T>;
  readonly #now: () => number;
  #cached: { value: T; readAt: number } | undefined;
  #inflight: Promise<T> | undefined;
  #reads = 0;

  constructor(options: CachedSecretOptions<T>) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** How many times the secret has been read. */
  get reads(): number {
    return this.#reads;
  }

  /** The last value read, however old, or undefined before the first successful read. */
  get lastKnown(): T | undefined {
    return this.#cached?.value;
  }

  /**
   * The value, from the cache while it is younger than both `ttlMs` and `maxAgeMs` (ms; 0 re-reads at once),
   * else read anew (joining a read already under way). Throws the `readError` or `parse` error of a failed read.
   */
  async get(maxAgeMs = Number.POSITIVE_INFINITY): Promise<T> {
    const cached = this.#cached;
    const maxAge = Math.min(this.#options.ttlMs, maxAgeMs);
    if (cached && maxAge > 0 && this.#now() - cached.readAt < maxAge) return cached.value;
    this.#inflight ??= this.#read().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #read(): Promise<T> {
    this.#reads += 1;
    const { client, secretId } = this.#options;
    let secretString: string | undefined;
    try {
      const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
      secretString = out.SecretString;
    } catch (error) {
      throw this.#options.readError(error instanceof Error ? error.name : 'UnknownError', error);
    }
    const value = this.#options.parse(secretString, secretId);
    this.#cached = { value, readAt: this.#now() };
    this.#options.onRead?.(value);
    return value;
  }
}
