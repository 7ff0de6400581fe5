import type { SQSRecord } from 'aws-lambda';
import { parseLastStatus } from '#shared/ecourtdate/status.ts';
import type { Outcome } from '#shared/outcome.ts';
import { hideSeconds } from '#shared/policy.ts';
import { maskRecipient } from '#shared/redact.ts';
import {
  afterLedgerFailure,
  afterQueueFailure,
  afterSettledStepFailure,
  type DecideContext,
  type Decision,
} from '#shared/sender/decide.ts';
import { recordAlreadySettled, recordApiAnswer, recordOutcome } from '#shared/sender/metrics.ts';
import { LOG_MESSAGE, type SenderRuntime, type Settlement } from '#shared/sender/runtime.ts';
import type { JobSettledDetail } from '#shared/sender/settled-event.ts';
import type { RecordContext } from '#shared/sender/stages.ts';
import { messageGroupOf, recordMessageGroup } from '#shared/sqs/message-group.ts';
import { hideFor, requeueCopy, sendToDeadLetterQueue } from '#shared/sqs/settle.ts';

/** What an effect came to: done (with its value), or the name of the error that stopped it. */
type Done<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errorName: string };

/**
 * Carries out a decision: the only code of the sender with ledger, SQS, log and metric effects. In order: the
 * instance's pacing (a 429), the API answers' metrics, the ledger settle, the uuid index (webhooks on) and the
 * `eCourtDate Job Settled` event, then the SQS action, then one log line and the outcome metrics. When an effect
 * fails, the matching fallback decision (pure, in decide.ts) replaces the rest: a ledger write that failed becomes
 * a fresh copy carrying the answer; a failed step after the settle, a fresh copy that does it again; a refused
 * SQS action, the next SQS action down (re-queue, hide, leave). Never rejects.
 */
export async function applyDecision(
  context: RecordContext,
  decision: Decision,
  runtime: SenderRuntime,
): Promise<Settlement> {
  pace(decision, runtime);
  for (const status of decision.facts.sent?.sendStatuses ?? []) recordApiAnswer(runtime.metrics, status);
  let current = decision;
  let deadLetterToken = decision.deadLetterToken;
  // The ledger's event token this record holds: it publishes the job's first, unmarked Job Settled event.
  let eventToken: string | undefined;
  if (decision.settle) {
    if (decision.action === 'dead_letter') deadLetterToken = runtime.token();
    // A replay's settle keeps the entry's token: the settlement's first event is still its holder's to publish.
    eventToken = decision.replayed === true ? undefined : runtime.token();
    const written = await writeSettle(context, decision, { deadLetterToken, eventToken }, runtime);
    if (!written.ok || written.value === 'conflict') {
      const failure = written.ok ? ('conflict' as const) : { errorName: written.errorName };
      return applyQueueAction(
        context,
        afterLedgerFailure(decision, failure, decideContext(runtime), eventToken),
        runtime,
      );
    }
    current = { ...decision, facts: { ...decision.facts, attempts: written.value.sends } };
  } else if (decision.eventClaim !== undefined) {
    const taken = await takeOverEvent(decision.eventClaim, runtime);
    if (!taken.ok) {
      return applyQueueAction(
        context,
        afterSettledStepFailure(decision, taken.errorName, decideContext(runtime), taken.holds),
        runtime,
      );
    }
    if (taken.eventToken !== undefined) {
      eventToken = taken.eventToken;
      current = { ...decision, replayed: false };
    }
  }
  const after = await afterSettle(current, runtime);
  if (!after.ok) {
    const held = current.replayed === true ? undefined : eventToken;
    return applyQueueAction(
      context,
      afterSettledStepFailure(current, after.errorName, decideContext(runtime), held),
      runtime,
    );
  }
  return applyQueueAction(context, current, runtime, deadLetterToken);
}

/**
 * Takes the ledger's event token over from the one this copy holds (`JobLedger.claimEvent`), so that of all the
 * twins of the copy only one publishes the job's first, unmarked `eCourtDate Job Settled` event. `eventToken`:
 * the token now held (undefined: another holder took it, this event is a replay). When the take-over failed, or
 * the entry changed under it, `holds` is what the next copy holds: both tokens when the write's answer was lost
 * (the ledger holds one of them).
 */
async function takeOverEvent(
  claim: NonNullable<Decision['eventClaim']>,
  runtime: SenderRuntime,
): Promise<
  | { readonly ok: true; readonly eventToken: string | undefined }
  | { readonly ok: false; readonly errorName: string; readonly holds: string }
> {
  const next = runtime.token();
  const claimed = await attempt(() => runtime.ledger.claimEvent({ ...claim, next, token: next }));
  if (!claimed.ok) return { ok: false, errorName: claimed.errorName, holds: `${claim.held},${next}` };
  if (claimed.value === 'busy') {
    return { ok: false, errorName: 'the ledger entry changed meanwhile', holds: claim.held };
  }
  return { ok: true, eventToken: claimed.value === 'claimed' ? next : undefined };
}

function pace(decision: Decision, runtime: SenderRuntime): void {
  // Slow the whole instance down, not just this record: the rest of the batch waits for the window too.
  if (decision.blockMs !== undefined) runtime.pacer.block(decision.blockMs);
  if (decision.suspectHintSeconds !== undefined) {
    runtime.logger.warn(LOG_MESSAGE.suspectHint, {
      job_id: decision.facts.jobId,
      hint_seconds: decision.suspectHintSeconds,
      capped_to_seconds: runtime.config.rateLimitHintMaxSeconds,
    });
  }
}

/** The ledger settle: written (returning the entry's sends), a conflict, or the error that stopped it. */
async function writeSettle(
  context: RecordContext,
  decision: Decision,
  tokens: { readonly deadLetterToken: string | undefined; readonly eventToken: string | undefined },
  runtime: SenderRuntime,
): Promise<Done<{ readonly sends: number } | 'conflict'>> {
  const settle = decision.settle;
  if (!settle) return { ok: true, value: { sends: decision.facts.attempts } };
  const { facts } = decision;
  return attempt(async () => {
    const written = await runtime.ledger.settle({
      entry: settle.entry,
      token: runtime.token(),
      now: runtime.now(),
      attempt: settle.attempt,
      lastStatus: facts.lastStatus === undefined ? undefined : String(facts.lastStatus),
      outcome: decision.outcome,
      messageId: context.record.messageId,
      detail: facts.detail,
      deadLetterToken: tokens.deadLetterToken,
      eventToken: tokens.eventToken,
      // Read (and so redacted) only for a dead letter: kept for its copies' dead letters.
      excerpt: decision.outcome.type === 'dead_letter' ? excerptOf(facts) : undefined,
    });
    return written.kind === 'written' ? { sends: written.entry.sends } : ('conflict' as const);
  });
}

/**
 * The steps after the settle, before SQS is told: the uuid index of a delivered job (webhooks on; again for a copy
 * of a delivered job, in case the first write failed: it is idempotent), and the `eCourtDate Job Settled` event
 * of a settled job (published at least once). If either fails, the record comes back as a fresh copy.
 */
async function afterSettle(decision: Decision, runtime: SenderRuntime): Promise<Done<void>> {
  const { outcome, facts } = decision;
  if (runtime.delivery && outcome.type === 'delivered' && outcome.uuid && facts.jobId) {
    const delivery = runtime.delivery;
    const jobId = facts.jobId;
    const uuid = outcome.uuid;
    const indexed = await attempt(() => delivery.putUuidIndex(uuid, jobId));
    if (!indexed.ok) return indexed;
  }
  // An id_conflict body is not the job its id names: the verdict on that job is its own, so none is published.
  const conflict = outcome.type === 'dead_letter' && outcome.reason === 'id_conflict';
  if (runtime.settledEvents && outcome.type !== 'retry' && !conflict) {
    const events = runtime.settledEvents;
    const detail = settledDetail(decision, outcome, runtime.now());
    const published = await attempt(() => events.publish(detail));
    if (!published.ok) return published;
    if (!published.value.ok) return { ok: false, errorName: published.value.errorCode };
  }
  return { ok: true, value: undefined };
}

/** Tells SQS what becomes of the message, falling back down the actions when SQS refuses; then reports. */
async function applyQueueAction(
  context: RecordContext,
  decision: Decision,
  runtime: SenderRuntime,
  deadLetterToken?: string,
): Promise<Settlement> {
  const { config } = runtime;
  const { record } = context;
  const delay = decision.delaySeconds ?? 0;
  let done: Done<{ requeuedAs?: string; detail?: string }>;
  switch (decision.action) {
    case 'acknowledge':
      return report(runtime, context, decision, 'acknowledged');
    case 'dead_letter':
      done = await attempt(() => deadLetter(decision, context, runtime, deadLetterToken));
      if (done.ok) return report(runtime, context, withDetail(decision, done.value.detail), 'dead_lettered');
      break;
    case 'requeue':
      done = await attempt(async () => {
        const copy = await requeueCopy(runtime.sqs, config.sendQueueUrl, record, delay, runtime.now(), {
          ...decision.copy,
          messageGroupId: messageGroupOfDecision(decision, record),
        });
        return { requeuedAs: copy.messageId };
      });
      if (done.ok) return report(runtime, context, decision, 'requeued', done.value.requeuedAs);
      break;
    case 'hide':
      done = await attempt(async () => {
        await hideFor(runtime.sqs, config.sendQueueUrl, record.receiptHandle, hideSeconds(delay));
        return {};
      });
      // The record fails either way; without the new visibility it comes back after the queue's own timeout.
      return report(runtime, context, decision, done.ok ? 'hidden' : 'left');
  }
  runtime.logger.error('SQS refused the action; falling back', {
    job_id: decision.facts.jobId,
    message_id: record.messageId,
    action: decision.action,
    error_name: done.errorName,
  });
  const fallback = afterQueueFailure(decision, decideContext(runtime));
  return fallback ? applyQueueAction(context, fallback, runtime) : report(runtime, context, decision, 'left');
}

async function deadLetter(
  decision: Decision,
  context: RecordContext,
  runtime: SenderRuntime,
  deadLetterToken: string | undefined,
): Promise<{ detail?: string }> {
  const { facts, outcome } = decision;
  const reason = outcome.type === 'dead_letter' ? outcome.reason : 'retries_exhausted';
  const { droppedAttributes } = await sendToDeadLetterQueue(
    runtime.sqs,
    runtime.config.deadLetterQueueUrl,
    context.record.body,
    {
      reason,
      jobId: facts.jobId,
      lastStatus: facts.lastStatus,
      attempts: facts.attempts,
      firstAttemptAt: facts.firstAttemptAt,
      detail: facts.detail,
      responseExcerpt: excerptOf(facts),
      deadLetterId: deadLetterToken,
      messageGroupId: messageGroupOfDecision(decision, context.record),
    },
    runtime.now(),
  );
  if (droppedAttributes.length === 0) return {};
  return {
    detail:
      `${facts.detail ?? ''} (body too large for these dead-letter attributes: ${droppedAttributes.join(', ')})`.trim(),
  };
}

/**
 * The `MessageGroupId` of a record's copies and dead letter: its job's group when the body is a valid job, else
 * the group the record came with (docs/pacing.md, "Fairness").
 */
function messageGroupOfDecision(decision: Decision, record: SQSRecord): string | undefined {
  const { job } = decision.facts;
  return job ? messageGroupOf(job.agencyReference) : recordMessageGroup(record);
}

/** One structured log line and the outcome metrics for what became of a record; its settlement. */
function report(
  runtime: SenderRuntime,
  context: RecordContext,
  decision: Decision,
  applied: Settlement['applied'],
  requeuedAs?: string,
): Settlement {
  const { facts, outcome } = decision;
  const { sent } = facts;
  const alreadySettled = decision.alreadySettled === true && applied === 'acknowledged';
  const excerpt = outcome.type === 'delivered' || outcome.type === 'duplicate' ? undefined : excerptOf(facts);
  const settlement: Settlement = {
    messageId: context.record.messageId,
    jobId: facts.jobId,
    applied,
    batchItemFailure: applied === 'hidden' || applied === 'left',
    outcome,
    alreadySettled,
    attempts: facts.attempts,
    lastStatus: facts.lastStatus,
    detail: facts.detail,
    responseExcerpt: excerpt,
    requeuedAs,
    retryInSeconds: outcome.type === 'retry' ? outcome.delaySeconds : undefined,
  };
  if (alreadySettled) {
    recordAlreadySettled(runtime.metrics);
    publishRecordMetrics(runtime);
    runtime.logger.info(LOG_MESSAGE.alreadySettled, {
      job_id: facts.jobId,
      message_id: context.record.messageId,
      outcome: outcome.type,
    });
    return settlement;
  }
  recordOutcome(runtime.metrics, outcome, sent?.authFailed ?? false);
  publishRecordMetrics(runtime);
  const line = logLine(context, decision, settlement);
  if (applied === 'dead_lettered') runtime.logger.error(LOG_MESSAGE.deadLettered, line);
  else if (applied === 'left') runtime.logger.error(LOG_MESSAGE.left, line);
  else if (applied === 'requeued') runtime.logger.warn(LOG_MESSAGE.requeued, line);
  else if (applied === 'hidden') runtime.logger.warn(LOG_MESSAGE.retried, line);
  else if (outcome.type === 'retry') runtime.logger.warn(LOG_MESSAGE.handedOver, line);
  else runtime.logger.info(LOG_MESSAGE.settled, line);
  return settlement;
}

/**
 * Writes the record's metrics (its answers' statuses and its outcome) as EMF now, not when the invocation returns:
 * an invocation Lambda stops at its timeout never returns, and a 403 or a persisting 401 it met must still reach
 * the Forbidden403 and AuthFailing alarms (docs/runbook.md).
 */
function publishRecordMetrics(runtime: SenderRuntime): void {
  runtime.metrics.publishStoredMetrics();
}

function logLine(
  context: RecordContext,
  decision: Decision,
  settlement: Settlement,
): Record<string, unknown> {
  const { facts, outcome } = decision;
  const { sent } = facts;
  return {
    job_id: facts.jobId,
    message_id: context.record.messageId,
    attempt: facts.attempts,
    status: facts.lastStatus,
    statuses: sent && sent.sendStatuses.length > 1 ? sent.sendStatuses : undefined,
    outcome: outcome.type,
    reason: outcome.type === 'dead_letter' ? outcome.reason : undefined,
    ended_by: outcome.type === 'dead_letter' ? outcome.endedBy : undefined,
    cause: outcome.type === 'retry' ? outcome.cause : undefined,
    retry_in_seconds: settlement.retryInSeconds,
    requeued_as: settlement.requeuedAs,
    receive_count: context.receiveCount,
    uuid: outcome.type === 'delivered' ? outcome.uuid : undefined,
    latency_ms: sent?.latencyMs,
    auth_failed: sent?.authFailed || undefined,
    to: facts.job ? maskRecipient(facts.job.message.to) : undefined,
    agency_reference: facts.job?.agencyReference,
    // What eCourtDate may refuse or read otherwise in a valid job (docs/contract.md, "The send job").
    warnings: facts.job?.warnings.length ? facts.job.warnings : undefined,
    detail: facts.detail,
    response_excerpt: settlement.responseExcerpt,
  };
}

/** The `eCourtDate Job Settled` detail of a settled record. */
function settledDetail(
  decision: Decision,
  outcome: Exclude<Outcome, { type: 'retry' }>,
  now: number,
): JobSettledDetail {
  const { facts } = decision;
  return {
    job_id: facts.jobId ?? null,
    outcome: outcome.type === 'dead_letter' ? 'dead_lettered' : outcome.type,
    ...(outcome.type === 'dead_letter' ? { reason: outcome.reason } : {}),
    ...(outcome.type === 'delivered' && outcome.uuid ? { uuid: outcome.uuid } : {}),
    attempts: facts.attempts,
    ...lastStatusField(facts.lastStatus),
    settled_at: new Date(now).toISOString(),
    ...(decision.replayed ? { replayed: true as const } : {}),
  };
}

/**
 * `last_status` as the event publishes it (schemas/job-settled.schema.json): an HTTP status as a number, else
 * the word; absent when nothing was sent. A replay reads it from the ledger's text form (`"201"`, `none`), the
 * first publication from the answer itself, so both publish the same value.
 */
function lastStatusField(lastStatus: number | string | undefined): { last_status?: number | string } {
  const status = typeof lastStatus === 'string' ? parseLastStatus(lastStatus) : lastStatus;
  return status === undefined || status === null ? {} : { last_status: status };
}

/** The redacted excerpt of eCourtDate's answer: this invocation's (redacted on this read), or the one kept. */
function excerptOf(facts: Decision['facts']): string | undefined {
  return facts.sent?.excerpt || facts.excerpt || undefined;
}

function withDetail(decision: Decision, detail: string | undefined): Decision {
  return detail === undefined ? decision : { ...decision, facts: { ...decision.facts, detail } };
}

function decideContext(runtime: SenderRuntime): DecideContext {
  return { config: runtime.config, now: runtime.now(), random: runtime.random };
}

/** Runs an effect and turns its failure into a value naming the error (messages may quote request data). */
async function attempt<T>(effect: () => Promise<T>): Promise<Done<T>> {
  try {
    return { ok: true, value: await effect() };
  } catch (error) {
    return { ok: false, errorName: error instanceof Error ? error.name : typeof error };
  }
}
