import { describe, expect, it } from 'vitest';
import { DEFAULTS, type SenderConfig } from '#shared/config.ts';
import { LOG_MESSAGE } from '#shared/sender/runtime.ts';
import { Facts, recoverableNotDelivered } from '#test/chaos/checks.ts';
import { plainJobs } from '#test/chaos/plan.ts';
import type { ChaosEvidence } from '#test/chaos/world.ts';

/**
 * The chaos suite's allowance for a job the world handed back late (test/chaos/checks.ts, `handedBackLate`;
 * docs/chaos.md, "Time scale"): a job that met an unknown outcome may end `unknown_outcome` when the queue gave it
 * back seconds after the time its retry asked for, never when it came back on time or when the relay itself asked
 * for it too late.
 */
const SCALE = 120;
const policy = { ...DEFAULTS, timeScale: SCALE, httpTimeoutMs: 500 } as unknown as SenderConfig;
const T0 = Date.UTC(2026, 11, 7, 12);
const [job] = plainJobs(1);
if (!job) throw new Error('no job');

/** One job: received at T0, its request met a 503 at T0 + 200 ms, a retry logged 100 ms later; dead-lettered. */
function evidence(options: { retryInSeconds: number; nextReceiveAt: number }): ChaosEvidence {
  const retryLine = JSON.stringify({
    level: 'WARN',
    message: LOG_MESSAGE.retried,
    timestamp: new Date(T0 + 300).toISOString(),
    job_id: job?.id,
    message_id: 'm-1',
    cause: 'unknown_outcome',
    status: 503,
    retry_in_seconds: options.retryInSeconds,
  });
  return {
    settings: { jobs: [job], timeScale: SCALE },
    redrives: [],
    ledger: [],
    requests: [],
    posts: [
      {
        jobId: job?.id,
        n: 1,
        fault: 'created-503',
        instance: 'sender-1',
        at: T0 + 200,
        answered: true,
        status: 503,
      },
    ],
    messages: [],
    kills: [],
    logLines: [retryLine],
    receiveTimes: new Map([[job?.id, [T0, options.nextReceiveAt]]]),
    seconds: 10,
    world: { policy, maxAgeMs: (DEFAULTS.maxAgeSeconds * 1000) / SCALE },
    report: { jobs: [{ id: job?.id, outcome: 'dead_lettered', reason: 'unknown_outcome' }] },
  } as unknown as ChaosEvidence;
}

describe('chaos checks: a job the queue handed back late', () => {
  it('may end unknown_outcome when no copy came back until seconds after its retry asked, inside the window', () => {
    const facts = new Facts(evidence({ retryInSeconds: 1, nextReceiveAt: T0 + 1_300 + 9_000 }));
    expect(facts.slowedByOutage(job.id)).toBe(true);
    expect(recoverableNotDelivered(facts)).toEqual([]);
  });

  it('must be delivered when it came back about when its retry asked', () => {
    const facts = new Facts(evidence({ retryInSeconds: 1, nextReceiveAt: T0 + 1_300 + 500 }));
    expect(facts.slowedByOutage(job.id)).toBe(false);
    expect(recoverableNotDelivered(facts)).toEqual([
      `${job.id}: dead_lettered:unknown_outcome after created-503`,
    ]);
  });

  it('is not excused when the relay itself asked for it back past the duplicate window', () => {
    // 15 s of window at scale 120, less the sender's margin: a retry 14 s out is the relay's own lateness.
    const facts = new Facts(evidence({ retryInSeconds: 14, nextReceiveAt: T0 + 14_300 + 9_000 }));
    expect(facts.slowedByOutage(job.id)).toBe(false);
    expect(recoverableNotDelivered(facts)).toHaveLength(1);
  });
});
