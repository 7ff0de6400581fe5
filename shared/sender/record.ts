import {
  IdempotencyAlreadyInProgressError,
  IdempotencyValidationError,
} from '@aws-lambda-powertools/idempotency';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type { SenderConfig } from '#shared/config.ts';
import type { EcourtdateClient, SendAttempt } from '#shared/ecourtdate/client.ts';
import type { Pacer } from '#shared/ecourtdate/pacer.ts';
import { JobValidationError, RelayError } from '#shared/errors.ts';
import { jobFingerprint, parseJob, peekJobId, type SendJob } from '#shared/job.ts';
import type { SettledGuard, SettledResult } from '#shared/ledger/guard.ts';
import type { JobLedger, LedgerEntry } from '#shared/ledger/ledger.ts';
import type { DeadLetterReason, Outcome } from '#shared/outcome.ts';
import { classifyAttempt, decide, deferred, expiredBeforeSend, jobDeadline, scaled } from '#shared/policy.ts';
import { maskRecipient } from '#shared/redact.ts';
import { recordAlreadySettled, recordApiAnswer, recordOutcome } from '#shared/sender/metrics.ts';
import { DLQ_ATTRIBUTE, hideFor, sendToDeadLetterQueue } from '#shared/sqs/settle.ts';

/**
 * The messages of the sender's per-record log lines. Operators filter on them in CloudWatch Logs Insights,
 * and the local pipeline reads them to follow each job.
 */
export const LOG_MESSAGE = {
  settled: 'job settled',
  alreadySettled: 'job already settled; acknowledged without sending',
  retried: 'job retried later',
  deadLettered: 'job dead-lettered',
} as const;

/** Everything one container needs to settle records. */
export interface SenderRuntime {
  readonly config: SenderConfig;
  readonly sqs: SQSClient;
  readonly client: EcourtdateClient;
  readonly pacer: Pacer;
  readonly ledger: JobLedger;
  readonly guard: SettledGuard;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now: () => number;
  readonly random: () => number;
}

/**
 * Thrown by the record handler to report the record as a batch item failure after its visibility timeout
 * was set to the backoff delay: SQS offers it again when the delay has passed.
 */
export class RetryLaterError extends RelayError {
  readonly delaySeconds: number;
  constructor(jobId: string | undefined, delaySeconds: number) {
    super(`job ${jobId ?? '(no id)'} retried in ${delaySeconds} s`);
    this.delaySeconds = delaySeconds;
  }
}

/** Leaves the settled-guard's run after the job went to the dead-letter queue (no result is stored). */
class DeadLetteredSignal extends RelayError {
  readonly outcome: Outcome;
  constructor(outcome: Outcome) {
    super('job dead-lettered');
    this.outcome = outcome;
  }
}

/** What became of one record; returned for delivered, duplicate and dead-lettered jobs. */
export interface RecordReport {
  readonly jobId: string | undefined;
  readonly outcome: Outcome;
  /** The job had settled before: acknowledged without a send. */
  readonly alreadySettled?: boolean;
}

/** Per-record facts for the log line and the dead-letter attributes. */
interface RecordFacts {
  readonly record: SQSRecord;
  readonly jobId: string | undefined;
  readonly job?: SendJob | undefined;
  /** The job's attempt number as the ledger counts sends; SQS's receive count without a ledger entry. */
  readonly attempts: number;
  readonly firstAttemptAt: number;
  readonly sent?: Extract<SendAttempt, { kind: 'attempted' }> | undefined;
  /** HTTP status, `timeout`, `connection`, or `lost` (an attempt that never reported). */
  readonly lastStatus?: number | string | undefined;
  readonly detail?: string | undefined;
}

/**
 * Settles one SQS record: validates the job, and, unless it has settled before or is in flight elsewhere,
 * makes one attempt under the job ledger, asks the policy what it means and carries it out (acknowledge;
 * hide for the backoff delay and fail the record; or dead-letter and acknowledge). `maxWaitMs` bounds how
 * long rate pacing may hold the send, from the invocation's remaining time.
 */
export async function settleRecord(
  record: SQSRecord,
  runtime: SenderRuntime,
  maxWaitMs?: number,
): Promise<RecordReport> {
  const receiveCount = Math.max(1, Number(record.attributes.ApproximateReceiveCount) || 1);
  const firstReceipt = Number(record.attributes.ApproximateFirstReceiveTimestamp) || runtime.now();

  let job: SendJob;
  try {
    job = parseJob(record.body);
  } catch (error) {
    if (!(error instanceof JobValidationError)) throw error;
    const jobId = peekJobId(record.body);
    const facts = {
      record,
      jobId,
      attempts: receiveCount,
      firstAttemptAt: firstReceipt,
      detail: error.message,
    };
    return deadLetterNow(runtime, facts, 'invalid_job');
  }

  const base: RecordFacts = {
    record,
    jobId: job.id,
    job,
    attempts: receiveCount,
    firstAttemptAt: firstReceipt,
  };
  const bodyHash = jobFingerprint(job);
  try {
    const settled = await runtime.guard.run({ job_id: job.id, body_hash: bodyHash }, () =>
      attempt(job, bodyHash, base, runtime, maxWaitMs),
    );
    const outcome: Outcome =
      settled.type === 'delivered' ? { type: 'delivered', uuid: settled.uuid } : { type: 'duplicate' };
    if (settled.replayed) reportAlreadySettled(runtime, base, outcome);
    return { jobId: job.id, outcome, alreadySettled: settled.replayed === true };
  } catch (error) {
    if (error instanceof DeadLetteredSignal) return { jobId: job.id, outcome: error.outcome };
    if (error instanceof IdempotencyValidationError) {
      const detail = 'a job with this id and a different body has already been settled; not sent';
      return deadLetterNow(runtime, { ...base, detail }, 'id_conflict');
    }
    if (error instanceof IdempotencyAlreadyInProgressError) {
      // Another instance holds this job (a duplicate SQS delivery): come back once its attempt is over.
      return retryNow(runtime, base, inFlightDelaySeconds(runtime.config), 'in_flight');
    }
    throw error;
  }
}

/** One attempt at a job inside the settled guard; returns only for delivered/duplicate, else throws. */
async function attempt(
  job: SendJob,
  bodyHash: string,
  bare: RecordFacts,
  runtime: SenderRuntime,
  maxWaitMs: number | undefined,
): Promise<SettledResult> {
  const { config, ledger } = runtime;
  const { record } = bare;
  const begun = await ledger.begin(job.id, {
    bodyHash,
    messageId: record.messageId,
    now: runtime.now(),
    redriven: isRedrive(record),
  });

  switch (begun.kind) {
    case 'busy':
      return retryNow(runtime, bare, inFlightDelaySeconds(config), 'in_flight');
    case 'conflict': {
      const facts = {
        ...factsOf(bare, begun.entry),
        detail: 'a job with this id and a different body is already known; not sent',
      };
      throw new DeadLetteredSignal((await deadLetterNow(runtime, facts, 'id_conflict')).outcome);
    }
    case 'settled': {
      const outcome: Outcome =
        begun.entry.status === 'delivered'
          ? { type: 'delivered', uuid: begun.entry.uuid }
          : { type: 'duplicate' };
      reportAlreadySettled(runtime, factsOf(bare, begun.entry), outcome);
      return settledResult(outcome.type === 'delivered' ? 'delivered' : 'duplicate', begun.entry.uuid);
    }
    case 'dead_letter_again': {
      // Dead-lettered before, but the acknowledgement was lost: the dead-letter queue may lack it. Send it there.
      const reason = (begun.entry.dead_letter_reason ?? 'retries_exhausted') as DeadLetterReason;
      const facts = {
        ...factsOf(bare, begun.entry),
        detail: 'dead-lettered again: the first acknowledgement was lost',
      };
      throw new DeadLetteredSignal((await deadLetterNow(runtime, facts, reason)).outcome);
    }
    case 'attempt':
      break;
  }

  const { entry, prior, lost } = begun;
  const facts = factsOf(bare, entry);
  const firstAttemptAt = entry.first_attempt_at;
  const now = runtime.now();
  if (expiredBeforeSend(job, firstAttemptAt, now, config)) {
    return closeAndApply(
      runtime,
      entry,
      { ...facts, detail: 'deadline passed before this attempt; not sent' },
      { type: 'dead_letter', reason: 'expired' },
    );
  }
  // A resend after an unknown outcome is safe only while eCourtDate's duplicate check can catch it: never with
  // skip_duplicate, and only inside the window. An operator's redrive clears the unknown outcome in the ledger.
  if (entry.unknown_at !== undefined) {
    const blocked =
      job.message.skip_duplicate === true
        ? 'skip_duplicate is set'
        : insideDuplicateWindow(entry.unknown_at, now, config)
          ? undefined
          : "eCourtDate's duplicate window has passed";
    if (blocked) {
      const detail = `an earlier attempt's outcome is unknown and ${blocked}, so a resend could reach the person twice: check Console > Logs, then redrive if it was not sent`;
      return closeAndApply(
        runtime,
        entry,
        { ...facts, lastStatus: lost ? 'lost' : facts.lastStatus, detail },
        { type: 'dead_letter', reason: 'unknown_outcome' },
      );
    }
  }
  if (lost && prior.retryable >= config.maxAttempts) {
    return closeAndApply(
      runtime,
      entry,
      { ...facts, lastStatus: 'lost' },
      { type: 'dead_letter', reason: 'retries_exhausted' },
    );
  }

  const sent = await runtime.client.send(job, {
    maxWaitMs,
    deadline: jobDeadline(job, firstAttemptAt, config),
  });
  const after = runtime.now();
  if (sent.kind === 'deferred') {
    const outcome = deferred({
      retryInMs: sent.retryInMs,
      job,
      firstReceivedAt: firstAttemptAt,
      now: after,
      policy: config,
      random: runtime.random,
    });
    return closeAndApply(runtime, entry, facts, outcome);
  }
  for (const status of sent.sendStatuses) recordApiAnswer(runtime.metrics, status);
  const { result } = sent;
  if (result.kind === 'response' && result.status === 429) {
    // Slow the whole instance down, not just this record: the rest of the batch waits for the window too.
    runtime.pacer.block(
      scaled(Math.max(config.rateLimitWaitSeconds, result.retryAfterSeconds ?? 0), config) * 1000,
    );
  }
  const outcome = decide({
    result,
    prior,
    job,
    firstReceivedAt: firstAttemptAt,
    now: after,
    policy: config,
    random: runtime.random,
  });
  const lastStatus = result.kind === 'response' ? result.status : result.error;
  return closeAndApply(runtime, entry, { ...facts, sent, lastStatus }, outcome, classifyAttempt(result));
}

/** Records the attempt in the ledger, then carries out the outcome. */
async function closeAndApply(
  runtime: SenderRuntime,
  entry: LedgerEntry,
  facts: RecordFacts,
  outcome: Outcome,
  attemptClass?: ReturnType<typeof classifyAttempt>,
): Promise<SettledResult> {
  const lastStatus = facts.lastStatus === undefined ? undefined : String(facts.lastStatus);
  // Written before the dead-letter send: if that fails, the record returns and is dead-lettered again.
  const written = await runtime.ledger.finish({
    entry,
    now: runtime.now(),
    attempt: attemptClass,
    lastStatus,
    outcome,
    messageId: facts.record.messageId,
    detail: facts.detail,
  });
  const closed = { ...facts, attempts: written.sends };
  switch (outcome.type) {
    case 'delivered':
    case 'duplicate':
      report(runtime, closed, outcome);
      return settledResult(
        outcome.type,
        outcome.type === 'delivered' ? (outcome.uuid ?? written.uuid) : undefined,
      );
    case 'retry':
      return retryNow(runtime, closed, outcome.delaySeconds, outcome.cause);
    case 'dead_letter':
      throw new DeadLetteredSignal((await deadLetterNow(runtime, closed, outcome.reason)).outcome);
  }
}

async function deadLetterNow(
  runtime: SenderRuntime,
  facts: RecordFacts,
  reason: DeadLetterReason,
): Promise<RecordReport> {
  const outcome: Outcome = { type: 'dead_letter', reason };
  // If SQS refuses, this throws: the record fails and stays on the send queue. A job is never dropped.
  const { droppedAttributes } = await sendToDeadLetterQueue(
    runtime.sqs,
    runtime.config.deadLetterQueueUrl,
    facts.record.body,
    {
      reason,
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

async function retryNow(
  runtime: SenderRuntime,
  facts: RecordFacts,
  delaySeconds: number,
  cause: Extract<Outcome, { type: 'retry' }>['cause'],
): Promise<never> {
  const outcome: Outcome = { type: 'retry', delaySeconds, cause };
  report(runtime, facts, outcome);
  try {
    await hideFor(runtime.sqs, runtime.config.sendQueueUrl, facts.record.receiptHandle, delaySeconds);
  } catch (error) {
    // The record still fails below, so it comes back after the queue's own visibility timeout: not lost.
    runtime.logger.error('could not set the retry delay', {
      job_id: facts.jobId,
      error_name: errorName(error),
    });
  }
  throw new RetryLaterError(facts.jobId, delaySeconds);
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
function report(runtime: SenderRuntime, facts: RecordFacts, outcome: Outcome): void {
  const { sent } = facts;
  const line = {
    job_id: facts.jobId,
    message_id: facts.record.messageId,
    attempt: facts.attempts,
    status: facts.lastStatus,
    statuses: sent && sent.sendStatuses.length > 1 ? sent.sendStatuses : undefined,
    outcome: outcome.type,
    reason: outcome.type === 'dead_letter' ? outcome.reason : undefined,
    cause: outcome.type === 'retry' ? outcome.cause : undefined,
    retry_in_seconds: outcome.type === 'retry' ? outcome.delaySeconds : undefined,
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
  if (outcome.type === 'retry') runtime.logger.warn(LOG_MESSAGE.retried, line);
  else if (outcome.type === 'dead_letter') runtime.logger.error(LOG_MESSAGE.deadLettered, line);
  else runtime.logger.info(LOG_MESSAGE.settled, line);
}

/**
 * Whether the record is an operator's redrive from the dead-letter queue: it still carries the attributes the
 * relay put on it there (SQS's move task keeps them; the CLI's filtered redrive copies them).
 */
function isRedrive(record: SQSRecord): boolean {
  const attrs = record.messageAttributes ?? {};
  return attrs[DLQ_ATTRIBUTE.reason] !== undefined && attrs[DLQ_ATTRIBUTE.deadLetteredAt] !== undefined;
}

/** The guard stores this in DynamoDB, whose marshaller refuses undefined fields. */
function settledResult(type: SettledResult['type'], uuid: string | undefined): SettledResult {
  return uuid === undefined ? { type } : { type, uuid };
}

function factsOf(facts: RecordFacts, entry: LedgerEntry): RecordFacts {
  return {
    ...facts,
    attempts: entry.sends,
    firstAttemptAt: entry.first_attempt_at,
    lastStatus: entry.last_status,
  };
}

/**
 * Whether a resend now still falls inside eCourtDate's duplicate window around an attempt whose outcome is
 * unknown (so a message it created answers 409), keeping a margin for the resend's own latency and clocks.
 */
export function insideDuplicateWindow(unknownAt: number, now: number, config: SenderConfig): boolean {
  const windowMs = (config.duplicateWindowSeconds * 1000) / config.timeScale;
  const marginMs = Math.min(config.httpTimeoutMs * 3 + 60_000 / config.timeScale, windowMs / 4);
  return now - unknownAt < windowMs - marginMs;
}

/**
 * How long to wait for another instance's attempt: its worst case is three requests (the 401 path), in real
 * time, plus a margin that follows the time scale like every other delay.
 */
function inFlightDelaySeconds(config: SenderConfig): number {
  return Math.ceil((config.httpTimeoutMs * 3) / 1000) + scaled(5, config);
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
