import { T0 } from '#test/helpers/factories.ts';

/**
 * Virtual time: a clock that moves only when every task is asleep, straight to the next wake-up. `sleep` is the
 * pacer's; `at` starts a task at a given time. Nothing waits on wall time.
 */
export function virtualTime(start = T0) {
  let now = start;
  const sleepers: { at: number; wake: () => void }[] = [];
  const sleeps: number[] = [];
  const wakeAt = (at: number) => new Promise<void>((wake) => sleepers.push({ at, wake }));
  return {
    now: () => now,
    /** Every sleep the pacer asked for, ms. */
    sleeps,
    sleep: (ms: number) => {
      sleeps.push(ms);
      return wakeAt(now + ms);
    },
    advance(ms: number) {
      now += ms;
    },
    /** Runs `task` at `at` (epoch ms) in virtual time. */
    at<T>(at: number, task: () => Promise<T>): Promise<T> {
      return wakeAt(at).then(task);
    },
    /** Drives virtual time until every promise has settled. */
    async run<T>(promises: readonly Promise<T>[]): Promise<T[]> {
      let settled = false;
      const all = Promise.all(promises).finally(() => {
        settled = true;
      });
      for (let idle = 0; !settled; ) {
        await new Promise((resolve) => setImmediate(resolve));
        if (settled) break;
        if (sleepers.length === 0) {
          // A fetch or a body read may still be resolving; it needs no clock.
          if (++idle > 1_000) throw new Error('virtual time: tasks pending with nobody asleep');
          continue;
        }
        idle = 0;
        sleepers.sort((a, b) => a.at - b.at);
        now = Math.max(now, (sleepers[0] as { at: number }).at);
        while (sleepers.length > 0 && (sleepers[0] as { at: number }).at <= now) sleepers.shift()?.wake();
      }
      return all;
    },
  };
}
