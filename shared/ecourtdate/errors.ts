import { RelayError } from '#shared/errors.ts';

/** Base class of errors talking to the eCourtDate API. */
export class EcdApiError extends RelayError {}

/**
 * Why a request got no HTTP answer: the host name did not resolve (`dns`), nothing listened (`refused`), the
 * TLS handshake failed, e.g. on a certificate (`tls`), the peer dropped the connection (`reset`), no answer
 * came in time (`timeout`), `fetch` itself refused the port (`bad_port`: a port on the Fetch standard's list of
 * bad ports, such as 9 or 6000, which no `fetch` ever connects to), or another network fault (`network`).
 */
export type TransportFailure = 'dns' | 'refused' | 'tls' | 'reset' | 'timeout' | 'bad_port' | 'network';

/**
 * The request got no HTTP answer: it timed out or the connection failed. `kind` is what the retry policy
 * reads (`timeout` or `connection`); `failure` names the cause and `code` the system or undici error code
 * (e.g. `ENOTFOUND`, `CERT_HAS_EXPIRED`). Neither the message nor `describe()` carries a query string,
 * credentials or a body: only the URL's origin and path, or its host.
 */
export class EcdTransportError extends EcdApiError {
  readonly kind: 'timeout' | 'connection';
  readonly failure: TransportFailure;
  /** `host[:port]` of the URL called. */
  readonly host: string;
  /** The error code found on the error or its causes, when there was one. */
  readonly code: string | undefined;
  /**
   * Whether the request may have reached the server. A DNS failure, a refused connection, a certificate the
   * handshake rejected or a connect timeout all happen before any byte of the request is written, so nothing
   * can have been processed; after any other failure (a reset, a timeout waiting for the answer, another TLS
   * error) the server may have processed it.
   */
  readonly mayHaveBeenSent: boolean;

  constructor(
    failure: TransportFailure,
    url: URL,
    options: {
      cause?: unknown;
      code?: string | undefined;
      /** Known to have failed before the request was written; by default only for `dns`, `refused` and `bad_port`. */
      beforeSend?: boolean;
    } = {},
  ) {
    const detail = failureDetail(failure, options.code, url.host);
    super(`${failure === 'timeout' ? 'timed out' : detail} calling ${url.origin}${url.pathname}`, {
      cause: options.cause,
    });
    this.kind = failure === 'timeout' ? 'timeout' : 'connection';
    this.failure = failure;
    this.host = url.host;
    this.code = options.code;
    this.mayHaveBeenSent = !(
      options.beforeSend ??
      (failure === 'dns' || failure === 'refused' || failure === 'bad_port')
    );
  }

  /**
   * One sentence for an operator: the cause, the host, and what to check. `next`, when given, is appended as
   * the command to run next; the caller knows the context (a deployed stage, the local pipeline), which this
   * error does not, and `check-credentials` needs a target to run (docs/operating.md, "Operator CLI").
   * @example "Could not reach api.ecourtdate.com: its name did not resolve in DNS (ENOTFOUND). Check the API
   *   base URL and this network."
   */
  describe(next?: string): string {
    const then = next === undefined ? '' : `, then run \`${next}\``;
    return `Could not reach ${this.host}: ${failureDetail(this.failure, this.code, this.host)}. Check the API base URL and this network${then}.`;
  }
}

function failureDetail(failure: TransportFailure, code: string | undefined, host?: string): string {
  const suffix = code ? ` (${code})` : '';
  switch (failure) {
    case 'dns':
      return `its name did not resolve in DNS${suffix}`;
    case 'refused':
      return `the connection was refused${suffix}`;
    case 'tls':
      return `the TLS handshake failed${suffix}`;
    case 'reset':
      return `the connection was reset${suffix}`;
    case 'timeout':
      return `no answer in time${suffix}`;
    case 'bad_port': {
      const port = host?.match(/:(\d+)$/)?.[1];
      return `fetch refuses to connect to port ${port ?? 'of this URL'} (a "bad port" of the Fetch standard, blocked for every request; nothing was sent)`;
    }
    case 'network':
      return `the connection failed${suffix}`;
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
