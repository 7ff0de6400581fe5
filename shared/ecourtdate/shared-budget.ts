import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { conditionalWrite } from '#shared/clients/conditional-write.ts';
import {
  ECOURTDATE_LIMIT_PER_MINUTE,
  Pacer,
  type PacerSlot,
  type RequestPacer,
} from '#shared/ecourtdate/pacer.ts';

/**
 * One rate budget for the whole API client (docs/pacing.md, "One budget for the API client"): time is cut into
 * slices of one second (scaled by `TIME_SCALE`), slice j may hold `sliceCap(L, j)` requests, and any
 * `BUDGET_SLICES` (60) consecutive slices hold exactly L. The slots of all slices are numbered in one sequence, and
 * instances lease runs of consecutive slots from one counter in a DynamoDB item per stage (`api-client` in the
 * ledger table, docs/ledger.md), spending a slot only inside its slice or the next one. A request reaching
 * eCourtDate up to 1 s after it was let go puts any 60 s window of arrivals within `WINDOW_SLICES` (63)
 * consecutive slices: so eCourtDate never sees more than `budgetWindowCeiling(L)` of the budget's requests in any
 * 60 s window, whatever the instances do.
 */

/** The key (`id`) of the stage's API-client item in the ledger table (docs/ledger.md). */
export const API_CLIENT_ITEM_ID = 'api-client';

/** Slices over which the caps add up to the budget L: the 60 slices of a minute. */
export const BUDGET_SLICES = 60;

/**
 * Slices after its own in which a slot may still be spent: a request that finds its instance's slot of the slice
 * that just ended spends it (a batch that came a little late), instead of leaving it void (docs/pacing.md).
 */
export const SPEND_GRACE_SLICES = 1;

/**
 * Slices whose slots a 60 s window of arrivals can hold: the 60 of a minute, plus the grace slice, plus 2 since a
 * request arrives up to 1 s after it was let go (docs/pacing.md, "The guarantee").
 */
export const WINDOW_SLICES = BUDGET_SLICES + SPEND_GRACE_SLICES + 2;

/** Slices a lease looks at ahead by default: leases of several busy instances queue up within it. */
export const DEFAULT_HORIZON_SLICES = 20;

/** The attributes of the `api-client` item the budget owns (the breaker's carry the prefix `breaker_`). */
export const BUDGET_ATTRIBUTE = {
  /** The first slot of the sequence no lease has taken yet. */
  nextSlot: 'budget_next_slot',
  /** Leases written so far: a lease that sets the counter is conditioned on it. */
  version: 'budget_version',
  /** The budget and the slice length (ms) the slots are numbered with. */
  perMinute: 'budget_per_minute',
  sliceMs: 'budget_slice_ms',
  blockedUntil: 'blocked_until',
} as const;

/**
 * The number of the first slot of slice `slice`: `floor(j·L/60)`. Slice j holds the slots from it up to the next
 * slice's first (excluded).
 *
 * @param budgetPerMinute L, the stage's budget, a whole number >= 1.
 * @param slice the slice index j (`floor(epoch ms / slice ms)`).
 */
export function firstSlotOf(budgetPerMinute: number, slice: number): number {
  return Math.floor((slice * budgetPerMinute) / BUDGET_SLICES);
}

/** The slice slot `slot` belongs to: the j with `firstSlotOf(L, j) <= slot < firstSlotOf(L, j + 1)`. */
export function sliceOfSlot(budgetPerMinute: number, slot: number): number {
  let slice = Math.floor((slot * BUDGET_SLICES) / budgetPerMinute);
  while (firstSlotOf(budgetPerMinute, slice + 1) <= slot) slice += 1;
  while (firstSlotOf(budgetPerMinute, slice) > slot) slice -= 1;
  return slice;
}

/**
 * Requests slice `slice` may hold: `floor((j+1)·L/60) - floor(j·L/60)` for a budget of L requests a minute. The
 * caps of any 60 consecutive slices add up to exactly L (the sum telescopes).
 */
export function sliceCap(budgetPerMinute: number, slice: number): number {
  return firstSlotOf(budgetPerMinute, slice + 1) - firstSlotOf(budgetPerMinute, slice);
}

/** Requests `count` consecutive slices from `first` may hold: the sum of their caps. */
export function slicesCapacity(budgetPerMinute: number, first: number, count: number): number {
  return firstSlotOf(budgetPerMinute, first + count) - firstSlotOf(budgetPerMinute, first);
}

/**
 * The most requests of the budget L that any 60 s window of arrivals can hold: `ceil(63·L/60)` (945 at 900), the
 * most any `WINDOW_SLICES` consecutive slices hold. eCourtDate's limit less this is the reserve the fallback and
 * the CLI's own pace share (docs/pacing.md, "The guarantee").
 */
export function budgetWindowCeiling(budgetPerMinute: number): number {
  return Math.ceil((WINDOW_SLICES * budgetPerMinute) / BUDGET_SLICES);
}

/**
 * Requests a minute the operator CLI (`relay check-credentials`) sends on its own pace when it cannot lease from the
 * item (its few requests: two token requests and two settings calls at most): kept out of the reserve the senders'
 * fallback shares, so the budget, every fallback and the CLI together stay within eCourtDate's limit
 * (docs/pacing.md, "The CLI").
 */
export const OPERATOR_REQUESTS_PER_MINUTE = 4;

/**
 * The largest budget whose window ceiling, with the CLI's own pace beside it, stays within eCourtDate's limit: 948
 * requests a minute (docs/pacing.md, "The guarantee").
 */
export const MAX_BUDGET_PER_MINUTE = Math.floor(
  ((ECOURTDATE_LIMIT_PER_MINUTE - OPERATOR_REQUESTS_PER_MINUTE) * BUDGET_SLICES) / WINDOW_SLICES,
);

/** Slots granted in one slice: `count` requests may be sent while the clock is in slice `slice`. */
export interface SliceGrant {
  readonly slice: number;
  readonly count: number;
}

/** The slots of the run `[from, to)` of the slot sequence, slice by slice, earliest first. */
export function grantsOfRun(budgetPerMinute: number, from: number, to: number): SliceGrant[] {
  const grants: SliceGrant[] = [];
  for (let slice = sliceOfSlot(budgetPerMinute, from); firstSlotOf(budgetPerMinute, slice) < to; slice += 1) {
    const count =
      Math.min(to, firstSlotOf(budgetPerMinute, slice + 1)) -
      Math.max(from, firstSlotOf(budgetPerMinute, slice));
    if (count > 0) grants.push({ slice, count });
  }
  return grants;
}

/** What the budget part of the item says. */
export interface BudgetView {
  /** `budget_next_slot`: the first slot no lease took; undefined while the item has none. */
  readonly nextSlot: number | undefined;
  /** `budget_per_minute`: the budget the slots are numbered with; undefined when absent. */
  readonly budgetPerMinute: number | undefined;
  /** `budget_slice_ms`: the slice length (ms) the slots are numbered with; undefined when absent. */
  readonly sliceMs: number | undefined;
  /** `budget_version`: leases written; undefined when absent or malformed. */
  readonly version: number | undefined;
  /** `budget_version` is there but not a number: it cannot be added to, and the next lease sets it afresh. */
  readonly versionMalformed?: boolean;
  /** `blocked_until`, epoch ms; 0 when absent. */
  readonly blockedUntil: number;
}

/** What a lease asks for. */
export interface LeaseRequest {
  /** L, the stage's budget, requests a minute. */
  readonly budgetPerMinute: number;
  /** One slice, ms (1,000 / `TIME_SCALE`). */
  readonly sliceMs: number;
  /** The current slice: slots are taken from it and later ones. */
  readonly fromSlice: number;
  /** Slots wanted, >= 1. */
  readonly want: number;
  /** Slices looked at, from `fromSlice` on; slots beyond them are not leased. */
  readonly horizonSlices: number;
}

/**
 * How a lease writes the counter, planned on a view of the item:
 * - `add`: the counter is within the current slice or ahead of it: take the next `count` slots, atomically, on
 *   the condition that the counter is still between `lowest` (the current slice's first slot) and `highest` (so
 *   that the run ends within the horizon). Leases of several instances at once never conflict.
 * - `set`: the counter is behind the current slice (no lease for a while), absent, or numbered with another
 *   budget or slice length: set it to `from + count` on the condition that `budget_version` is still
 *   `expectedVersion` (the item is exactly as seen; undefined: no lease was ever written).
 * - `none`: no room within the horizon.
 */
export type LeasePlan =
  | { readonly kind: 'add'; readonly count: number; readonly lowest: number; readonly highest: number }
  | {
      readonly kind: 'set';
      readonly from: number;
      readonly count: number;
      readonly expectedVersion: number | undefined;
    }
  | { readonly kind: 'none' };

/**
 * Plans a lease of up to `want` consecutive slots on `view` (docs/pacing.md, "Leases"). A view numbered with
 * another budget or slice length (the stage's budget changed) starts the new numbering after the end of the
 * slice of its counter, so that no time already granted in the old numbering is granted again. `fresh`: the view
 * is the item as a lost condition just handed it back (else it may be stale, and a counter seen behind the
 * current slice may have moved on). A counter (or a new numbering's start) further ahead than twice the horizon is
 * damaged, and the lease sets it from the current slice instead of waiting for time to reach it.
 */
export function planLease(view: BudgetView, request: LeaseRequest, fresh = true): LeasePlan {
  const L = request.budgetPerMinute;
  const lowest = firstSlotOf(L, request.fromSlice);
  const end = firstSlotOf(L, request.fromSlice + request.horizonSlices);
  const { nextSlot } = view;
  const sameNumbering = view.budgetPerMinute === L && view.sliceMs === request.sliceMs;
  // No lease on a clock within a second of the others' puts the counter further ahead than the horizon and a
  // slice: one further ahead than twice the horizon is damaged (a lease on a clock minutes ahead, such as an
  // operator's laptop, or a bad write), and is restarted at the current slice rather than stop the budget until
  // time reaches it (docs/pacing.md, "Leases").
  const damagedBeyond = firstSlotOf(L, request.fromSlice + 2 * request.horizonSlices);
  const damaged = nextSlot !== undefined && sameNumbering && nextSlot > damagedBeyond;
  // A counter seen behind the current slice may have moved on since (other instances lease too): the atomic add
  // is tried first, and its lost condition shows whether the counter is really behind.
  if (
    (nextSlot === undefined && !fresh) ||
    (nextSlot !== undefined &&
      sameNumbering &&
      !damaged &&
      view.versionMalformed !== true &&
      (nextSlot >= lowest || !fresh))
  ) {
    const count = Math.min(request.want, end - Math.max(nextSlot ?? lowest, lowest));
    return count <= 0 ? { kind: 'none' } : { kind: 'add', count, lowest, highest: end - count };
  }
  // The same numbering's counter is set past (a malformed version), never back over slots it granted.
  let from = nextSlot !== undefined && sameNumbering && !damaged ? Math.max(lowest, nextSlot) : lowest;
  if (nextSlot !== undefined && !sameNumbering && view.budgetPerMinute !== undefined) {
    const oldEndMs = (sliceOfSlot(view.budgetPerMinute, nextSlot) + 1) * (view.sliceMs ?? request.sliceMs);
    from = Math.max(lowest, firstSlotOf(L, Math.ceil(oldEndMs / request.sliceMs)));
    if (from > damagedBeyond) from = lowest;
  }
  const count = Math.min(request.want, end - from);
  if (count <= 0) return { kind: 'none' };
  return { kind: 'set', from, count, expectedVersion: view.version };
}

/** The view of an item without budget attributes. */
export const EMPTY_VIEW: BudgetView = {
  nextSlot: undefined,
  budgetPerMinute: undefined,
  sliceMs: undefined,
  version: undefined,
  blockedUntil: 0,
};

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

/** The shortest wait before a failed store is asked again, real ms (`storeRetryMs`'s floor). */
export const MIN_STORE_RETRY_MS = 1_000;

/**
 * Leases one `acquire` may make: a lease whose slots had all passed when its answer came (the store was slow) is
 * followed by one more; then the store counts as failed, and the request takes the fallback's pace.
 */
export const MAX_LEASES_PER_ACQUIRE = 2;

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
  /** Writes tried per lease before it gives up (each lost condition hands back the item to plan again on). @default 4 */
  readonly maxTries?: number;
  /** Epoch ms. @default Date.now */
  readonly now?: () => number;
  /**
   * A lease (all its tries) is abandoned after this long, ms (it then throws an AbortError, and the pacer falls
   * back): leases come inside a job's chain of requests, so the sender bounds them. @default no limit
   */
  readonly callTimeoutMs?: number;
}

/** Thrown by {@link DynamoBudgetStore.lease} when every try lost its condition to another instance's lease. */
export class BudgetContendedError extends Error {
  constructor(tries: number) {
    super(`the api-client item changed under each of ${tries} lease writes; leasing again later`);
    this.name = 'BudgetContendedError';
  }
}

/**
 * The budget in the `api-client` item of the ledger table (docs/ledger.md). A lease is one UpdateItem of the slot
 * counter `budget_next_slot` (see {@link LeasePlan}): while instances are busy, an atomic add conditioned only on
 * the counter being within the current slice and the horizon, so that leases of several instances never lose
 * their condition to each other. A lost condition (the counter fell behind, or ran past the horizon) hands back
 * the item (`ReturnValuesOnConditionCheckFailure: ALL_OLD`) and the lease is planned again on it, at most
 * `maxTries` writes in all. Breaker attributes are never written here. Throws what DynamoDB throws (the pacer
 * falls back), and `BudgetContendedError` when every try lost.
 */
export class DynamoBudgetStore implements BudgetStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #onItem: ((item: ApiClientItem, now: number) => void) | undefined;
  readonly #maxTries: number;
  readonly #now: () => number;
  readonly #callTimeoutMs: number;
  /** The item as last seen: the first try plans on it. */
  #view: BudgetView = EMPTY_VIEW;

  constructor(options: DynamoBudgetStoreOptions) {
    this.#doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.#table = options.tableName;
    this.#onItem = options.onItem;
    this.#maxTries = options.maxTries ?? 4;
    this.#now = options.now ?? Date.now;
    this.#callTimeoutMs = options.callTimeoutMs ?? Number.POSITIVE_INFINITY;
  }

  async lease(request: LeaseRequest): Promise<LeaseAnswer> {
    const options = Number.isFinite(this.#callTimeoutMs)
      ? { abortSignal: AbortSignal.timeout(this.#callTimeoutMs) }
      : {};
    for (let tries = 1; tries <= this.#maxTries; tries += 1) {
      const view = this.#view;
      if (view.blockedUntil > this.#now()) return { grants: [], blockedUntil: view.blockedUntil };
      const plan = planLease(view, request, tries > 1);
      if (plan.kind === 'none') return { grants: [], blockedUntil: view.blockedUntil };
      const write = await conditionalWrite(() => this.#doc.send(this.#command(plan, request), options));
      if (write.applied) {
        const after = this.#learn(write.output.Attributes ?? {});
        const to = after.nextSlot ?? 0;
        return {
          grants: grantsOfRun(request.budgetPerMinute, to - plan.count, to),
          blockedUntil: after.blockedUntil,
        };
      }
      // A resend whose first write had applied also lands here: its slots stay counted, unused (fewer requests).
      this.#learn(write.old ?? {});
    }
    throw new BudgetContendedError(this.#maxTries);
  }

  #command(plan: Exclude<LeasePlan, { kind: 'none' }>, request: LeaseRequest): UpdateCommand {
    const names = {
      '#next': BUDGET_ATTRIBUTE.nextSlot,
      '#version': BUDGET_ATTRIBUTE.version,
      '#perMinute': BUDGET_ATTRIBUTE.perMinute,
      '#sliceMs': BUDGET_ATTRIBUTE.sliceMs,
    };
    const common = {
      TableName: this.#table,
      Key: { id: API_CLIENT_ITEM_ID },
      ReturnValues: 'ALL_NEW',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    } as const;
    if (plan.kind === 'add') {
      return new UpdateCommand({
        ...common,
        UpdateExpression: 'ADD #next :count, #version :one',
        // A malformed version fails the condition (DynamoDB refuses an ADD to it): on the item handed back, the
        // lease sets the counter past where it was, with a version of 1.
        ConditionExpression:
          '#perMinute = :perMinute AND #sliceMs = :sliceMs AND #next BETWEEN :lowest AND :highest AND ' +
          '(attribute_not_exists(#version) OR attribute_type(#version, :numberType))',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: {
          ':count': plan.count,
          ':one': 1,
          ':numberType': 'N',
          ':perMinute': request.budgetPerMinute,
          ':sliceMs': request.sliceMs,
          ':lowest': plan.lowest,
          ':highest': plan.highest,
        },
      });
    }
    return new UpdateCommand({
      ...common,
      UpdateExpression:
        'SET #next = :next, #perMinute = :perMinute, #sliceMs = :sliceMs, #version = :version',
      // No version seen: none written yet, or a malformed one, which this write replaces.
      ConditionExpression:
        plan.expectedVersion === undefined
          ? 'attribute_not_exists(#version) OR NOT attribute_type(#version, :numberType)'
          : '#version = :expected',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: {
        ':next': plan.from + plan.count,
        ':perMinute': request.budgetPerMinute,
        ':sliceMs': request.sliceMs,
        ':version': (plan.expectedVersion ?? 0) + 1,
        ...(plan.expectedVersion === undefined
          ? { ':numberType': 'N' }
          : { ':expected': plan.expectedVersion }),
      },
    });
  }

  async block(until: number): Promise<void> {
    // A condition that fails means a later block is already recorded: nothing to do.
    await conditionalWrite(() =>
      this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { id: API_CLIENT_ITEM_ID },
          UpdateExpression: 'SET #blocked = :until',
          ConditionExpression: 'attribute_not_exists(#blocked) OR #blocked < :until',
          ExpressionAttributeNames: { '#blocked': BUDGET_ATTRIBUTE.blockedUntil },
          ExpressionAttributeValues: { ':until': until },
        }),
      ),
    );
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

/**
 * The budget attributes of a raw item; absent or malformed ones read as empty: a counter that is not a whole
 * number, a budget that is not a whole number >= 1, a slice that is not a number > 0 (ms).
 */
export function budgetViewOf(item: ApiClientItem): BudgetView {
  const nextSlot = item[BUDGET_ATTRIBUTE.nextSlot];
  const blockedUntil = item[BUDGET_ATTRIBUTE.blockedUntil];
  const perMinute = item[BUDGET_ATTRIBUTE.perMinute];
  const sliceMs = item[BUDGET_ATTRIBUTE.sliceMs];
  const version = item[BUDGET_ATTRIBUTE.version];
  // A damaged numbering (a budget below 1 or not whole, a slice not above 0 ms) reads as none: numbering slots with
  // it would not end (docs/pacing.md, "Leases").
  return {
    nextSlot: Number.isSafeInteger(nextSlot) ? (nextSlot as number) : undefined,
    versionMalformed: version !== undefined && typeof version !== 'number',
    budgetPerMinute:
      Number.isSafeInteger(perMinute) && (perMinute as number) >= 1 ? (perMinute as number) : undefined,
    sliceMs: typeof sliceMs === 'number' && sliceMs > 0 && Number.isFinite(sliceMs) ? sliceMs : undefined,
    version: typeof version === 'number' ? version : undefined,
    blockedUntil: typeof blockedUntil === 'number' ? blockedUntil : 0,
  };
}

/** The fewest slots a busy instance leases: one write for 20 requests or more. */
const BUSY_LEASE_SLOTS = 30;
/** Slices whose spent slots size a lease. */
const RECENT_SLICES = 3;

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
  /** After a failed lease, ms the fallback lasts before the store is tried again. @default 5 slices, at least 1 s */
  readonly storeRetryMs?: number;
  /** The most slots one lease takes. @default 45 */
  readonly maxLeaseSlots?: number;
  /** Slices a lease looks at ahead. @default DEFAULT_HORIZON_SLICES */
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
 * slot whose grace slice (the next one) ended unspent is void. When it holds none, it leases more, one lease at a time for all the
 * requests waiting. A lease takes as many slots as were spent in the last three slices plus the requests waiting,
 * at least 30 when the instance is busy (it spent slots in those slices, or a batch waits) and at most `maxLeaseSlots`: one
 * DynamoDB request for 30 to 45 sends; a quiet instance leases only what waits, so that slots it would leave
 * unspent stay for the others. A slot may be spent in its slice or the next (`SPEND_GRACE_SLICES`).
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
    // Never sooner than a second of real time: in a scaled run five slices are a few ms, and a failing store's
    // every retry costs a request its SDK retries.
    this.#storeRetryMs = options.storeRetryMs ?? Math.max(5 * sliceMs, MIN_STORE_RETRY_MS);
    this.#maxLeaseSlots = options.maxLeaseSlots ?? 45;
    this.#horizonSlices = options.horizonSlices ?? DEFAULT_HORIZON_SLICES;
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
    // A lease whose answer came after its slots' slices (a slow store) is tried once more, not in a loop.
    let leases = 0;
    for (;;) {
      const now = this.#now();
      if (now < this.#blockedUntil) return { ok: false, retryInMs: this.#blockedUntil - now };
      const current = Math.floor(now / this.#sliceMs);
      while (
        this.#held.length > 0 &&
        (this.#held[0] as { slice: number }).slice < current - SPEND_GRACE_SLICES
      )
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
        // The slot counts a request that leaves before its grace slice ends. A wake-up after that (a busy event loop)
        // finds the slot void: it is not spent late.
        const sendBy = (first.slice + 1 + SPEND_GRACE_SLICES) * this.#sliceMs;
        if (after >= sendBy) continue;
        this.#spend(first.slice);
        this.#counts.spentLeased += 1;
        return { ok: true, sendBy };
      }
      if (now < this.#storeRetryAt) return this.#fallbackSlot(now, maxWaitMs);
      if (leases === MAX_LEASES_PER_ACQUIRE) {
        // A store too slow to answer within a slot's slices is no better than an unreachable one: fall back.
        this.#counts.failedLeases += 1;
        this.#storeRetryAt = now + this.#storeRetryMs;
        return this.#fallbackSlot(now, maxWaitMs);
      }
      leases += 1;
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
    return this.#fallback.acquire(maxWaitMs).then((slot): PacerSlot => {
      if (!slot.ok) return slot;
      this.#counts.spentFallback += 1;
      // As a leased slot's: a request that leaves later than a slice after its grant (a slow claim) takes another.
      return { ok: true, sendBy: this.#now() + this.#sliceMs };
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
    // A busy instance (one that spent slots in the last slices, or a fresh one with a batch waiting) leases at
    // least `busyLeaseSlots`, so that one write serves 20 requests or more; a quiet one only what waits.
    const recent = this.#spent.filter((slice) => slice >= current - RECENT_SLICES).length;
    const busy = recent > 0 || this.#waiting > 1 ? BUSY_LEASE_SLOTS : 1;
    const want = Math.min(this.#maxLeaseSlots, Math.max(busy, recent + this.#waiting));
    try {
      const answer = await this.#store.lease({
        budgetPerMinute: this.#budget,
        sliceMs: this.#sliceMs,
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
