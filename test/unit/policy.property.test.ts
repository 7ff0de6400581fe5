import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_HIDE_SECONDS } from '#shared/config.ts';
import type { SendJob } from '#shared/job.ts';
import { firstEntry, gate, type LedgerEntry, NOT_DUE_TOLERANCE_MS, priorOf } from '#shared/ledger/gate.ts';
import { settledEntry } from '#shared/ledger/ledger.ts';
import { JOB_KEY_PREFIX } from '#shared/ledger/schema.ts';
import type { Outcome } from '#shared/outcome.ts';
import {
  type AttemptResult,
  backoffStep,
  beforeSend,
  classifyAttempt,
  decide,
  hideSeconds,
  insideDuplicateWindow,
  jobDeadline,
  type PriorAttempts,
  type RetryPolicy,
  rateLimitBlockMs,
  scaledMs,
} from '#shared/policy.ts';
import { claimInput, job, policy, response, secretFailure, T0, transport } from '#test/helpers/factories.ts';

/**
 * The relay's pure rules composed over whole job lives (docs/contract.md, "What each response does"): a record
 * is claimed through the ledger's gate, passes the pre-send rules, gets a result, is decided and settled, and
 * comes back when its retry is due. The properties hold for any sequence of results.
 */

// Seeded: a failure reproduces with the same inputs on every machine.
const RUNS = { seed: 20261201, numRuns: 400 };

/** Answers that end a job, and answers that make it wait; a life is mostly the latter, so it runs long. */
const FINAL_STATUSES = [200, 201, 400, 403, 404, 405, 409, 422];
const WAIT_STATUSES = [401, 408, 429, 500, 502, 503, 504, 599];
const TOKEN_STATUSES = [200, 400, 401, 403, 404, 408, 429, 500, 503, 504];

const hintArb = fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined });

const statusResponseArb = (statuses: readonly number[]): fc.Arbitrary<AttemptResult> =>
  fc
    .record({ status: fc.constantFrom(...statuses), hint: hintArb })
    .map(({ status, hint }) => response(status, { retryAfterSeconds: hint }));

const sendResultArb: fc.Arbitrary<AttemptResult> = fc.oneof(
  { weight: 1, arbitrary: statusResponseArb(FINAL_STATUSES) },
  { weight: 5, arbitrary: statusResponseArb(WAIT_STATUSES) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        error: fc.constantFrom('timeout' as const, 'connection' as const),
        mayHaveBeenSent: fc.constantFrom(undefined, true, false),
      })
      .map(({ error, mayHaveBeenSent }) => ({ ...transport(error), mayHaveBeenSent }) as AttemptResult),
  },
);

const beforeSendResultArb: fc.Arbitrary<AttemptResult> = fc.oneof(
  fc
    .record({ status: fc.constantFrom(...TOKEN_STATUSES), hint: hintArb })
    .map(({ status, hint }) => response(status, { stage: 'token', retryAfterSeconds: hint })),
  fc.constantFrom('timeout' as const, 'connection' as const).map((e) => transport(e, 'token')),
  fc.constant(secretFailure()),
);

const resultArb: fc.Arbitrary<AttemptResult> = fc.oneof(
  { weight: 3, arbitrary: sendResultArb },
  { weight: 1, arbitrary: beforeSendResultArb },
);

/** One attempt of a life: a result, or the instance stopping after its request may have left. */
type Step =
  | { readonly kind: 'result'; readonly result: AttemptResult; readonly copyAt: number }
  | { readonly kind: 'crash' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 9,
    arbitrary: fc
      .record({ result: resultArb, copyAt: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }) })
      .map(({ result, copyAt }) => ({ kind: 'result' as const, result, copyAt })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'crash' as const }) },
);

const policyArb: fc.Arbitrary<RetryPolicy> = fc
  .record({
    backoffJitter: fc.constantFrom(0, 0.1, 0.5),
    maxAttempts: fc.integer({ min: 1, max: 6 }),
    serverErrorMaxAttempts: fc.integer({ min: 1, max: 3 }),
    timeScale: fc.constantFrom(1, 60),
  })
  .map((p) => policy(p));

const jobArb: fc.Arbitrary<SendJob> = fc
  .record({
    skipDuplicate: fc.constantFrom(undefined, false, true),
    expiresInMinutes: fc.option(fc.integer({ min: 1, max: 48 * 60 }), { nil: undefined }),
  })
  .map(({ skipDuplicate, expiresInMinutes }) =>
    job(
      expiresInMinutes === undefined
        ? {}
        : { expires_at: new Date(T0 + expiresInMinutes * 60_000).toISOString() },
      skipDuplicate === undefined ? {} : { skip_duplicate: skipDuplicate },
    ),
  );

/** One request that reached (or may have reached) the messages endpoint. */
interface Send {
  /** Epoch ms. */
  readonly at: number;
  readonly result: AttemptResult | 'crash';
  /** It may have created the message without the relay learning so. */
  readonly unknown: boolean;
  /** What decide made of it (undefined for a crash). */
  readonly outcome?: Outcome;
  /** Whether an earlier send of this life had an unknown outcome. */
  readonly unknownBefore: boolean;
}

/** A decided retry, and when the next attempt may happen. */
interface Retry {
  /** Epoch ms of the attempt that was decided. */
  readonly at: number;
  readonly result: AttemptResult;
  readonly delaySeconds: number;
  /** The job's deadline, epoch ms. */
  readonly deadline: number;
}

/** A copy of the job that arrived during a backoff (an upstream resend, or SQS delivering twice). */
interface Copy {
  readonly at: number;
  readonly due: number;
  readonly claimed: boolean;
}

/** What happened in one life; `end` is undefined when the steps ran out before the job settled. */
interface Life {
  readonly sends: Send[];
  readonly retries: Retry[];
  readonly copies: Copy[];
  end?: Outcome;
}

const LEASE_MS = 5 * 60_000;

/**
 * Runs a job through the ledger's gate and the pure rules, one step per attempt, from T0. A retried record comes
 * back exactly when due; a crashed one when its lease ends. After each retry a copy of the job probes the gate
 * at a random moment of the backoff (it is not sent: only the verdict is kept).
 */
function live(theJob: SendJob, steps: readonly Step[], p: RetryPolicy, jitter: number): Life {
  const life: Life = { sends: [], retries: [], copies: [] };
  const random = () => jitter;
  let entry: LedgerEntry | undefined;
  let now = T0;
  let unknownBefore = false;
  let lostEarlier = false;
  // As the sender passes them: the stage's backoff steps, scaled.
  const backoffStepsMs = p.backoffSeconds.map((seconds) => scaledMs(seconds, p));
  const inputAt = (at: number, messageId: string) =>
    claimInput({ now: at, leaseUntil: at + LEASE_MS / p.timeScale, messageId, backoffStepsMs });
  for (const step of steps) {
    let claimed: LedgerEntry;
    let lost = false;
    if (entry === undefined) {
      claimed = firstEntry(inputAt(now, 'msg-1'), 0, JOB_KEY_PREFIX);
    } else {
      let gated = gate(entry, inputAt(now, 'msg-1'), 0);
      // A crashed attempt's record comes back when its lease ends; the gate hides it until the lost attempt's
      // backoff step has passed, and then it comes back again.
      if (gated.kind === 'not_due' && lostEarlier) {
        now = gated.until;
        gated = gate(entry, inputAt(now, 'msg-1'), 0);
      }
      if (gated.kind !== 'claim')
        throw new Error(`the record came back when due but the gate said ${gated.kind}`);
      claimed = gated.entry;
      lost = gated.lost;
    }
    lostEarlier = false;
    const verdict = beforeSend({
      claimed: {
        prior: priorOf(claimed),
        firstAttemptAt: claimed.first_attempt_at,
        unknownAt: claimed.unknown_at,
        lost,
      },
      job: theJob,
      now,
      policy: p,
    });
    if (verdict.type === 'settle') {
      life.end = verdict.outcome;
      return life;
    }
    if (step.kind === 'crash') {
      life.sends.push({ at: now, result: 'crash', unknown: true, unknownBefore });
      unknownBefore = true;
      entry = claimed;
      now = claimed.lease_until ?? now;
      lostEarlier = true;
      continue;
    }
    const { result } = step;
    const attempt = classifyAttempt(result);
    const prior: PriorAttempts = priorOf(claimed);
    const outcome = decide({
      result,
      prior,
      job: theJob,
      firstReceivedAt: claimed.first_attempt_at,
      now,
      policy: p,
      random,
      // As the sender judges it: the generation's earliest unknown outcome, as the ledger keeps it.
      unknownSince: claimed.unknown_at,
    });
    if (attempt.sent) {
      life.sends.push({ at: now, result, unknown: attempt.unknownOutcome, outcome, unknownBefore });
      unknownBefore ||= attempt.unknownOutcome;
    }
    entry = settledEntry({ entry: claimed, now, attempt, outcome, messageId: 'msg-1' }, 0);
    if (outcome.type !== 'retry') {
      life.end = outcome;
      return life;
    }
    const deadline = jobDeadline(theJob, claimed.first_attempt_at, p);
    life.retries.push({ at: now, result, delaySeconds: outcome.delaySeconds, deadline });
    const due = now + outcome.delaySeconds * 1000;
    const copyAt = now + Math.floor(step.copyAt * (due - now));
    const copy = gate(entry, inputAt(copyAt, 'msg-copy'), 0);
    life.copies.push({ at: copyAt, due, claimed: copy.kind === 'claim' });
    now = due;
  }
  return life;
}

const lifeArb = fc.record({
  theJob: jobArb,
  steps: fc.array(stepArb, { minLength: 1, maxLength: 14 }),
  p: policyArb,
  jitter: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
});

const isSkipDuplicate = (j: SendJob) => j.message.skip_duplicate === true;

describe('job lives through the gate and the pure rules (property-based)', () => {
  it('a skip_duplicate job is never sent again after an attempt whose outcome is unknown', () => {
    fc.assert(
      fc.property(lifeArb, ({ theJob, steps, p, jitter }) => {
        fc.pre(isSkipDuplicate(theJob));
        const { sends } = live(theJob, steps, p, jitter);
        const firstUnknown = sends.findIndex((s) => s.unknown);
        expect(firstUnknown === -1 ? sends.length : firstUnknown + 1).toBe(sends.length);
      }),
      RUNS,
    );
  });

  it('a skip_duplicate job whose attempt had an unknown outcome is dead-lettered unknown_outcome, never retried', () => {
    fc.assert(
      fc.property(lifeArb, ({ theJob, steps, p, jitter }) => {
        fc.pre(isSkipDuplicate(theJob));
        const life = live(theJob, steps, p, jitter);
        const unknown = life.sends.find((s) => s.unknown && s.outcome !== undefined);
        if (unknown !== undefined) {
          expect(unknown.outcome).toEqual({ type: 'dead_letter', reason: 'unknown_outcome' });
        }
      }),
      RUNS,
    );
  });

  it('after an unknown outcome, every resend falls inside the duplicate window around the latest one', () => {
    fc.assert(
      fc.property(lifeArb, ({ theJob, steps, p, jitter }) => {
        const { sends } = live(theJob, steps, p, jitter);
        let unknownAt: number | undefined;
        for (const send of sends) {
          if (unknownAt !== undefined) expect(insideDuplicateWindow(unknownAt, send.at, p)).toBe(true);
          if (send.unknown) unknownAt = send.at;
        }
      }),
      RUNS,
    );
  });

  it('a 409 is delivered if and only if an earlier attempt had an unknown outcome', () => {
    const endingIn409 = lifeArb.map((life) => ({
      ...life,
      steps: [...life.steps, { kind: 'result' as const, result: response(409), copyAt: 0 }],
    }));
    fc.assert(
      fc.property(endingIn409, ({ theJob, steps, p, jitter }) => {
        for (const send of live(theJob, steps, p, jitter).sends) {
          if (send.result === 'crash' || send.result.kind !== 'response' || send.result.status !== 409)
            continue;
          expect(send.outcome).toEqual(send.unknownBefore ? { type: 'delivered' } : { type: 'duplicate' });
        }
      }),
      RUNS,
    );
  });

  it('a job dead-lettered after any attempt whose outcome is unknown is dead-lettered unknown_outcome, and only then', () => {
    fc.assert(
      fc.property(lifeArb, ({ theJob, steps, p, jitter }) => {
        const life = live(theJob, steps, p, jitter);
        fc.pre(life.end?.type === 'dead_letter');
        if (life.end?.type !== 'dead_letter') return;
        const unknownBefore = life.sends.some((s) => s.unknown);
        expect(life.end.reason === 'unknown_outcome').toBe(unknownBefore);
        // What ended it, when something other than the unknown outcome itself did: never unknown_outcome.
        expect(life.end.endedBy).not.toBe('unknown_outcome');
        if (life.end.reason !== 'unknown_outcome') expect(life.end.endedBy).toBeUndefined();
      }),
      RUNS,
    );
  });

  it('nothing reaches the messages endpoint at or after the deadline', () => {
    fc.assert(
      fc.property(lifeArb, ({ theJob, steps, p, jitter }) => {
        const deadline = jobDeadline(theJob, T0, p);
        for (const send of live(theJob, steps, p, jitter).sends) expect(send.at).toBeLessThan(deadline);
      }),
      RUNS,
    );
  });

  it('at most maxAttempts requests end in a 5xx, a 408, a transport failure or a stopped instance', () => {
    fc.assert(
      fc.property(lifeArb, ({ theJob, steps, p, jitter }) => {
        const spent = live(theJob, steps, p, jitter).sends.filter(
          (s) => s.result === 'crash' || classifyAttempt(s.result).retryable,
        );
        expect(spent.length).toBeLessThanOrEqual(p.maxAttempts);
      }),
      RUNS,
    );
  });

  it('at most serverErrorMaxAttempts requests are answered 500', () => {
    fc.assert(
      fc.property(lifeArb, ({ theJob, steps, p, jitter }) => {
        const answered500 = live(theJob, steps, p, jitter).sends.filter(
          (s) => s.result !== 'crash' && s.result.kind === 'response' && s.result.status === 500,
        );
        expect(answered500.length).toBeLessThanOrEqual(p.serverErrorMaxAttempts);
      }),
      RUNS,
    );
  });

  it('every retry waits at least 1 s and is due before the deadline', () => {
    fc.assert(
      fc.property(lifeArb, ({ theJob, steps, p, jitter }) => {
        for (const retry of live(theJob, steps, p, jitter).retries) {
          expect(Number.isInteger(retry.delaySeconds)).toBe(true);
          expect(retry.delaySeconds).toBeGreaterThanOrEqual(1);
          expect(retry.at + retry.delaySeconds * 1000).toBeLessThan(retry.deadline);
        }
      }),
      RUNS,
    );
  });

  it('a copy that arrives during a backoff is never sent before the next attempt is due', () => {
    fc.assert(
      fc.property(lifeArb, ({ theJob, steps, p, jitter }) => {
        for (const copy of live(theJob, steps, p, jitter).copies) {
          expect(copy.claimed).toBe(copy.at >= copy.due - NOT_DUE_TOLERANCE_MS);
        }
      }),
      RUNS,
    );
  });

  it('an attempt whose instance stopped is resent no sooner than its backoff step after it started', () => {
    fc.assert(
      fc.property(lifeArb, ({ theJob, steps, p, jitter }) => {
        const { sends } = live(theJob, steps, p, jitter);
        sends.forEach((send, i) => {
          const next = sends[i + 1];
          if (send.result !== 'crash' || next === undefined) return;
          const spent = sends
            .slice(0, i)
            .filter((s) => s.result === 'crash' || classifyAttempt(s.result).retryable).length;
          const step = backoffStep(spent + 1, p.backoffSeconds) ?? 60;
          expect(next.at - send.at).toBeGreaterThanOrEqual(scaledMs(step, p) - NOT_DUE_TOLERANCE_MS);
        });
      }),
      RUNS,
    );
  });

  it('failures before the request left and persistent 401s are retried until the deadline, never exhausted', () => {
    const notSentArb = fc.oneof(beforeSendResultArb, fc.constant(response(401)));
    fc.assert(
      fc.property(
        jobArb,
        fc.array(notSentArb, { minLength: 1, maxLength: 30 }),
        policyArb,
        (theJob, results, p) => {
          const steps = results.map((result) => ({ kind: 'result' as const, result, copyAt: 0 }));
          const life = live(theJob, steps, p, 0);
          expect(life.end).not.toEqual(expect.objectContaining({ reason: 'retries_exhausted' }));
          expect(life.end).not.toEqual(expect.objectContaining({ reason: 'unknown_outcome' }));
        },
      ),
      RUNS,
    );
  });
});

describe('the pure rules over arbitrary inputs (property-based)', () => {
  const priorArb: fc.Arbitrary<PriorAttempts> = fc.record({
    retryable: fc.integer({ min: 0, max: 10 }),
    serverErrors500: fc.integer({ min: 0, max: 3 }),
    rateLimited: fc.integer({ min: 0, max: 50 }),
    notSent: fc.integer({ min: 0, max: 50 }),
    unknownOutcome: fc.boolean(),
  });

  it('a 429, a secret failure, a token-endpoint failure or a 401 never grows the 5xx budget', () => {
    const arb = fc.oneof(
      beforeSendResultArb,
      fc.constant(response(401)),
      hintArb.map((hint) => response(429, { retryAfterSeconds: hint })),
    );
    fc.assert(
      fc.property(arb, (result) => {
        expect(classifyAttempt(result)).toMatchObject({ retryable: false, unknownOutcome: false });
      }),
      RUNS,
    );
  });

  it('only a request that may have reached the messages endpoint counts as sent', () => {
    fc.assert(
      fc.property(resultArb, (result) => {
        const neverLeft = result.kind === 'transport' && result.mayHaveBeenSent === false;
        expect(classifyAttempt(result).sent).toBe(result.stage === 'send' && !neverLeft);
      }),
      RUNS,
    );
  });

  it('a retry that would be due after the deadline is expired instead; one due before is unchanged', () => {
    // No maximum age to speak of, so that the job's expires_at alone sets the deadline.
    const unbounded = policyArb.map((p) => ({ ...p, maxAgeSeconds: 10 * 365 * 86_400 }));
    fc.assert(
      fc.property(
        resultArb,
        priorArb,
        unbounded,
        fc.integer({ min: 1, max: 2 * 86_400_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (result, prior, p, deadlineInMs, jitter) => {
          const base = { result, prior, firstReceivedAt: T0, now: T0, policy: p, random: () => jitter };
          const free = decide({ ...base, job: job() });
          fc.pre(free.type === 'retry');
          if (free.type !== 'retry') return;
          const bounded = decide({
            ...base,
            job: job({ expires_at: new Date(T0 + deadlineInMs).toISOString() }),
          });
          const late = free.delaySeconds * 1000 >= deadlineInMs;
          // An answer that may have created the message keeps that known: unknown_outcome, ended by expired.
          const expired = classifyAttempt(result).unknownOutcome
            ? { type: 'dead_letter', reason: 'unknown_outcome', endedBy: 'expired' }
            : { type: 'dead_letter', reason: 'expired' };
          expect(bounded).toEqual(late ? expired : free);
        },
      ),
      RUNS,
    );
  });

  it('rateLimitBlockMs never blocks an instance beyond rateLimitHintMaxSeconds, whatever the hint', () => {
    fc.assert(
      fc.property(
        fc.option(fc.double({ min: 0, noNaN: true }), { nil: undefined }),
        policyArb,
        fc.integer({ min: 60, max: 3_600 }),
        (hint, p, cap) => {
          const withCap = { ...p, rateLimitHintMaxSeconds: cap };
          expect(rateLimitBlockMs(hint, withCap)).toBeLessThanOrEqual((cap * 1000) / p.timeScale);
        },
      ),
      RUNS,
    );
  });

  it('a 429 never waits longer than the hint cap or the longest backoff step, whatever the hint', () => {
    fc.assert(
      fc.property(
        hintArb,
        priorArb,
        fc.constantFrom('send' as const, 'token' as const),
        (hint, prior, stage) => {
          const p = policy({ backoffJitter: 0 });
          const outcome = decide({
            result: response(429, { retryAfterSeconds: hint, stage }),
            prior,
            job: job(),
            firstReceivedAt: T0,
            now: T0,
            policy: p,
            random: () => 0,
          });
          const longest = Math.max(p.rateLimitHintMaxSeconds, ...p.backoffSeconds);
          expect(outcome).toMatchObject({ type: 'retry', cause: 'rate_limited' });
          expect(outcome.type === 'retry' ? outcome.delaySeconds : Number.NaN).toBeLessThanOrEqual(longest);
        },
      ),
      RUNS,
    );
  });

  it('hideSeconds is a whole number of seconds between 0 and MAX_HIDE_SECONDS, whatever the wait', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true }), (delay) => {
        const hidden = hideSeconds(delay);
        expect(Number.isInteger(hidden)).toBe(true);
        expect(hidden).toBeGreaterThanOrEqual(0);
        expect(hidden).toBeLessThanOrEqual(MAX_HIDE_SECONDS);
      }),
      RUNS,
    );
  });

  it('after an unknown outcome earlier in the generation, every dead letter decide gives is unknown_outcome', () => {
    fc.assert(
      fc.property(
        resultArb,
        priorArb,
        jobArb,
        fc.integer({ min: 0, max: 3_600_000 }),
        (result, prior, theJob, ago) => {
          const base = { result, prior, job: theJob, firstReceivedAt: T0, now: T0, policy: policy() };
          const outcome = decide({ ...base, random: () => 0, unknownSince: T0 - ago });
          const plain = decide({ ...base, random: () => 0 });
          fc.pre(outcome.type === 'dead_letter');
          expect(outcome).toMatchObject({ type: 'dead_letter', reason: 'unknown_outcome' });
          // endedBy names what else ended it, when the same answer without the earlier unknown outcome is a
          // dead letter for another reason.
          if (plain.type === 'dead_letter' && plain.reason !== 'unknown_outcome') {
            expect(outcome).toEqual({
              type: 'dead_letter',
              reason: 'unknown_outcome',
              endedBy: plain.reason,
            });
          }
        },
      ),
      RUNS,
    );
  });

  it('decide never reports an unknown outcome for a result that classifyAttempt calls known', () => {
    fc.assert(
      fc.property(resultArb, priorArb, (result, prior) => {
        const outcome = decide({
          result,
          prior,
          job: job({}, { skip_duplicate: true }),
          firstReceivedAt: T0,
          now: T0,
          policy: policy(),
          random: () => 0,
        });
        const unknown = classifyAttempt(result).unknownOutcome;
        const deadLetteredUnknown = outcome.type === 'dead_letter' && outcome.reason === 'unknown_outcome';
        expect(deadLetteredUnknown).toBe(unknown);
      }),
      RUNS,
    );
  });
});
