import type { SQSRecord } from 'aws-lambda';
import type { BreakerReason } from '#shared/ecourtdate/breaker.ts';
import type { Prepared, SendAttempt } from '#shared/ecourtdate/client.ts';
import { JobValidationError } from '#shared/errors.ts';
import { jobFingerprint, parseJob, peekJobId, type SendJob } from '#shared/job.ts';
import { NOT_DUE_TOLERANCE_MS } from '#shared/ledger/gate.ts';
import { type ClaimResult, type LedgerEntry, priorOf } from '#shared/ledger/ledger.ts';
import {
  beforeSend,
  deferred,
  jobDeadline,
  resendDeadline,
  type SendVerdict,
  scaledMs,
} from '#shared/policy.ts';
import type { InvocationBudget, SenderRuntime } from '#shared/sender/runtime.ts';
import {
  type CarriedAnswer,
  carriedAnswerOf,
  firstReceivedAt,
  receiveCount,
  redriveTokenOf,
  settledEventPending,
} from '#shared/sqs/attributes.ts';

/** What the record itself says, read once from its attributes. Times are epoch ms. */
export interface RecordContext {
  readonly record: SQSRecord;
  readonly receiveCount: number;
  /** The job's first receipt: carried across fresh copies, else SQS's first receive, else now. */
  readonly firstReceivedAt: number;
  /** The redrive token of a redriven dead letter (`dead_letter_id`). */
  readonly redriveToken: string | undefined;
  /** The open attempt a fresh copy carries, with its answer (`carried_answer`). */
  readonly carried: CarriedAnswer | undefined;
  /**
   * The ledger's `event_token` this copy holds (`settled_event_pending`): the settle it was made after left the
   * job's first `eCourtDate Job Settled` event to it.
   */
  readonly settledEventPending: string | undefined;
}

/**
 * Where a record's stages stopped and what they saw: the input of the one pure decision (`decideRecord`).
 * - `invalid`: the body is not a valid job;
 * - `deferred`: no token or pacing slot could be had in time before the claim, or the circuit breaker held the job
 *   (nothing claimed, nothing sent);
 * - `gated`: the ledger's gate did not hand this record the attempt;
 * - `held`: the claim is ours, but the pre-send rules settle the job without a request;
 * - `attempted`: the claim is ours and the attempt ran (`sent` says how far: it may be deferred or not sent);
 * - `carried`: the record carries the answer of the attempt still open in the ledger: no request;
 * - `failed`: a stage failed in a way no rule decides (DynamoDB refused the claim, a bug); `entry` and `sent`
 *   say how far it got.
 */
export type Observed =
  | { readonly stage: 'invalid'; readonly jobId: string | undefined; readonly detail: string }
  | {
      readonly stage: 'deferred';
      readonly job: SendJob;
      readonly retryInMs: number;
      /**
       * The retry's delay, whole seconds, as found inside the job's deadline here: the decision keeps it, so that
       * no fresh draw of the jitter turns the deferral into a dead letter that no ledger write recorded.
       */
      readonly delaySeconds: number;
      /** The stage's circuit breaker held the job (docs/pacing.md, "The circuit breaker"). */
      readonly held?: BreakerReason | undefined;
    }
  | {
      readonly stage: 'gated';
      readonly job: SendJob;
      readonly claim: Exclude<ClaimResult, { kind: 'claimed' } | { kind: 'carried' }>;
    }
  | {
      readonly stage: 'held';
      readonly job: SendJob;
      readonly entry: LedgerEntry;
      readonly lost: boolean;
      readonly verdict: Extract<SendVerdict, { type: 'settle' }>;
    }
  | {
      readonly stage: 'attempted';
      readonly job: SendJob;
      readonly entry: LedgerEntry;
      readonly lost: boolean;
      readonly sent: SendAttempt;
    }
  | {
      readonly stage: 'carried';
      readonly job: SendJob;
      readonly entry: LedgerEntry;
      readonly carried: CarriedAnswer;
      /** The carried attempt was counted lost meanwhile: only its delivery is applied, and not counted again. */
      readonly lostAttempt: boolean;
    }
  | {
      readonly stage: 'failed';
      readonly job: SendJob | undefined;
      readonly errorName: string;
      readonly entry?: LedgerEntry | undefined;
      readonly sent?: SendAttempt | undefined;
      /**
       * The token of a claim whose write failed: DynamoDB may have applied it (its answer lost, every retry refused),
       * so the copy carries it, and finds its own open attempt rather than a lost one.
       */
      readonly claimToken?: string | undefined;
    };

/** Reads what the record says of itself (pure). */
export function recordContext(record: SQSRecord, now: number): RecordContext {
  return {
    record,
    receiveCount: receiveCount(record),
    firstReceivedAt: firstReceivedAt(record) ?? now,
    redriveToken: redriveTokenOf(record),
    carried: carriedAnswerOf(record),
    settledEventPending: settledEventPending(record),
  };
}

/**
 * Runs a record's stages: parse → prepare (token, pacing slot) → gate (the ledger's claim) → pre-send rules (pure)
 * → send. The claim comes after everything that can fail before a request leaves, so an attempt is open in the
 * ledger (and counted lost if its instance dies) only from just before its request may reach the messages
 * endpoint. Only observes: nothing here settles the record, and nothing is thrown for flow; a failure no rule
 * decides comes back as `failed` (docs/contract.md; docs/ledger.md).
 */
export async function observe(
  context: RecordContext,
  runtime: SenderRuntime,
  budget: InvocationBudget,
): Promise<Observed> {
  let job: SendJob;
  try {
    job = parseJob(context.record.body);
  } catch (error) {
    if (!(error instanceof JobValidationError)) return failed(undefined, error);
    return { stage: 'invalid', jobId: peekJobId(context.record.body), detail: error.message };
  }
  try {
    return await observeJob(job, context, runtime, budget);
  } catch (error) {
    // DynamoDB refused the claim, or a bug: the decision re-queues the record (nothing was sent: the claim comes
    // before the request, and the client returns every API, network and secret failure as a value).
    return failed(job, error);
  }
}

async function observeJob(
  job: SendJob,
  context: RecordContext,
  runtime: SenderRuntime,
  budget: InvocationBudget,
): Promise<Observed> {
  const { config, now } = runtime;
  // A copy carrying an answer sends nothing, so it needs no token or slot.
  const prepared =
    context.carried?.result === undefined
      ? await runtime.client.prepare({ waitUntil: budget.waitUntil })
      : undefined;
  if (prepared?.kind === 'deferred') {
    // An instance waiting out a 429, or out of pacing room, sends nothing: the record comes back after the wait,
    // without ledger I/O (unless the wait would pass the deadline: the ledger then settles it expired).
    const timing = { job, firstReceivedAt: context.firstReceivedAt, now: now(), policy: config };
    const outcome = deferred({ ...timing, retryInMs: prepared.retryInMs, random: runtime.random });
    if (outcome.type === 'retry') {
      const { retryInMs, held } = prepared;
      return { stage: 'deferred', job, retryInMs, delaySeconds: outcome.delaySeconds, held };
    }
  }
  const claimToken = runtime.token();
  let claim: ClaimResult;
  try {
    claim = await claimAttempt(job, context, runtime, budget, claimToken);
  } catch (error) {
    return { ...failed(job, error), claimToken };
  }
  if (claim.kind === 'carried' && context.carried) {
    const lostAttempt = claim.lostAttempt === true;
    return { stage: 'carried', job, entry: claim.entry, carried: context.carried, lostAttempt };
  }
  if (claim.kind === 'carried') return failed(job, new Error('carried claim without an answer'));
  if (claim.kind !== 'claimed') return { stage: 'gated', job, claim };
  return attempt(job, claim, prepared, runtime, budget);
}

/** The gate: the ledger's claim of the job's next attempt (docs/ledger.md). */
function claimAttempt(
  job: SendJob,
  context: RecordContext,
  runtime: SenderRuntime,
  budget: InvocationBudget,
  token: string,
): Promise<ClaimResult> {
  const { carried } = context;
  const status = carried?.result?.kind === 'response' ? carried.result.status : undefined;
  return runtime.ledger.claim({
    jobId: job.id,
    bodyHash: jobFingerprint(job),
    messageId: context.record.messageId,
    now: runtime.now(),
    leaseUntil: budget.deadlineAt,
    token,
    firstReceivedAt: context.firstReceivedAt,
    redriveToken: context.redriveToken,
    carried: carried && {
      token: carried.token,
      answered: carried.result !== undefined,
      delivered: status !== undefined && status >= 200 && status < 300,
      also: carried.also,
    },
    dueToleranceMs: NOT_DUE_TOLERANCE_MS / runtime.config.timeScale,
    backoffStepsMs: runtime.config.backoffSeconds.map((seconds) => scaledMs(seconds, runtime.config)),
  });
}

/** The claimed attempt: the pre-send rules (pure), then the request, which may reach the messages endpoint. */
async function attempt(
  job: SendJob,
  claim: Extract<ClaimResult, { kind: 'claimed' }>,
  prepared: Prepared | undefined,
  runtime: SenderRuntime,
  budget: InvocationBudget,
): Promise<Observed> {
  const { entry, lost } = claim;
  const { config } = runtime;
  const verdict = beforeSend({
    claimed: {
      prior: priorOf(entry),
      firstAttemptAt: entry.first_attempt_at,
      unknownAt: entry.unknown_at,
      lost,
    },
    job,
    now: runtime.now(),
    policy: config,
  });
  if (verdict.type === 'settle') return { stage: 'held', job, entry, lost, verdict };
  // A copy whose carried answer no longer matched an open attempt prepares now, like any other record.
  const ready = prepared ?? (await runtime.client.prepare({ waitUntil: budget.waitUntil }));
  const sent =
    ready.kind === 'ready'
      ? await runtime.client.post(job, ready, {
          waitUntil: budget.waitUntil,
          // No request leaves past the job's deadline, nor, after an unknown outcome, past the last moment a
          // resend is still caught by eCourtDate's duplicate check: a wait for a slot or a token comes after the
          // check above (docs/contract.md, "What each response does").
          deadline: Math.min(
            jobDeadline(job, entry.first_attempt_at, config),
            entry.unknown_at === undefined
              ? Number.POSITIVE_INFINITY
              : resendDeadline(entry.unknown_at, config),
          ),
          leaseUntil: budget.deadlineAt,
        })
      : ready;
  return { stage: 'attempted', job, entry, lost, sent };
}

function failed(job: SendJob | undefined, error: unknown): Extract<Observed, { stage: 'failed' }> {
  return { stage: 'failed', job, errorName: error instanceof Error ? error.name : typeof error };
}
