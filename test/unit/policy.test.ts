import { describe, expect, it } from 'vitest';
import { MAX_HIDE_SECONDS } from '#shared/config.ts';
import type { SendJob } from '#shared/job.ts';
import type { Outcome } from '#shared/outcome.ts';
import {
  type AttemptClass,
  type AttemptResult,
  backoffDelaySeconds,
  beforeSend,
  type ClaimedJob,
  classifyAttempt,
  type DecideInput,
  decide,
  deferred,
  expiredBeforeSend,
  FIRST_ATTEMPT,
  hideSeconds,
  insideDuplicateWindow,
  isUnknownOutcomeStatus,
  jobDeadline,
  type PriorAttempts,
  rateLimitBlockMs,
  resendDeadline,
  scaled,
  scaledMs,
  suspectRateLimitHint,
  unknownOutcomeKept,
} from '#shared/policy.ts';
import { job, policy, response, secretFailure, T0, transport } from '#test/helpers/factories.ts';

const SECOND = 1_000;
const MINUTE = 60_000;
const HOUR = 3_600_000;

/** Earlier attempts with these counts (the job ledger's exact counts); everything else zero. */
function priorWith(counts: Partial<PriorAttempts>): PriorAttempts {
  return { ...FIRST_ATTEMPT, ...counts };
}

/** A transport failure on the messages endpoint before a byte was written: the request never left. */
const neverLeft = (error: 'timeout' | 'connection'): AttemptResult => ({
  kind: 'transport',
  stage: 'send',
  error,
  mayHaveBeenSent: false,
});

/** A job with `skip_duplicate: true`: eCourtDate's duplicate check is off, so an unknown outcome ends it. */
const skipDuplicate = (): SendJob => job({}, { skip_duplicate: true });

/** Judges one result; a first attempt at T0 with the default policy and no jitter unless told otherwise. */
function decideFor(input: Partial<DecideInput> & Pick<DecideInput, 'result'>): Outcome {
  return decide({
    prior: FIRST_ATTEMPT,
    job: job(),
    firstReceivedAt: T0,
    now: T0,
    policy: policy(),
    random: () => 0,
    ...input,
  });
}

const retry = (delaySeconds: number, cause: string) => ({ type: 'retry', delaySeconds, cause });
const deadLetter = (reason: string) => ({ type: 'dead_letter', reason });
/** A dead letter of a generation with an unknown outcome: `unknown_outcome`, saying what ended the job. */
const unknownEndedBy = (endedBy: string) => ({ type: 'dead_letter', reason: 'unknown_outcome', endedBy });

describe('decide: the table "What each response does" (docs/contract.md)', () => {
  describe('2xx', () => {
    it.each([200, 201, 202])('%i is delivered, with the returned uuid', (status) => {
      expect(decideFor({ result: response(status, { uuid: 'u-1' }) })).toEqual({
        type: 'delivered',
        uuid: 'u-1',
      });
    });

    it('is delivered even after many failed attempts', () => {
      expect(
        decideFor({ result: response(201), prior: priorWith({ retryable: 4, rateLimited: 9, notSent: 7 }) }),
      ).toEqual({ type: 'delivered', uuid: undefined });
    });
  });

  describe('400', () => {
    it('dead-letters bad_request at once', () => {
      expect(decideFor({ result: response(400) })).toEqual(deadLetter('bad_request'));
    });

    it("dead-letters bad_request whatever the earlier attempts' counts (an unknown outcome of this generation: see unknownOutcomeKept)", () => {
      expect(
        decideFor({ result: response(400), prior: priorWith({ retryable: 2, unknownOutcome: true }) }),
      ).toEqual(deadLetter('bad_request'));
    });
  });

  describe('401 (persistent: after the token renewal and the secret re-read)', () => {
    it('backs off 60, 120, 240, 480, 480 s by the count of not-sent attempts', () => {
      const delays = [0, 1, 2, 3, 4].map((notSent) =>
        decideFor({ result: response(401), prior: priorWith({ notSent }) }),
      );
      expect(delays).toEqual([60, 120, 240, 480, 480].map((s) => retry(s, 'unauthorized')));
    });

    it('never spends the 5xx budget: after four 5xx it still backs off', () => {
      expect(decideFor({ result: response(401), prior: priorWith({ retryable: 4 }) })).toEqual(
        retry(60, 'unauthorized'),
      );
    });

    it('is never retries_exhausted: only the deadline ends it', () => {
      expect(decideFor({ result: response(401), prior: priorWith({ notSent: 40 }) })).toEqual(
        retry(480, 'unauthorized'),
      );
    });

    it('dead-letters expired when the backoff would pass the deadline', () => {
      const soon = job({ expires_at: new Date(T0 + 59 * SECOND).toISOString() });
      expect(decideFor({ result: response(401), job: soon })).toEqual(deadLetter('expired'));
    });

    it('with skip_duplicate is still a retry: a refused request created nothing', () => {
      expect(decideFor({ result: response(401), job: skipDuplicate() })).toEqual(retry(60, 'unauthorized'));
    });
  });

  it('403 dead-letters forbidden', () => {
    expect(decideFor({ result: response(403) })).toEqual(deadLetter('forbidden'));
  });

  it('404 dead-letters not_found', () => {
    expect(decideFor({ result: response(404) })).toEqual(deadLetter('not_found'));
  });

  it.each([405, 406, 410, 413, 415, 422, 451])('%i dead-letters client_error', (status) => {
    expect(decideFor({ result: response(status) })).toEqual(deadLetter('client_error'));
  });

  it.each([101, 302, 304])(
    '%i (neither success nor error: a wrong base URL) dead-letters client_error',
    (status) => {
      expect(decideFor({ result: response(status) })).toEqual(deadLetter('client_error'));
    },
  );

  describe('408: nothing was processed', () => {
    it('backs off as for a 503: 60, 120, 240, 480 s, then retries_exhausted on attempt 5', () => {
      const outcomes = [0, 1, 2, 3, 4].map((retryable) =>
        decideFor({ result: response(408), prior: priorWith({ retryable }) }),
      );
      expect(outcomes).toEqual([
        retry(60, 'server_error'),
        retry(120, 'server_error'),
        retry(240, 'server_error'),
        retry(480, 'server_error'),
        deadLetter('retries_exhausted'),
      ]);
    });

    it('is not an unknown outcome: with skip_duplicate it is retried, not dead-lettered client_error', () => {
      expect(decideFor({ result: response(408), job: skipDuplicate() })).toEqual(retry(60, 'server_error'));
    });
  });

  describe('409', () => {
    it('with no earlier attempt is a duplicate: someone else sent it, not an error', () => {
      expect(decideFor({ result: response(409) })).toEqual({ type: 'duplicate' });
    });

    it('after attempts that all had known outcomes (408, 429, 401, secret) is a duplicate', () => {
      const known = priorWith({ retryable: 1, rateLimited: 3, notSent: 2, unknownOutcome: false });
      expect(decideFor({ result: response(409), prior: known })).toEqual({ type: 'duplicate' });
    });

    it('after an attempt with an unknown outcome is delivered: that attempt created it', () => {
      expect(
        decideFor({ result: response(409), prior: priorWith({ retryable: 1, unknownOutcome: true }) }),
      ).toEqual({
        type: 'delivered',
      });
    });
  });

  describe('429', () => {
    it('waits 60 s for the window to reset', () => {
      expect(decideFor({ result: response(429) })).toEqual(retry(60, 'rate_limited'));
    });

    it('waits longer when Retry-After or a reset header says so', () => {
      expect(decideFor({ result: response(429, { retryAfterSeconds: 95 }) })).toEqual(
        retry(95, 'rate_limited'),
      );
    });

    it('never waits less than 60 s, even if the hint says less', () => {
      expect(decideFor({ result: response(429, { retryAfterSeconds: 5 }) })).toEqual(
        retry(60, 'rate_limited'),
      );
    });

    it('honours a hint up to rateLimitHintMaxSeconds exactly', () => {
      expect(decideFor({ result: response(429, { retryAfterSeconds: 300 }) })).toEqual(
        retry(300, 'rate_limited'),
      );
    });

    it('caps a hint beyond belief (a day) at rateLimitHintMaxSeconds', () => {
      expect(decideFor({ result: response(429, { retryAfterSeconds: 86_400 }) })).toEqual(
        retry(300, 'rate_limited'),
      );
    });

    it('backs off 1, 2, 4 minutes as eCourtDate advises when 429s repeat', () => {
      const delays = [0, 1, 2].map((rateLimited) =>
        decideFor({ result: response(429), prior: priorWith({ rateLimited }) }),
      );
      expect(delays).toEqual([60, 120, 240].map((s) => retry(s, 'rate_limited')));
    });

    it('waits by the number of 429s, not of other attempts', () => {
      expect(decideFor({ result: response(429), prior: priorWith({ retryable: 4, notSent: 3 }) })).toEqual(
        retry(60, 'rate_limited'),
      );
    });

    it('is never retries_exhausted: only the deadline ends 429 waits', () => {
      expect(
        decideFor({ result: response(429), prior: priorWith({ rateLimited: 50, retryable: 4 }) }),
      ).toEqual(retry(480, 'rate_limited'));
    });

    it('dead-letters expired when the wait would end after expires_at', () => {
      const soon = job({ expires_at: new Date(T0 + 30 * SECOND).toISOString() });
      expect(decideFor({ result: response(429), job: soon })).toEqual(deadLetter('expired'));
    });

    it('with skip_duplicate is still a wait: a 429 created nothing', () => {
      expect(decideFor({ result: response(429), job: skipDuplicate() })).toEqual(retry(60, 'rate_limited'));
    });
  });

  describe('500: retry once; the message may have been created', () => {
    it('without skip_duplicate is retried once, after 60 s, as an unknown outcome', () => {
      expect(decideFor({ result: response(500) })).toEqual(retry(60, 'unknown_outcome'));
    });

    it('dead-letters unknown_outcome, ended by retries_exhausted, on the second 500: either 500 may have created it', () => {
      expect(
        decideFor({
          result: response(500),
          prior: priorWith({ retryable: 1, serverErrors500: 1, unknownOutcome: true }),
          unknownSince: T0 - MINUTE,
        }),
      ).toEqual(unknownEndedBy('retries_exhausted'));
    });

    it('the second 500 is unknown_outcome even without the earlier time: this 500 itself may have created it', () => {
      expect(
        decideFor({
          result: response(500),
          prior: priorWith({ retryable: 1, serverErrors500: 1, unknownOutcome: true }),
        }),
      ).toEqual(unknownEndedBy('retries_exhausted'));
    });

    it('is retried once even after other 5xx', () => {
      expect(
        decideFor({ result: response(500), prior: priorWith({ retryable: 2, unknownOutcome: true }) }),
      ).toEqual(retry(60, 'unknown_outcome'));
    });

    it('does not outlive the overall attempt budget (dead-lettered unknown_outcome, ended by retries_exhausted)', () => {
      expect(
        decideFor({ result: response(500), prior: priorWith({ retryable: 4, unknownOutcome: true }) }),
      ).toEqual(unknownEndedBy('retries_exhausted'));
    });

    it('with skip_duplicate dead-letters unknown_outcome at once, even on the first attempt', () => {
      expect(decideFor({ result: response(500), job: skipDuplicate() })).toEqual(
        deadLetter('unknown_outcome'),
      );
    });
  });

  describe('every other 5xx and every transport failure on the messages endpoint: an unknown outcome', () => {
    const unknowns: [string, AttemptResult][] = [
      ['502', response(502)],
      ['503', response(503)],
      ['504', response(504)],
      ['507', response(507)],
      ['599', response(599)],
      ['a timeout', transport('timeout')],
      ['a connection error', transport('connection')],
    ];

    it.each(unknowns)(
      '%s backs off 60, 120, 240, 480 s, then dead-letters unknown_outcome (ended by retries_exhausted) on attempt 5',
      (_n, result) => {
        const outcomes = [0, 1, 2, 3, 4].map((retryable) =>
          decideFor({
            result,
            prior: priorWith({ retryable, unknownOutcome: retryable > 0 }),
            // The ledger's time of the generation's earliest unknown outcome, from the second attempt on.
            unknownSince: retryable > 0 ? T0 - MINUTE : undefined,
          }),
        );
        expect(outcomes).toEqual([
          retry(60, 'unknown_outcome'),
          retry(120, 'unknown_outcome'),
          retry(240, 'unknown_outcome'),
          retry(480, 'unknown_outcome'),
          unknownEndedBy('retries_exhausted'),
        ]);
      },
    );

    it.each(unknowns)(
      '%s with skip_duplicate dead-letters unknown_outcome instead of risking a second send',
      (_n, result) => {
        expect(decideFor({ result, job: skipDuplicate() })).toEqual(deadLetter('unknown_outcome'));
      },
    );

    it('skip_duplicate: false keeps the retry', () => {
      expect(decideFor({ result: response(502), job: job({}, { skip_duplicate: false }) })).toEqual(
        retry(60, 'unknown_outcome'),
      );
    });

    it('adds up to backoffJitter of the step on top, never less than the step', () => {
      const jittered = policy({ backoffJitter: 0.1 });
      const prior = priorWith({ retryable: 1, unknownOutcome: true });
      expect(decideFor({ result: response(503), prior, policy: jittered, random: () => 0 })).toEqual(
        retry(120, 'unknown_outcome'),
      );
      expect(decideFor({ result: response(503), prior, policy: jittered, random: () => 0.9999 })).toEqual(
        retry(132, 'unknown_outcome'),
      );
    });

    it('every backoff step, with full jitter, lands inside the duplicate window around the attempt before it', () => {
      const jittered = policy({ backoffJitter: 0.1 });
      for (const step of [1, 2, 3, 4, 5]) {
        const delay = backoffDelaySeconds(step, jittered, () => 0.9999);
        expect(insideDuplicateWindow(T0, T0 + delay * SECOND, jittered)).toBe(true);
      }
    });
  });

  describe("503's Retry-After (a maintenance window), honoured up to the deadline", () => {
    it('a hint shorter than the backoff step keeps the step', () => {
      expect(decideFor({ result: response(503, { retryAfterSeconds: 30 }) })).toEqual(
        retry(60, 'unknown_outcome'),
      );
    });

    it('a hint longer than the backoff step is the wait', () => {
      expect(decideFor({ result: response(503, { retryAfterSeconds: 900 }) })).toEqual(
        retry(900, 'unknown_outcome'),
      );
    });

    it('a hint that ends after the deadline dead-letters unknown_outcome, ended by expired', () => {
      const soon = job({ expires_at: new Date(T0 + 10 * MINUTE).toISOString() });
      expect(decideFor({ result: response(503, { retryAfterSeconds: 900 }), job: soon })).toEqual(
        unknownEndedBy('expired'),
      );
    });

    it('is scaled like every wait in local runs', () => {
      expect(
        decideFor({ result: response(503, { retryAfterSeconds: 900 }), policy: policy({ timeScale: 60 }) }),
      ).toEqual(retry(15, 'unknown_outcome'));
    });

    it('does not lift the attempt budget (dead-lettered unknown_outcome, ended by retries_exhausted)', () => {
      expect(
        decideFor({
          result: response(503, { retryAfterSeconds: 900 }),
          prior: priorWith({ retryable: 4, unknownOutcome: true }),
        }),
      ).toEqual(unknownEndedBy('retries_exhausted'));
    });
  });

  describe('a transport failure before a byte left (DNS, refused connection, TLS handshake): a known outcome', () => {
    it.each(['connection', 'timeout'] as const)(
      'a %s that never left, with skip_duplicate, is retried',
      (error) => {
        expect(decideFor({ result: neverLeft(error), job: skipDuplicate() })).toEqual(
          retry(60, 'server_error'),
        );
      },
    );

    it('does not count as sent, nor leave the outcome unknown', () => {
      expect(classifyAttempt(neverLeft('connection'))).toMatchObject({ sent: false, unknownOutcome: false });
    });

    it('a 409 after attempts that only ever failed before leaving is a duplicate', () => {
      const prior = priorWith({
        retryable: 2,
        unknownOutcome: classifyAttempt(neverLeft('connection')).unknownOutcome,
      });
      expect(decideFor({ result: response(409), prior })).toEqual({ type: 'duplicate' });
    });
  });

  describe('token endpoint: nothing was sent, so every outcome is known', () => {
    it.each<[string, AttemptResult]>([
      ['a timeout', transport('timeout', 'token')],
      ['a connection error', transport('connection', 'token')],
      ['a 500', response(500, { stage: 'token' })],
      ['a 503', response(503, { stage: 'token' })],
      ['a 504', response(504, { stage: 'token' })],
      ['a 408', response(408, { stage: 'token' })],
      ['a 2xx without a usable token', response(200, { stage: 'token' })],
    ])('%s backs off as a server error, even with skip_duplicate', (_n, result) => {
      expect(decideFor({ result, job: skipDuplicate() })).toEqual(retry(60, 'server_error'));
    });

    it.each([400, 401])('a %i (malformed or revoked credentials) backs off as unauthorized', (status) => {
      expect(decideFor({ result: response(status, { stage: 'token' }) })).toEqual(retry(60, 'unauthorized'));
    });

    it('a 403 dead-letters forbidden', () => {
      expect(decideFor({ result: response(403, { stage: 'token' }) })).toEqual(deadLetter('forbidden'));
    });

    it('a 404 dead-letters not_found', () => {
      expect(decideFor({ result: response(404, { stage: 'token' }) })).toEqual(deadLetter('not_found'));
    });

    it('a 429 is a rate-limit wait, counted by the 429s', () => {
      expect(
        decideFor({
          result: response(429, { stage: 'token' }),
          prior: priorWith({ rateLimited: 1, notSent: 3 }),
        }),
      ).toEqual(retry(120, 'rate_limited'));
    });

    it('backs off by the count of not-sent attempts, never by the 5xx budget', () => {
      expect(
        decideFor({ result: transport('timeout', 'token'), prior: priorWith({ retryable: 4, notSent: 2 }) }),
      ).toEqual(retry(240, 'server_error'));
    });

    it('is never retries_exhausted: only the deadline ends it', () => {
      expect(
        decideFor({ result: response(503, { stage: 'token' }), prior: priorWith({ notSent: 30 }) }),
      ).toEqual(retry(480, 'server_error'));
    });
  });

  describe('secret: the client secret could not be read', () => {
    it('backs off 60, 120, 240 s by the count of not-sent attempts, as a credentials problem', () => {
      const delays = [0, 1, 2].map((notSent) =>
        decideFor({ result: secretFailure(), prior: priorWith({ notSent }) }),
      );
      expect(delays).toEqual([60, 120, 240].map((s) => retry(s, 'credentials')));
    });

    it('with skip_duplicate is still a retry: nothing left', () => {
      expect(decideFor({ result: secretFailure(), job: skipDuplicate() })).toEqual(retry(60, 'credentials'));
    });

    it('never spends the 5xx budget and is never retries_exhausted', () => {
      expect(decideFor({ result: secretFailure(), prior: priorWith({ retryable: 4, notSent: 25 }) })).toEqual(
        retry(480, 'credentials'),
      );
    });

    it('dead-letters expired when the backoff would pass the deadline', () => {
      const now = T0 + 24 * HOUR - 30 * SECOND;
      expect(decideFor({ result: secretFailure(), now })).toEqual(deadLetter('expired'));
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

    // A 408 backs off as a 503 does, with a known outcome; a 503's own expiry is an unknown outcome's.
    it('a retry whose delay would pass the deadline dead-letters expired instead', () => {
      const now = T0 + 24 * HOUR - 30 * SECOND;
      expect(decideFor({ result: response(408), now })).toEqual(deadLetter('expired'));
    });

    it('a retry due exactly at the deadline dead-letters expired: the job is expired from that instant', () => {
      const now = T0 + 24 * HOUR - 60 * SECOND;
      expect(decideFor({ result: response(408), now })).toEqual(deadLetter('expired'));
    });

    it('a retry due a millisecond before the deadline is kept', () => {
      const now = T0 + 24 * HOUR - 60 * SECOND - 1;
      expect(decideFor({ result: response(408), now })).toEqual(retry(60, 'server_error'));
      expect(decideFor({ result: response(503), now })).toEqual(retry(60, 'unknown_outcome'));
    });

    it('after an answer whose outcome is unknown (a 503), the deadline dead-letters unknown_outcome, ended by expired', () => {
      expect(decideFor({ result: response(503), now: T0 + 24 * HOUR - 30 * SECOND })).toEqual(
        unknownEndedBy('expired'),
      );
      expect(decideFor({ result: response(503), now: T0 + 24 * HOUR - 60 * SECOND })).toEqual(
        unknownEndedBy('expired'),
      );
    });
  });

  describe('time scale (local runs)', () => {
    it('divides delays and the maximum age, rounding delays up to whole seconds', () => {
      const fast = policy({ timeScale: 60 });
      expect(decideFor({ result: response(503), policy: fast })).toEqual(retry(1, 'unknown_outcome'));
      expect(
        decideFor({
          result: response(503),
          prior: priorWith({ retryable: 3, unknownOutcome: true }),
          policy: fast,
        }),
      ).toEqual(retry(8, 'unknown_outcome'));
      expect(jobDeadline(job(), T0, fast)).toBe(T0 + (24 * HOUR) / 60);
    });

    it('never scales a wait down to zero', () => {
      expect(scaled(1, policy({ timeScale: 1000 }))).toBe(1);
    });

    it('a wait of zero or less stays zero', () => {
      expect(scaled(0, policy())).toBe(0);
      expect(scaled(-5, policy())).toBe(0);
    });

    it('scaledMs divides seconds into milliseconds, never negative', () => {
      expect(scaledMs(90, policy({ timeScale: 60 }))).toBe(1_500);
      expect(scaledMs(-1, policy())).toBe(0);
    });
  });

  describe('backoffDelaySeconds', () => {
    it('a custom schedule repeats its last step', () => {
      const custom = policy({ backoffSeconds: [10, 20], maxAttempts: 10 });
      expect([1, 2, 3, 7].map((attempt) => backoffDelaySeconds(attempt, custom, () => 0))).toEqual([
        10, 20, 20, 20,
      ]);
    });

    it('treats an attempt number below 1 as the first step', () => {
      expect(backoffDelaySeconds(0, policy(), () => 0)).toBe(60);
    });
  });
});

describe('deferred: a record not sent while the instance waits out a 429 or its pacing slot', () => {
  const base = { job: job(), firstReceivedAt: T0, now: T0, policy: policy() };

  it('comes back when the wait is over, plus a few seconds of spread', () => {
    expect(deferred({ ...base, retryInMs: 42_300, random: () => 0 })).toEqual(retry(43, 'deferred'));
    expect(deferred({ ...base, retryInMs: 42_300, random: () => 0.9999 })).toEqual(retry(47, 'deferred'));
  });

  it('comes back after at least 1 s, even when the wait is already over', () => {
    expect(deferred({ ...base, retryInMs: 0, random: () => 0 })).toEqual(retry(1, 'deferred'));
  });

  it('dead-letters expired when the wait passes the deadline', () => {
    const soon = job({ expires_at: new Date(T0 + 10 * SECOND).toISOString() });
    expect(deferred({ ...base, job: soon, retryInMs: 42_000 })).toEqual(deadLetter('expired'));
  });
});

describe('rate-limit hints within reason', () => {
  const p = policy();

  it('rateLimitBlockMs without a hint blocks the instance for the minimum wait', () => {
    expect(rateLimitBlockMs(undefined, p)).toBe(60 * SECOND);
  });

  it('rateLimitBlockMs follows an honest hint above the minimum', () => {
    expect(rateLimitBlockMs(95, p)).toBe(95 * SECOND);
  });

  it('rateLimitBlockMs never blocks for less than the minimum wait', () => {
    expect(rateLimitBlockMs(3, p)).toBe(60 * SECOND);
  });

  it.each([301, 3_600, 43_200, 1_700_000_000, Number.MAX_SAFE_INTEGER])(
    'rateLimitBlockMs never blocks above rateLimitHintMaxSeconds, even for a hint of %i s',
    (hint) => {
      expect(rateLimitBlockMs(hint, p)).toBe(300 * SECOND);
    },
  );

  it('rateLimitBlockMs is scaled in local runs', () => {
    expect(rateLimitBlockMs(120, policy({ timeScale: 60 }))).toBe(2 * SECOND);
  });

  it('suspectRateLimitHint flags a hint beyond rateLimitHintMaxSeconds', () => {
    expect(suspectRateLimitHint(301, p)).toBe(true);
  });

  it('suspectRateLimitHint accepts a hint up to the cap, and no hint', () => {
    expect(suspectRateLimitHint(300, p)).toBe(false);
    expect(suspectRateLimitHint(60, p)).toBe(false);
    expect(suspectRateLimitHint(undefined, p)).toBe(false);
  });
});

describe('hideSeconds: how long SQS can hide a record', () => {
  it('is the wait, rounded up to whole seconds', () => {
    expect(hideSeconds(60)).toBe(60);
    expect(hideSeconds(60.2)).toBe(61);
  });

  it('is MAX_HIDE_SECONDS at most, for any wait', () => {
    expect(hideSeconds(MAX_HIDE_SECONDS)).toBe(MAX_HIDE_SECONDS);
    expect(hideSeconds(MAX_HIDE_SECONDS + 1)).toBe(MAX_HIDE_SECONDS);
    expect(hideSeconds(86_400)).toBe(MAX_HIDE_SECONDS);
  });

  it('MAX_HIDE_SECONDS leaves room under SQS 12 h counted from the receive', () => {
    expect(MAX_HIDE_SECONDS).toBeLessThan(43_200);
  });

  it('is never negative', () => {
    expect(hideSeconds(-3)).toBe(0);
  });
});

describe('insideDuplicateWindow (30 min, less a margin for the resend and for clocks)', () => {
  const p = policy();
  // The margin: three request timeouts plus a minute, here 90 s.
  const lastSafe = T0 + 30 * MINUTE - 90 * SECOND - 1;

  it('is true right after the unknown outcome', () => {
    expect(insideDuplicateWindow(T0, T0, p)).toBe(true);
  });

  it('is true until the margin before the window closes', () => {
    expect(insideDuplicateWindow(T0, lastSafe, p)).toBe(true);
  });

  it('is false from the margin before the window closes', () => {
    expect(insideDuplicateWindow(T0, lastSafe + 1, p)).toBe(false);
  });

  it('ends at resendDeadline, the moment from which no resend may leave', () => {
    expect(resendDeadline(T0, p)).toBe(lastSafe + 1);
    expect(insideDuplicateWindow(T0, resendDeadline(T0, p) - 1, p)).toBe(true);
    expect(insideDuplicateWindow(T0, resendDeadline(T0, p), p)).toBe(false);
  });

  it('keeps at most a quarter of the window as margin when the request timeout is long', () => {
    const slow = policy({ httpTimeoutMs: 900_000 });
    expect(insideDuplicateWindow(T0, T0 + 22.5 * MINUTE - 1, slow)).toBe(true);
    expect(insideDuplicateWindow(T0, T0 + 22.5 * MINUTE, slow)).toBe(false);
  });
});

describe('beforeSend: may a claimed job be sent now?', () => {
  const p = policy();
  const claimed = (c: Partial<ClaimedJob> = {}): ClaimedJob => ({
    prior: FIRST_ATTEMPT,
    firstAttemptAt: T0,
    lost: false,
    ...c,
  });
  const verdict = (c: Partial<ClaimedJob>, j: SendJob = job(), now = T0 + MINUTE) =>
    beforeSend({ claimed: claimed(c), job: j, now, policy: p });
  const settled = (reason: string) =>
    expect.objectContaining({ type: 'settle', outcome: deadLetter(reason) });
  const settledUnknown = (endedBy: string) =>
    expect.objectContaining({ type: 'settle', outcome: unknownEndedBy(endedBy) });

  it('a first attempt is sent', () => {
    expect(verdict({})).toEqual({ type: 'send' });
  });

  it('a job past its deadline is dead-lettered expired, not sent', () => {
    expect(verdict({}, job(), T0 + 24 * HOUR)).toEqual(settled('expired'));
  });

  it('expiry wins over every other rule; after an unknown outcome it is unknown_outcome, ended by expired', () => {
    const c = { prior: priorWith({ retryable: 5, unknownOutcome: true }), unknownAt: T0, lost: true };
    expect(verdict(c, skipDuplicate(), T0 + 24 * HOUR)).toEqual(settledUnknown('expired'));
  });

  it('an expired job whose unknown outcome is of an earlier generation (cleared by a redrive) is plainly expired', () => {
    const c = { prior: priorWith({ unknownOutcome: true }), unknownAt: undefined };
    expect(verdict(c, job(), T0 + 24 * HOUR)).toEqual(settled('expired'));
  });

  it('after an unknown outcome, a skip_duplicate job is dead-lettered unknown_outcome, even at once', () => {
    const c = { prior: priorWith({ retryable: 1, unknownOutcome: true }), unknownAt: T0 };
    expect(verdict(c, skipDuplicate(), T0 + SECOND)).toEqual(settled('unknown_outcome'));
  });

  it('after an unknown outcome, a job is sent while the duplicate window can still catch it', () => {
    const c = { prior: priorWith({ retryable: 1, unknownOutcome: true }), unknownAt: T0 };
    expect(verdict(c, job(), T0 + 28 * MINUTE)).toEqual({ type: 'send' });
  });

  it('after an unknown outcome, a job is dead-lettered unknown_outcome once the duplicate window has passed', () => {
    const c = { prior: priorWith({ retryable: 1, unknownOutcome: true }), unknownAt: T0 };
    expect(verdict(c, job(), T0 + 29 * MINUTE)).toEqual(settled('unknown_outcome'));
  });

  it("the unknown_outcome dead letter tells the operator to check eCourtDate's Console > Logs", () => {
    const c = { prior: priorWith({ retryable: 1, unknownOutcome: true }), unknownAt: T0 };
    const out = verdict(c, skipDuplicate());
    expect(out.type === 'settle' ? out.detail : '').toMatch(/Console > Logs/);
  });

  it('an unknown outcome from an earlier generation, cleared by a redrive, does not block', () => {
    // The ledger keeps `unknownOutcome` across generations (a 409 still proves delivery) but the redrive clears
    // the time: a person checked and decided to send again.
    const c = { prior: priorWith({ unknownOutcome: true }), unknownAt: undefined };
    expect(verdict(c, skipDuplicate())).toEqual({ type: 'send' });
  });

  it('a lost attempt over the attempt budget is dead-lettered unknown_outcome, ended by retries_exhausted', () => {
    // The gate dates every lost attempt as an unknown outcome (unknownAt), so it may have created the message.
    const c = { prior: priorWith({ retryable: 5, unknownOutcome: true }), unknownAt: T0, lost: true };
    expect(verdict(c)).toEqual(settledUnknown('retries_exhausted'));
  });

  it('a relabelled dead letter keeps why it ended and tells the operator to check Console > Logs first', () => {
    const c = { prior: priorWith({ retryable: 5, unknownOutcome: true }), unknownAt: T0, lost: true };
    const out = verdict(c);
    expect(out.type === 'settle' ? out.detail : '').toMatch(/attempt budget is spent.*Console > Logs/);
  });

  it('a lost attempt within the attempt budget is sent again (inside the window)', () => {
    const c = { prior: priorWith({ retryable: 4, unknownOutcome: true }), unknownAt: T0, lost: true };
    expect(verdict(c)).toEqual({ type: 'send' });
  });

  it('a lost skip_duplicate attempt is dead-lettered unknown_outcome, whatever the budget', () => {
    const c = { prior: priorWith({ retryable: 1, unknownOutcome: true }), unknownAt: T0, lost: true };
    expect(verdict(c, skipDuplicate())).toEqual(settled('unknown_outcome'));
  });

  it('a job that is not lost is sent, whatever its counts: decide owns the budgets after a result', () => {
    expect(verdict({ prior: priorWith({ rateLimited: 40, notSent: 40, retryable: 4 }) })).toEqual({
      type: 'send',
    });
  });

  it("a claim after its own chain's claim counted the last attempt lost (lost false here) still finds the budget spent", () => {
    const c = { prior: priorWith({ retryable: 5, unknownOutcome: true }), unknownAt: T0, lost: false };
    expect(verdict(c)).toEqual(settledUnknown('retries_exhausted'));
  });
});

describe('unknown outcomes are never relabelled as plain failures (unknownOutcomeKept)', () => {
  it.each(['retries_exhausted', 'expired', 'bad_request', 'forbidden', 'not_found', 'client_error'] as const)(
    'a %s dead letter in a generation with an unknown outcome is unknown_outcome, ended by it',
    (reason) => {
      expect(unknownOutcomeKept({ type: 'dead_letter', reason }, true)).toEqual(unknownEndedBy(reason));
    },
  );

  it('an unknown_outcome dead letter stays as it is, without endedBy', () => {
    const outcome: Outcome = { type: 'dead_letter', reason: 'unknown_outcome' };
    expect(unknownOutcomeKept(outcome, true)).toBe(outcome);
  });

  it.each<[string, Outcome]>([
    ['a delivery', { type: 'delivered', uuid: 'u-1' }],
    ['a duplicate', { type: 'duplicate' }],
    ['a retry', { type: 'retry', delaySeconds: 60, cause: 'unknown_outcome' }],
  ])('%s comes back unchanged', (_name, outcome) => {
    expect(unknownOutcomeKept(outcome, true)).toBe(outcome);
  });

  it('without an unknown outcome in the generation, every outcome comes back unchanged', () => {
    const outcome: Outcome = { type: 'dead_letter', reason: 'retries_exhausted' };
    expect(unknownOutcomeKept(outcome, false)).toBe(outcome);
  });

  describe("decide applies it for the ledger's unknown_at (unknownSince) or an answer whose outcome is unknown", () => {
    const since = T0 - MINUTE;

    it.each<[string, AttemptResult, string]>([
      ['a 400', response(400), 'bad_request'],
      ['a 403', response(403), 'forbidden'],
      ['a 404', response(404), 'not_found'],
      ['a 422', response(422), 'client_error'],
      ['a token-endpoint 403', response(403, { stage: 'token' }), 'forbidden'],
    ])(
      '%s after an unknown outcome in the generation is unknown_outcome, ended by %s',
      (_name, result, reason) => {
        expect(decideFor({ result, unknownSince: since })).toEqual(unknownEndedBy(reason));
      },
    );

    it('a 408 on the last attempt after an unknown outcome is unknown_outcome, ended by retries_exhausted', () => {
      const prior = priorWith({ retryable: 4, unknownOutcome: true });
      expect(decideFor({ result: response(408), prior, unknownSince: since })).toEqual(
        unknownEndedBy('retries_exhausted'),
      );
    });

    it('a 408 on the last attempt of a generation without an unknown outcome stays retries_exhausted', () => {
      expect(decideFor({ result: response(408), prior: priorWith({ retryable: 4 }) })).toEqual(
        deadLetter('retries_exhausted'),
      );
    });

    it("an unknown outcome of an earlier generation (the ledger's flag, its time cleared by a redrive) changes nothing", () => {
      const prior = priorWith({ unknownOutcome: true });
      expect(decideFor({ result: response(400), prior })).toEqual(deadLetter('bad_request'));
      expect(decideFor({ result: response(408), prior: { ...prior, retryable: 4 } })).toEqual(
        deadLetter('retries_exhausted'),
      );
    });

    it('a dead letter on an answer that may have created the message is unknown_outcome: the 5th timeout', () => {
      expect(decideFor({ result: transport('timeout'), prior: priorWith({ retryable: 4 }) })).toEqual(
        unknownEndedBy('retries_exhausted'),
      );
    });

    it('a request that never left is a known outcome: its expiry stays expired', () => {
      const now = T0 + 24 * HOUR - 30 * SECOND;
      expect(decideFor({ result: neverLeft('connection'), now })).toEqual(deadLetter('expired'));
    });

    it('a 409 after an unknown outcome is still delivered: the 409 resolves it', () => {
      const prior = priorWith({ retryable: 1, unknownOutcome: true });
      expect(decideFor({ result: response(409), prior, unknownSince: since })).toEqual({ type: 'delivered' });
    });
  });
});

describe('classifyAttempt: how an attempt counts, row by row', () => {
  const none: AttemptClass = {
    sent: false,
    retryable: false,
    serverError500: false,
    rateLimited: false,
    notSent: false,
    unknownOutcome: false,
  };
  const rows: [string, AttemptResult, Partial<AttemptClass>][] = [
    ['send 201', response(201), { sent: true }],
    ['send 400', response(400), { sent: true }],
    ['send 401 (persistent)', response(401), { sent: true, notSent: true }],
    ['send 403', response(403), { sent: true }],
    ['send 404', response(404), { sent: true }],
    ['send 408', response(408), { sent: true, retryable: true }],
    ['send 409', response(409), { sent: true }],
    ['send 422', response(422), { sent: true }],
    ['send 429', response(429), { sent: true, rateLimited: true }],
    ['send 500', response(500), { sent: true, retryable: true, serverError500: true, unknownOutcome: true }],
    ['send 502', response(502), { sent: true, retryable: true, unknownOutcome: true }],
    ['send 503', response(503), { sent: true, retryable: true, unknownOutcome: true }],
    ['send 504', response(504), { sent: true, retryable: true, unknownOutcome: true }],
    ['send timeout', transport('timeout'), { sent: true, retryable: true, unknownOutcome: true }],
    ['send connection error', transport('connection'), { sent: true, retryable: true, unknownOutcome: true }],
    ['token timeout', transport('timeout', 'token'), { notSent: true }],
    ['token connection error', transport('connection', 'token'), { notSent: true }],
    ['token 401', response(401, { stage: 'token' }), { notSent: true }],
    ['token 429', response(429, { stage: 'token' }), { rateLimited: true }],
    ['token 500', response(500, { stage: 'token' }), { notSent: true }],
    ['token 503', response(503, { stage: 'token' }), { notSent: true }],
    ['secret', secretFailure(), { notSent: true }],
  ];

  it.each(rows)('%s', (_name, result, counts) => {
    expect(classifyAttempt(result)).toEqual({ ...none, ...counts });
  });

  it.each(rows)('%s: decide agrees on whether the outcome is unknown', (_name, result) => {
    const unknown = classifyAttempt(result).unknownOutcome;
    expect(decideFor({ result, job: skipDuplicate() })).toEqual(
      unknown ? deadLetter('unknown_outcome') : expect.not.objectContaining({ reason: 'unknown_outcome' }),
    );
  });

  it.each(rows)('%s: a retry that decide chooses is counted in exactly one budget', (_name, result) => {
    const outcome = decideFor({ result });
    const c = classifyAttempt(result);
    const budgets = [c.retryable, c.rateLimited, c.notSent].filter(Boolean).length;
    expect(outcome.type === 'retry' ? budgets : 1).toBe(1);
  });

  it('isUnknownOutcomeStatus is every 5xx and nothing else', () => {
    expect([499, 500, 503, 504, 599, 600].map(isUnknownOutcomeStatus)).toEqual([
      false,
      true,
      true,
      true,
      true,
      false,
    ]);
  });
});

describe('resends after an unknown outcome stay provable by a 409', () => {
  const input = (
    result: Parameters<typeof decide>[0]['result'],
    extra: Partial<Parameters<typeof decide>[0]> = {},
  ) =>
    decide({
      result,
      prior: FIRST_ATTEMPT,
      job: job(),
      firstReceivedAt: T0,
      now: T0,
      policy: policy(),
      random: () => 0,
      ...extra,
    });

  it('a 503 whose Retry-After still lands inside the duplicate window is honoured', () => {
    expect(input(response(503, { retryAfterSeconds: 900 }))).toEqual({
      type: 'retry',
      delaySeconds: 900,
      cause: 'unknown_outcome',
    });
  });

  it('a 503 whose Retry-After lands past the duplicate window is dead-lettered unknown_outcome at once', () => {
    expect(input(response(503, { retryAfterSeconds: 7_200 }))).toEqual({
      type: 'dead_letter',
      reason: 'unknown_outcome',
    });
  });

  it('the window counts from the earliest unknown outcome of the job, not from this attempt', () => {
    // 1,680 s ago: the first backoff step (60 s) would land past the window less its 90 s margin.
    const since = T0 - 1_680_000;
    expect(input(response(503), { now: T0, unknownSince: since })).toEqual({
      type: 'dead_letter',
      reason: 'unknown_outcome',
    });
    expect(input(response(503), { now: T0, unknownSince: T0 - 600_000 })).toMatchObject({ type: 'retry' });
  });
});

describe('a request that never left (DNS, refused, TLS) is a failure before the send', () => {
  const neverLeft = {
    kind: 'transport',
    stage: 'send',
    error: 'connection',
    mayHaveBeenSent: false,
  } as const;

  it('counts as not sent, never towards the 5xx budget', () => {
    expect(classifyAttempt(neverLeft)).toMatchObject({
      sent: false,
      retryable: false,
      notSent: true,
      unknownOutcome: false,
    });
  });

  it('backs off by the not-sent count even when the 5xx budget is spent', () => {
    const prior = { ...FIRST_ATTEMPT, retryable: 4, notSent: 1 };
    expect(
      decide({
        result: neverLeft,
        prior,
        job: job(),
        firstReceivedAt: T0,
        now: T0,
        policy: policy(),
        random: () => 0,
      }),
    ).toEqual({ type: 'retry', delaySeconds: 120, cause: 'server_error' });
  });
});

describe('no retry loops straight back', () => {
  it('a zero backoff step still waits a second', () => {
    expect(
      decide({
        result: response(503),
        prior: FIRST_ATTEMPT,
        job: job(),
        firstReceivedAt: T0,
        now: T0,
        policy: policy({ backoffSeconds: [0] }),
        random: () => 0,
      }),
    ).toEqual({ type: 'retry', delaySeconds: 1, cause: 'unknown_outcome' });
  });
});
