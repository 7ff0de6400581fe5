/** eCourtDate's documented limit per API client, requests in any minute, token requests included (docs/pacing.md). */
export const ECOURTDATE_LIMIT_PER_MINUTE = 1000;

/** Options of {@link Pacer}. */
export interface PacerOptions {
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
  /** Waits `ms` milliseconds. @default a `setTimeout` promise */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * The window the share applies to, ms. A scaled local run (`TIME_SCALE`) passes `60_000 / TIME_SCALE`, as the
   * simulator shortens its rate-limit minute. @default 60_000
   */
  readonly windowMs?: number;
}

/**
 * The pacer's answer: go now, or not at all in this invocation (`retryInMs` until it could, ms from now).
 * `sendBy`: epoch ms by which the request must leave for the slot to count it (the end of a shared budget's grace
 * slice, docs/pacing.md "The guarantee"); a request that would leave later takes a fresh slot. Absent: the request
 * leaves at once.
 */
export type PacerSlot = { ok: true; sendBy?: number } | { ok: false; retryInMs: number };

/**
 * What the eCourtDate client and the token cache ask of a pacer (docs/pacing.md): a slot for every request, and
 * a stop after a 429. {@link Pacer} paces one instance to a share of its own; `SharedBudgetPacer`
 * (`shared-budget.ts`) leases slots of the API client's one budget, shared by every instance.
 */
export interface RequestPacer {
  /**
   * Waits for a slot to send one request. Resolves `{ ok: true }` when the request may go now, or
   * `{ ok: false, retryInMs }` (ms from now) when it may not go within `maxWaitMs` (ms) or a 429 is being waited
   * out. Never rejects.
   */
  acquire(maxWaitMs?: number): Promise<PacerSlot>;
  /** Stops every request for `ms` milliseconds from now (a 429's wait); a shorter block never cuts a longer one. */
  block(ms: number): void;
  /** Milliseconds until the block lifts; 0 when not blocked. */
  blockedForMs(): number;
}

/**
 * How much later than its grant a request may reach eCourtDate and still be counted in the window the pacer
 * meant, per minute of window: 1 s (scaled like the window). eCourtDate counts a request when it arrives, and the
 * time from grant to arrival varies (event loop, a new TLS connection, the network). Without a margin, a burst
 * that arrived late followed a minute later by one that arrived early would land in one window of eCourtDate's.
 * It costs 1/61 of the budget.
 */
export const ARRIVAL_SPREAD_MS_PER_MINUTE = 1_000;

/**
 * Keeps this instance within its share of eCourtDate's per-client limit (1,000 requests in any minute, token
 * requests included; docs/pacing.md), while letting a batch go out at once whenever the share has room.
 *
 * A sliding-window log of the send times this pacer granted, not a token bucket: a bucket of capacity C refilling
 * at r a minute lets C + r through in some 60 s window. Grants are made in order, and the k-th grant is at
 * `max(now, grant[k-1], grant[k-share] + spacing)`, where `spacing` is the window plus the arrival spread (61 s
 * for a minute). Grants never go backwards, and any `share + 1` consecutive ones span at least `spacing`. So no
 * half-open window `[t, t + windowMs)` (and so no fixed or sliding minute, whatever eCourtDate uses) holds more
 * than `share` grants, nor more than `share` arrivals as long as every request arrives within the spread of its
 * grant. Only the last `share` grants are kept, so memory is bounded by the share.
 *
 * After a 429, `block` stops every request of this instance until the wait is over.
 *
 * @example
 * const pacer = new Pacer(450); // this instance's share: 450 requests in any 60 s
 * const slot = await pacer.acquire(remainingMs);
 * if (!slot.ok) deferFor(slot.retryInMs);
 */
export class Pacer implements RequestPacer {
  readonly #share: number;
  /** Least time between a grant and the share-th one after it: the window plus the arrival spread, ms. */
  readonly #spacingMs: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  /** Granted send times (epoch ms), non-decreasing; `#grants[#head]` is the oldest one still kept. */
  #grants: number[] = [];
  #head = 0;
  #blockedUntil = 0;

  /**
   * @param requestsPerMinute this instance's share: requests allowed in any window of `windowMs` (a minute).
   * @throws RangeError when the share is not a whole number >= 1 or the window is not > 0 ms.
   */
  constructor(requestsPerMinute: number, options: PacerOptions = {}) {
    if (!Number.isInteger(requestsPerMinute) || requestsPerMinute < 1) {
      throw new RangeError(`requestsPerMinute must be a whole number >= 1, got ${requestsPerMinute}`);
    }
    const windowMs = options.windowMs ?? 60_000;
    if (!(windowMs > 0) || !Number.isFinite(windowMs)) {
      throw new RangeError(`windowMs must be a finite number > 0, got ${windowMs}`);
    }
    this.#share = requestsPerMinute;
    this.#spacingMs = windowMs * (1 + ARRIVAL_SPREAD_MS_PER_MINUTE / 60_000);
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /**
   * Reserves the next send time within the share and waits for it. Resolves `{ ok: true }` at that time, or
   * `{ ok: false, retryInMs }` without sending: at once when the instance is blocked by a 429 or the slot is
   * more than `maxWaitMs` (ms, the invocation's time left) away, in which case nothing is reserved; or after the
   * wait when a 429 blocked the instance meanwhile, in which case the reserved slot stays counted (it errs
   * towards fewer requests). Never rejects.
   */
  async acquire(maxWaitMs = Number.POSITIVE_INFINITY): Promise<PacerSlot> {
    const now = this.#now();
    if (now < this.#blockedUntil) return { ok: false, retryInMs: this.#blockedUntil - now };
    const slot = this.#nextSlot(now);
    if (slot - now > maxWaitMs) return { ok: false, retryInMs: slot - now };
    this.#grant(slot);
    if (slot > now) await this.#sleep(slot - now);
    const after = this.#now();
    // A 429 may have come back for another record while this one waited for its slot.
    if (after < this.#blockedUntil) return { ok: false, retryInMs: this.#blockedUntil - after };
    return { ok: true };
  }

  /** Stops all requests of this instance for `ms` milliseconds from now; a shorter block never cuts a longer one. */
  block(ms: number): void {
    this.#blockedUntil = Math.max(this.#blockedUntil, this.#now() + ms);
  }

  /** Milliseconds until the block lifts; 0 when not blocked. */
  blockedForMs(): number {
    return Math.max(0, this.#blockedUntil - this.#now());
  }

  /** The earliest time (epoch ms) at or after `now` that keeps `share + 1` consecutive grants `spacing` apart. */
  #nextSlot(now: number): number {
    const grants = this.#grants;
    // A grant at or before now - spacing can no longer delay a slot at or after now.
    while (this.#head < grants.length && (grants[this.#head] as number) <= now - this.#spacingMs)
      this.#head += 1;
    const kept = grants.length - this.#head;
    const latest = kept > 0 ? (grants[grants.length - 1] as number) : now;
    // The share-th most recent grant must be `spacing` old before another can go.
    const freed =
      kept >= this.#share ? (grants[grants.length - this.#share] as number) + this.#spacingMs : now;
    return Math.max(now, latest, freed);
  }

  #grant(at: number): void {
    this.#grants.push(at);
    const kept = this.#grants.length - this.#head;
    // Only the last `share` grants can delay a future one.
    if (kept > this.#share) this.#head = this.#grants.length - this.#share;
    if (this.#head > 1024 && this.#head * 2 > this.#grants.length) {
      this.#grants = this.#grants.slice(this.#head);
      this.#head = 0;
    }
  }
}
