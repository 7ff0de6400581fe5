import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { busiestWindow } from '#local/ecourtdate-simulator/rate-limit.ts';
import { parseBaseUrl } from '#shared/config.ts';
import { EcourtdateClient } from '#shared/ecourtdate/client.ts';
import { CredentialsSource } from '#shared/ecourtdate/credentials.ts';
import { Pacer, type PacerSlot } from '#shared/ecourtdate/pacer.ts';
import { TokenCache } from '#shared/ecourtdate/token-cache.ts';
import { job, T0 } from '#test/helpers/factories.ts';
import {
  BASE_URL,
  fakeEcourtdate,
  SECRET_ID,
  secretsManager,
  tokenResponse,
} from '#test/helpers/unit-factories.ts';
import { virtualTime } from '#test/helpers/virtual-time.ts';

const MINUTE = 60_000;
/** A minute plus the 1 s the pacer keeps for requests that reach eCourtDate later than they were let go. */
const SPACING = 61_000;
const RUNS = { seed: 20261201, numRuns: 150 };

/** The eCourtDate client wired as the sender wires it, with a real pacer on virtual time. */
function pacedClientOnVirtualTime(share: number, tokenLifetimeSeconds = 3600) {
  const time = virtualTime();
  const api = fakeEcourtdate({
    token: [async () => tokenResponse(`token-${time.now()}`, { expires_in: tokenLifetimeSeconds })],
  });
  const at: { path: string; at: number }[] = [];
  const fetch: typeof api.fetch = (input, init) => {
    at.push({ path: new URL(String(input)).pathname, at: time.now() });
    return api.fetch(input, init);
  };
  const pacer = new Pacer(share, { now: time.now, sleep: time.sleep });
  const credentials = new CredentialsSource({
    client: secretsManager().client,
    secretId: SECRET_ID,
    ttlMs: 86_400_000,
    now: time.now,
  });
  const baseUrl = parseBaseUrl(BASE_URL, 'ECOURTDATE_BASE_URL');
  const options = { baseUrl, pacer, fetch, timeoutMs: 1_000, now: time.now };
  const tokens = new TokenCache({ ...options, credentials, renewBeforeMs: 0 });
  const client = new EcourtdateClient({ ...options, tokens });
  return { time, client, requests: at };
}

/** A pacer on virtual time, and the times (epoch ms) at which it let requests go. */
function pacedWorld(share: number, windowMs?: number) {
  const time = virtualTime();
  const pacer = new Pacer(share, {
    now: time.now,
    sleep: time.sleep,
    ...(windowMs === undefined ? {} : { windowMs }),
  });
  const sent: number[] = [];
  const request = async (maxWaitMs?: number): Promise<PacerSlot> => {
    const slot = await pacer.acquire(maxWaitMs);
    if (slot.ok) sent.push(time.now());
    return slot;
  };
  return { time, pacer, sent, request };
}

/** `n` concurrent calls of `f`. */
const times = <T>(n: number, f: () => Promise<T>): Promise<T>[] => Array.from({ length: n }, f);

describe('Pacer', () => {
  describe('bursts within the share', () => {
    it('lets a full share of concurrent requests go at once', async () => {
      const { time, sent, request } = pacedWorld(10);

      const slots = await time.run(times(10, () => request()));

      expect(slots).toEqual(Array(10).fill({ ok: true }));
      expect(sent).toEqual(Array(10).fill(T0));
      expect(time.sleeps).toEqual([]);
    });

    it('holds the request past the share until the oldest one is a minute and a second old', async () => {
      const { time, sent, request } = pacedWorld(10);

      await time.run(times(11, () => request()));

      expect(time.sleeps).toEqual([SPACING]);
      expect(sent.at(-1)).toBe(T0 + SPACING);
    });

    it('frees the share as the requests of the last minute age out, not all at once', async () => {
      const { time, sent, request } = pacedWorld(10);
      await time.run(times(6, () => request()));
      time.advance(20_000);
      await time.run(times(4, () => request()));
      time.advance(5_000);

      await time.run(times(8, () => request()));

      // 6 are a minute and a second old at T0 + 61 s, the other 4 at T0 + 81 s.
      expect(sent.slice(10)).toEqual([...Array(6).fill(T0 + SPACING), T0 + 81_000, T0 + 81_000]);
    });

    it('sends a full share in every minute under a constant backlog', async () => {
      const { time, sent, request } = pacedWorld(5);

      await time.run(times(50, () => request()));

      const rounds = sent.map((at) => (at - T0) / SPACING);
      expect(rounds).toEqual(Array.from({ length: 50 }, (_, i) => Math.floor(i / 5)));
    });

    it('lets waiting requests go in the order they asked', async () => {
      const { time, pacer } = pacedWorld(1);
      const order: string[] = [];
      const asks = ['first', 'second', 'third'].map(async (name) => {
        await pacer.acquire();
        order.push(name);
      });

      await time.run(asks);

      expect(order).toEqual(['first', 'second', 'third']);
    });

    it('applies the share to a shorter window when given one (a TIME_SCALE run)', async () => {
      const { time, sent, request } = pacedWorld(2, 1_000);

      await time.run(times(5, () => request()));

      // A scaled minute of 1 s, and a scaled spread of 1/60 s.
      expect(sent.map((at) => Math.round(at - T0))).toEqual([0, 0, 1_017, 1_017, 2_033]);
    });
  });

  describe('never more than the share in any 60 s window', () => {
    const step = fc.record({
      gapMs: fc.integer({ min: 0, max: 90_000 }),
      requests: fc.integer({ min: 1, max: 30 }),
      maxWaitMs: fc.option(fc.integer({ min: 0, max: 120_000 }), { nil: undefined }),
      blockMs: fc.option(fc.integer({ min: 1, max: 90_000 }), { freq: 8, nil: undefined }),
    });

    it('holds for arbitrary arrivals, deferrals and blocks over a long run', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 40 }),
          fc.array(step, { minLength: 1, maxLength: 40 }),
          async (share, steps) => {
            const { time, pacer, sent, request } = pacedWorld(share);
            const tasks: Promise<unknown>[] = [];
            let at = T0;
            for (const s of steps) {
              at += s.gapMs;
              tasks.push(
                time.at(at, async () => {
                  if (s.blockMs !== undefined) pacer.block(s.blockMs);
                  return Promise.all(times(s.requests, () => request(s.maxWaitMs)));
                }),
              );
            }

            await time.run(tasks);

            expect(busiestWindow(sent, MINUTE)).toBeLessThanOrEqual(share);
          },
        ),
        RUNS,
      );
    });

    it('holds at eCourtDate too when each request arrives up to 1 s after the pacer let it go', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 40 }),
          fc.array(fc.record({ gapMs: fc.integer({ min: 0, max: 90_000 }), requests: fc.nat(30) })),
          fc.array(fc.integer({ min: 0, max: 1_000 }), { minLength: 1 }),
          async (share, steps, delays) => {
            const { time, sent, request } = pacedWorld(share);
            let at = T0;
            const tasks = steps.map((s) => {
              at += s.gapMs;
              return time.at(at, () => Promise.all(times(s.requests, () => request())));
            });

            await time.run(tasks);

            const arrivals = sent.map((granted, i) => granted + (delays[i % delays.length] as number));
            expect(busiestWindow(arrivals, MINUTE)).toBeLessThanOrEqual(share);
          },
        ),
        RUNS,
      );
    });

    it('lets every request through in the end when nothing defers or blocks it', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 40 }),
          fc.array(fc.record({ gapMs: fc.integer({ min: 0, max: 90_000 }), requests: fc.nat(30) })),
          async (share, steps) => {
            const { time, sent, request } = pacedWorld(share);
            let at = T0;
            const tasks = steps.map((s) => {
              at += s.gapMs;
              return time.at(at, () => Promise.all(times(s.requests, () => request())));
            });

            await time.run(tasks);

            expect(sent).toHaveLength(steps.reduce((n, s) => n + s.requests, 0));
          },
        ),
        RUNS,
      );
    });
  });

  describe('token requests count toward the share', () => {
    it('spends one of the share on the token, so a full share of jobs leaves one for the next minute', async () => {
      const { time, client, requests } = pacedClientOnVirtualTime(5);

      await time.run(times(5, () => client.send(job())));

      expect(requests.map((r) => [r.path.split('/').at(-1), r.at - T0])).toEqual([
        ['token', 0],
        ['oneoffs', 0],
        ['oneoffs', 0],
        ['oneoffs', 0],
        ['oneoffs', 0],
        ['oneoffs', SPACING],
      ]);
    });

    it('keeps sends and token renewals together within the share over a long run', async () => {
      // Tokens that live 90 s are renewed again and again between the sends.
      const { time, client, requests } = pacedClientOnVirtualTime(7, 90);
      let at = T0;
      const tasks = Array.from({ length: 60 }, (_, i) => {
        at += (i * 7919) % 40_000;
        return time.at(at, () => Promise.all(times(1 + (i % 5), () => client.send(job()))));
      });

      await time.run(tasks);

      expect(requests.filter((r) => r.path.endsWith('/oauth/token')).length).toBeGreaterThan(5);
      expect(
        busiestWindow(
          requests.map((r) => r.at),
          MINUTE,
        ),
      ).toBeLessThanOrEqual(7);
    });
  });

  describe("the client's waitUntil: no pacing wait of an attempt passes it", () => {
    it('a send whose slot lies beyond waitUntil is deferred without reserving it; the next send takes that slot', async () => {
      const { time, client, requests } = pacedClientOnVirtualTime(2);
      await time.run([client.send(job())]);

      const [deferred] = await time.run([client.send(job(), { waitUntil: T0 + 30_000 })]);
      await time.run([client.send(job())]);

      expect(deferred).toEqual({ kind: 'deferred', retryInMs: SPACING });
      expect(requests.map((r) => [r.path.split('/').at(-1), r.at - T0])).toEqual([
        ['token', 0],
        ['oneoffs', 0],
        ['oneoffs', SPACING],
      ]);
      expect(time.sleeps).toEqual([SPACING]);
    });

    it('a token renewal whose slot lies beyond waitUntil is not requested: deferred until that slot', async () => {
      // Tokens that live 30 s: the second send needs a new one, and the share is spent until T0 + 61 s.
      const { time, client, requests } = pacedClientOnVirtualTime(2, 30);
      await time.run([client.send(job())]);
      time.advance(31_000);

      const [deferred] = await time.run([client.send(job(), { waitUntil: T0 + 41_000 })]);

      expect(deferred).toEqual({ kind: 'deferred', retryInMs: SPACING - 31_000 });
      expect(requests).toHaveLength(2);
      expect(time.sleeps).toEqual([]);
    });

    it('waits for slots that come by waitUntil: the renewal and the send both go at T0 + 61 s', async () => {
      const { time, client, requests } = pacedClientOnVirtualTime(2, 30);
      await time.run([client.send(job())]);
      time.advance(31_000);

      const [sent] = await time.run([client.send(job(), { waitUntil: T0 + 2 * SPACING })]);

      expect(sent).toMatchObject({ kind: 'attempted', sendStatuses: [201] });
      expect(requests.slice(2).map((r) => [r.path.split('/').at(-1), r.at - T0])).toEqual([
        ['token', SPACING],
        ['oneoffs', SPACING],
      ]);
    });
  });

  describe('maxWaitMs', () => {
    it('refuses a slot further away than maxWaitMs, saying when it would come', async () => {
      const { time, request } = pacedWorld(1);
      await request();
      time.advance(15_000);

      expect(await request(30_000)).toEqual({ ok: false, retryInMs: 46_000 });
    });

    it('waits for a slot within maxWaitMs', async () => {
      const { time, sent, request } = pacedWorld(1);
      await request();
      time.advance(15_000);

      await time.run([request(46_000)]);

      expect(sent).toEqual([T0, T0 + SPACING]);
    });

    it('does not reserve a slot for a request it refused', async () => {
      const { time, request } = pacedWorld(2);
      await request();
      await request(0); // room: goes at once
      await request(0); // refused

      await time.run([request()]);

      expect(time.sleeps).toEqual([SPACING]);
    });
  });

  describe('block (after a 429)', () => {
    it('refuses every request while blocked, saying how long is left', async () => {
      const { time, pacer, request } = pacedWorld(900);
      pacer.block(MINUTE);

      expect(await request()).toEqual({ ok: false, retryInMs: MINUTE });
      time.advance(15_000);
      expect(await request()).toEqual({ ok: false, retryInMs: 45_000 });
      expect(time.sleeps).toEqual([]);
    });

    it('lets requests through again once the block has passed', async () => {
      const { time, pacer, request } = pacedWorld(900);
      pacer.block(MINUTE);
      time.advance(MINUTE);

      expect(await request()).toEqual({ ok: true });
      expect(pacer.blockedForMs()).toBe(0);
    });

    it('never shortens a block: the longer one stands', () => {
      const { time, pacer } = pacedWorld(900);
      pacer.block(MINUTE);
      time.advance(10_000);

      pacer.block(5_000);

      expect(pacer.blockedForMs()).toBe(50_000);
    });

    it('refuses a request that was waiting for its slot when a block arrives', async () => {
      const { time, pacer, request } = pacedWorld(1);
      await request();
      const waiting = request();
      const blocker = time.at(T0 + 10_000, async () => pacer.block(MINUTE));

      await time.run<unknown>([waiting, blocker]);

      // Woken at T0 + 61 s; the block lasts until T0 + 70 s.
      expect(await waiting).toEqual({ ok: false, retryInMs: 9_000 });
    });
  });

  it.each([0, 1.5, Number.NaN])('refuses a share of %s', (share) => {
    expect(() => new Pacer(share)).toThrow(RangeError);
  });

  it('refuses a window that is not a positive number of ms', () => {
    expect(() => new Pacer(10, { windowMs: 0 })).toThrow(RangeError);
  });
});
