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
 * starts a window at the first request after the previous window ended; 'sliding' counts the requests of the
 * last `windowMs`.
 */
export function createRateLimiter(limit: number, windowMs: number, mode: 'fixed' | 'sliding'): RateLimiter {
  const fixed = new Map<string, { start: number; count: number }>();
  const sliding = new Map<string, number[]>();

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
    const hits = (sliding.get(key) ?? []).filter((at) => at > now - windowMs);
    sliding.set(key, hits);
    if (hits.length >= limit) {
      return { allowed: false, limit, remaining: 0, resetAt: (hits[0] ?? now) + windowMs };
    }
    hits.push(now);
    return { allowed: true, limit, remaining: limit - hits.length, resetAt: (hits[0] ?? now) + windowMs };
  };

  return {
    take: mode === 'fixed' ? takeFixed : takeSliding,
    clear() {
      fixed.clear();
      sliding.clear();
    },
  };
}
