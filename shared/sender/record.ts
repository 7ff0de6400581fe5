import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type { SenderConfig } from '#shared/config.ts';
import type { EcourtdateClient, SendAttempt } from '#shared/ecourtdate/client.ts';
import type { Pacer } from '#shared/ecourtdate/pacer.ts';
import { JobValidationError, RelayError } from '#shared/errors.ts';
import { parseJob, peekJobId, type SendJob } from '#shared/job.ts';
import type { Outcome } from '#shared/outcome.ts';
import { decide, deferred, expiredBeforeSend, priorFromReceiveCount, scaled } from '#shared/policy.ts';
import { maskRecipient } from '#shared/redact.ts';
import { recordApiAnswer, recordOutcome } from '#shared/sender/metrics.ts';
import { type DeadLetterInfo, hideFor, sendToDeadLetterQueue } from '#shared/sqs/settle.ts';

/** Everything one container needs to settle records. */
export interface SenderRuntime {
  readonly config: SenderConfig;
  readonly sqs: SQSClient;
  readonly client: EcourtdateClient;
  readonly pacer: Pacer;
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

/** What became of one record; returned for delivered, duplicate and dead-lettered jobs. */
export interface RecordReport {
  readonly jobId: string | undefined;
  readonly outcome: Outcome;
}

/**
 * Settles one SQS record: validates the job, makes one attempt, asks the policy what it means and carries
 * it out (acknowledge, hide for the backoff delay and fail the record, or dead-letter and acknowledge).
 * `maxWaitMs` bounds how long rate pacing may hold the send, from the invocation's remaining time.
 */
export async function settleRecord(
  record: SQSRecord,
  runtime: SenderRuntime,
  maxWaitMs?: number,
): Promise<RecordReport> {
  const attempt = Math.max(1, Number(record.attributes.ApproximateReceiveCount) || 1);
  const firstReceivedAt = Number(record.attributes.ApproximateFirstReceiveTimestamp) || runtime.now();
  const base = { attempt, firstReceivedAt, messageId: record.messageId };

  let job: SendJob;
  try {
    job = parseJob(record.body);
  } catch (error) {
    if (!(error instanceof JobValidationError)) throw error;
    const jobId = peekJobId(record.body);
    const outcome: Outcome = { type: 'dead_letter', reason: 'invalid_job' };
    await finish(record, runtime, outcome, { ...base, jobId, detail: error.message });
    return { jobId, outcome };
  }

  const started = runtime.now();
  if (expiredBeforeSend(job, firstReceivedAt, started, runtime.config)) {
    const outcome: Outcome = { type: 'dead_letter', reason: 'expired' };
    await finish(record, runtime, outcome, {
      ...base,
      jobId: job.id,
      job,
      detail: 'deadline passed before this attempt; not sent',
    });
    return { jobId: job.id, outcome };
  }

  const sent = await runtime.client.send(job, { maxWaitMs });
  const now = runtime.now();
  const outcome = judge(sent, job, attempt, firstReceivedAt, now, runtime);
  await finish(record, runtime, outcome, { ...base, jobId: job.id, job, sent });
  return { jobId: job.id, outcome };
}

function judge(
  sent: SendAttempt,
  job: SendJob,
  attempt: number,
  firstReceivedAt: number,
  now: number,
  runtime: SenderRuntime,
): Outcome {
  const { config, random } = runtime;
  if (sent.kind === 'deferred')
    return deferred({ retryInMs: sent.retryInMs, job, firstReceivedAt, now, policy: config, random });
  for (const status of sent.sendStatuses) recordApiAnswer(runtime.metrics, status);
  const { result } = sent;
  if (result.kind === 'response' && result.status === 429) {
    // Slow the whole instance down, not just this record: the rest of the batch waits for the window too.
    runtime.pacer.block(
      scaled(Math.max(config.rateLimitWaitSeconds, result.retryAfterSeconds ?? 0), config) * 1000,
    );
  }
  return decide({ result, prior: priorFromReceiveCount(attempt), job, firstReceivedAt, now, policy: config, random });
}

interface FinishContext {
  readonly attempt: number;
  readonly firstReceivedAt: number;
  readonly messageId: string;
  readonly jobId: string | undefined;
  readonly job?: SendJob;
  readonly sent?: SendAttempt;
  readonly detail?: string;
}

async function finish(
  record: SQSRecord,
  runtime: SenderRuntime,
  outcome: Outcome,
  ctx: FinishContext,
): Promise<void> {
  const { logger, metrics, config } = runtime;
  const attempted = ctx.sent?.kind === 'attempted' ? ctx.sent : undefined;
  const lastStatus = attempted ? lastOf(attempted) : undefined;
  const line = {
    job_id: ctx.jobId,
    message_id: ctx.messageId,
    attempt: ctx.attempt,
    status: lastStatus,
    statuses: attempted && attempted.sendStatuses.length > 1 ? attempted.sendStatuses : undefined,
    outcome: outcome.type,
    reason: outcome.type === 'dead_letter' ? outcome.reason : undefined,
    cause: outcome.type === 'retry' ? outcome.cause : undefined,
    retry_in_seconds: outcome.type === 'retry' ? outcome.delaySeconds : undefined,
    uuid: outcome.type === 'delivered' ? outcome.uuid : undefined,
    latency_ms: attempted?.latencyMs,
    auth_failed: attempted?.authFailed || undefined,
    to: ctx.job ? maskRecipient(ctx.job.message.to) : undefined,
    agency_reference: ctx.job?.agencyReference,
    detail: ctx.detail,
    response_excerpt:
      outcome.type === 'dead_letter' || outcome.type === 'retry'
        ? attempted?.excerpt || undefined
        : undefined,
  };
  const authFailed = attempted?.authFailed ?? false;

  switch (outcome.type) {
    case 'delivered':
    case 'duplicate':
      recordOutcome(metrics, outcome, authFailed);
      logger.info('job settled', line);
      return;
    case 'retry':
      recordOutcome(metrics, outcome, authFailed);
      logger.warn('job retried later', line);
      try {
        await hideFor(runtime.sqs, config.sendQueueUrl, record.receiptHandle, outcome.delaySeconds);
      } catch (error) {
        // The record still fails below, so it comes back after the queue's own visibility timeout: not lost.
        logger.error('could not set the retry delay', { job_id: ctx.jobId, error_name: errorName(error) });
      }
      throw new RetryLaterError(ctx.jobId, outcome.delaySeconds);
    case 'dead_letter': {
      const info: DeadLetterInfo = {
        reason: outcome.reason,
        jobId: ctx.jobId,
        lastStatus,
        attempts: ctx.attempt,
        firstAttemptAt: ctx.firstReceivedAt,
        detail: ctx.detail,
        responseExcerpt: attempted?.excerpt || undefined,
      };
      // If this throws, the record fails and stays on the send queue: a job is never dropped.
      await sendToDeadLetterQueue(runtime.sqs, config.deadLetterQueueUrl, record.body, info, runtime.now());
      recordOutcome(metrics, outcome, authFailed);
      logger.error('job dead-lettered', line);
      return;
    }
  }
}

function lastOf(attempted: Extract<SendAttempt, { kind: 'attempted' }>): number | 'timeout' | 'connection' {
  const { result } = attempted;
  return result.kind === 'response' ? result.status : result.error;
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
