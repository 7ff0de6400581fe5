import { describe, expect, it } from 'vitest';
import { Pacer } from '#shared/ecourtdate/pacer.ts';
import { fakeClock } from '#test/helpers/unit-factories.ts';

/** A pacer on a fake clock whose sleeps are recorded and return at once. */
function recordingPacer(requestsPerMinute: number) {
  const clock = fakeClock();
  const sleeps: number[] = [];
  const pacer = new Pacer(requestsPerMinute, {
    now: clock.now,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  });
  return { clock, sleeps, pacer };
}

/** A pacer on a fake clock whose sleeps stay pending until the test wakes them. */
function heldPacer(requestsPerMinute: number) {
  const clock = fakeClock();
  const sleeping: { ms: number; wake: () => void }[] = [];
  const pacer = new Pacer(requestsPerMinute, {
    now: clock.now,
    sleep: (ms) => new Promise<void>((resolve) => sleeping.push({ ms, wake: resolve })),
  });
  return { clock, sleeping, pacer };
}

describe('Pacer', () => {
  it('lets the first request through at once', async () => {
    const { pacer, sleeps } = recordingPacer(30);

    expect(await pacer.acquire()).toEqual({ ok: true });
    expect(sleeps).toEqual([]);
  });

  it('spaces concurrent requests 60/rpm seconds apart: 2 s, 4 s at 30/min', async () => {
    const { pacer, sleeps } = recordingPacer(30);

    const results = await Promise.all([pacer.acquire(), pacer.acquire(), pacer.acquire()]);

    expect(results).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(sleeps).toEqual([2_000, 4_000]);
  });

  it('spaces requests 66.7 ms apart at the default 900/min', async () => {
    const { pacer, sleeps } = recordingPacer(900);

    await Promise.all([pacer.acquire(), pacer.acquire()]);

    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeCloseTo(66.67, 1);
  });

  it('waits only for what is left of the interval', async () => {
    const { pacer, sleeps, clock } = recordingPacer(30);
    await pacer.acquire();
    clock.advance(1_500);

    await pacer.acquire();

    expect(sleeps).toEqual([500]);
  });

  it('does not wait when the previous slot has long passed', async () => {
    const { pacer, sleeps, clock } = recordingPacer(30);
    await pacer.acquire();
    clock.advance(10_000);

    await pacer.acquire();

    expect(sleeps).toEqual([]);
  });

  it('refuses every request while blocked, saying how long is left', async () => {
    const { pacer, clock, sleeps } = recordingPacer(900);
    pacer.block(60_000);

    expect(await pacer.acquire()).toEqual({ ok: false, retryInMs: 60_000 });
    clock.advance(15_000);
    expect(await pacer.acquire()).toEqual({ ok: false, retryInMs: 45_000 });
    expect(sleeps).toEqual([]);
  });

  it('lets requests through again once the block has passed', async () => {
    const { pacer, clock } = recordingPacer(900);
    pacer.block(60_000);
    clock.advance(60_000);

    expect(await pacer.acquire()).toEqual({ ok: true });
    expect(pacer.blockedForMs()).toBe(0);
  });

  it('never shortens a block: the longer one stands', () => {
    const { pacer, clock } = recordingPacer(900);
    pacer.block(60_000);
    clock.advance(10_000);

    pacer.block(5_000);

    expect(pacer.blockedForMs()).toBe(50_000);
  });

  it('refuses a request that was waiting for its slot when a block arrives', async () => {
    const { pacer, clock, sleeping } = heldPacer(60);
    await pacer.acquire();
    const waiting = pacer.acquire();
    await Promise.resolve();
    expect(sleeping.map((s) => s.ms)).toEqual([1_000]);

    pacer.block(60_000);
    clock.advance(1_000);
    sleeping[0]?.wake();

    expect(await waiting).toEqual({ ok: false, retryInMs: 59_000 });
  });

  it('refuses a slot further away than maxWaitMs, saying when it would come', async () => {
    const { pacer } = recordingPacer(60);
    await pacer.acquire();

    expect(await pacer.acquire(500)).toEqual({ ok: false, retryInMs: 1_000 });
  });

  it('does not reserve a slot for a request it refused for maxWaitMs', async () => {
    const { pacer, sleeps } = recordingPacer(60);
    await pacer.acquire();
    await pacer.acquire(500);

    await pacer.acquire();

    expect(sleeps).toEqual([1_000]);
  });
});
