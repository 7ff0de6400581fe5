/**
 * The circuit breaker (docs/pacing.md, "The circuit breaker"): what opens it, how jobs are held, who probes and
 * when, and what closes it; with an in-memory store that applies the same conditions as the DynamoDB one.
 */
import { describe, expect, it } from 'vitest';
import {
  type ApiSignal,
  Breaker,
  type BreakerStore,
  type BreakerView,
  CLOSED,
  OPEN_AFTER_FAILURES,
  type OpenBreaker,
  openedBy,
  PROBE_STEPS_SECONDS,
  probeDelayMs,
  signalOf,
} from '#shared/ecourtdate/breaker.ts';

/** The store's conditions, kept in memory; `failing` makes every call throw (DynamoDB refused). */
class MemoryStore implements BreakerStore {
  state: BreakerView = CLOSED;
  failing = false;
  calls = 0;

  async read(): Promise<BreakerView> {
    this.#call();
    return this.state;
  }
  async open(view: OpenBreaker): Promise<BreakerView> {
    this.#call();
    if (this.state.state !== 'open') this.state = view;
    return this.state;
  }
  async claimProbe(seen: OpenBreaker, next: OpenBreaker) {
    this.#call();
    const s = this.state;
    const claimed = s.state === 'open' && s.openedAt === seen.openedAt && s.probeAt === seen.probeAt;
    if (claimed) this.state = next;
    return { claimed, view: this.state };
  }
  async close(seen: OpenBreaker): Promise<BreakerView> {
    this.#call();
    if (this.state.state === 'open' && this.state.openedAt === seen.openedAt) this.state = CLOSED;
    return this.state;
  }
  #call() {
    this.calls += 1;
    if (this.failing)
      throw Object.assign(new Error('refused'), { name: 'ProvisionedThroughputExceededException' });
  }
}

const FAIL: ApiSignal = { kind: 'failure' };
const UP: ApiSignal = { kind: 'up' };

function world(store = new MemoryStore()) {
  let now = 1_800_000_000_000;
  const clock = {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
  const breaker = (options: { random?: () => number } = {}) =>
    new Breaker({ store, now: clock.now, random: options.random ?? (() => 0), probeMs: 0 });
  return { store, clock, breaker };
}

describe('what an answer says of the API', () => {
  it.each([
    [500, 'failure'],
    [502, 'failure'],
    [503, 'failure'],
    [504, 'failure'],
    [408, 'failure'],
    ['timeout', 'failure'],
    ['connection', 'failure'],
    [201, 'up'],
    [400, 'up'],
    [403, 'up'],
    [404, 'up'],
    [409, 'up'],
    [429, 'up'],
    [401, 'neutral'],
  ] as const)('%s is %s', (status, kind) => {
    expect(signalOf(status).kind).toBe(kind);
  });

  it('a 503 with Retry-After is maintenance, with its wait', () => {
    expect(signalOf(503, 7200)).toEqual({ kind: 'maintenance', retryAfterSeconds: 7200 });
  });
});

describe('opening', () => {
  it(`${OPEN_AFTER_FAILURES} failed requests in a row open it for every instance, the first probe a minute later`, async () => {
    const { store, clock, breaker } = world();
    const a = breaker();
    for (let i = 0; i < OPEN_AFTER_FAILURES - 1; i++) a.record(FAIL);
    expect((await a.check()).kind).toBe('closed');
    a.record(FAIL);
    expect(await a.check()).toEqual({ kind: 'held', reason: 'unavailable', retryInMs: 60_000 });
    expect(store.state).toMatchObject({ state: 'open', probeAt: clock.now() + 60_000, probeStep: 0 });
    // Another instance sees it at its first check.
    expect(await breaker().check()).toMatchObject({ kind: 'held', reason: 'unavailable' });
  });

  it('an answer of a working API between failures starts the count again', async () => {
    const { breaker } = world();
    const a = breaker();
    for (let i = 1; i < OPEN_AFTER_FAILURES; i++) a.record(FAIL);
    a.record(UP);
    for (let i = 1; i < OPEN_AFTER_FAILURES; i++) a.record(FAIL);
    expect((await a.check()).kind).toBe('closed');
  });

  it("a 503 with Retry-After counts as a failure; when it opens the breaker, the first probe waits its hint (at most SQS's 900 s)", async () => {
    const now = 0;
    expect(openedBy({ kind: 'maintenance', retryAfterSeconds: 300 }, now, 1).probeAt).toBe(300_000);
    expect(openedBy({ kind: 'maintenance', retryAfterSeconds: 10 }, now, 1).probeAt).toBe(60_000);
    expect(openedBy({ kind: 'maintenance', retryAfterSeconds: 7200 }, now, 1).probeAt).toBe(900_000);
    const { clock, breaker } = world();
    const a = breaker();
    a.record({ kind: 'maintenance', retryAfterSeconds: 300 });
    expect((await a.check()).kind).toBe('closed');
    for (let i = 1; i < OPEN_AFTER_FAILURES; i++) a.record({ kind: 'maintenance', retryAfterSeconds: 300 });
    expect(a.view).toMatchObject({ state: 'open', probeAt: clock.now() + 300_000 });
  });

  it('a 401 that outlived a renewal and a secret re-read opens it at once, for auth', async () => {
    const { breaker } = world();
    const a = breaker();
    a.record({ kind: 'auth' });
    expect(await a.check()).toMatchObject({ kind: 'held', reason: 'auth' });
  });

  it('a single 401 (the token is renewed) says nothing', async () => {
    const { breaker } = world();
    const a = breaker();
    for (let i = 0; i < 5; i++) a.record({ kind: 'neutral' });
    expect((await a.check()).kind).toBe('closed');
  });

  it('two instances opening at once: the first opening holds, with its probe time', async () => {
    const { store, clock, breaker } = world();
    const [a, b] = [breaker(), breaker()];
    for (let i = 0; i < OPEN_AFTER_FAILURES; i++) a.record(FAIL);
    clock.advance(10);
    for (let i = 0; i < OPEN_AFTER_FAILURES; i++) b.record(FAIL);
    await a.check();
    await b.check();
    expect(store.state).toMatchObject({ state: 'open', openedAt: clock.now() - 10 });
  });
});

describe('holding and probing', () => {
  it('failures an instance counted before another closed the breaker do not reopen it at the next failure', async () => {
    const { clock, breaker } = world();
    const [a, b] = [breaker(), breaker()];
    for (let i = 1; i < OPEN_AFTER_FAILURES; i++) b.record(FAIL);
    a.record({ kind: 'auth' });
    await a.check();
    await b.check();
    clock.advance(60_000);
    const probe = (await a.check()) as { view: OpenBreaker };
    await a.probed(probe.view, UP);
    clock.advance(60_000);
    await b.check();
    b.record(FAIL);
    expect((await b.check()).kind).toBe('closed');
  });

  it('held jobs come back after the probe is due, spread over a fifth of the step', async () => {
    const { breaker } = world();
    const a = breaker({ random: () => 0.999 });
    a.record({ kind: 'auth' });
    const held = await a.check();
    expect(held).toMatchObject({ kind: 'held' });
    const retryInMs = (held as { retryInMs: number }).retryInMs;
    expect(retryInMs).toBeGreaterThanOrEqual(60_000);
    expect(retryInMs).toBeLessThan(60_000 + 60_000 / 5);
  });

  it('when the probe is due, exactly one instance takes it; the others stay held until the next step', async () => {
    const { clock, breaker } = world();
    const instances = [breaker(), breaker(), breaker()];
    instances[0]?.record({ kind: 'auth' });
    await instances[0]?.check();
    clock.advance(60_000);
    const checks = await Promise.all(instances.map((b) => b.check()));
    expect(checks.filter((c) => c.kind === 'probe')).toHaveLength(1);
    expect(checks.filter((c) => c.kind === 'held')).toHaveLength(2);
  });

  it('a failed probe leaves it open; the probes back off 60 s, 120, 240, 480, then every 600 s', async () => {
    const { clock, breaker } = world();
    const a = breaker();
    for (let i = 0; i < OPEN_AFTER_FAILURES; i++) a.record({ kind: 'maintenance', retryAfterSeconds: 1 });
    await a.check();
    const waits: number[] = [];
    let last = clock.now();
    for (let probe = 0; probe < 7; probe++) {
      let check = await a.check();
      while (check.kind !== 'probe') {
        clock.advance(1_000);
        check = await a.check();
      }
      waits.push(Math.round((clock.now() - last) / 1000));
      last = clock.now();
      expect((await a.probed(check.view, FAIL)).kind).toBe('held');
    }
    expect(waits).toEqual([60, 120, 240, 480, 600, 600, 600]);
    expect(PROBE_STEPS_SECONDS.at(-1)).toBe(600);
  });

  it('a probe that finds the API working closes it for every instance', async () => {
    const { store, clock, breaker } = world();
    const [a, b] = [breaker(), breaker()];
    a.record({ kind: 'auth' });
    await a.check();
    await b.check();
    clock.advance(60_000);
    const probe = await a.check();
    expect(probe.kind).toBe('probe');
    expect(await a.probed((probe as { view: OpenBreaker }).view, UP)).toEqual({ kind: 'closed' });
    expect(store.state).toEqual(CLOSED);
    clock.advance(60_000);
    expect((await b.check()).kind).toBe('closed');
  });

  it('a probe of an opening that was closed and opened again since does not close the new one', async () => {
    const { store, clock, breaker } = world();
    const a = breaker();
    a.record({ kind: 'auth' });
    await a.check();
    clock.advance(60_000);
    const probe = (await a.check()) as { view: OpenBreaker };
    const reopened = { ...openedBy(FAIL as never, clock.now(), 1) };
    store.state = reopened;
    await a.probed(probe.view, UP);
    expect(store.state).toEqual(reopened);
  });
});

describe('a store that fails never stops sending, and never lets a failing instance flood', () => {
  it('reads that fail: the instance goes on with the state it last saw (closed)', async () => {
    const { store, breaker } = world();
    store.failing = true;
    const a = breaker();
    expect((await a.check()).kind).toBe('closed');
  });

  it('a first read the store refused is not made again by every record: one read, then the state last seen', async () => {
    const { store, breaker } = world();
    store.failing = true;
    const a = breaker();
    await a.check();
    await a.check();
    await a.check();
    expect(store.calls).toBe(1);
  });

  it("an opening it cannot write holds this instance's jobs, and its own probe closes it", async () => {
    const { store, clock, breaker } = world();
    store.failing = true;
    const a = breaker();
    for (let i = 0; i < OPEN_AFTER_FAILURES; i++) a.record(FAIL);
    expect((await a.check()).kind).toBe('held');
    clock.advance(60_000);
    const probe = await a.check();
    expect(probe.kind).toBe('probe');
    expect(await a.probed((probe as { view: OpenBreaker }).view, UP)).toEqual({ kind: 'closed' });
    expect((await a.check()).kind).toBe('closed');
  });
});

describe('a batch checking at once', () => {
  it('writes an opening once, and tells of it once, however many records of the batch check together', async () => {
    const store = new MemoryStore();
    let opens = 0;
    const counting: BreakerStore = {
      read: () => store.read(),
      open: (view) => {
        opens += 1;
        return store.open(view);
      },
      claimProbe: (seen, next) => store.claimProbe(seen, next),
      close: (seen) => store.close(seen),
    };
    const changes: BreakerView[] = [];
    const a = new Breaker({
      store: counting,
      now: () => 1_800_000_000_000,
      onChange: (v) => changes.push(v),
    });
    await a.check();
    for (let i = 0; i < OPEN_AFTER_FAILURES; i++) a.record(FAIL);
    const checks = await Promise.all(Array.from({ length: 10 }, () => a.check()));
    expect(checks.every((c) => c.kind === 'held')).toBe(true);
    expect(opens).toBe(1);
    expect(changes).toHaveLength(1);
  });
});

describe('an opening the store refuses as stale', () => {
  it('starts the count of failures again, so that one failure after the close does not open it', async () => {
    const { store, breaker } = world();
    // The store's answer to an opening decided before the probe that closed the breaker: closed. Later openings
    // are written.
    let stale = true;
    store.open = async (view) => {
      if (stale) {
        stale = false;
        return CLOSED;
      }
      store.state = view;
      return view;
    };
    const a = breaker();
    for (let i = 0; i < OPEN_AFTER_FAILURES; i++) a.record(FAIL);
    expect((await a.check()).kind).toBe('closed');
    a.record(FAIL);
    expect((await a.check()).kind).toBe('closed');
  });
});

describe('a probe time no breaker could have written', () => {
  it('an open state whose next probe is further off than the longest wait is probed now, not held until every job expires', async () => {
    const { store, clock, breaker } = world();
    const opened = openedBy(FAIL, clock.now(), 1);
    store.state = { ...opened, probeAt: clock.now() + 30 * 24 * 60 * 60_000 };
    const check = await breaker().check();
    expect(check.kind).toBe('probe');
  });
});

describe('time scaling', () => {
  it('probe waits are divided by TIME_SCALE', () => {
    expect(probeDelayMs(0, 60)).toBe(1_000);
    expect(probeDelayMs(99, 60)).toBe(10_000);
  });
});
