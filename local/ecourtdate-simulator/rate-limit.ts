/** The limiter's verdict on one request, with what the rate-limit headers report. */
export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Simulator-clock ms when the client may send again (fixed: window end; sliding: oldest hit expires). */
  readonly resetAt: number;
}

export interface RateLimiter {
  /** Counts one request for `key` at `now`; a refused request is not counted, so hammering does not extend a ban. */
  take(key: string, now: number): RateDecision;
  clear(): void;
}

/**
 * A per-key request limiter. eCourtDate's window type is UNKNOWN, so both plausible ones exist: 'fixed'
 * starts a window at the first request after the previous window ended; 'sliding' allows `limit` requests in
 * any window of `windowMs` (a request at t counts until t + windowMs), the strictest reading of "1,000 requests
 * per minute" (docs/pacing.md).
 */
export function createRateLimiter(limit: number, windowMs: number, mode: 'fixed' | 'sliding'): RateLimiter {
  const fixed = new Map<string, { start: number; count: number }>();
  // Per key, the times of the counted requests, oldest first; `head` skips the ones that have left the window.
  const sliding = new Map<string, { hits: number[]; head: number }>();

  const takeFixed = (key: string, now: number): RateDecision => {
    let window = fixed.get(key);
    if (window === undefined || now >= window.start + windowMs) {
      window = { start: now, count: 0 };
      fixed.set(key, window);
    }
    const resetAt = window.start + windowMs;
    if (window.count >= limit) return { allowed: false, limit, remaining: 0, resetAt };
    window.count += 1;
    return { allowed: true, limit, remaining: limit - window.count, resetAt };
  };

  const takeSliding = (key: string, now: number): RateDecision => {
    let log = sliding.get(key);
    if (log === undefined) {
      log = { hits: [], head: 0 };
      sliding.set(key, log);
    }
    while (log.head < log.hits.length && (log.hits[log.head] as number) <= now - windowMs) log.head += 1;
    if (log.head > 1024 && log.head * 2 > log.hits.length) {
      log.hits = log.hits.slice(log.head);
      log.head = 0;
    }
    const counted = log.hits.length - log.head;
    const oldest = log.hits[log.head] ?? now;
    if (counted >= limit) return { allowed: false, limit, remaining: 0, resetAt: oldest + windowMs };
    log.hits.push(now);
    return { allowed: true, limit, remaining: limit - counted - 1, resetAt: oldest + windowMs };
  };

  return {
    take: mode === 'fixed' ? takeFixed : takeSliding,
    clear() {
      fixed.clear();
      sliding.clear();
    },
  };
}

/**
 * The most of `times` (ms, any order) that fall in one half-open window `[t, t + windowMs)`, over every t: what
 * a sliding-window limiter of `windowMs` would have seen at its busiest. Tests and the benchmark check the
 * relay's requests with it.
 *
 * @example
 * busiestWindow([0, 10_000, 59_999, 60_000], 60_000); // 3
 */
export function busiestWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let first = 0, last = 0; first < sorted.length; first++) {
    while (last < sorted.length && (sorted[last] as number) < (sorted[first] as number) + windowMs) last += 1;
    most = Math.max(most, last - first);
  }
  return most;
}
