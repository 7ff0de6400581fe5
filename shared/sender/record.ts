import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type { SenderConfig } from '#shared/config.ts';
import type { EcourtdateClient, SendAttempt } from '#shared/ecourtdate/client.ts';
import type { Pacer } from '#shared/ecourtdate/pacer.ts';
import { JobValidationError, RelayError } from '#shared/errors.ts';
import { jobFingerprint, parseJob, peekJobId, type SendJob } from '#shared/job.ts';
import type { DeliveryLedger } from '#shared/ledger/delivery.ts';
import { NOT_DUE_TOLERANCE_MS } from '#shared/ledger/gate.ts';
import { type ClaimResult, type JobLedger, type LedgerEntry, priorOf } from '#shared/ledger/ledger.ts';
import type { DeadLetterReason, Outcome, RetryCause } from '#shared/outcome.ts';
import {
  type AttemptClass,
  beforeSend,
  classifyAttempt,
  decide,
  deferred,
  hideSeconds,
  jobDeadline,
  rateLimitBlockMs,
  scaled,
  suspectRateLimitHint,
} from '#shared/policy.ts';
import { maskRecipient } from '#shared/redact.ts';
import { recordAlreadySettled, recordApiAnswer, recordOutcome } from '#shared/sender/metrics.ts';
import type { JobSettledDetail, JobSettledPublisher } from '#shared/sender/settled-event.ts';
import {
  DLQ_ATTRIBUTE,
  firstReceivedAt,
  hideFor,
  requeueCopy,
  sendToDeadLetterQueue,
} from '#shared/sqs/settle.ts';

/**
 * The messages of the sender's per-record log lines. Operators filter on them in CloudWatch Logs Insights,
 * and the local pipeline reads them to follow each job.
 */
export const LOG_MESSAGE = {
  settled: 'job settled',
  alreadySettled: 'job already settled; acknowledged without sending',
  retried: 'job retried later',
  requeued: 'job re-queued as a fresh copy',
  deadLettered: 'job dead-lettered',
  suspectHint: 'rate-limit hint beyond belief; capped',
} as const;

/** Everything one container needs to settle records. */
export interface SenderRuntime {
  readonly config: SenderConfig;
  readonly sqs: SQSClient;
  readonly client: EcourtdateClient;
  readonly pacer: Pacer;
  readonly ledger: JobLedger;
  /** Puts an `eCourtDate Job Settled` event on the bus for each settled job; absent when that is off. */
  readonly settledEvents?: Pick<JobSettledPublisher, 'publish'> | undefined;
  /** Indexes a delivered job's message uuid for the webhook receiver; absent when webhooks are off. */
  readonly delivery?: Pick<DeliveryLedger, 'putUuidIndex'> | undefined;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now: () => number;
  readonly random: () => number;
}

/** What the invocation tells each of its records. */
export interface InvocationBudget {
  /** Epoch ms by which this invocation must be done: the lease of every attempt it claims. */
  readonly deadlineAt: number;
  /** How long rate pacing may hold a send, ms: the time left less the worst-case request chain. */
  readonly maxWaitMs?: number | undefined;
}

/**
 * Thrown by the record handler to report the record as a batch item failure after its visibility timeout
 * was set to the retry delay: SQS offers it again when the delay has passed. The record path's one failure
 * exit for a decided retry.
 */
export class RetryLaterError extends RelayError {
  readonly delaySeconds: number;
  constructor(jobId: string | undefined, delaySeconds: number) {
    super(`job ${jobId ?? '(no id)'} retried in ${delaySeconds} s`);
    this.delaySeconds = delaySeconds;
  }
}

/** What became of one acknowledged record: delivered, duplicate, dead-lettered, or re-queued as a fresh copy. */
export interface RecordReport {
  readonly jobId: string | undefined;
  readonly outcome: Outcome;
  /** The job had settled before: acknowledged without a send. */
  readonly alreadySettled?: boolean;
  /** A retry carried by a fresh copy of the message (the original is acknowledged). */
  readonly requeued?: boolean;
}

/** Per-record facts for the log line and the dead-letter attributes. */
interface RecordFacts {
  readonly record: SQSRecord;
  readonly jobId: string | undefined;
  readonly job?: SendJob | undefined;
  /** Requests that reached (or may have reached) the messages endpoint, as the ledger counts them. */
  readonly attempts: number;
  /** Epoch ms of the first attempt of this generation (SQS's first receipt without a ledger entry). */
  readonly firstAttemptAt: number;
  readonly sent?: Extract<SendAttempt, { kind: 'attempted' }> | undefined;
  /** HTTP status, `timeout`, `connection`, `secret`, or `lost` (an attempt that never reported). */
  readonly lastStatus?: number | string | undefined;
  readonly detail?: string | undefined;
}

/** The one decision about a record, made before anything is done about it; `apply` carries it out. */
interface Plan {
  readonly outcome: Outcome;
  readonly facts: RecordFacts;
  /** The claimed entry to settle, and how the attempt counts; absent when the record claimed nothing. */
  readonly settle?: {
    readonly entry: LedgerEntry;
    readonly attempt?: AttemptClass | undefined;
  };
  /** The job had settled before: acknowledged without a send. */
  readonly alreadySettled?: boolean;
  /** Stop this instance's requests for this long, ms (a 429). */
  readonly blockMs?: number;
  /** A 429's wait hint that was capped as beyond belief, seconds. */
  readonly suspectHintSeconds?: number;
}

/**
 * Settles one SQS record, as stages: parse → prepare (token, pacing slot) → gate (the ledger's claim) →
 * pre-send rules (pure) → send → decide (pure) → apply. The claim comes after everything that can fail before
 * a request leaves, so an attempt is open in the ledger (and counted lost if its instance dies) only from just
 * before its request may reach the messages endpoint. Every stage before `apply` only decides; `apply` is the
 * one place with ledger, SQS, log and metric effects. Returns for an acknowledged record; throws
 * `RetryLaterError` for a retried one, and any other error for a failure nobody decided (the handler retries it
 * after the first backoff step). Rules: docs/contract.md and the README's "Reliability: the job ledger".
 */
export async function settleRecord(
  record: SQSRecord,
  runtime: SenderRuntime,
  budget: InvocationBudget,
): Promise<RecordReport> {
  return apply(runtime, await plan(record, runtime, budget));
}

async function plan(record: SQSRecord, runtime: SenderRuntime, budget: InvocationBudget): Promise<Plan> {
  const { config, now } = runtime;
  const firstReceipt = firstReceivedAt(record) ?? now();

  // parse
  let job: SendJob;
  try {
    job = parseJob(record.body);
  } catch (error) {
    if (!(error instanceof JobValidationError)) throw error;
    const facts = { record, jobId: peekJobId(record.body), attempts: 0, firstAttemptAt: firstReceipt };
    return deadLetterPlan({ ...facts, detail: error.message }, 'invalid_job');
  }
  const base: RecordFacts = { record, jobId: job.id, job, attempts: 0, firstAttemptAt: firstReceipt };

  // prepare: a token and a pacing slot. Nothing leaves yet, so a failure here is a known outcome.
  const prepared = await runtime.client.prepare({ maxWaitMs: budget.maxWaitMs });
  if (prepared.kind === 'deferred') {
    // An instance waiting out a 429, or out of pacing room, sends nothing: the record comes back after the
    // wait, without ledger I/O (unless the wait would pass the deadline: the ledger then settles it expired).
    const outcome = deferred({ ...timing(job, firstReceipt, runtime), retryInMs: prepared.retryInMs });
    if (outcome.type === 'retry') return { outcome, facts: base };
  }

  // gate
  const claim = await runtime.ledger.claim({
    jobId: job.id,
    bodyHash: jobFingerprint(job),
    messageId: record.messageId,
    now: now(),
    leaseUntil: budget.deadlineAt,
    firstReceivedAt: firstReceipt,
    redriven: isRedrive(record),
    dueToleranceMs: NOT_DUE_TOLERANCE_MS / config.timeScale,
  });
  if (claim.kind !== 'claimed') return gatePlan(claim, base, runtime);
  const { entry, lost } = claim;
  const facts = factsOf(base, entry);

  // pre-send rules
  const verdict = beforeSend({
    claimed: {
      prior: priorOf(entry),
      firstAttemptAt: entry.first_attempt_at,
      unknownAt: entry.unknown_at,
      lost,
    },
    job,
    now: now(),
    policy: config,
  });
  if (verdict.type === 'settle') {
    return {
      outcome: verdict.outcome,
      facts: { ...facts, detail: verdict.detail, lastStatus: lost ? 'lost' : facts.lastStatus },
      settle: { entry },
    };
  }

  // send: from here on the request may reach the messages endpoint.
  const sent =
    prepared.kind === 'ready'
      ? await runtime.client.post(job, prepared, {
          maxWaitMs: budget.maxWaitMs,
          deadline: jobDeadline(job, entry.first_attempt_at, config),
        })
      : prepared;

  // decide
  const judged = timing(job, entry.first_attempt_at, runtime);
  if (sent.kind === 'deferred') {
    return { outcome: deferred({ ...judged, retryInMs: sent.retryInMs }), facts, settle: { entry } };
  }
  const { result } = sent;
  const outcome = decide({ ...judged, result, prior: priorOf(entry), unknownSince: entry.unknown_at });
  // A 429 holds the whole instance back; its hint is capped, and logged when beyond belief.
  const rateLimit =
    result.kind === 'response' && result.status === 429 ? { hint: result.retryAfterSeconds } : undefined;
  const lastStatus =
    result.kind === 'response' ? result.status : result.kind === 'transport' ? result.error : 'secret';
  const why = outcome.type === 'dead_letter' ? whyDeadLettered(outcome.reason, lastStatus, job) : undefined;
  return {
    outcome,
    facts: { ...facts, sent, detail: sent.detail ?? why, lastStatus },
    settle: { entry, attempt: classifyAttempt(result) },
    ...(rateLimit ? { blockMs: rateLimitBlockMs(rateLimit.hint, config) } : {}),
    ...(rateLimit?.hint !== undefined && suspectRateLimitHint(rateLimit.hint, config)
      ? { suspectHintSeconds: rateLimit.hint }
      : {}),
  };
}

/** What a record does when the gate did not hand it the attempt: nothing is sent, the ledger is not written. */
function gatePlan(
  claim: Exclude<ClaimResult, { kind: 'claimed' }>,
  base: RecordFacts,
  runtime: SenderRuntime,
): Plan {
  const { config } = runtime;
  switch (claim.kind) {
    case 'busy':
      return retryPlan(base, scaled(5, config), 'in_flight');
    case 'in_flight':
      // Another instance holds the job: come back once its lease is over, when it has settled or is lost.
      return retryPlan(
        factsOf(base, claim.entry),
        untilSeconds(claim.until, runtime) + scaled(5, config),
        'in_flight',
      );
    case 'not_due':
      return retryPlan(factsOf(base, claim.entry), untilSeconds(claim.until, runtime), 'not_due');
    case 'settled':
      return {
        outcome:
          claim.entry.status === 'delivered'
            ? { type: 'delivered', uuid: claim.entry.uuid }
            : { type: 'duplicate' },
        facts: factsOf(base, claim.entry),
        alreadySettled: true,
      };
    case 'conflict':
      return deadLetterPlan(
        {
          ...factsOf(base, claim.entry),
          detail: 'a job with this id and a different body is already known; not sent',
        },
        'id_conflict',
      );
    case 'dead_letter_again': {
      // Dead-lettered before: this message's acknowledgement was lost (the dead-letter queue may lack it), or it
      // is another copy of the job. Either way it goes there too, never to eCourtDate.
      const reason = (claim.entry.dead_letter_reason ?? 'retries_exhausted') as DeadLetterReason;
      const detail =
        claim.entry.dead_letter_message_id === base.record.messageId
          ? 'dead-lettered again: the first acknowledgement was lost'
          : `a copy of a job already dead-lettered ${reason}; not sent: only an operator's redrive sends it again`;
      return deadLetterPlan({ ...factsOf(base, claim.entry), detail }, reason);
    }
  }
}

/** Carries out a plan: the ledger, then SQS, then the log line and metrics. The record path's only effects. */
async function apply(runtime: SenderRuntime, plan: Plan): Promise<RecordReport> {
  const { config, logger } = runtime;
  const { outcome } = plan;
  let facts = plan.facts;
  if (plan.blockMs !== undefined) {
    // Slow the whole instance down, not just this record: the rest of the batch waits for the window too.
    runtime.pacer.block(plan.blockMs);
  }
  if (plan.suspectHintSeconds !== undefined) {
    logger.warn(LOG_MESSAGE.suspectHint, {
      job_id: facts.jobId,
      hint_seconds: plan.suspectHintSeconds,
      capped_to_seconds: config.rateLimitHintMaxSeconds,
    });
  }
  for (const status of facts.sent?.sendStatuses ?? []) recordApiAnswer(runtime.metrics, status);
  if (plan.settle) {
    // Written before SQS is told: if SQS fails, the record returns and the ledger already knows what happened.
    const written = await runtime.ledger.settle({
      entry: plan.settle.entry,
      now: runtime.now(),
      attempt: plan.settle.attempt,
      lastStatus: facts.lastStatus === undefined ? undefined : String(facts.lastStatus),
      outcome,
      messageId: facts.record.messageId,
      detail: facts.detail,
    });
    facts = { ...facts, attempts: written.sends };
  }
  // After the settle, which replaces the job's item, so a status update can only add to it; again for a copy of
  // a delivered job, in case the first index write failed (it is idempotent). One write per delivered job, only
  // when webhooks are on (docs/webhooks.md).
  if (runtime.delivery && outcome.type === 'delivered' && outcome.uuid && facts.jobId) {
    await runtime.delivery.putUuidIndex(outcome.uuid, facts.jobId);
  }
  // Before SQS is told: if EventBridge refuses, the record fails and comes back (its ledger entry settled),
  // and the event is published again with the acknowledgement or the dead letter. At least once.
  if (runtime.settledEvents && outcome.type !== 'retry') {
    await runtime.settledEvents.publish(
      settledDetail(facts, outcome, plan.alreadySettled === true, runtime.now()),
    );
  }
  const jobId = facts.jobId;
  switch (outcome.type) {
    case 'delivered':
    case 'duplicate':
      if (plan.alreadySettled) reportAlreadySettled(runtime, facts, outcome);
      else report(runtime, facts, outcome);
      return { jobId, outcome, alreadySettled: plan.alreadySettled === true };
    case 'dead_letter':
      return deadLetter(runtime, facts, outcome);
    case 'retry':
      if (receiveCount(facts.record) >= requeueAfterReceives(config)) {
        // The receive count nears the queue's redrive limit: a fresh copy starts it again, so a long wait (a
        // 429 storm, an outage) never sends a healthy job to the dead-letter queue without a reason.
        const copy = await requeueCopy(
          runtime.sqs,
          config.sendQueueUrl,
          facts.record,
          outcome.delaySeconds,
          runtime.now(),
        );
        report(runtime, facts, outcome, LOG_MESSAGE.requeued, { requeued_as: copy.messageId });
        return { jobId, outcome, requeued: true };
      }
      report(runtime, facts, outcome);
      try {
        await hideFor(
          runtime.sqs,
          config.sendQueueUrl,
          facts.record.receiptHandle,
          hideSeconds(outcome.delaySeconds),
        );
      } catch (error) {
        // The record still fails below, so it comes back after the queue's own visibility timeout: not lost.
        logger.error('could not set the retry delay', { job_id: jobId, error_name: errorName(error) });
      }
      throw new RetryLaterError(jobId, outcome.delaySeconds);
  }
}

async function deadLetter(
  runtime: SenderRuntime,
  facts: RecordFacts,
  outcome: Extract<Outcome, { type: 'dead_letter' }>,
): Promise<RecordReport> {
  // If SQS refuses, this throws: the record fails and stays on the send queue. A job is never dropped.
  const { droppedAttributes } = await sendToDeadLetterQueue(
    runtime.sqs,
    runtime.config.deadLetterQueueUrl,
    facts.record.body,
    {
      reason: outcome.reason,
      jobId: facts.jobId,
      lastStatus: facts.lastStatus,
      attempts: facts.attempts,
      firstAttemptAt: facts.firstAttemptAt,
      detail: facts.detail,
      responseExcerpt: facts.sent?.excerpt || undefined,
    },
    runtime.now(),
  );
  const detail = droppedAttributes.length
    ? `${facts.detail ?? ''} (body too large for these dead-letter attributes: ${droppedAttributes.join(', ')})`.trim()
    : facts.detail;
  report(runtime, { ...facts, detail }, outcome);
  return { jobId: facts.jobId, outcome };
}

function reportAlreadySettled(runtime: SenderRuntime, facts: RecordFacts, outcome: Outcome): void {
  recordAlreadySettled(runtime.metrics);
  runtime.logger.info(LOG_MESSAGE.alreadySettled, {
    job_id: facts.jobId,
    message_id: facts.record.messageId,
    outcome: outcome.type,
  });
}

/** One structured log line and the outcome metrics for what happened to a record. */
function report(
  runtime: SenderRuntime,
  facts: RecordFacts,
  outcome: Outcome,
  message?: string,
  extra: Record<string, string> = {},
): void {
  const { sent } = facts;
  const line = {
    ...extra,
    job_id: facts.jobId,
    message_id: facts.record.messageId,
    attempt: facts.attempts,
    status: facts.lastStatus,
    statuses: sent && sent.sendStatuses.length > 1 ? sent.sendStatuses : undefined,
    outcome: outcome.type,
    reason: outcome.type === 'dead_letter' ? outcome.reason : undefined,
    cause: outcome.type === 'retry' ? outcome.cause : undefined,
    retry_in_seconds: outcome.type === 'retry' ? outcome.delaySeconds : undefined,
    receive_count: receiveCount(facts.record),
    uuid: outcome.type === 'delivered' ? outcome.uuid : undefined,
    latency_ms: sent?.latencyMs,
    auth_failed: sent?.authFailed || undefined,
    to: facts.job ? maskRecipient(facts.job.message.to) : undefined,
    agency_reference: facts.job?.agencyReference,
    detail: facts.detail,
    response_excerpt:
      outcome.type === 'delivered' || outcome.type === 'duplicate' ? undefined : sent?.excerpt || undefined,
  };
  recordOutcome(runtime.metrics, outcome, sent?.authFailed ?? false);
  if (outcome.type === 'retry') runtime.logger.warn(message ?? LOG_MESSAGE.retried, line);
  else if (outcome.type === 'dead_letter') runtime.logger.error(LOG_MESSAGE.deadLettered, line);
  else runtime.logger.info(LOG_MESSAGE.settled, line);
}

/**
 * Why a job decided on an answer was dead-lettered, in a sentence for the `detail` attribute, the log and the
 * local report (docs/contract.md, "What each response does"). Never quotes the message or the response.
 */
function whyDeadLettered(reason: DeadLetterReason, lastStatus: number | string, job: SendJob): string {
  const answer = typeof lastStatus === 'number' ? `HTTP ${lastStatus}` : lastStatus;
  switch (reason) {
    case 'unknown_outcome':
      return job.message.skip_duplicate === true
        ? `the request may have created the message (${answer}) and skip_duplicate is set, so it is not resent: check Console > Logs, then redrive if it was not sent`
        : `the request may have created the message (${answer}) and a resend could not land inside eCourtDate's duplicate window: check Console > Logs, then redrive if it was not sent`;
    case 'retries_exhausted':
      return `eCourtDate kept failing (last ${answer}); the attempt budget is spent: redrive once the API recovers`;
    case 'bad_request':
      return 'eCourtDate rejected the message (HTTP 400): response_excerpt names the field; fix the job and send it again';
    case 'forbidden':
      return 'HTTP 403: the agency is inactive or the API client lacks permission (see the Forbidden403 runbook)';
    case 'not_found':
      return 'HTTP 404: wrong base URL, or no Default Agency / unknown agency_reference ("Agency Not Found")';
    case 'client_error':
      return `eCourtDate refused the request (${answer}); retrying the same request would not help`;
    case 'expired':
      return `the job's deadline passed before it could be delivered (last ${answer})`;
    default:
      return `dead-lettered ${reason} after ${answer}`;
  }
}

/** The `eCourtDate Job Settled` detail of a settled record. */
function settledDetail(
  facts: RecordFacts,
  outcome: Exclude<Outcome, { type: 'retry' }>,
  replayed: boolean,
  now: number,
): JobSettledDetail {
  return {
    job_id: facts.jobId ?? null,
    outcome: outcome.type === 'dead_letter' ? 'dead_lettered' : outcome.type,
    ...(outcome.type === 'dead_letter' ? { reason: outcome.reason } : {}),
    ...(outcome.type === 'delivered' && outcome.uuid ? { uuid: outcome.uuid } : {}),
    attempts: facts.attempts,
    ...(facts.lastStatus !== undefined ? { last_status: facts.lastStatus } : {}),
    settled_at: new Date(now).toISOString(),
    ...(replayed ? { replayed: true as const } : {}),
  };
}

function deadLetterPlan(facts: RecordFacts, reason: DeadLetterReason): Plan {
  return { outcome: { type: 'dead_letter', reason }, facts };
}

function retryPlan(facts: RecordFacts, delaySeconds: number, cause: RetryCause): Plan {
  return { outcome: { type: 'retry', delaySeconds: Math.max(delaySeconds, 1), cause }, facts };
}

/** The timing inputs of the policy for a job: now, the policy and the jitter source. */
function timing(job: SendJob, firstReceivedAt: number, runtime: SenderRuntime) {
  return { job, firstReceivedAt, now: runtime.now(), policy: runtime.config, random: runtime.random };
}

/** Whole seconds from now until `until` (epoch ms), at least 1. */
function untilSeconds(until: number, runtime: SenderRuntime): number {
  return Math.max(1, Math.ceil((until - runtime.now()) / 1000));
}

function receiveCount(record: SQSRecord): number {
  return Math.max(1, Number(record.attributes.ApproximateReceiveCount) || 1);
}

/**
 * After how many receives a retried record is re-queued as a fresh copy rather than hidden again: half the
 * queue's `maxReceiveCount`, so that SQS's own redrive only ever catches a real crash loop.
 */
export function requeueAfterReceives(config: Pick<SenderConfig, 'maxReceiveCount'>): number {
  return Math.max(2, Math.floor(config.maxReceiveCount / 2));
}

/**
 * Whether the record is an operator's redrive from the dead-letter queue: it still carries the attributes the
 * relay put on it there (SQS's move task keeps them; the CLI's filtered redrive copies them).
 */
function isRedrive(record: SQSRecord): boolean {
  const attrs = record.messageAttributes ?? {};
  return attrs[DLQ_ATTRIBUTE.reason] !== undefined && attrs[DLQ_ATTRIBUTE.deadLetteredAt] !== undefined;
}

function factsOf(facts: RecordFacts, entry: LedgerEntry): RecordFacts {
  return {
    ...facts,
    attempts: entry.sends,
    firstAttemptAt: entry.first_attempt_at,
    lastStatus: entry.last_status,
  };
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
