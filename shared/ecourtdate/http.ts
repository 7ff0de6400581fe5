import { EcdTransportError, type TransportFailure } from '#shared/ecourtdate/errors.ts';

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  /**
   * The body as text, read no further than `MAX_BODY_BYTES` bytes: enough for a uuid or a field-level
   * error, and a huge body is never held in memory.
   */
  readonly body: string;
  /** The body reached `MAX_BODY_BYTES`; whatever followed was not downloaded. */
  readonly truncated: boolean;
  readonly latencyMs: number;
}

/** How much of a response body is read, in bytes (UTF-8); the download stops there. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * One HTTP request with a hard timeout (ms) over connect, headers and body. Redirects are not followed: a 3xx
 * from the API means a wrong base URL, and is answered as it came. The body is streamed and read only up to
 * `MAX_BODY_BYTES`; the rest is cancelled. Throws `EcdTransportError` naming the cause (DNS, refused, TLS,
 * reset, timeout) when no complete answer arrived. `now` is epoch ms, for `latencyMs`.
 */
export async function httpRequest(
  fetchImpl: FetchLike,
  url: URL,
  init: RequestInit,
  timeoutMs: number,
  now: () => number = Date.now,
): Promise<HttpAnswer> {
  const started = now();
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const response = await fetchImpl(url, { ...init, redirect: 'manual', signal });
    const { text, truncated } = await readBounded(response, MAX_BODY_BYTES);
    return {
      status: response.status,
      headers: response.headers,
      body: text,
      truncated,
      latencyMs: now() - started,
    };
  } catch (error) {
    const { failure, code, beforeSend } = classifyTransportFailure(error, signal.aborted);
    throw new EcdTransportError(failure, url, { cause: error, code, beforeSend });
  }
}

/**
 * Reads a response body as UTF-8 up to `maxBytes` and cancels the rest of the stream, so the connection stops
 * downloading. A character cut in half at the limit is dropped rather than shown as U+FFFD.
 */
async function readBounded(
  response: Response,
  maxBytes: number,
): Promise<{ text: string; truncated: boolean }> {
  const stream = response.body;
  if (!stream) return { text: '', truncated: false };
  const reader = stream.getReader();
  const decoder = new TextDecoder('utf-8');
  let text = '';
  let received = 0;
  while (received < maxBytes) {
    const { done, value } = await reader.read();
    if (done) return { text: text + decoder.decode(), truncated: false };
    const chunk = value.subarray(0, maxBytes - received);
    received += chunk.byteLength;
    text += decoder.decode(chunk, { stream: true });
  }
  // At the limit: stop the download. Not awaited: a cancel only fails once the stream is already gone.
  reader.cancel().catch(() => undefined);
  return { text, truncated: true };
}

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ABORT_ERR',
]);
// OpenSSL's certificate verification codes (and Node's for a name mismatch): raised during the handshake,
// before any request byte is written.
const CERTIFICATE_CODE =
  /^(?:CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH$|INVALID_CA$|PATH_LENGTH_EXCEEDED$|INVALID_PURPOSE$|ERR_TLS_CERT_ALTNAME_INVALID$)/;
// Other TLS and OpenSSL errors, which may also come after the request was written.
const TLS_CODE = /^(?:ERR_TLS_|ERR_SSL_|ERR_OSSL_|EPROTO$)/;

/**
 * undici's words (`makeNetworkError('bad port')`) when the Fetch standard's port blocking refuses a URL before
 * any connection is made: `fetch failed` caused by an `Error('bad port')` without a code.
 */
const BAD_PORT_MESSAGE = 'bad port';

/**
 * Names the cause of a failed fetch from the error codes on the error, its `cause` chain and an AggregateError's
 * `errors` (undici wraps the socket's error in `TypeError: fetch failed`; a host with several addresses gives
 * one error per address). A port `fetch` refuses outright (the Fetch standard's bad ports: 9, 6000, ...) has no
 * code, only undici's message, and is `bad_port`: nothing was connected, let alone sent. `timedOut`: the
 * request's own timeout fired.
 */
export function classifyTransportFailure(
  error: unknown,
  timedOut: boolean,
): { failure: TransportFailure; code: string | undefined; beforeSend: boolean } {
  const codes = errorCodes(error);
  const code = codes.find((c) => c !== 'ABORT_ERR' && c !== 'UND_ERR_ABORTED');
  const has = (test: (c: string) => boolean) => codes.some(test);
  if (has((c) => DNS_CODES.has(c))) return { failure: 'dns', code, beforeSend: true };
  if (has((c) => c === 'ECONNREFUSED')) return { failure: 'refused', code, beforeSend: true };
  if (has((c) => CERTIFICATE_CODE.test(c))) return { failure: 'tls', code, beforeSend: true };
  if (has((c) => TLS_CODE.test(c))) return { failure: 'tls', code, beforeSend: false };
  if (has((c) => c === 'UND_ERR_CONNECT_TIMEOUT')) return { failure: 'timeout', code, beforeSend: true };
  if (code === undefined && errorMessages(error).includes(BAD_PORT_MESSAGE))
    return { failure: 'bad_port', code, beforeSend: true };
  if (timedOut || has((c) => TIMEOUT_CODES.has(c)) || isAbort(error))
    return { failure: 'timeout', code, beforeSend: false };
  if (has((c) => RESET_CODES.has(c))) return { failure: 'reset', code, beforeSend: false };
  return { failure: 'network', code, beforeSend: false };
}

/** Error codes (`code` strings) on an error, its `cause` chain and an AggregateError's `errors`. */
function errorCodes(error: unknown, depth = 0): string[] {
  if (depth > 6 || typeof error !== 'object' || error === null) return [];
  const record = error as { code?: unknown; cause?: unknown; errors?: unknown };
  const own = typeof record.code === 'string' ? [record.code] : [];
  const nested = Array.isArray(record.errors) ? record.errors.flatMap((e) => errorCodes(e, depth + 1)) : [];
  return [...own, ...nested, ...errorCodes(record.cause, depth + 1)];
}

/** The messages of an error, its `cause` chain and an AggregateError's `errors`. */
function errorMessages(error: unknown, depth = 0): string[] {
  if (depth > 6 || !(error instanceof Error)) return [];
  const nested =
    error instanceof AggregateError ? error.errors.flatMap((e) => errorMessages(e, depth + 1)) : [];
  return [error.message, ...nested, ...errorMessages(error.cause, depth + 1)];
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
}

/**
 * Joins the API base URL (which may carry a path prefix) and an absolute API path.
 * @example apiUrl(new URL('https://api.ecourtdate.com'), '/oauth/token').href === 'https://api.ecourtdate.com/oauth/token'
 */
export function apiUrl(base: URL, path: string): URL {
  return new URL(`${base.origin}${base.pathname.replace(/\/+$/, '')}${path}`);
}

/** How a wait hint was written: a delta in seconds, an HTTP date, or an epoch time in seconds or ms. */
export type WaitHintForm = 'delta-seconds' | 'http-date' | 'epoch-seconds' | 'epoch-ms';

/** A server's request to wait before trying again, as read from its headers by `waitHint`. */
export interface WaitHint {
  /** Whole seconds (rounded up) from now that the server asked for, uncapped. Always > 0. */
  readonly seconds: number;
  /** `seconds` capped to the caller's `capSeconds`; equal to `seconds` when no cap was given. */
  readonly cappedSeconds: number;
  /** `seconds` is beyond `capSeconds`: a misread or misbehaving header, to be logged as suspect. */
  readonly suspect: boolean;
  /** The header it came from, lower case: `retry-after`, `x-ratelimit-reset` or `ratelimit-reset`. */
  readonly header: string;
  readonly form: WaitHintForm;
}

// Below this a reset value is a delta in seconds (about 31 years); from here to EPOCH_MS_FROM it is an epoch
// time in seconds (years 2001 to 33658); from there on, epoch milliseconds.
const EPOCH_SECONDS_FROM = 1e9;
const EPOCH_MS_FROM = 1e12;
const NUMBER = /^\d+(?:\.\d+)?$/;

/**
 * How long the server asks us to wait, from whichever header it sent (eCourtDate documents none, so all
 * common forms are read): `Retry-After` as seconds or an HTTP date (RFC 9110), and `X-RateLimit-Reset` /
 * `RateLimit-Reset` as a delta in seconds, an epoch time in seconds, or an epoch time in milliseconds (told
 * apart by size). The longest wait wins. Undefined when no header gives a wait after `nowMs` (epoch ms).
 *
 * Nothing is capped unless the caller says so: a 429's hint is capped to the sender's limit (the rate window
 * is one minute) and logged when `suspect`; a 503's `Retry-After` (maintenance) is honoured up to the job's
 * deadline by the caller.
 *
 * @example waitHint(new Headers({ 'X-RateLimit-Reset': String(Date.now() + 60_000) }), Date.now(), { capSeconds: 300 })
 *   // { seconds: 60, cappedSeconds: 60, suspect: false, header: 'x-ratelimit-reset', form: 'epoch-ms' }
 */
export function waitHint(
  headers: Headers,
  nowMs: number,
  options: { capSeconds?: number } = {},
): WaitHint | undefined {
  const candidates: { seconds: number; header: string; form: WaitHintForm }[] = [];
  const retryAfter = headers.get('retry-after')?.trim();
  if (retryAfter) {
    if (NUMBER.test(retryAfter)) {
      candidates.push({ seconds: Number(retryAfter), header: 'retry-after', form: 'delta-seconds' });
    } else {
      const at = Date.parse(retryAfter);
      if (Number.isFinite(at))
        candidates.push({ seconds: (at - nowMs) / 1000, header: 'retry-after', form: 'http-date' });
    }
  }
  for (const header of ['x-ratelimit-reset', 'ratelimit-reset']) {
    const raw = headers.get(header)?.trim();
    if (!raw || !NUMBER.test(raw)) continue;
    const value = Number(raw);
    if (value >= EPOCH_MS_FROM)
      candidates.push({ seconds: (value - nowMs) / 1000, header, form: 'epoch-ms' });
    else if (value >= EPOCH_SECONDS_FROM)
      candidates.push({ seconds: value - nowMs / 1000, header, form: 'epoch-seconds' });
    else candidates.push({ seconds: value, header, form: 'delta-seconds' });
  }
  let longest: (typeof candidates)[number] | undefined;
  for (const candidate of candidates) {
    if (!Number.isFinite(candidate.seconds) || candidate.seconds <= 0) continue;
    if (!longest || candidate.seconds > longest.seconds) longest = candidate;
  }
  if (!longest) return undefined;
  const seconds = Math.ceil(longest.seconds);
  const cap = options.capSeconds ?? Number.POSITIVE_INFINITY;
  return {
    seconds,
    cappedSeconds: Math.min(seconds, cap),
    suspect: seconds > cap,
    header: longest.header,
    form: longest.form,
  };
}

/**
 * The uuid of a created message. The oneoffs response shape is not documented, so an object with `uuid`,
 * an array of such objects, or `{ data: { uuid } }` are all accepted.
 */
export function extractUuid(body: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  if (typeof first !== 'object' || first === null) return undefined;
  const record = first as Record<string, unknown>;
  if (typeof record.uuid === 'string') return record.uuid;
  const data = record.data;
  if (
    typeof data === 'object' &&
    data !== null &&
    typeof (data as Record<string, unknown>).uuid === 'string'
  ) {
    return (data as Record<string, unknown>).uuid as string;
  }
  return undefined;
}
