import type { CredentialsSource } from '#shared/ecourtdate/credentials.ts';
import { EcdTokenError, EcdTransportError } from '#shared/ecourtdate/errors.ts';
import { apiUrl, type FetchLike, httpRequest, waitHint } from '#shared/ecourtdate/http.ts';
import type { RequestPacer } from '#shared/ecourtdate/pacer.ts';
import { CredentialsError } from '#shared/errors.ts';
import { redactText } from '#shared/redact.ts';

/** When `expires_in` is absent (eCourtDate's authentication page shows none), tokens are assumed to last an hour. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 3600;

export interface TokenCacheOptions {
  readonly baseUrl: URL;
  readonly credentials: CredentialsSource;
  readonly pacer: RequestPacer;
  readonly fetch: FetchLike;
  readonly timeoutMs: number;
  readonly renewBeforeMs: number;
  readonly now?: () => number;
  /**
   * Called once per token request sent, with its HTTP status or transport failure and its `Retry-After` in
   * seconds, if any (for the metrics and the circuit breaker).
   */
  readonly onAnswer?: (status: number | 'timeout' | 'connection', retryAfterSeconds?: number) => void;
}

/**
 * What `TokenCache.get` gives: a token, or why there is none. Nothing reached the messages endpoint in any case:
 * `deferred` (pacing held the token request back, or it could not start in time; `retryInMs` from now),
 * `token` (the token endpoint did not issue one), `secret` (the client secret could not be read or parsed).
 */
export type TokenResult =
  | { readonly ok: true; readonly token: string }
  | { readonly ok: false; readonly failure: 'deferred'; readonly retryInMs: number }
  | { readonly ok: false; readonly failure: 'token'; readonly error: EcdTokenError }
  | { readonly ok: false; readonly failure: 'secret'; readonly error: CredentialsError };

/** What a caller of `TokenCache.get` may ask. */
export interface TokenRequestOptions {
  /** A token the API just answered 401 to: a new one is fetched unless another caller already replaced it. */
  readonly rejected?: string | undefined;
  /** Re-read the client secret first (it may have been rotated). */
  readonly rereadSecret?: boolean | undefined;
  /**
   * Epoch ms by which the token request's pacing wait must be over (the attempt's `waitUntil`): a request whose
   * slot lies beyond it is not made (`deferred`). @default no limit
   */
  readonly waitUntil?: number | undefined;
}

interface CachedToken {
  readonly value: string;
  /** When to stop using it: `renewBeforeMs` before expiry, but never before half its lifetime. */
  readonly renewAt: number;
}

/**
 * The bearer token from `POST {base}/oauth/token` (client-credentials grant), cached per container and
 * renewed `renewBeforeMs` before it expires. One renewal is shared by all concurrent callers, and a caller
 * that saw a token rejected only triggers a renewal if nobody has renewed it since.
 */
export class TokenCache {
  readonly #options: TokenCacheOptions;
  readonly #now: () => number;
  #current: CachedToken | undefined;
  #inflight: Promise<TokenResult> | undefined;
  #inflightReread: Promise<TokenResult> | undefined;

  constructor(options: TokenCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * A valid token, or why there is none (`TokenResult`); never rejects for API, network, pacing or secret
   * failures. A renewal in flight is shared by concurrent callers; one that re-reads the secret is never
   * satisfied by one that does not. The first caller's `waitUntil` bounds the shared request's wait.
   */
  async get(options: TokenRequestOptions = {}): Promise<TokenResult> {
    const current = this.#current;
    // Usable unless about to expire or just rejected; a token someone else fetched since the rejection is fine.
    if (current && this.#now() < current.renewAt && current.value !== options.rejected) {
      return { ok: true, token: current.value };
    }
    if (options.rereadSecret) {
      this.#inflightReread ??= this.#fetch(true, options.waitUntil).finally(() => {
        this.#inflightReread = undefined;
      });
      return this.#inflightReread;
    }
    this.#inflight ??= this.#fetch(false, options.waitUntil).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #fetch(rereadSecret: boolean, waitUntil: number | undefined): Promise<TokenResult> {
    const first = await this.#withCredentials(rereadSecret, waitUntil);
    // Rejected credentials may be stale: the secret can have been rotated since it was cached. Re-read once.
    const refused =
      !first.ok && first.failure === 'token' && [400, 401].includes(first.error.status as number);
    return !rereadSecret && refused ? this.#withCredentials(true, waitUntil) : first;
  }

  async #withCredentials(refresh: boolean, waitUntil: number | undefined): Promise<TokenResult> {
    let credentials: { clientId: string; clientSecret: string };
    try {
      credentials = await this.#options.credentials.get({ refresh });
    } catch (error) {
      if (error instanceof CredentialsError) return { ok: false, failure: 'secret', error };
      throw error;
    }
    return this.#request(credentials, waitUntil);
  }

  async #request(
    credentials: { clientId: string; clientSecret: string },
    waitUntil: number | undefined,
  ): Promise<TokenResult> {
    const slot = await this.#options.pacer.acquire(
      waitUntil === undefined ? undefined : Math.max(waitUntil - this.#now(), 0),
    );
    if (!slot.ok) return { ok: false, failure: 'deferred', retryInMs: slot.retryInMs };
    const url = apiUrl(this.#options.baseUrl, '/oauth/token');
    let answer: Awaited<ReturnType<typeof httpRequest>>;
    try {
      answer = await httpRequest(
        this.#options.fetch,
        url,
        {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({
            client_id: credentials.clientId,
            client_secret: credentials.clientSecret,
            grant_type: 'client_credentials',
          }),
        },
        this.#options.timeoutMs,
        this.#now,
      );
    } catch (error) {
      if (!(error instanceof EcdTransportError)) throw error;
      this.#options.onAnswer?.(error.kind);
      return {
        ok: false,
        failure: 'token',
        error: new EcdTokenError(error.kind, '', undefined, { cause: error }),
      };
    }
    this.#options.onAnswer?.(answer.status, waitHint(answer.headers, this.#now())?.seconds);
    const excerpt = redactText(answer.body, [credentials.clientSecret, credentials.clientId]);
    if (answer.status < 200 || answer.status >= 300) {
      const error = new EcdTokenError(answer.status, excerpt, waitHint(answer.headers, this.#now())?.seconds);
      return { ok: false, failure: 'token', error };
    }
    const token = parseTokenResponse(answer.body);
    if (!token) {
      return {
        ok: false,
        failure: 'token',
        error: new EcdTokenError(answer.status, 'token response without access_token'),
      };
    }
    const lifetimeMs = (token.expiresIn ?? DEFAULT_TOKEN_LIFETIME_SECONDS) * 1000;
    const usableMs = Math.max(lifetimeMs - this.#options.renewBeforeMs, lifetimeMs / 2);
    this.#current = { value: token.accessToken, renewAt: this.#now() + usableMs };
    return { ok: true, token: token.accessToken };
  }
}

function parseTokenResponse(
  body: string,
): { accessToken: string; expiresIn: number | undefined } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const record = parsed as Record<string, unknown>;
  if (typeof record.access_token !== 'string' || record.access_token === '') return undefined;
  const expiresIn = Number(record.expires_in);
  return {
    accessToken: record.access_token,
    expiresIn:
      record.expires_in !== undefined && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : undefined,
  };
}
