import { RelayError } from '#shared/errors.ts';

/** Base class of errors talking to the eCourtDate API. */
export class EcdApiError extends RelayError {}

/** The request got no HTTP answer: it timed out or the connection failed. Its outcome is unknown. */
export class EcdTransportError extends EcdApiError {
  readonly kind: 'timeout' | 'connection';
  constructor(kind: 'timeout' | 'connection', url: string, options?: { cause?: unknown }) {
    super(`${kind === 'timeout' ? 'timed out' : 'connection failed'} calling ${url}`, options);
    this.kind = kind;
  }
}

/** `/oauth/token` did not issue a token. `status` is the HTTP status, or the transport failure. */
export class EcdTokenError extends EcdApiError {
  readonly status: number | 'timeout' | 'connection';
  readonly retryAfterSeconds: number | undefined;
  readonly excerpt: string;
  constructor(
    status: number | 'timeout' | 'connection',
    excerpt: string,
    retryAfterSeconds?: number,
    options?: { cause?: unknown },
  ) {
    super(`token request failed: ${typeof status === 'number' ? `HTTP ${status}` : status}`, options);
    this.status = status;
    this.excerpt = excerpt;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Nothing was sent: this instance is waiting out a 429, or its pacing slot is too far away. */
export class EcdDeferredError extends EcdApiError {
  readonly retryInMs: number;
  constructor(retryInMs: number) {
    super(`request held back for ${Math.ceil(retryInMs)} ms by rate pacing`);
    this.retryInMs = retryInMs;
  }
}
