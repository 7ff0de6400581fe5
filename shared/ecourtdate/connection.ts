import type { Agent as UndiciAgent } from 'undici';
// Only undici's connection pool, not the whole package: the sender's bundle stays under 1 MB (reports/bench.md, "Performance and cost").
import Agent from 'undici/lib/dispatcher/agent.js';
import type { FetchLike } from '#shared/ecourtdate/http.ts';

/**
 * Longest time a kept-alive connection may sit idle and still be reused, ms. Servers and load balancers close
 * idle connections after their own keep-alive timeout (Node's HTTP server 5 s, many proxies 5-75 s); a
 * request written on a connection the server has just dropped fails or vanishes, and on the messages endpoint
 * a vanished request is an unknown outcome. 4 s stays below the shortest common timeout.
 */
export const DEFAULT_MAX_IDLE_MS = 4_000;

export interface ApiFetchOptions {
  /** Never reuse a connection idle longer than this, ms: more than 0, at most 600,000. Default `DEFAULT_MAX_IDLE_MS`. */
  readonly maxIdleMs?: number;
  /** Wall clock, epoch ms. Injectable for tests. */
  readonly now?: () => number;
  /** The fetch to send through (the global `fetch` by default); it must accept undici's `dispatcher`. */
  readonly fetch?: FetchLike;
  /** More options for each undici `Agent` (e.g. `connect.timeout`, or a test's `connect.lookup`). */
  readonly agent?: UndiciAgent.Options;
}

/** A `fetch` for the eCourtDate API with the connection policy of `createApiFetch`. */
export interface ApiFetch extends FetchLike {
  /** Closes the current connection pool once its requests are done. */
  close(): Promise<void>;
}

/**
 * A `fetch` that never reuses a connection idle longer than `maxIdleMs`. Idleness is measured by the wall
 * clock (`now`), not by timers: while Lambda freezes an execution environment between invocations no timer
 * runs, so after a thaw undici's own keep-alive timers have not yet closed connections the server dropped
 * long ago. When the last request started or got its answer more than `maxIdleMs` ago, every connection is
 * at least that idle: the pool is replaced by a new one (the old one closes once its requests finish), and
 * the request opens a fresh connection. Within the limit, connections are reused as usual, and undici's
 * keep-alive timeout (set to the same limit) closes idle ones while the process runs.
 *
 * Create one per container (module scope) and pass it as the client's `fetch`.
 *
 * Throws `RangeError` when `maxIdleMs` is not a number of ms in (0, 600000].
 *
 * @example const apiFetch = createApiFetch(); await httpRequest(apiFetch, url, init, 10_000);
 */
export function createApiFetch(options: ApiFetchOptions = {}): ApiFetch {
  const maxIdleMs = options.maxIdleMs ?? DEFAULT_MAX_IDLE_MS;
  // Also undici's keep-alive timer, which Node would fire at once past its 2^31-1 ms range.
  if (!(maxIdleMs > 0 && maxIdleMs <= 600_000))
    throw new RangeError(`maxIdleMs: expected more than 0 and at most 600000 ms, got ${maxIdleMs}`);
  const now = options.now ?? Date.now;
  const send = options.fetch ?? fetch;
  const newPool = () =>
    new Agent({ keepAliveTimeout: maxIdleMs, keepAliveMaxTimeout: maxIdleMs, ...options.agent });
  let pool = newPool();
  let lastActivityAt: number | undefined;

  const apiFetch = async (input: string | URL, init?: RequestInit): Promise<Response> => {
    const startedAt = now();
    if (lastActivityAt !== undefined && startedAt - lastActivityAt > maxIdleMs) {
      const stale = pool;
      pool = newPool();
      stale.close().catch(() => undefined);
    }
    lastActivityAt = startedAt;
    try {
      // undici's Agent from npm and the one bundled with Node share the dispatcher interface (same major).
      return await send(input, { ...init, dispatcher: pool } as RequestInit);
    } finally {
      lastActivityAt = Math.max(lastActivityAt, now());
    }
  };
  return Object.assign(apiFetch, { close: () => pool.close() });
}
