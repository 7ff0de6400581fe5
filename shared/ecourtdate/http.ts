import { MAX_VISIBILITY_TIMEOUT_SECONDS } from '#shared/config.ts';
import { EcdTransportError } from '#shared/ecourtdate/errors.ts';

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  /** The body as text, cut to `MAX_BODY_CHARS`: enough for a uuid or a field-level error, never unbounded. */
  readonly body: string;
  readonly latencyMs: number;
}

const MAX_BODY_CHARS = 64 * 1024;

/**
 * One HTTP request with a hard timeout over connect, headers and body. Redirects are not followed: a 3xx
 * from the API means a wrong base URL, and is answered as it came. Throws `EcdTransportError` when no
 * complete answer arrived.
 */
export async function httpRequest(
  fetchImpl: FetchLike,
  url: URL,
  init: RequestInit,
  timeoutMs: number,
  now: () => number = Date.now,
): Promise<HttpAnswer> {
  const started = now();
  const where = `${url.origin}${url.pathname}`;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const response = await fetchImpl(url, { ...init, redirect: 'manual', signal });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: text.length > MAX_BODY_CHARS ? text.slice(0, MAX_BODY_CHARS) : text,
      latencyMs: now() - started,
    };
  } catch (error) {
    const timedOut =
      signal.aborted ||
      (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'));
    throw new EcdTransportError(timedOut ? 'timeout' : 'connection', where, { cause: error });
  }
}

/**
 * Joins the API base URL (which may carry a path prefix) and an absolute API path.
 * @example apiUrl(new URL('https://api.ecourtdate.com'), '/oauth/token').href === 'https://api.ecourtdate.com/oauth/token'
 */
export function apiUrl(base: URL, path: string): URL {
  return new URL(`${base.origin}${base.pathname.replace(/\/+$/, '')}${path}`);
}

/**
 * Seconds the server asks us to wait, from whichever rate-limit header it sent (eCourtDate documents none,
 * so all common forms are read): `Retry-After` (seconds or HTTP date), `X-RateLimit-Reset` (epoch seconds,
 * or seconds when small), `RateLimit-Reset` (seconds). The largest wins; undefined when none is usable.
 */
export function retryAfterSeconds(headers: Headers, nowMs: number): number | undefined {
  const candidates: number[] = [];
  const retryAfter = headers.get('retry-after')?.trim();
  if (retryAfter) {
    const seconds = /^\d+(?:\.\d+)?$/.test(retryAfter)
      ? Number(retryAfter)
      : (Date.parse(retryAfter) - nowMs) / 1000;
    if (Number.isFinite(seconds)) candidates.push(seconds);
  }
  for (const name of ['x-ratelimit-reset', 'ratelimit-reset']) {
    const raw = headers.get(name)?.trim();
    if (!raw || !/^\d+(?:\.\d+)?$/.test(raw)) continue;
    const value = Number(raw);
    // Reset headers are either an epoch time or a delta; an epoch in seconds is far above any sane delta.
    candidates.push(value > 1_000_000_000 ? value - nowMs / 1000 : value);
  }
  const usable = candidates.filter((s) => s > 0);
  if (usable.length === 0) return undefined;
  return Math.min(Math.ceil(Math.max(...usable)), MAX_VISIBILITY_TIMEOUT_SECONDS);
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
