import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { busiestWindow } from '#local/ecourtdate-simulator/rate-limit.ts';
import {
  type BudgetStore,
  type BudgetView,
  type LeaseAnswer,
  type LeaseRequest,
  planLease,
  SharedBudgetPacer,
  type SliceGrant,
  sliceCap,
  slicesCapacity,
  WINDOW_SLICES,
} from '#shared/ecourtdate/shared-budget.ts';
import { T0 } from '#test/helpers/factories.ts';
import { virtualTime } from '#test/helpers/virtual-time.ts';

const SECOND = 1000;
const MINUTE = 60_000;
const RUNS = { seed: 20261218, numRuns: 200 };

/** The api-client item in memory, leased with the same plan as the DynamoDB store; `failing` makes it throw. */
function memoryStore(): BudgetStore & { view: BudgetView; failing: boolean; blocks: number[] } {
  const store = {
    view: { version: undefined, slices: {}, blockedUntil: 0, budgetPerMinute: undefined } as BudgetView,
    failing: false,
    blocks: [] as number[],
    async lease(request: LeaseRequest): Promise<LeaseAnswer> {
      if (store.failing) throw new Error('ThrottlingException');
      const plan = planLease(store.view, request);
      store.view = { ...store.view, version: (store.view.version ?? 0) + 1, slices: plan.slices };
      return { grants: plan.grants, blockedUntil: store.view.blockedUntil };
    },
    async block(until: number): Promise<void> {
      if (store.failing) throw new Error('ThrottlingException');
      store.blocks.push(until);
      store.view = { ...store.view, blockedUntil: Math.max(store.view.blockedUntil, until) };
    },
  };
  return store;
}

describe('slice caps', () => {
  it('add up to the budget over any 62 consecutive slices', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.nat(2_000_000_000), (budget, first) => {
        let sum = 0;
        for (let j = first; j < first + WINDOW_SLICES; j += 1) sum += sliceCap(budget, j);
        expect(sum).toBe(budget);
        expect(slicesCapacity(budget, first, WINDOW_SLICES)).toBe(budget);
      }),
      RUNS,
    );
  });
});

describe('planLease', () => {
  it('takes the earliest room, never more than a slice holds', () => {
    const plan = planLease(
      { slices: { '100': sliceCap(620, 100) - 3 } },
      {
        budgetPerMinute: 620,
        fromSlice: 100,
        want: 15,
        horizonSlices: WINDOW_SLICES,
      },
    );
    expect(plan.grants).toEqual([
      { slice: 100, count: 3 },
      { slice: 101, count: 10 },
      { slice: 102, count: 2 },
    ]);
    expect(plan.slices).toEqual({ '100': 10, '101': 10, '102': 2 });
  });

  it('drops slices more than two behind the current one from the item', () => {
    const plan = planLease(
      { slices: { '90': 5, '98': 4, '99': 1 } },
      {
        budgetPerMinute: 620,
        fromSlice: 100,
        want: 1,
        horizonSlices: WINDOW_SLICES,
      },
    );
    expect(plan.slices).toEqual({ '98': 4, '99': 1, '100': 1 });
  });

  it('grants nothing when the horizon is full', () => {
    const slices = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [String(10 + i), 10]));
    expect(
      planLease({ slices }, { budgetPerMinute: 620, fromSlice: 10, want: 3, horizonSlices: 5 }).grants,
    ).toEqual([]);
  });

  it('never lets any 60 s window of arrivals hold more than the budget, whatever instances lease, spend, die or start', () => {
    // Instances lease from one item, spend a slot only inside its slice, and each request arrives up to 1 s later.
    const action = fc.record({
      gapMs: fc.integer({ min: 0, max: 3_000 }),
      instance: fc.nat(6),
      kind: fc.constantFrom('lease', 'spend', 'spend', 'spend', 'die'),
      want: fc.integer({ min: 1, max: 40 }),
      arrivalMs: fc.integer({ min: 0, max: SECOND - 1 }),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.array(action, { minLength: 1, maxLength: 600 }),
        (budget, actions) => {
          let now = T0;
          let view: Pick<BudgetView, 'slices'> = { slices: {} };
          const held: SliceGrant[][] = Array.from({ length: 7 }, () => []);
          const arrivals: number[] = [];
          for (const step of actions) {
            now += step.gapMs;
            const current = Math.floor(now / SECOND);
            const mine = (held[step.instance] as SliceGrant[]).filter((g) => g.slice >= current);
            held[step.instance] = mine;
            if (step.kind === 'die') {
              // A fresh container takes its place, holding nothing; the dead one's slots stay counted.
              held[step.instance] = [];
            } else if (step.kind === 'lease') {
              const plan = planLease(view, {
                budgetPerMinute: budget,
                fromSlice: current,
                want: step.want,
                horizonSlices: WINDOW_SLICES,
              });
              view = { slices: plan.slices };
              mine.push(...plan.grants.map((g) => ({ ...g })));
            } else {
              const slot = mine.find((g) => g.slice === current && g.count > 0);
              if (slot !== undefined) {
                held[step.instance] = mine.map((g) => (g === slot ? { ...g, count: g.count - 1 } : g));
                arrivals.push(now + step.arrivalMs);
              }
            }
          }
          arrivals.sort((a, b) => a - b);
          expect(busiestWindow(arrivals, MINUTE)).toBeLessThanOrEqual(budget);
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

  it('leases about 30 slots at a time when busy: at most one store request per 20 requests', async () => {
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

  it('sends no slot after its slice ended: a late wake-up finds it void and takes the next', async () => {
    const time = virtualTime();
    const store = memoryStore();
    let overshoot = 1;
    const pacer = new SharedBudgetPacer({
      store,
      budgetPerMinute: 62,
      fallbackPerMinute: 0,
      now: time.now,
      // The first sleep overshoots by a whole slice, as a busy event loop may.
      sleep: (ms) => time.sleep(ms + SECOND * overshoot--),
    });
    // One slot a slice, the current one someone else's: the pacer's first slot is in the next one.
    const current = Math.floor(T0 / SECOND);
    store.view = { ...store.view, slices: { [String(current)]: 1 } };
    const [slot] = await time.run([pacer.acquire()]);

    expect(slot).toEqual({ ok: true });
    // Woken in slice current + 2, it let the void slot go and spent one of that slice.
    expect(Math.floor(time.now() / SECOND)).toBe(current + 2);
    expect(pacer.counts()).toMatchObject({ spentLeased: 1 });
  });

  it('refuses a slot further away than maxWaitMs and keeps it for a later request', async () => {
    const time = virtualTime();
    const store = memoryStore();
    const pacer = new SharedBudgetPacer({
      store,
      budgetPerMinute: 62,
      fallbackPerMinute: 0,
      now: time.now,
      sleep: time.sleep,
    });
    const current = Math.floor(T0 / SECOND);
    // One slot a slice; the next five slices are taken.
    store.view = {
      ...store.view,
      slices: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [String(current + i), 1])),
    };
    const [refused] = await time.run([pacer.acquire(1_000)]);
    expect(refused).toEqual({ ok: false, retryInMs: 5 * SECOND - (T0 % SECOND) });

    const [later] = await time.run([pacer.acquire()]);
    expect(later).toEqual({ ok: true });
    expect(pacer.counts().leases).toBe(1);
  });

  describe('when the store fails', () => {
    it("paces to the reserve's share with a pacer of its own, never above it in any window", async () => {
      const time = virtualTime();
      const store = memoryStore();
      store.failing = true;
      const pacer = new SharedBudgetPacer({
        store,
        budgetPerMinute: 900,
        fallbackPerMinute: 50,
        now: time.now,
        sleep: time.sleep,
      });
      const sent: number[] = [];
      const worker = async () => {
        while (time.now() < T0 + 3 * MINUTE) if ((await pacer.acquire()).ok) sent.push(time.now());
      };
      await time.run(Array.from({ length: 10 }, worker));

      expect(pacer.counts().spentFallback).toBe(sent.length);
      expect(busiestWindow(sent, MINUTE)).toBeLessThanOrEqual(50);
      expect(sent.length).toBeGreaterThanOrEqual(100);
    });

    it('tries the store again only after its backoff, and leases again once it answers', async () => {
      const time = virtualTime();
      const store = memoryStore();
      store.failing = true;
      const pacer = new SharedBudgetPacer({
        store,
        budgetPerMinute: 900,
        fallbackPerMinute: 50,
        storeRetryMs: 5 * SECOND,
        now: time.now,
        sleep: time.sleep,
      });
      await time.run([pacer.acquire(), pacer.acquire(), pacer.acquire()]);
      expect(pacer.counts().failedLeases).toBe(1);

      store.failing = false;
      time.advance(5 * SECOND);
      const [slot] = await time.run([pacer.acquire()]);

      expect(slot).toEqual({ ok: true });
      expect(pacer.counts()).toMatchObject({ leases: 1, spentLeased: 1 });
    });

    it('sends nothing without a reserve share, and says when to come back', async () => {
      const time = virtualTime();
      const store = memoryStore();
      store.failing = true;
      const pacer = new SharedBudgetPacer({
        store,
        budgetPerMinute: 1000,
        fallbackPerMinute: 0,
        storeRetryMs: 5 * SECOND,
        now: time.now,
        sleep: time.sleep,
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
