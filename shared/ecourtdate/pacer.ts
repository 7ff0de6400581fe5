/**
 * Paces this instance's requests to its share of eCourtDate's per-client limit (1,000 requests a minute,
 * token requests included). Requests are spaced evenly, one every 60/rpm seconds, so that no burst can
 * overrun the limit whatever kind of window eCourtDate uses. After a 429, `block` stops every request of
 * this instance until the window has reset.
 */
export class Pacer {
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #nextSlot = 0;
  #blockedUntil = 0;

  constructor(
    requestsPerMinute: number,
    options: { now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
  ) {
    this.#intervalMs = 60_000 / requestsPerMinute;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /**
   * Waits for this request's slot. Resolves `{ ok: false, retryInMs }` without sending when the instance
   * is blocked by a 429, or when the slot is further away than `maxWaitMs` (the invocation would end first).
   */
  async acquire(
    maxWaitMs = Number.POSITIVE_INFINITY,
  ): Promise<{ ok: true } | { ok: false; retryInMs: number }> {
    const now = this.#now();
    if (now < this.#blockedUntil) return { ok: false, retryInMs: this.#blockedUntil - now };
    const slot = Math.max(now, this.#nextSlot);
    if (slot - now > maxWaitMs) return { ok: false, retryInMs: slot - now };
    this.#nextSlot = slot + this.#intervalMs;
    if (slot > now) await this.#sleep(slot - now);
    const after = this.#now();
    // A 429 may have come back for another record while this one waited for its slot.
    if (after < this.#blockedUntil) return { ok: false, retryInMs: this.#blockedUntil - after };
    return { ok: true };
  }

  /** Stops all requests of this instance for `ms` (the rate-limit window's reset). */
  block(ms: number): void {
    this.#blockedUntil = Math.max(this.#blockedUntil, this.#now() + ms);
  }

  /** Milliseconds until the block lifts; 0 when not blocked. */
  blockedForMs(): number {
    return Math.max(0, this.#blockedUntil - this.#now());
  }
}
