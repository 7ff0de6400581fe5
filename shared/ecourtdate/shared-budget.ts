import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { Pacer, type PacerSlot, type RequestPacer } from '#shared/ecourtdate/pacer.ts';

/**
 * One rate budget for the whole API client (docs/pacing.md, "One budget for the API client"): time is cut into
 * slices of one second (scaled by `TIME_SCALE`), slice j may hold `sliceCap(L, j)` requests, and any
 * `WINDOW_SLICES` consecutive slices hold exactly L. Instances lease slots of the slices from one DynamoDB item
 * per stage (`api-client` in the ledger table, docs/ledger.md) and spend a slot only inside its slice. A request
 * reaching eCourtDate up to 1 s after its slot puts any 60 s window of arrivals within 62 consecutive slices: so
 * eCourtDate never sees more than L of the relay's requests in any 60 s window, whatever the instances do.
 */

/** The key (`id`) of the stage's API-client item in the ledger table (docs/ledger.md). */
export const API_CLIENT_ITEM_ID = 'api-client';

/**
 * Slices over which the caps add up to the budget: the 60 slices of a minute plus 2, since a 60 s window of
 * arrivals, each up to 1 s after its slot's slice, meets at most 62 slices (docs/pacing.md).
 */
export const WINDOW_SLICES = 62;

/** Past slices kept in the item, for an instance whose clock lags a little behind the others'. */
const KEPT_PAST_SLICES = 2;

/** The attributes of the `api-client` item the budget owns (the breaker's carry the prefix `breaker_`). */
export const BUDGET_ATTRIBUTE = {
  version: 'budget_version',
  slices: 'budget_slices',
  perMinute: 'budget_per_minute',
  blockedUntil: 'blocked_until',
} as const;

/**
 * Requests slice `slice` may hold: `floor((j+1)·L/62) - floor(j·L/62)` for a budget of L requests a minute. The
 * caps of any 62 consecutive slices add up to exactly L (the sum telescopes).
 *
 * @param budgetPerMinute L, the stage's budget, a whole number >= 0.
 * @param slice the slice index j (`floor(epoch ms / slice ms)`).
 */
export function sliceCap(budgetPerMinute: number, slice: number): number {
  return (
    Math.floor(((slice + 1) * budgetPerMinute) / WINDOW_SLICES) -
    Math.floor((slice * budgetPerMinute) / WINDOW_SLICES)
  );
}

/** Requests `count` consecutive slices from `first` may hold: the sum of their caps. */
export function slicesCapacity(budgetPerMinute: number, first: number, count: number): number {
  return (
    Math.floor(((first + count) * budgetPerMinute) / WINDOW_SLICES) -
    Math.floor((first * budgetPerMinute) / WINDOW_SLICES)
  );
}

/** Slots granted in one slice: `count` requests may be sent while the clock is in slice `slice`. */
export interface SliceGrant {
  readonly slice: number;
  readonly count: number;
}

/** What the budget part of the item says: slots granted per slice (current and future slices only). */
export interface BudgetView {
  /** `budget_version`; undefined while the item has none (no lease was ever written). */
  readonly version: number | undefined;
  /** `budget_slices`: slice index (as a string, a map key) -> slots granted in it. */
  readonly slices: Readonly<Record<string, number>>;
  /** `blocked_until`, epoch ms; 0 when absent. */
  readonly blockedUntil: number;
  /** `budget_per_minute`: the budget the last lease was computed with; undefined when absent. */
  readonly budgetPerMinute: number | undefined;
}

/** What a lease asks for. */
export interface LeaseRequest {
  /** L, the stage's budget, requests a minute. */
  readonly budgetPerMinute: number;
  /** The current slice: slots are taken from it and later ones. */
  readonly fromSlice: number;
  /** Slots wanted, >= 1. */
  readonly want: number;
  /** Slices looked at, from `fromSlice` on; slots beyond them are not leased. */
  readonly horizonSlices: number;
}

/** A lease computed on a view: the slots granted and the item's new `budget_slices`. */
export interface LeasePlan {
  readonly grants: readonly SliceGrant[];
  readonly slices: Record<string, number>;
}

/**
 * Takes up to `want` slots from the earliest slices with room (cap less what is granted), from `fromSlice` over
 * `horizonSlices` slices. The new map keeps slices from `fromSlice - 2` on (a slice that passed cannot be spent
 * in; two are kept for an instance whose clock lags). Pure.
 */
export function planLease(view: Pick<BudgetView, 'slices'>, request: LeaseRequest): LeasePlan {
  const slices: Record<string, number> = {};
  for (const [key, granted] of Object.entries(view.slices)) {
    if (Number(key) >= request.fromSlice - KEPT_PAST_SLICES) slices[key] = granted;
  }
  const grants: SliceGrant[] = [];
  let left = request.want;
  for (let j = request.fromSlice; j < request.fromSlice + request.horizonSlices && left > 0; j += 1) {
    const granted = slices[String(j)] ?? 0;
    const room = sliceCap(request.budgetPerMinute, j) - granted;
    if (room <= 0) continue;
    const count = Math.min(room, left);
    grants.push({ slice: j, count });
    slices[String(j)] = granted + count;
    left -= count;
  }
  return { grants, slices };
}

/** The raw `api-client` item, unmarshalled, as the budget's store saw it (the breaker reads its attributes). */
export type ApiClientItem = Readonly<Record<string, unknown>>;

/** What a lease got: the slots, and the item's `blocked_until` (epoch ms, 0 when none). */
export interface LeaseAnswer {
  readonly grants: readonly SliceGrant[];
  readonly blockedUntil: number;
}

/** Where the budget lives: `DynamoBudgetStore` in AWS, any object with these methods in a test. */
export interface BudgetStore {
  /**
   * Leases slots (see {@link planLease}). Rejects when the store cannot be read or written (the pacer falls back
   * to its reserve share, docs/pacing.md "When the item does not answer").
   */
  lease(request: LeaseRequest): Promise<LeaseAnswer>;
  /** Records a 429's wait, epoch ms, for every instance; a shorter one never cuts a longer one. May reject. */
  block(until: number): Promise<void>;
}

/** Options of {@link DynamoBudgetStore}. */
export interface DynamoBudgetStoreOptions {
  readonly client: DynamoDBClient;
  /** The stage's ledger table (`LEDGER_TABLE_NAME`), which holds the `api-client` item. */
  readonly tableName: string;
  /**
   * Given every version of the item a write returned (`ALL_NEW` after a lease, `ALL_OLD` after a lost condition),
   * with the clock (epoch ms) then: the breaker learns its state from it without a request of its own. A
   * throwing callback is ignored.
   */
  readonly onItem?: (item: ApiClientItem, now: number) => void;
  /** Writes tried per lease before it gives up (each lost condition hands back the item to plan again on). @default 6 */
  readonly maxTries?: number;
  /** Epoch ms. @default Date.now */
  readonly now?: () => number;
}

/** Thrown by {@link DynamoBudgetStore.lease} when every try lost its condition to another instance's lease. */
export class BudgetContendedError extends Error {
  constructor(tries: number) {
    super(`the api-client item changed under each of ${tries} lease writes; leasing again later`);
    this.name = 'BudgetContendedError';
  }
}

/**
 * The budget in the `api-client` item of the ledger table (docs/ledger.md). A lease is one UpdateItem of
 * `budget_slices`, conditioned on `budget_version`; when another instance's lease came first, DynamoDB hands back
 * the item (`ReturnValuesOnConditionCheckFailure: ALL_OLD`) and the lease is planned again on it, at most
 * `maxTries` writes in all. Breaker attributes are never written here, and breaker writes never touch
 * `budget_version`, so they never conflict. Throws what DynamoDB throws (the pacer falls back), and
 * `BudgetContendedError` when every try lost.
 */
export class DynamoBudgetStore implements BudgetStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #onItem: ((item: ApiClientItem, now: number) => void) | undefined;
  readonly #maxTries: number;
  readonly #now: () => number;
  /** The item as last seen: the first try plans on it, so a lone busy instance leases in one write. */
  #view: BudgetView = { version: undefined, slices: {}, blockedUntil: 0, budgetPerMinute: undefined };

  constructor(options: DynamoBudgetStoreOptions) {
    this.#doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.#table = options.tableName;
    this.#onItem = options.onItem;
    this.#maxTries = options.maxTries ?? 6;
    this.#now = options.now ?? Date.now;
  }

  async lease(request: LeaseRequest): Promise<LeaseAnswer> {
    for (let tries = 1; tries <= this.#maxTries; tries += 1) {
      const view = this.#view;
      if (view.blockedUntil > this.#now()) return { grants: [], blockedUntil: view.blockedUntil };
      const plan = planLease(view, request);
      // Other leases only ever add grants: what has no room in a stale view has none in the item either.
      if (plan.grants.length === 0) return { grants: [], blockedUntil: view.blockedUntil };
      try {
        const out = await this.#doc.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: { id: API_CLIENT_ITEM_ID },
            UpdateExpression: 'SET #slices = :slices, #version = :next, #perMinute = :perMinute',
            ConditionExpression:
              view.version === undefined ? 'attribute_not_exists(#version)' : '#version = :version',
            ExpressionAttributeNames: {
              '#slices': BUDGET_ATTRIBUTE.slices,
              '#version': BUDGET_ATTRIBUTE.version,
              '#perMinute': BUDGET_ATTRIBUTE.perMinute,
            },
            ExpressionAttributeValues: {
              ':slices': plan.slices,
              ':next': (view.version ?? 0) + 1,
              ':perMinute': request.budgetPerMinute,
              ...(view.version === undefined ? {} : { ':version': view.version }),
            },
            ReturnValues: 'ALL_NEW',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        const view2 = this.#learn(out.Attributes ?? {});
        return { grants: plan.grants, blockedUntil: view2.blockedUntil };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        // A resend whose first write had applied also lands here: its slots stay counted, unused (fewer requests).
        this.#learn(error.Item ? unmarshall(error.Item) : {});
      }
    }
    throw new BudgetContendedError(this.#maxTries);
  }

  async block(until: number): Promise<void> {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { id: API_CLIENT_ITEM_ID },
          UpdateExpression: 'SET #blocked = :until',
          ConditionExpression: 'attribute_not_exists(#blocked) OR #blocked < :until',
          ExpressionAttributeNames: { '#blocked': BUDGET_ATTRIBUTE.blockedUntil },
          ExpressionAttributeValues: { ':until': until },
        }),
      );
    } catch (error) {
      // A later block is already recorded: nothing to do.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /**
   * Reads the item (one consistent GetItem): the view it holds, or undefined when there is no item. Throws what
   * DynamoDB throws. The CLI learns the stage's budget from it (`budgetPerMinute`).
   */
  async read(): Promise<BudgetView | undefined> {
    const out = await this.#doc.send(
      new GetCommand({ TableName: this.#table, Key: { id: API_CLIENT_ITEM_ID }, ConsistentRead: true }),
    );
    return out.Item === undefined ? undefined : this.#learn(out.Item);
  }

  #learn(item: Record<string, unknown>): BudgetView {
    const view = budgetViewOf(item);
    this.#view = view;
    try {
      this.#onItem?.(item, this.#now());
    } catch {
      // The breaker's fault is not the lease's.
    }
    return view;
  }
}

/** The budget attributes of a raw item; absent or malformed ones read as empty. */
export function budgetViewOf(item: ApiClientItem): BudgetView {
  const version = item[BUDGET_ATTRIBUTE.version];
  const slices = item[BUDGET_ATTRIBUTE.slices];
  const blockedUntil = item[BUDGET_ATTRIBUTE.blockedUntil];
  const perMinute = item[BUDGET_ATTRIBUTE.perMinute];
  return {
    version: typeof version === 'number' ? version : undefined,
    slices:
      typeof slices === 'object' && slices !== null
        ? Object.fromEntries(
            Object.entries(slices).filter((entry): entry is [string, number] => typeof entry[1] === 'number'),
          )
        : {},
    blockedUntil: typeof blockedUntil === 'number' ? blockedUntil : 0,
    budgetPerMinute: typeof perMinute === 'number' ? perMinute : undefined,
  };
}

/** Options of {@link SharedBudgetPacer}. */
export interface SharedBudgetPacerOptions {
  readonly store: BudgetStore;
  /** L: the stage's budget, requests a minute, shared by every instance and the CLI (`REQUESTS_PER_MINUTE`). */
  readonly budgetPerMinute: number;
  /**
   * This instance's share of the reserve (the limit less L) when the store fails, requests a minute
   * (`FALLBACK_REQUESTS_PER_MINUTE`); below 1 the instance sends nothing until the store answers again.
   */
  readonly fallbackPerMinute: number;
  /** One slice, ms: 1,000 / `TIME_SCALE`. @default 1000 */
  readonly sliceMs?: number;
  /** After a failed lease, ms the fallback lasts before the store is tried again. @default 5 slices */
  readonly storeRetryMs?: number;
  /** The most slots one lease takes. @default 30 */
  readonly maxLeaseSlots?: number;
  /** Slices a lease looks at ahead. @default WINDOW_SLICES */
  readonly horizonSlices?: number;
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
  /** Waits `ms` milliseconds. @default a `setTimeout` promise */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Which way a slot was got, for tests and figures: a leased slot of the budget, or the fallback's reserve. */
export interface SharedBudgetCounts {
  readonly leases: number;
  readonly leasedSlots: number;
  readonly spentLeased: number;
  readonly spentFallback: number;
  readonly failedLeases: number;
}

/**
 * A {@link RequestPacer} that spends slots of the API client's one budget (docs/pacing.md). It keeps the slots
 * it leased, sorted by slice, and hands them out in order: a request waits for its slot's slice to begin, and a
 * slot whose slice ended unspent is void. When it holds none, it leases more, one lease at a time for all the
 * requests waiting. A lease takes as many slots as were spent in the last two slices plus the requests waiting,
 * at most `maxLeaseSlots`: a busy instance leases about two slices' worth at once (one DynamoDB request for
 * about 30 sends), a quiet one only what it needs, so that slots it would leave unspent stay for the others.
 *
 * When a lease fails (the store throws), the instance paces to `fallbackPerMinute` with a {@link Pacer} of its
 * own (the reserve's split, so that the budget's grants and every instance's fallback together stay within the
 * limit) for `storeRetryMs`, and then leases again. Slots already leased are still spent meanwhile.
 *
 * `block` stops this instance and writes `blocked_until` to the item; a lease that finds `blocked_until` later
 * than now blocks the instance until then.
 */
export class SharedBudgetPacer implements RequestPacer {
  readonly #store: BudgetStore;
  readonly #budget: number;
  readonly #fallback: Pacer | undefined;
  readonly #sliceMs: number;
  readonly #storeRetryMs: number;
  readonly #maxLeaseSlots: number;
  readonly #horizonSlices: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  /** Slots held, by slice, earliest first. */
  #held: { slice: number; count: number }[] = [];
  /** The slices of the last slots spent (the lease size follows them). */
  #spent: number[] = [];
  #waiting = 0;
  #leasing: Promise<void> | undefined;
  #storeRetryAt = 0;
  #blockedUntil = 0;
  #counts = { leases: 0, leasedSlots: 0, spentLeased: 0, spentFallback: 0, failedLeases: 0 };
  #pendingBlock: Promise<void> = Promise.resolve();

  /** @throws RangeError when the budget is not a whole number >= 1 or the slice is not > 0 ms. */
  constructor(options: SharedBudgetPacerOptions) {
    if (!Number.isInteger(options.budgetPerMinute) || options.budgetPerMinute < 1) {
      throw new RangeError(`budgetPerMinute must be a whole number >= 1, got ${options.budgetPerMinute}`);
    }
    const sliceMs = options.sliceMs ?? 1000;
    if (!(sliceMs > 0) || !Number.isFinite(sliceMs)) {
      throw new RangeError(`sliceMs must be a finite number > 0, got ${sliceMs}`);
    }
    this.#store = options.store;
    this.#budget = options.budgetPerMinute;
    this.#sliceMs = sliceMs;
    this.#storeRetryMs = options.storeRetryMs ?? 5 * sliceMs;
    this.#maxLeaseSlots = options.maxLeaseSlots ?? 30;
    this.#horizonSlices = options.horizonSlices ?? WINDOW_SLICES;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    const fallback = Math.floor(options.fallbackPerMinute);
    // The fallback's minute is the scaled one, as the slices are.
    this.#fallback =
      fallback >= 1
        ? new Pacer(fallback, { now: this.#now, sleep: this.#sleep, windowMs: 60 * sliceMs })
        : undefined;
  }

  /**
   * Waits for a slot: a leased one (waiting for its slice to begin), or while the store fails one of the
   * fallback's. Resolves `{ ok: false, retryInMs }` without sending when blocked by a 429, when the next slot is
   * more than `maxWaitMs` (ms) away (the slot stays held for a later request), when the budget has no room within
   * the horizon, or when the store fails and there is no fallback share. Never rejects.
   */
  async acquire(maxWaitMs = Number.POSITIVE_INFINITY): Promise<PacerSlot> {
    for (;;) {
      const now = this.#now();
      if (now < this.#blockedUntil) return { ok: false, retryInMs: this.#blockedUntil - now };
      const current = Math.floor(now / this.#sliceMs);
      while (this.#held.length > 0 && (this.#held[0] as { slice: number }).slice < current)
        this.#held.shift();
      const first = this.#held[0];
      if (first !== undefined) {
        const wait = Math.max(0, first.slice * this.#sliceMs - now);
        if (wait > maxWaitMs) return { ok: false, retryInMs: wait };
        first.count -= 1;
        if (first.count === 0) this.#held.shift();
        if (wait > 0) await this.#sleep(wait);
        const after = this.#now();
        if (after < this.#blockedUntil) return { ok: false, retryInMs: this.#blockedUntil - after };
        // A wake-up after the slice ended (a busy event loop) finds the slot void: it is not spent late.
        if (after >= (first.slice + 1) * this.#sliceMs) continue;
        this.#spend(first.slice);
        this.#counts.spentLeased += 1;
        return { ok: true };
      }
      if (now < this.#storeRetryAt) return this.#fallbackSlot(now, maxWaitMs);
      const leased = await this.#lease();
      if (leased === 'failed') return this.#fallbackSlot(this.#now(), maxWaitMs);
      if (leased === 'none' && this.#held.length === 0) {
        const after = this.#now();
        if (after < this.#blockedUntil) return { ok: false, retryInMs: this.#blockedUntil - after };
        // No room within the horizon: every slot there is someone's.
        return { ok: false, retryInMs: this.#horizonSlices * this.#sliceMs };
      }
    }
  }

  /** Stops every request of this instance for `ms` ms, and tells the others through the item's `blocked_until`. */
  block(ms: number): void {
    const until = this.#now() + ms;
    this.#blockedUntil = Math.max(this.#blockedUntil, until);
    this.#fallback?.block(ms);
    // A failed write costs the others nothing but the news: their own 429s tell them.
    this.#pendingBlock = this.#store.block(until).catch(() => undefined);
  }

  blockedForMs(): number {
    return Math.max(0, this.#blockedUntil - this.#now());
  }

  /** Resolves when the last `block`'s write to the store has ended (tests). */
  async blockWritten(): Promise<void> {
    await this.#pendingBlock;
  }

  /** How slots were got so far. */
  counts(): SharedBudgetCounts {
    return { ...this.#counts };
  }

  #fallbackSlot(now: number, maxWaitMs: number): Promise<PacerSlot> | PacerSlot {
    if (this.#fallback === undefined) return { ok: false, retryInMs: Math.max(1, this.#storeRetryAt - now) };
    return this.#fallback.acquire(maxWaitMs).then((slot) => {
      if (slot.ok) this.#counts.spentFallback += 1;
      return slot;
    });
  }

  /** One lease for every waiting request: 'got' slots, 'none' (no room, or blocked), or 'failed' (the store). */
  async #lease(): Promise<'got' | 'none' | 'failed'> {
    this.#waiting += 1;
    try {
      if (this.#leasing === undefined) {
        const run = this.#leaseOnce();
        this.#leasing = run.finally(() => {
          this.#leasing = undefined;
        });
      }
      await this.#leasing;
    } finally {
      this.#waiting -= 1;
    }
    if (this.#now() < this.#storeRetryAt) return 'failed';
    return this.#held.length > 0 ? 'got' : 'none';
  }

  async #leaseOnce(): Promise<void> {
    const now = this.#now();
    const current = Math.floor(now / this.#sliceMs);
    const recent = this.#spent.filter((slice) => slice >= current - 2).length;
    const want = Math.max(1, Math.min(this.#maxLeaseSlots, recent + this.#waiting));
    try {
      const answer = await this.#store.lease({
        budgetPerMinute: this.#budget,
        fromSlice: current,
        want,
        horizonSlices: this.#horizonSlices,
      });
      this.#counts.leases += 1;
      if (answer.blockedUntil > this.#now()) {
        this.#blockedUntil = Math.max(this.#blockedUntil, answer.blockedUntil);
      }
      for (const grant of answer.grants) {
        this.#counts.leasedSlots += grant.count;
        this.#held.push({ slice: grant.slice, count: grant.count });
      }
      this.#held.sort((a, b) => a.slice - b.slice);
    } catch {
      this.#counts.failedLeases += 1;
      this.#storeRetryAt = this.#now() + this.#storeRetryMs;
    }
  }

  #spend(slice: number): void {
    this.#spent.push(slice);
    if (this.#spent.length > this.#maxLeaseSlots * 2)
      this.#spent.splice(0, this.#spent.length - this.#maxLeaseSlots);
  }
}
