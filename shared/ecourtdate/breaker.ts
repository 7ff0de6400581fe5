/**
 * The stage's circuit breaker on the eCourtDate API (docs/pacing.md, "The circuit breaker"): when eCourtDate is
 * down, or the API client's credentials stopped working, jobs are held (not sent, no attempt spent) until a probe
 * that cannot create a message (`GET /v1/settings`) succeeds. Every instance of a stage shares one state, kept
 * in the stage's `api-client` item of the ledger table (`BreakerStore`); each instance also keeps the last state
 * it saw, so most checks cost no request.
 */

/** Why the breaker is open: eCourtDate failing (5xx, timeouts, connection failures), or the credentials refused. */
export type BreakerReason = 'unavailable' | 'auth';

/** The breaker's shared state. Times are epoch ms. */
export type BreakerView =
  | { readonly state: 'closed' }
  | {
      readonly state: 'open';
      readonly reason: BreakerReason;
      readonly openedAt: number;
      /** When the next probe may start. */
      readonly probeAt: number;
      /** Probes started since the breaker opened (the next wait is `probeDelayMs(probeStep)`). */
      readonly probeStep: number;
    };

export type OpenBreaker = Extract<BreakerView, { state: 'open' }>;

export const CLOSED: BreakerView = { state: 'closed' };

/**
 * What an answer from eCourtDate says of the API's health:
 * - `up`: it answered as a working API does (2xx, 400, 403, 404, 409, 429, ...);
 * - `failure`: a 5xx, a 408, a timeout or a connection failure;
 * - `maintenance`: a 503 with `Retry-After` (`retryAfterSeconds`), eCourtDate's sign of a maintenance window: a
 *   failure whose hint sets the first probe when it is the one that opens the breaker;
 * - `auth`: a 401 that outlived a token renewal and a secret re-read, or a token endpoint that still refuses the
 *   credentials after the re-read (a revoked API client);
 * - `neutral`: says nothing either way (a single 401, which the client answers with a token renewal).
 */
export type ApiSignal =
  | { readonly kind: 'up' }
  | { readonly kind: 'failure' }
  | { readonly kind: 'maintenance'; readonly retryAfterSeconds: number }
  | { readonly kind: 'auth' }
  | { readonly kind: 'neutral' };

/**
 * Failed requests in a row (on one instance, with no answer of a working API between) that open the breaker: a
 * few, so an outage costs about one batch, but more than a run of unrelated 5xx on a working API is likely to be.
 */
export const OPEN_AFTER_FAILURES = 5;

/**
 * The waits between probes, seconds before time scaling: eCourtDate asks to wait at least a minute after a 503
 * and to back off (docs/contract.md, "What each response does"); the last step repeats. Two hours allow at most
 * 14 probes (docs/pacing.md, "Probing").
 */
export const PROBE_STEPS_SECONDS = [60, 120, 240, 480, 600] as const;

/** The longest a 503's `Retry-After` may put the first probe off, seconds before time scaling (SQS's longest delay). */
export const MAX_MAINTENANCE_WAIT_SECONDS = 900;

/**
 * How far off a next probe may be, seconds before time scaling, before the state is taken as one no breaker wrote
 * (a damaged item, a clock far ahead): twice the longest wait the breaker sets. Such a probe is due now, so that
 * it never holds every job until its deadline.
 */
export const MAX_PROBE_WAIT_SECONDS = 2 * Math.max(MAX_MAINTENANCE_WAIT_SECONDS, ...PROBE_STEPS_SECONDS);

/**
 * The health signal of one answer (pure). `status` is the HTTP status, or `timeout` / `connection` for a request
 * that got none; `retryAfterSeconds` the parsed `Retry-After`, if any.
 */
export function signalOf(
  status: number | 'timeout' | 'connection',
  retryAfterSeconds?: number | undefined,
): ApiSignal {
  if (typeof status !== 'number') return { kind: 'failure' };
  if (status === 503 && retryAfterSeconds !== undefined) return { kind: 'maintenance', retryAfterSeconds };
  if (status >= 500 || status === 408) return { kind: 'failure' };
  if (status === 401) return { kind: 'neutral' };
  return { kind: 'up' };
}

/** The wait after probe number `step` (0 = the wait before the first probe), ms, time-scaled (pure). */
export function probeDelayMs(step: number, timeScale: number): number {
  const steps = PROBE_STEPS_SECONDS;
  const seconds = steps[Math.min(Math.max(step, 0), steps.length - 1)] as number;
  return (seconds * 1000) / timeScale;
}

/**
 * The open state a signal starts at `now` (epoch ms) (pure): the first probe after the first step, or after a
 * maintenance 503's `Retry-After` (at least the first step, at most `MAX_MAINTENANCE_WAIT_SECONDS`).
 */
export function openedBy(
  signal: Extract<ApiSignal, { kind: 'failure' | 'maintenance' | 'auth' }>,
  now: number,
  timeScale: number,
): OpenBreaker {
  const first = probeDelayMs(0, timeScale);
  const hinted =
    signal.kind === 'maintenance'
      ? Math.min(signal.retryAfterSeconds * 1000, MAX_MAINTENANCE_WAIT_SECONDS * 1000) / timeScale
      : 0;
  return {
    state: 'open',
    reason: signal.kind === 'auth' ? 'auth' : 'unavailable',
    openedAt: now,
    probeAt: now + Math.max(first, hinted),
    probeStep: 0,
  };
}

/** The view after this instance claimed the probe due at `view.probeAt` (pure). */
export function probeClaimed(view: OpenBreaker, now: number, timeScale: number): OpenBreaker {
  return {
    ...view,
    probeAt: now + probeDelayMs(view.probeStep + 1, timeScale),
    probeStep: view.probeStep + 1,
  };
}

/**
 * Where the breaker keeps its shared state (the stage's `api-client` item). Each write is conditional, so two
 * instances never both open it, both probe, or close it after it opened again. Methods return the state after
 * the call (the winner's), and throw the store's errors (DynamoDB refused), which `Breaker` absorbs.
 */
export interface BreakerStore {
  read(): Promise<BreakerView>;
  /**
   * Opens the breaker as `view` unless it is open already (an item marked open but damaged is not), or was closed
   * at or after `view.openedAt` (an opening decided before the probe that closed it); returns the state that holds.
   */
  open(view: OpenBreaker): Promise<BreakerView>;
  /** Takes the probe of `seen` (its `probeAt` unchanged since) by writing `next`; false when another took it. */
  claimProbe(seen: OpenBreaker, next: OpenBreaker): Promise<{ claimed: boolean; view: BreakerView }>;
  /** Closes the breaker opened at `seen.openedAt`, unless it was closed (and maybe opened again) since. */
  close(seen: OpenBreaker, now: number): Promise<BreakerView>;
}

/** What the breaker says to a record about to be prepared. */
export type BreakerCheck =
  | { readonly kind: 'closed' }
  /** Held: nothing sent; offer the job again in `retryInMs` (ms from now), after the next probe. */
  | { readonly kind: 'held'; readonly reason: BreakerReason; readonly retryInMs: number }
  /** This instance took the due probe: run it, then call `probed`. */
  | { readonly kind: 'probe'; readonly view: OpenBreaker };

export interface BreakerOptions {
  readonly store: BreakerStore;
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
  /** Jitter source in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** The stage's `TIME_SCALE`: probe waits and the refresh interval are divided by it. @default 1 */
  readonly timeScale?: number;
  /**
   * How long a probe can take, ms: held jobs come back this long after their probe is due, so that they find it
   * done. @default 0
   */
  readonly probeMs?: number;
  /**
   * How old the last state seen may be before a check reads the item again, ms before time scaling. Rarely
   * reached by a sending instance: every lease answer carries the state, and a lease comes before each run of
   * sends. @default 60_000
   */
  readonly refreshMs?: number;
  /** Told when the store refused a read or a write (the breaker then goes on with the state it last saw). */
  readonly onStoreError?: (error: unknown) => void;
  /** Told when this instance opened or closed the breaker (for the log and the metrics). */
  readonly onChange?: (view: BreakerView) => void;
  /** Told when this instance takes a due probe (for the metrics). */
  readonly onProbe?: () => void;
}

/**
 * One instance's handle on the stage's breaker. `record` takes the health signal of every answer (synchronously:
 * no request is made inside an attempt); the write that opens the breaker is made by the next `check`, before any
 * claim. `check` tells a record whether it may be sent, is held, or must run the due probe; `probed` closes the
 * breaker when the probe found eCourtDate working. A store that fails never stops sending: the breaker then goes
 * on with the state it last saw, and this instance's own failures still open it here.
 */
export class Breaker {
  readonly #store: BreakerStore;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #timeScale: number;
  readonly #probeMs: number;
  readonly #refreshMs: number;
  readonly #options: BreakerOptions;
  #view: BreakerView = CLOSED;
  #seenAt = Number.NEGATIVE_INFINITY;
  #failuresInRow = 0;
  /** How many states were seen: a read started before a newer one was seen is dropped. */
  #seen = 0;
  #reading: Promise<void> | undefined;
  /** An opening this instance decided but has not written yet. */
  #pendingOpen: OpenBreaker | undefined;
  /** The write of `#pendingOpen` under way: the records of a batch that check together share it. */
  #openWrite: Promise<void> | undefined;

  constructor(options: BreakerOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#timeScale = options.timeScale ?? 1;
    this.#probeMs = options.probeMs ?? 0;
    this.#refreshMs = (options.refreshMs ?? 60_000) / this.#timeScale;
  }

  /** The state this instance last saw (or decided). */
  get view(): BreakerView {
    return this.#pendingOpen ?? this.#view;
  }

  /** Takes the state read elsewhere (a rate-budget lease reads the same item), seen at `now` (epoch ms). */
  observe(view: BreakerView, now: number): void {
    this.#see(view, now);
  }

  /**
   * Whether the state seen now (no request) holds jobs: the hold, or undefined when closed or when the probe is
   * due (a `check` takes it). For a record that passed `check` before news came (a lease answer).
   */
  heldNow(): Extract<BreakerCheck, { kind: 'held' }> | undefined {
    const view = this.view;
    const now = this.#now();
    if (view.state !== 'open' || this.#probeDue(view, now)) return undefined;
    return this.#held(view, now);
  }

  /** Takes the health signal of one answer. Never makes a request; never throws. */
  record(signal: ApiSignal): void {
    switch (signal.kind) {
      case 'up':
        this.#failuresInRow = 0;
        return;
      case 'neutral':
        return;
      case 'failure':
      case 'maintenance':
        // A 503 with Retry-After counts as a failure; when it is the one that opens, the first probe waits its hint.
        this.#failuresInRow += 1;
        if (this.#failuresInRow >= OPEN_AFTER_FAILURES) this.#open(signal);
        return;
      case 'auth':
        this.#failuresInRow += 1;
        this.#open(signal);
        return;
    }
  }

  /**
   * Whether a record may be prepared now. Writes an opening this instance decided, reads the shared state when the
   * last one seen is older than the refresh interval, and takes the probe when it is due. Never throws.
   */
  async check(): Promise<BreakerCheck> {
    const now = this.#now();
    if (this.#pendingOpen !== undefined) {
      const opening = this.#pendingOpen;
      this.#openWrite ??= this.#writeOpening(opening, now).finally(() => {
        this.#openWrite = undefined;
      });
      await this.#openWrite;
    } else if (now - this.#seenAt >= this.#refreshMs) {
      // Read in the background, answering from the state last seen: a read never takes a job's time. Only a
      // container's first check waits for it, so that a new instance does not send into an open breaker.
      const refresh = this.#refresh();
      if (this.#seenAt === Number.NEGATIVE_INFINITY) await refresh;
    }
    const view = this.view;
    if (view.state === 'closed') return { kind: 'closed' };
    if (!this.#probeDue(view, now)) return this.#held(view, now);
    if (this.#pendingOpen !== undefined) {
      // The store refused the opening: this instance's breaker is its own, and so is its probe.
      this.#pendingOpen = probeClaimed(view, now, this.#timeScale);
      this.#options.onProbe?.();
      return { kind: 'probe', view: this.#pendingOpen };
    }
    const next = probeClaimed(view, now, this.#timeScale);
    const claim = await this.#attempt(() => this.#store.claimProbe(view, next));
    if (claim === undefined) return this.#held(view, now);
    this.#see(claim.view, now);
    if (!claim.claimed) {
      return claim.view.state === 'open' ? this.#held(claim.view, now) : { kind: 'closed' };
    }
    this.#options.onProbe?.();
    return { kind: 'probe', view: next };
  }

  /**
   * The end of a probe this instance ran: `signal` is its answer's health. An `up` closes the breaker (unless it was
   * opened again since) and returns `closed`; anything else leaves it open until the next probe and returns
   * `held`. Never throws.
   */
  async probed(view: OpenBreaker, signal: ApiSignal): Promise<BreakerCheck> {
    const now = this.#now();
    // Anything but a working API keeps the breaker open with its first reason (the alarm on-call got).
    if (signal.kind !== 'up') return this.#held(view, now);
    this.#failuresInRow = 0;
    if (this.#pendingOpen !== undefined && sameOpening(this.#pendingOpen, view)) {
      this.#pendingOpen = undefined;
      this.#options.onChange?.(this.view);
      return { kind: 'closed' };
    }
    const closed = await this.#attempt(() => this.#store.close(view, now));
    if (closed === undefined) {
      // eCourtDate works; the store refused the write: this instance sends, the next probe closes it for all.
      this.#see(CLOSED, now);
      return { kind: 'closed' };
    }
    this.#see(closed, this.#now());
    if (closed.state === 'closed') {
      this.#options.onChange?.(closed);
      return { kind: 'closed' };
    }
    return this.#held(closed, now);
  }

  /** One write of an opening this instance decided; unwritten, it stays its own (held here) for a later check. */
  async #writeOpening(opening: OpenBreaker, now: number): Promise<void> {
    const written = await this.#attempt(() => this.#store.open(opening));
    if (written === undefined) return;
    this.#pendingOpen = undefined;
    // Refused as stale (closed since it was decided): its failures no longer count towards the next opening.
    if (written.state === 'closed') this.#failuresInRow = 0;
    this.#see(written, now);
    if (written === opening || sameOpening(written, opening)) this.#options.onChange?.(written);
  }

  /** Whether the open state's probe is due at `now`: its time has come, or it is further off than any wait. */
  #probeDue(view: OpenBreaker, now: number): boolean {
    return now >= view.probeAt || view.probeAt - now > (MAX_PROBE_WAIT_SECONDS * 1000) / this.#timeScale;
  }

  #open(signal: Extract<ApiSignal, { kind: 'failure' | 'maintenance' | 'auth' }>): void {
    const current = this.view;
    // Already open for an outage: an auth failure on top is told by the AuthFailing alarm, not a new opening.
    if (current.state === 'open') return;
    this.#pendingOpen = openedBy(signal, this.#now(), this.#timeScale);
  }

  #held(view: OpenBreaker, now: number): Extract<BreakerCheck, { kind: 'held' }> {
    // Back after the probe is due and done, spread over a fifth of a step so held jobs ramp up, not stampede.
    const spread = probeDelayMs(view.probeStep, this.#timeScale) / 5;
    const retryInMs = Math.max(view.probeAt - now, 0) + this.#probeMs + Math.floor(this.#random() * spread);
    return { kind: 'held', reason: view.reason, retryInMs };
  }

  #see(view: BreakerView, now: number): void {
    // Failures counted before the breaker opened or closed say nothing of the API since.
    if (view.state !== this.#view.state) this.#failuresInRow = 0;
    this.#view = view;
    this.#seenAt = now;
    this.#seen += 1;
  }

  /** One read of the shared state at a time; its answer is dropped if a newer state was seen meanwhile. */
  #refresh(): Promise<void> {
    this.#reading ??= (async () => {
      const before = this.#seen;
      const startedAt = this.#now();
      const read = await this.#attempt(() => this.#store.read());
      if (read !== undefined && this.#seen === before) this.#see(read, startedAt);
      // A store that refused the read is not asked again by every record: the state last seen (closed, for a new
      // container) stands until the next refresh.
      if (read === undefined) this.#seenAt = Math.max(this.#seenAt, startedAt);
    })().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  async #attempt<T>(call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      this.#options.onStoreError?.(error);
      return undefined;
    }
  }
}

function sameOpening(a: BreakerView, b: OpenBreaker): boolean {
  return a.state === 'open' && a.openedAt === b.openedAt && a.reason === b.reason;
}
