import type { CredentialsSource } from '#shared/ecourtdate/credentials.ts';
import { EcdDeferredError, EcdTokenError, EcdTransportError } from '#shared/ecourtdate/errors.ts';
import { apiUrl, type FetchLike, httpRequest, waitHint } from '#shared/ecourtdate/http.ts';
import type { Pacer } from '#shared/ecourtdate/pacer.ts';
import { redactText } from '#shared/redact.ts';

/** When `expires_in` is absent (eCourtDate's authentication page shows none), tokens are assumed to last an hour. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 3600;

export interface TokenCacheOptions {
  readonly baseUrl: URL;
  readonly credentials: CredentialsSource;
  readonly pacer: Pacer;
  readonly fetch: FetchLike;
  readonly timeoutMs: number;
  readonly renewBeforeMs: number;
  readonly now?: () => number;
  /** Called once per token request sent, with its HTTP status or transport failure (for metrics). */
  readonly onAnswer?: (status: number | 'timeout' | 'connection') => void;
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
  #inflight: Promise<CachedToken> | undefined;
  #inflightReread: Promise<CachedToken> | undefined;

  constructor(options: TokenCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * A valid token. `rejected` is a token the API just answered 401 to: a new one is fetched unless another
   * caller already replaced it. `rereadSecret` re-reads the client secret first (it may have been rotated).
   * Throws `EcdTokenError` when no token could be had, `EcdDeferredError` when pacing held the request back.
   */
  async get(options: { rejected?: string; rereadSecret?: boolean } = {}): Promise<string> {
    const current = this.#current;
    // Usable unless about to expire or just rejected; a token someone else fetched since the rejection is fine.
    if (current && this.#now() < current.renewAt && current.value !== options.rejected) {
      return current.value;
    }
    // A renewal that re-reads the secret is never satisfied by one in flight that does not.
    if (options.rereadSecret) {
      this.#inflightReread ??= this.#fetch(true).finally(() => {
        this.#inflightReread = undefined;
      });
      return (await this.#inflightReread).value;
    }
    this.#inflight ??= this.#fetch(false).finally(() => {
      this.#inflight = undefined;
    });
    return (await this.#inflight).value;
  }

  async #fetch(rereadSecret: boolean): Promise<CachedToken> {
    let credentials = await this.#options.credentials.get({ refresh: rereadSecret });
    try {
      return await this.#request(credentials);
    } catch (error) {
      // Rejected credentials may be stale: the secret can have been rotated since it was cached. Re-read once.
      if (!rereadSecret && error instanceof EcdTokenError && (error.status === 401 || error.status === 400)) {
        credentials = await this.#options.credentials.get({ refresh: true });
        return this.#request(credentials);
      }
      throw error;
    }
  }

  async #request(credentials: { clientId: string; clientSecret: string }): Promise<CachedToken> {
    const slot = await this.#options.pacer.acquire();
    if (!slot.ok) throw new EcdDeferredError(slot.retryInMs);
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
      throw new EcdTokenError(error.kind, '', undefined, { cause: error });
    }
    this.#options.onAnswer?.(answer.status);
    const excerpt = redactText(answer.body, [credentials.clientSecret, credentials.clientId]);
    if (answer.status < 200 || answer.status >= 300) {
      throw new EcdTokenError(answer.status, excerpt, waitHint(answer.headers, this.#now())?.seconds);
    }
    const token = parseTokenResponse(answer.body);
    if (!token) throw new EcdTokenError(answer.status, 'token response without access_token');
    const lifetimeMs = (token.expiresIn ?? DEFAULT_TOKEN_LIFETIME_SECONDS) * 1000;
    const usableMs = Math.max(lifetimeMs - this.#options.renewBeforeMs, lifetimeMs / 2);
    const cached = { value: token.accessToken, renewAt: this.#now() + usableMs };
    this.#current = cached;
    return cached;
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
