import { describe, expect, it } from 'vitest';
import type { SendJob } from '#shared/job.ts';
import {
  backoffDelaySeconds,
  type DecideInput,
  decide,
  deferred,
  expiredBeforeSend,
  FIRST_ATTEMPT,
  jobDeadline,
  type PriorAttempts,
} from '#shared/policy.ts';
import { job, policy, response, T0, transport } from '#test/helpers/factories.ts';

const HOUR = 3_600_000;

/**
 * `attempt` n: n - 1 earlier attempts that each counted towards every budget and left the outcome unknown,
 * the worst case for the row under test. The ledger's exact counts are tested further down.
 */
function sameKindBefore(attempt: number): PriorAttempts {
  const earlier = attempt - 1;
  return { retryable: earlier, serverErrors500: earlier, rateLimited: earlier, unknownOutcome: earlier > 0 };
}

/** Judges one result at attempt `attempt` (see `sameKindBefore`), or with explicit `prior` counts. */
function decideFor(
  input: Partial<Omit<DecideInput, 'prior'>> &
    Pick<DecideInput, 'result'> & { attempt?: number; prior?: PriorAttempts },
) {
  const { attempt = 1, prior = sameKindBefore(attempt), ...rest } = input;
  return decide({
    prior,
    job: job(),
    firstReceivedAt: T0,
    now: T0,
    policy: policy(),
    random: () => 0,
    ...rest,
  });
}

describe('policy: the table "What each response does"', () => {
  describe('2xx', () => {
    it.each([200, 201, 202])('%i is delivered, with the returned uuid', (status) => {
      expect(decideFor({ result: response(status, { uuid: 'u-1' }) })).toEqual({
        type: 'delivered',
        uuid: 'u-1',
      });
    });

    it('is delivered even on a late attempt', () => {
      expect(decideFor({ result: response(201), attempt: 5 })).toEqual({
        type: 'delivered',
        uuid: undefined,
      });
    });
  });

  it('400 dead-letters bad_request at once, whatever the attempt', () => {
    expect(decideFor({ result: response(400) })).toEqual({ type: 'dead_letter', reason: 'bad_request' });
    expect(decideFor({ result: response(400), attempt: 3 })).toEqual({
      type: 'dead_letter',
      reason: 'bad_request',
    });
  });

  describe('401 (after token renewal and secret re-read)', () => {
    it('retries with backoff: 60 s after attempt 1, 120 s after attempt 2', () => {
      expect(decideFor({ result: response(401) })).toEqual({
        type: 'retry',
        delaySeconds: 60,
        cause: 'unauthorized',
      });
      expect(decideFor({ result: response(401), attempt: 2 })).toEqual({
        type: 'retry',
        delaySeconds: 120,
        cause: 'unauthorized',
      });
    });

    it('dead-letters retries_exhausted on the last attempt', () => {
      expect(decideFor({ result: response(401), attempt: 5 })).toEqual({
        type: 'dead_letter',
        reason: 'retries_exhausted',
      });
    });

    it('treats a 400 from the token endpoint as an auth failure, not as a bad job', () => {
      expect(decideFor({ result: response(400, { stage: 'token' }) })).toMatchObject({
        type: 'retry',
        cause: 'unauthorized',
      });
    });
  });

  it('403 dead-letters forbidden', () => {
    expect(decideFor({ result: response(403) })).toEqual({ type: 'dead_letter', reason: 'forbidden' });
  });

  it('404 dead-letters not_found', () => {
    expect(decideFor({ result: response(404) })).toEqual({ type: 'dead_letter', reason: 'not_found' });
  });

  it.each([405, 408, 410, 413, 415, 422, 451])('%i dead-letters client_error', (status) => {
    expect(decideFor({ result: response(status) })).toEqual({ type: 'dead_letter', reason: 'client_error' });
  });

  it('a 3xx (the API never redirects: a wrong base URL) dead-letters client_error', () => {
    expect(decideFor({ result: response(302) })).toEqual({ type: 'dead_letter', reason: 'client_error' });
  });

  describe('409', () => {
    it('on the first attempt is a duplicate: someone else already sent it, not an error', () => {
      expect(decideFor({ result: response(409), attempt: 1 })).toEqual({ type: 'duplicate' });
    });

    it('on a later attempt is delivered: an earlier attempt with an unknown outcome created it', () => {
      expect(decideFor({ result: response(409), attempt: 2 })).toEqual({ type: 'delivered' });
      expect(decideFor({ result: response(409), attempt: 5 })).toEqual({ type: 'delivered' });
    });
  });

  describe('429', () => {
    it('waits at least 60 s for the window to reset', () => {
      expect(decideFor({ result: response(429) })).toEqual({
        type: 'retry',
        delaySeconds: 60,
        cause: 'rate_limited',
      });
    });

    it('waits longer when Retry-After or a reset header says so', () => {
      expect(decideFor({ result: response(429, { retryAfterSeconds: 95 }) })).toMatchObject({
        delaySeconds: 95,
      });
    });

    it('never waits less than 60 s, even if the header says less', () => {
      expect(decideFor({ result: response(429, { retryAfterSeconds: 5 }) })).toMatchObject({
        delaySeconds: 60,
      });
    });

    it('backs off 1, 2, 4 minutes as eCourtDate advises when 429s repeat', () => {
      const delays = [1, 2, 3].map((attempt) => decideFor({ result: response(429), attempt }));
      expect(delays.map((d) => (d.type === 'retry' ? d.delaySeconds : d.type))).toEqual([60, 120, 240]);
    });

    it('is retried past the attempt limit: only the deadline ends 429 waits', () => {
      expect(decideFor({ result: response(429), attempt: 12 })).toEqual({
        type: 'retry',
        delaySeconds: 480,
        cause: 'rate_limited',
      });
    });

    it('dead-letters expired when the wait would end after expires_at', () => {
      const soon = job({ expires_at: new Date(T0 + 30_000).toISOString() });
      expect(decideFor({ result: response(429), job: soon })).toEqual({
        type: 'dead_letter',
        reason: 'expired',
      });
    });
  });

  describe('500', () => {
    it('is retried once, after 60 s', () => {
      expect(decideFor({ result: response(500), attempt: 1 })).toEqual({
        type: 'retry',
        delaySeconds: 60,
        cause: 'server_error',
      });
    });

    it('dead-letters retries_exhausted on the second 500', () => {
      expect(decideFor({ result: response(500), attempt: 2 })).toEqual({
        type: 'dead_letter',
        reason: 'retries_exhausted',
      });
    });
  });

  describe('503 and other 5xx', () => {
    it.each([502, 503, 507, 599])(
      '%i backs off 60, 120, 240, 480 s then dead-letters after attempt 5',
      (status) => {
        const outcomes = [1, 2, 3, 4, 5].map((attempt) => decideFor({ result: response(status), attempt }));
        expect(outcomes).toEqual([
          { type: 'retry', delaySeconds: 60, cause: 'server_error' },
          { type: 'retry', delaySeconds: 120, cause: 'server_error' },
          { type: 'retry', delaySeconds: 240, cause: 'server_error' },
          { type: 'retry', delaySeconds: 480, cause: 'server_error' },
          { type: 'dead_letter', reason: 'retries_exhausted' },
        ]);
      },
    );

    it('adds up to 10 % jitter on top of the step, never less than the step', () => {
      const jittered = policy({ backoffJitter: 0.1 });
      const low = decideFor({ result: response(503), attempt: 2, policy: jittered, random: () => 0 });
      const high = decideFor({ result: response(503), attempt: 2, policy: jittered, random: () => 0.9999 });
      expect(low).toMatchObject({ delaySeconds: 120 });
      expect(high).toMatchObject({ delaySeconds: 132 });
    });
  });

  describe('504, timeout, connection error: outcome unknown', () => {
    it.each([
      ['504', response(504)],
      ['a timeout', transport('timeout')],
      ['a connection error', transport('connection')],
    ])(
      '%s retries with the same backoff (the duplicate window catches a created message)',
      (_name, result) => {
        expect(decideFor({ result, attempt: 1 })).toEqual({
          type: 'retry',
          delaySeconds: 60,
          cause: 'unknown_outcome',
        });
        expect(decideFor({ result, attempt: 4 })).toEqual({
          type: 'retry',
          delaySeconds: 480,
          cause: 'unknown_outcome',
        });
        expect(decideFor({ result, attempt: 5 })).toEqual({
          type: 'dead_letter',
          reason: 'retries_exhausted',
        });
      },
    );

    it('the whole backoff schedule lands inside the 30-minute duplicate window', () => {
      const total = [1, 2, 3, 4].reduce(
        (sum, attempt) => sum + backoffDelaySeconds(attempt, policy({ backoffJitter: 0.1 }), () => 0.9999),
        0,
      );
      expect(total).toBeLessThan(30 * 60);
    });

    it.each([
      ['504', response(504)],
      ['a timeout', transport('timeout')],
    ])(
      '%s with skip_duplicate: true dead-letters unknown_outcome instead of risking a double send',
      (_name, result) => {
        const risky = job({}, { skip_duplicate: true });
        expect(decideFor({ result, job: risky })).toEqual({ type: 'dead_letter', reason: 'unknown_outcome' });
      },
    );

    it('skip_duplicate: false keeps the retry', () => {
      expect(
        decideFor({ result: transport('timeout'), job: job({}, { skip_duplicate: false }) }),
      ).toMatchObject({ type: 'retry' });
    });

    it('a timeout at the token endpoint sent nothing: plain backoff, even with skip_duplicate', () => {
      const risky = job({}, { skip_duplicate: true });
      expect(decideFor({ result: transport('timeout', 'token'), job: risky })).toEqual({
        type: 'retry',
        delaySeconds: 60,
        cause: 'server_error',
      });
    });
  });

  describe('expiry: after expires_at or 24 h', () => {
    const expiring: SendJob = job({ expires_at: new Date(T0 + HOUR).toISOString() });

    it('a job is expired from the instant of expires_at, not before', () => {
      expect(expiredBeforeSend(expiring, T0, T0 + HOUR - 1, policy())).toBe(false);
      expect(expiredBeforeSend(expiring, T0, T0 + HOUR, policy())).toBe(true);
    });

    it('without expires_at, a job expires 24 h after it was first received', () => {
      expect(expiredBeforeSend(job(), T0, T0 + 24 * HOUR - 1, policy())).toBe(false);
      expect(expiredBeforeSend(job(), T0, T0 + 24 * HOUR, policy())).toBe(true);
    });

    it('the earlier of expires_at and 24 h wins', () => {
      const late = job({ expires_at: new Date(T0 + 48 * HOUR).toISOString() });
      expect(jobDeadline(late, T0, policy())).toBe(T0 + 24 * HOUR);
      expect(jobDeadline(expiring, T0, policy())).toBe(T0 + HOUR);
    });

    it('a retry whose delay would pass the deadline dead-letters expired instead', () => {
      const now = T0 + 24 * HOUR - 30_000;
      expect(decideFor({ result: response(503), now })).toEqual({ type: 'dead_letter', reason: 'expired' });
    });

    it('a retry that fits before the deadline is kept', () => {
      const now = T0 + 24 * HOUR - 61_000;
      expect(decideFor({ result: response(503), now })).toEqual({
        type: 'retry',
        delaySeconds: 60,
        cause: 'server_error',
      });
    });
  });

  describe('time scale (local runs)', () => {
    it('divides delays and the maximum age, rounding delays up to whole seconds', () => {
      const fast = policy({ timeScale: 60 });
      expect(decideFor({ result: response(503), policy: fast })).toEqual({
        type: 'retry',
        delaySeconds: 1,
        cause: 'server_error',
      });
      expect(decideFor({ result: response(503), attempt: 4, policy: fast })).toMatchObject({
        delaySeconds: 8,
      });
      expect(jobDeadline(job(), T0, fast)).toBe(T0 + (24 * HOUR) / 60);
    });
  });

  describe('deferred records (not sent while the instance waits out a 429)', () => {
    it('come back when the wait is over, plus a few seconds of spread', () => {
      const outcome = deferred({
        retryInMs: 42_300,
        job: job(),
        firstReceivedAt: T0,
        now: T0,
        policy: policy(),
        random: () => 0,
      });
      expect(outcome).toEqual({ type: 'retry', delaySeconds: 43, cause: 'deferred' });
    });

    it('dead-letter expired when the wait passes the deadline', () => {
      const soon = job({ expires_at: new Date(T0 + 10_000).toISOString() });
      expect(
        deferred({ retryInMs: 42_000, job: soon, firstReceivedAt: T0, now: T0, policy: policy() }),
      ).toEqual({
        type: 'dead_letter',
        reason: 'expired',
      });
    });
  });

  it('a custom backoff schedule repeats its last step', () => {
    const custom = policy({ backoffSeconds: [10, 20], maxAttempts: 10 });
    expect([1, 2, 3, 7].map((attempt) => backoffDelaySeconds(attempt, custom, () => 0))).toEqual([
      10, 20, 20, 20,
    ]);
  });

  describe("with the job ledger's exact counts of earlier attempts", () => {
    const prior = (p: Partial<PriorAttempts>): PriorAttempts => ({ ...FIRST_ATTEMPT, ...p });

    it('429 waits never spend the 5xx budget: a 503 after ten waits is the first backoff step', () => {
      expect(decideFor({ result: response(503), prior: prior({ rateLimited: 10 }) })).toEqual({
        type: 'retry',
        delaySeconds: 60,
        cause: 'server_error',
      });
    });

    it('a 429 after 5xx retries waits by the number of 429s, not of attempts', () => {
      expect(decideFor({ result: response(429), prior: prior({ retryable: 4 }) })).toMatchObject({
        delaySeconds: 60,
      });
      expect(decideFor({ result: response(429), prior: prior({ rateLimited: 2 }) })).toMatchObject({
        delaySeconds: 240,
      });
    });

    it('a 500 is retried exactly once, even after other 5xx', () => {
      expect(decideFor({ result: response(500), prior: prior({ retryable: 2 }) })).toMatchObject({
        type: 'retry',
      });
      expect(
        decideFor({ result: response(500), prior: prior({ retryable: 2, serverErrors500: 1 }) }),
      ).toEqual({
        type: 'dead_letter',
        reason: 'retries_exhausted',
      });
    });

    it('a 500 does not outlive the overall attempt budget', () => {
      expect(decideFor({ result: response(500), prior: prior({ retryable: 4 }) })).toEqual({
        type: 'dead_letter',
        reason: 'retries_exhausted',
      });
    });

    it('a 409 after attempts that all had known outcomes is a duplicate, not a delivery', () => {
      expect(decideFor({ result: response(409), prior: prior({ rateLimited: 3, retryable: 1 }) })).toEqual({
        type: 'duplicate',
      });
    });

    it('a 409 after an attempt with an unknown outcome is a delivery', () => {
      expect(
        decideFor({ result: response(409), prior: prior({ retryable: 1, unknownOutcome: true }) }),
      ).toEqual({
        type: 'delivered',
      });
    });
  });
});
