import type { SQSRecord } from 'aws-lambda';
import type { AttemptResult } from '#shared/policy.ts';

/**
 * The message attributes the relay reads and writes on SQS messages, and pure readers of a received record's
 * attributes (docs/sqs-limits.md, "Dead-letter attributes" and "Fresh copies"). No SDK import: the functions that
 * send to SQS are in `shared/sqs/settle.ts`.
 */

/** Names of the message attributes on a dead-lettered job, for operators and the CLI. */
export const DLQ_ATTRIBUTE = {
  reason: 'reason',
  jobId: 'job_id',
  lastStatus: 'last_status',
  attempts: 'attempts',
  firstAttemptAt: 'first_attempt_at',
  deadLetteredAt: 'dead_lettered_at',
  detail: 'detail',
  responseExcerpt: 'response_excerpt',
  /**
   * The dead letter's redrive token, also kept in the job's ledger entry: a redriven message carrying the token
   * the ledger holds starts one new generation (docs/ledger.md, "Redrives").
   */
  deadLetterId: 'dead_letter_id',
} as const;

/**
 * Names of the message attributes the sender puts on a fresh copy of a record (`requeueCopy`):
 * - `requeued_from`: the SQS message id of the first message of the chain of copies (String);
 * - `first_received_at`: epoch ms of the first receipt of that first message (Number);
 * - `carried_answer`: the open attempt whose settle could not be written, and eCourtDate's answer to it (String,
 *   JSON `CarriedAnswer`), so that a known answer is never turned into an unknown one;
 * - `settled_event_pending`: the job settled but its `eCourtDate Job Settled` event is not out yet (String: the
 *   ledger's `event_token` the settle left the event to; the copy takes it over before it publishes, so that of
 *   all the twins SQS may hand out, one publishes the event's first, unmarked publication).
 */
export const REQUEUE_ATTRIBUTE = {
  requeuedFrom: 'requeued_from',
  firstReceivedAt: 'first_received_at',
  carriedAnswer: 'carried_answer',
  settledEventPending: 'settled_event_pending',
} as const;

/**
 * An attempt the ledger still holds open, carried on a fresh copy of its record because its settle could not be
 * written (DynamoDB failed): its attempt token, and eCourtDate's answer when a request went out (`result`
 * absent: nothing was sent). The copy settles that attempt with the answer instead of sending again.
 */
export interface CarriedAnswer {
  readonly token: string;
  /**
   * Claim tokens of this copy's chain other than `token` whose writes failed (DynamoDB may have applied one): any of
   * them may be the attempt the ledger holds open for it, which sent nothing. Beside an answer, the claims made after
   * that answer was used. At most 31.
   */
  readonly also?: readonly string[] | undefined;
  readonly result?: AttemptResult | undefined;
  /** The last HTTP status or transport failure, for the log and the ledger. */
  readonly last_status?: number | string | undefined;
  /** Why, in a sentence (never message text). */
  readonly detail?: string | undefined;
  /** The redacted excerpt of eCourtDate's answer (never message text or a recipient), for a dead letter. */
  readonly excerpt?: string | undefined;
}

/**
 * Epoch ms of the job's first receipt: the `first_received_at` a fresh copy carries, else SQS's
 * `ApproximateFirstReceiveTimestamp` of this message; undefined when the record has neither.
 */
export function firstReceivedAt(record: SQSRecord): number | undefined {
  const carried = Number(stringAttribute(record, REQUEUE_ATTRIBUTE.firstReceivedAt));
  if (Number.isSafeInteger(carried) && carried > 0) return carried;
  const approximate = Number(record.attributes?.ApproximateFirstReceiveTimestamp);
  return Number.isSafeInteger(approximate) && approximate > 0 ? approximate : undefined;
}

/** SQS's receive count of the record, at least 1. */
export function receiveCount(record: SQSRecord): number {
  return Math.max(1, Number(record.attributes?.ApproximateReceiveCount) || 1);
}

/** The redrive token a redriven dead letter carries (`dead_letter_id`), if any. */
export function redriveTokenOf(record: SQSRecord): string | undefined {
  return stringAttribute(record, DLQ_ATTRIBUTE.deadLetterId);
}

/**
 * The attempt token a copy made after its job settled carries when the job's `eCourtDate Job Settled` event is not
 * out yet (`settled_event_pending`); undefined on any other record.
 */
export function settledEventPending(record: SQSRecord): string | undefined {
  return stringAttribute(record, REQUEUE_ATTRIBUTE.settledEventPending);
}

/** The answer a fresh copy carries (`carried_answer`), or undefined when it carries none or an unreadable one. */
export function carriedAnswerOf(record: SQSRecord): CarriedAnswer | undefined {
  const raw = stringAttribute(record, REQUEUE_ATTRIBUTE.carriedAnswer);
  if (raw === undefined) return undefined;
  try {
    const parsed = JSON.parse(raw) as Partial<CarriedAnswer> | null;
    if (typeof parsed?.token !== 'string' || parsed.token === '') return undefined;
    return parsed as CarriedAnswer;
  } catch {
    return undefined;
  }
}

/** A String message attribute of a received record, or undefined when absent or empty. */
export function stringAttribute(record: SQSRecord, name: string): string | undefined {
  return record.messageAttributes?.[name]?.stringValue || undefined;
}
