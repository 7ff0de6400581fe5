import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { busiestWindow } from '#local/ecourtdate-simulator/rate-limit.ts';
import { ECOURTDATE_LIMIT_PER_MINUTE } from '#shared/ecourtdate/pacer.ts';
import {
  BUDGET_SLICES,
  type BudgetStore,
  type BudgetView,
  budgetViewOf,
  budgetWindowCeiling,
  EMPTY_VIEW,
  firstSlotOf,
  grantsOfRun,
  type LeaseAnswer,
  type LeasePlan,
  type LeaseRequest,
  MAX_BUDGET_PER_MINUTE,
  OPERATOR_REQUESTS_PER_MINUTE,
  planLease,
  SharedBudgetPacer,
  type SharedBudgetPacerOptions,
  type SliceGrant,
  sliceCap,
  sliceOfSlot,
  slicesCapacity,
} from '#shared/ecourtdate/shared-budget.ts';
import { T0 } from '#test/helpers/factories.ts';
import { virtualTime } from '#test/helpers/virtual-time.ts';

const SECOND = 1000;
const MINUTE = 60_000;
const RUNS = { seed: 20261218, numRuns: 200 };

/** The item's budget attributes in memory, written as DynamoDB would apply a plan's conditional update. */
interface MemoryItem {
  nextSlot: number | undefined;
  budgetPerMinute: number | undefined;
  sliceMs: number | undefined;
  version: number | undefined;
}

const EMPTY_ITEM: MemoryItem = {
  nextSlot: undefined,
  budgetPerMinute: undefined,
  sliceMs: undefined,
  version: undefined,
};

/** Applies a plan to the item as the DynamoDB store's UpdateItem does: the run granted, or undefined (lost condition). */
function apply(
  item: MemoryItem,
  plan: LeasePlan,
  request: LeaseRequest,
): { from: number; to: number } | undefined {
  if (plan.kind === 'none') return undefined;
  if (plan.kind === 'add') {
    const next = item.nextSlot;
    const numbered = item.budgetPerMinute === request.budgetPerMinute && item.sliceMs === request.sliceMs;
    if (!numbered || next === undefined || next < plan.lowest || next > plan.highest) return undefined;
    item.nextSlot = next + plan.count;
    item.version = (item.version ?? 0) + 1;
    return { from: next, to: next + plan.count };
  }
  if (item.version !== plan.expectedVersion) return undefined;
  Object.assign(item, {
    nextSlot: plan.from + plan.count,
    budgetPerMinute: request.budgetPerMinute,
    sliceMs: request.sliceMs,
    version: (item.version ?? 0) + 1,
  });
  return { from: plan.from, to: plan.from + plan.count };
}

/** Leases as the DynamoDB store does: plans on a stale view first, then on the item a lost condition shows. */
function leaseOn(item: MemoryItem, stale: BudgetView, request: LeaseRequest): SliceGrant[] {
  let view = stale;
  for (let tries = 1; tries <= 4; tries += 1) {
    const plan = planLease(view, request, tries > 1);
    if (plan.kind === 'none') return [];
    const run = apply(item, plan, request);
    if (run !== undefined) return grantsOfRun(request.budgetPerMinute, run.from, run.to);
    view = { ...item, blockedUntil: 0 };
  }
  return [];
}

/** The api-client item in memory, leased like the DynamoDB store; `failing` makes it throw. */
function memoryStore(): BudgetStore & {
  item: MemoryItem;
  blockedUntil: number;
  failing: boolean;
  blocks: number[];
} {
  const store = {
    item: { ...EMPTY_ITEM },
    blockedUntil: 0,
    failing: false,
    blocks: [] as number[],
    async lease(request: LeaseRequest): Promise<LeaseAnswer> {
      if (store.failing) throw new Error('ThrottlingException');
      const grants = leaseOn(store.item, { ...store.item, blockedUntil: 0 }, request);
      return { grants, blockedUntil: store.blockedUntil };
    },
    async block(until: number): Promise<void> {
      if (store.failing) throw new Error('ThrottlingException');
      store.blocks.push(until);
      store.blockedUntil = Math.max(store.blockedUntil, until);
    },
  };
  return store;
}

/** Marks every slot before slice `slice` as taken (by other instances), with one slot a slice at budget 60. */
function takenUntil(store: ReturnType<typeof memoryStore>, slice: number): void {
  store.item = { nextSlot: firstSlotOf(60, slice), budgetPerMinute: 60, sliceMs: SECOND, version: 1 };
}

describe('slice caps', () => {
  it('add up to the budget over any 60 consecutive slices', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.nat(2_000_000_000), (budget, first) => {
        let sum = 0;
        for (let j = first; j < first + BUDGET_SLICES; j += 1) sum += sliceCap(budget, j);
        expect(sum).toBe(budget);
        expect(slicesCapacity(budget, first, BUDGET_SLICES)).toBe(budget);
      }),
      RUNS,
    );
  });

  it("number every slot once: a slot's slice holds it, between its first slot and the next slice's", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.nat(2_000_000_000), (budget, slot) => {
        const slice = sliceOfSlot(budget, slot);
        expect(firstSlotOf(budget, slice)).toBeLessThanOrEqual(slot);
        expect(firstSlotOf(budget, slice + 1)).toBeGreaterThan(slot);
      }),
      RUNS,
    );
  });

  it("leave the reserve eCourtDate's limit less the window ceiling: 55 at the default budget of 900, 4 of it the CLI's", () => {
    expect(budgetWindowCeiling(900)).toBe(945);
    const withCli = (budget: number) => budgetWindowCeiling(budget) + OPERATOR_REQUESTS_PER_MINUTE;
    expect(MAX_BUDGET_PER_MINUTE).toBe(948);
    expect(withCli(MAX_BUDGET_PER_MINUTE)).toBeLessThanOrEqual(ECOURTDATE_LIMIT_PER_MINUTE);
    expect(withCli(MAX_BUDGET_PER_MINUTE + 1)).toBeGreaterThan(ECOURTDATE_LIMIT_PER_MINUTE);
  });
});

describe('planLease', () => {
  const request = {
    budgetPerMinute: 600,
    sliceMs: SECOND,
    fromSlice: 100,
    want: 15,
    horizonSlices: 20,
  } as const;
  const seen = { budgetPerMinute: 600, sliceMs: SECOND, version: 7, blockedUntil: 0 } as const;

  it('adds to a counter within or ahead of the current slice: the next slots, whoever wrote last', () => {
    const plan = planLease({ ...seen, nextSlot: 1005 }, request);
    expect(plan).toEqual({ kind: 'add', count: 15, lowest: 1000, highest: 1200 - 15 });
  });

  it('restarts a counter left behind by an idle while at the current slice, on the counter it saw', () => {
    const plan = planLease({ ...seen, nextSlot: 400 }, request);
    expect(plan).toEqual({ kind: 'set', from: 1000, count: 15, expectedVersion: 7 });
  });

  it('tries the atomic add first on a counter seen behind, since other instances may have moved it on', () => {
    const plan = planLease({ ...seen, nextSlot: 400 }, request, false);
    expect(plan).toEqual({ kind: 'add', count: 15, lowest: 1000, highest: 1200 - 15 });
  });

  it('takes only the room left within the horizon, and none when the horizon is full', () => {
    expect(planLease({ ...seen, nextSlot: 1190 }, request)).toMatchObject({ kind: 'add', count: 10 });
    expect(planLease({ ...seen, nextSlot: 1200 }, request)).toEqual({ kind: 'none' });
  });

  it("starts a new budget's numbering after the slice of the old counter, so no slot is granted twice", () => {
    // Old budget 60: slot 2000 is in slice 2000 (beyond the current one); the new numbering starts at slice 2001.
    const plan = planLease(
      { ...seen, nextSlot: 2000, budgetPerMinute: 60 },
      { ...request, horizonSlices: 2000 },
    );
    expect(plan).toMatchObject({ kind: 'set', from: firstSlotOf(600, 2001), expectedVersion: 7 });
  });

  it("starts a new slice length's numbering after the time the old counter reached", () => {
    // Old slices of 125 ms: slot 8000 at 600 a minute is in slice 800, which ends at 100,125 ms: slice 101 of 1 s.
    const plan = planLease({ ...seen, nextSlot: 8000, sliceMs: 125 }, request);
    expect(plan).toMatchObject({ kind: 'set', from: firstSlotOf(600, 101) });
  });

  it('restarts at the current slice a counter further ahead than twice the horizon: a damaged item never stops the budget', () => {
    // Slice 100's horizon ends at slot 1200; no lease on a clock within a second of the others' can reach 1400.
    const plan = planLease({ ...seen, nextSlot: 1_000_000 }, request);
    expect(plan).toEqual({ kind: 'set', from: 1000, count: 15, expectedVersion: 7 });
  });

  it("starts a new budget's numbering at the current slice when the old counter was damaged far ahead", () => {
    const plan = planLease({ ...seen, nextSlot: 1_000_000, budgetPerMinute: 60 }, request);
    expect(plan).toEqual({ kind: 'set', from: 1000, count: 15, expectedVersion: 7 });
  });

  it.each([
    ['a negative budget', { budget_per_minute: -5 }, 1000],
    ['a budget of 0', { budget_per_minute: 0 }, 1000],
    ['a fractional budget', { budget_per_minute: 0.5 }, 1000],
    // Its budget still tells the old counter's slice: the new numbering starts after it, as for a change.
    ['a slice of 0 ms', { budget_slice_ms: 0 }, 1010],
  ])(
    'reads an item numbered with %s as numbered with none, and sets the counter afresh',
    (_, damage, from) => {
      const view = budgetViewOf({
        budget_next_slot: 1005,
        budget_per_minute: 600,
        budget_slice_ms: SECOND,
        budget_version: 7,
        ...damage,
      });

      expect(planLease(view, request)).toEqual({ kind: 'set', from, count: 15, expectedVersion: 7 });
    },
  );

  it('keeps a counter ahead by up to twice the horizon: leases on a clock a little ahead are kept', () => {
    expect(planLease({ ...seen, nextSlot: 1400 }, request)).toEqual({ kind: 'none' });
  });

  it('never lets any 60 s window of arrivals hold more than the window ceiling, whatever instances lease, spend, die or start', () => {
    // Instances lease from one item on stale views, spend a slot in its slice or the next, and each request
    // arrives up to 1 s later.
    const action = fc.record({
      gapMs: fc.integer({ min: 0, max: 3_000 }),
      instance: fc.nat(6),
      kind: fc.constantFrom('lease', 'spend', 'spend', 'spend', 'die'),
      want: fc.integer({ min: 1, max: 50 }),
      arrivalMs: fc.integer({ min: 0, max: SECOND - 1 }),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MAX_BUDGET_PER_MINUTE }),
        fc.array(action, { minLength: 1, maxLength: 600 }),
        (budget, actions) => {
          let now = T0;
          const item: MemoryItem = { ...EMPTY_ITEM };
          const views: BudgetView[] = Array.from({ length: 7 }, () => EMPTY_VIEW);
          const held: SliceGrant[][] = Array.from({ length: 7 }, () => []);
          const arrivals: number[] = [];
          for (const step of actions) {
            now += step.gapMs;
            const current = Math.floor(now / SECOND);
            const mine = (held[step.instance] as SliceGrant[]).filter((g) => g.slice >= current - 1);
            held[step.instance] = mine;
            if (step.kind === 'die') {
              // A fresh container takes its place, holding nothing; the dead one's slots stay counted.
              held[step.instance] = [];
              views[step.instance] = EMPTY_VIEW;
            } else if (step.kind === 'lease') {
              const grants = leaseOn(item, views[step.instance] as BudgetView, {
                budgetPerMinute: budget,
                sliceMs: SECOND,
                fromSlice: current,
                want: step.want,
                horizonSlices: 20,
              });
              views[step.instance] = { ...item, blockedUntil: 0 };
              mine.push(...grants.map((g) => ({ ...g })));
            } else {
              const slot = mine.find((g) => g.slice <= current && g.count > 0);
              if (slot !== undefined) {
                held[step.instance] = mine.map((g) => (g === slot ? { ...g, count: g.count - 1 } : g));
                arrivals.push(now + step.arrivalMs);
              }
            }
          }
          arrivals.sort((a, b) => a - b);
          expect(busiestWindow(arrivals, MINUTE)).toBeLessThanOrEqual(budgetWindowCeiling(budget));
        },
      ),
      RUNS,
    );
  });
});

describe('SharedBudgetPacer', () => {
  it('gives a lone busy instance at least 95 % of the budget', async () => {
    const time = virtualTime();
    const store = memoryStore();
    const pacer = new SharedBudgetPacer({
      store,
      budgetPerMinute: 900,
      fallbackPerMinute: 0,
      now: time.now,
      sleep: time.sleep,
    });
    const sent: number[] = [];
    // Twenty requests always waiting, as a busy instance's batches keep them.
    const worker = async () => {
      while (time.now() < T0 + 5 * MINUTE) {
        const slot = await pacer.acquire();
        if (slot.ok) sent.push(time.now());
      }
    };
    await time.run(Array.from({ length: 20 }, worker));

    const inSpan = sent.filter((at) => at < T0 + 5 * MINUTE).length;
    expect(inSpan / (5 * 900)).toBeGreaterThanOrEqual(0.95);
    expect(busiestWindow(sent, MINUTE)).toBeLessThanOrEqual(900);
  });

  it('leases 30 slots or more at a time when busy: at most one store request per 20 requests', async () => {
    const time = virtualTime();
    const store = memoryStore();
    const pacer = new SharedBudgetPacer({
      store,
      budgetPerMinute: 900,
      fallbackPerMinute: 0,
      now: time.now,
      sleep: time.sleep,
    });
    let ok = 0;
    const worker = async () => {
      while (time.now() < T0 + 2 * MINUTE) if ((await pacer.acquire()).ok) ok += 1;
    };
    await time.run(Array.from({ length: 20 }, worker));

    expect(pacer.counts().leases * 20).toBeLessThanOrEqual(ok);
  });

  it('spends a slot in the slice after its own: a batch a little late still finds it', async () => {
    const time = virtualTime();
    const store = memoryStore();
    let overshoot = 1;
    const pacer = new SharedBudgetPacer({
      store,
      budgetPerMinute: 60,
      fallbackPerMinute: 0,
      now: time.now,
      // The first sleep overshoots by a whole slice, as a busy event loop may.
      sleep: (ms) => time.sleep(ms + SECOND * overshoot--),
    });
    // One slot a slice, the current one someone else's: the pacer's first slot is in the next one.
    const current = Math.floor(T0 / SECOND);
    takenUntil(store, current + 1);
    const [slot] = await time.run([pacer.acquire()]);

    expect(slot).toMatchObject({ ok: true });
    expect(Math.floor(time.now() / SECOND)).toBe(current + 2);
    expect(pacer.counts()).toMatchObject({ leases: 1, spentLeased: 1 });
  });

  it("says by when the request must leave: the end of the grace slice after its slot's own", async () => {
    const time = virtualTime();
    const pacer = new SharedBudgetPacer({
      store: memoryStore(),
      budgetPerMinute: 60,
      fallbackPerMinute: 0,
      now: time.now,
      sleep: time.sleep,
    });
    const current = Math.floor(T0 / SECOND);

    const [slot] = await time.run([pacer.acquire()]);

    expect(slot).toEqual({ ok: true, sendBy: (current + 2) * SECOND });
  });

  it('sends no slot after the slice after its own ended: a late wake-up finds it void and takes the next', async () => {
    const time = virtualTime();
    const store = memoryStore();
    let overshoot = 2;
    const pacer = new SharedBudgetPacer({
      store,
      budgetPerMinute: 60,
      fallbackPerMinute: 0,
      now: time.now,
      // The first sleep overshoots by two slices.
      sleep: (ms) => time.sleep(ms + SECOND * Math.max(0, overshoot--)),
    });
    const current = Math.floor(T0 / SECOND);
    takenUntil(store, current + 1);
    const [slot] = await time.run([pacer.acquire()]);

    expect(slot).toMatchObject({ ok: true });
    // Woken in slice current + 3, it let the void slot go and spent one of that slice.
    expect(Math.floor(time.now() / SECOND)).toBe(current + 3);
    expect(pacer.counts()).toMatchObject({ leases: 2, spentLeased: 1 });
  });

  it('refuses a slot further away than maxWaitMs and keeps it for a later request', async () => {
    const time = virtualTime();
    const store = memoryStore();
    const pacer = new SharedBudgetPacer({
      store,
      budgetPerMinute: 60,
      fallbackPerMinute: 0,
      now: time.now,
      sleep: time.sleep,
    });
    const current = Math.floor(T0 / SECOND);
    // One slot a slice; the next five slices are taken.
    takenUntil(store, current + 5);
    const [refused] = await time.run([pacer.acquire(1_000)]);
    expect(refused).toEqual({ ok: false, retryInMs: 5 * SECOND - (T0 % SECOND) });

    const [later] = await time.run([pacer.acquire()]);
    expect(later).toMatchObject({ ok: true });
    expect(pacer.counts().leases).toBe(1);
  });

  it("keeps sending after a lease on a clock minutes ahead (an operator's laptop) pushed the counter there", async () => {
    const time = virtualTime();
    const store = memoryStore();
    const laptop = new SharedBudgetPacer({
      store,
      budgetPerMinute: 900,
      fallbackPerMinute: 4,
      now: () => time.now() + 10 * MINUTE,
      sleep: time.sleep,
    });
    const sender = new SharedBudgetPacer({
      store,
      budgetPerMinute: 900,
      fallbackPerMinute: 0,
      now: time.now,
      sleep: time.sleep,
    });
    const [check] = await time.run([laptop.acquire()]);
    expect(check).toMatchObject({ ok: true });

    const [slot] = await time.run([sender.acquire(5 * SECOND)]);
    expect(slot).toMatchObject({ ok: true });
  });

  describe('when the store fails', () => {
    /** A pacer on virtual time whose store refuses every call: a budget of 900, a fallback share of 50. */
    function failingStorePacer(options: Partial<SharedBudgetPacerOptions> = {}) {
      const time = virtualTime();
      const store = memoryStore();
      store.failing = true;
      const pacer = new SharedBudgetPacer({
        store,
        budgetPerMinute: 900,
        fallbackPerMinute: 50,
        now: time.now,
        sleep: time.sleep,
        ...options,
      });
      return { time, store, pacer };
    }

    it("paces to the reserve's share with a pacer of its own, never above it in any window", async () => {
      const { time, pacer } = failingStorePacer();
      const sent: number[] = [];
      const worker = async () => {
        while (time.now() < T0 + 3 * MINUTE) if ((await pacer.acquire()).ok) sent.push(time.now());
      };
      await time.run(Array.from({ length: 10 }, worker));

      expect(pacer.counts().spentFallback).toBe(sent.length);
      expect(busiestWindow(sent, MINUTE)).toBeLessThanOrEqual(50);
      expect(sent.length).toBeGreaterThanOrEqual(100);
    });

    it("says by when a fallback slot's request must leave: a slice after its grant, as a leased slot does", async () => {
      const { time, pacer } = failingStorePacer();
      const [slot] = await time.run([pacer.acquire()]);

      expect(pacer.counts().spentFallback).toBe(1);
      expect(slot).toEqual({ ok: true, sendBy: time.now() + SECOND });
    });

    it('tries the store again only after its backoff, and leases again once it answers', async () => {
      const { time, store, pacer } = failingStorePacer({ storeRetryMs: 5 * SECOND });
      await time.run([pacer.acquire(), pacer.acquire(), pacer.acquire()]);
      expect(pacer.counts().failedLeases).toBe(1);

      store.failing = false;
      time.advance(5 * SECOND);
      const [slot] = await time.run([pacer.acquire()]);

      expect(slot).toMatchObject({ ok: true });
      expect(pacer.counts()).toMatchObject({ leases: 1, spentLeased: 1 });
    });

    it('sends nothing without a reserve share, and says when to come back', async () => {
      const { time, pacer } = failingStorePacer({
        budgetPerMinute: 1000,
        fallbackPerMinute: 0,
        storeRetryMs: 5 * SECOND,
      });
      const [slot] = await time.run([pacer.acquire()]);

      expect(slot).toEqual({ ok: false, retryInMs: 5 * SECOND });
    });
  });

  describe("a 429's wait", () => {
    it('is written to the item for every instance', async () => {
      const time = virtualTime();
      const store = memoryStore();
      const pacer = new SharedBudgetPacer({
        store,
        budgetPerMinute: 900,
        fallbackPerMinute: 0,
        now: time.now,
        sleep: time.sleep,
      });
      pacer.block(MINUTE);
      await pacer.blockWritten();

      expect(store.blocks).toEqual([T0 + MINUTE]);
      expect(await pacer.acquire()).toEqual({ ok: false, retryInMs: MINUTE });
    });

    it("blocks another instance as soon as its lease finds the item's blocked_until", async () => {
      const time = virtualTime();
      const store = memoryStore();
      const options = { store, budgetPerMinute: 900, fallbackPerMinute: 0, now: time.now, sleep: time.sleep };
      const first = new SharedBudgetPacer(options);
      const other = new SharedBudgetPacer(options);
      first.block(MINUTE);
      await first.blockWritten();

      const [slot] = await time.run([other.acquire()]);

      expect(slot).toEqual({ ok: false, retryInMs: MINUTE });
      expect(other.blockedForMs()).toBe(MINUTE);
    });
  });
});
