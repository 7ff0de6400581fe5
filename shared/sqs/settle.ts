import {
  ChangeMessageVisibilityCommand,
  type MessageAttributeValue,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { MAX_DELAY_SECONDS, MAX_HIDE_SECONDS } from '#shared/config.ts';
import type { DeadLetterReason } from '#shared/outcome.ts';
import { truncate } from '#shared/redact.ts';
import {
  type CarriedAnswer,
  DLQ_ATTRIBUTE,
  firstReceivedAt,
  REQUEUE_ATTRIBUTE,
  stringAttribute,
} from '#shared/sqs/attributes.ts';
import { recordMessageGroup } from '#shared/sqs/message-group.ts';

export { DLQ_ATTRIBUTE, firstReceivedAt, REQUEUE_ATTRIBUTE } from '#shared/sqs/attributes.ts';

/**
 * Keeps a received record out of sight for `delaySeconds` (seconds from now) before SQS offers it again: the
 * relay's backoff. The caller then reports the record as a batch item failure so that it is not deleted.
 *
 * SQS refuses a visibility that ends more than 12 h after the ReceiveMessage that produced the receipt handle.
 * The sender does not know that moment, only that it came at most one batching window (300 s) and one whole
 * invocation (900 s) before now, so the wait is capped at `MAX_HIDE_SECONDS` (43,200 - 900 - 300 = 42,000 s).
 * A longer wait is kept by the job ledger's next-attempt time, which hides an early copy again
 * (docs/sqs-limits.md, "Visibility changes").
 *
 * Returns the seconds actually requested. Throws `RangeError` for a NaN delay (a bug: nothing is sent) and
 * whatever SQS throws (a stale receipt handle, an outage).
 */
export async function hideFor(
  sqs: SQSClient,
  queueUrl: string,
  receiptHandle: string,
  delaySeconds: number,
): Promise<number> {
  const timeout = clampSeconds(delaySeconds, MAX_HIDE_SECONDS, 'hide');
  await sqs.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: queueUrl,
      ReceiptHandle: receiptHandle,
      VisibilityTimeout: timeout,
    }),
  );
  return timeout;
}

/** What the dead-letter queue records about why a job ended there; every field is safe to show an operator. */
export interface DeadLetterInfo {
  readonly reason: DeadLetterReason;
  /** The job's id, when the body had a well-formed one. */
  readonly jobId?: string | undefined;
  /** Last HTTP status, or `timeout` / `connection` / `lost`; undefined when nothing was sent. */
  readonly lastStatus?: number | string | undefined;
  readonly attempts: number;
  /** Epoch ms of the first receipt of the job. */
  readonly firstAttemptAt: number;
  /** A human sentence: the validation error naming the field, or what the policy saw. Never message text. */
  readonly detail?: string | undefined;
  /** Short, already-redacted excerpt of the last response body; may hold any character the API sent. */
  readonly responseExcerpt?: string | undefined;
  /** The dead letter's redrive token, as the ledger holds it; absent when the job has no ledger entry. */
  readonly deadLetterId?: string | undefined;
  /**
   * The job's `MessageGroupId` (shared/sqs/message-group.ts), kept on the dead letter so that a redrive by
   * selection sends it back in its agency's group; absent: the dead letter has none.
   */
  readonly messageGroupId?: string | undefined;
}

/** The largest message SQS accepts (body and attributes together; SendMessage, 1 MiB). */
export const SQS_MAX_MESSAGE_BYTES = 1_048_576;

/** The most message attributes SQS accepts on one message. */
export const SQS_MAX_MESSAGE_ATTRIBUTES = 10;

// Every character SQS refuses in a message body or a String attribute value (SendMessage: only #x9 | #xA | #xD |
// #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF are allowed). With the `u` flag a lone surrogate is one code
// point, outside every range, so it is replaced too.
const SQS_DISALLOWED_CHARACTER = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/**
 * `text` with every character SQS refuses (controls such as U+0000, ESC and BEL, U+FFFE, U+FFFF, lone
 * surrogates) replaced by U+FFFD, so that it can be sent as a String attribute value or a body. Text that SQS
 * accepts comes back unchanged. A replacement takes 3 UTF-8 bytes: size a message after sanitising it.
 */
export function sqsSafeText(text: string): string {
  return text.replace(SQS_DISALLOWED_CHARACTER, '\uFFFD');
}

/**
 * Size of a message as SQS counts it: body bytes plus each attribute's name, data type and value bytes (a
 * String value as UTF-8, a Binary value as its bytes).
 */
export function sqsMessageBytes(body: string, attributes: Record<string, MessageAttributeValue>): number {
  let size = Buffer.byteLength(body, 'utf8');
  for (const [name, value] of Object.entries(attributes)) {
    size +=
      Buffer.byteLength(name) +
      Buffer.byteLength(value.DataType ?? '') +
      Buffer.byteLength(value.StringValue ?? '') +
      (value.BinaryValue?.byteLength ?? 0);
  }
  return size;
}

// Shed first when a message would be too large: the least essential, and the largest, attributes.
const SHED_ORDER = [
  DLQ_ATTRIBUTE.responseExcerpt,
  DLQ_ATTRIBUTE.detail,
  DLQ_ATTRIBUTE.deadLetteredAt,
  DLQ_ATTRIBUTE.firstAttemptAt,
  DLQ_ATTRIBUTE.lastStatus,
  DLQ_ATTRIBUTE.attempts,
  DLQ_ATTRIBUTE.jobId,
  DLQ_ATTRIBUTE.reason,
  // Last: without it the dead letter cannot be redriven.
  DLQ_ATTRIBUTE.deadLetterId,
];

// The free-text attributes: the only ones whose content comes from outside the relay's own vocabulary.
const FREE_TEXT = [DLQ_ATTRIBUTE.responseExcerpt, DLQ_ATTRIBUTE.detail];

// SQS's answers to a message it will not take as sent (SendMessage errors); a throttle or an outage is not one.
const REFUSED_MESSAGE = new Set([
  'InvalidParameterValue',
  'InvalidMessageContents',
  'InvalidAttributeName',
  'InvalidAttributeValue',
]);

/**
 * Sends the job's original body, unchanged, to the dead-letter queue with the reason and context as message
 * attributes, so that a redrive later sends the very same job back. Every attribute value holds only characters
 * SQS accepts (`sqsSafeText`), and an empty one is left out. A body near the size limit keeps as many attributes
 * as fit (the reason last), never a changed body. Should SQS still refuse the message, it is sent once more
 * without the free-text attributes (`detail`, `response_excerpt`), so that dead-lettering never depends on what
 * an API response contained (docs/sqs-limits.md, "Dead-letter attributes"). The names of the dropped attributes
 * are returned for the log.
 *
 * Throws if SQS refuses (or fails) anyway: the caller then leaves the record on the send queue rather than lose
 * it.
 */
export async function sendToDeadLetterQueue(
  sqs: SQSClient,
  deadLetterQueueUrl: string,
  body: string,
  info: DeadLetterInfo,
  now: number = Date.now(),
): Promise<{ droppedAttributes: string[] }> {
  const attributes: Record<string, MessageAttributeValue> = {};
  const put = (name: string, value: string | undefined, dataType = 'String') => {
    const safe = value === undefined ? '' : sqsSafeText(value);
    if (safe.length > 0) attributes[name] = { DataType: dataType, StringValue: safe };
  };
  put(DLQ_ATTRIBUTE.reason, info.reason);
  put(DLQ_ATTRIBUTE.lastStatus, info.lastStatus === undefined ? 'none' : String(info.lastStatus));
  put(DLQ_ATTRIBUTE.attempts, Number.isFinite(info.attempts) ? String(info.attempts) : undefined, 'Number');
  put(DLQ_ATTRIBUTE.firstAttemptAt, isoTime(info.firstAttemptAt));
  put(DLQ_ATTRIBUTE.deadLetteredAt, isoTime(now));
  put(DLQ_ATTRIBUTE.jobId, info.jobId);
  put(DLQ_ATTRIBUTE.detail, info.detail === undefined ? undefined : truncate(info.detail, 512));
  put(DLQ_ATTRIBUTE.responseExcerpt, info.responseExcerpt);
  put(DLQ_ATTRIBUTE.deadLetterId, info.deadLetterId);

  const droppedAttributes: string[] = [];
  for (const name of SHED_ORDER) {
    if (sqsMessageBytes(body, attributes) <= SQS_MAX_MESSAGE_BYTES) break;
    if (name in attributes) {
      delete attributes[name];
      droppedAttributes.push(name);
    }
  }
  const send = () =>
    sqs.send(
      new SendMessageCommand({
        QueueUrl: deadLetterQueueUrl,
        MessageBody: body,
        MessageAttributes: attributes,
        ...(info.messageGroupId === undefined ? {} : { MessageGroupId: info.messageGroupId }),
      }),
    );
  try {
    await send();
  } catch (error) {
    const freeText = FREE_TEXT.filter((name) => name in attributes);
    if (!isRefusedMessage(error) || freeText.length === 0) throw error;
    for (const name of freeText) {
      delete attributes[name];
      droppedAttributes.push(name);
    }
    await send();
  }
  return { droppedAttributes };
}

/** What `requeueCopy` sent. */
export interface RequeuedCopy {
  /** The copy's SQS message id. */
  readonly messageId: string;
  /** The `DelaySeconds` requested: the delay asked for, capped at 900. */
  readonly delaySeconds: number;
  /** Attributes of the record not carried over (the producer's own and the dead letter's; see `requeueCopy`). */
  readonly droppedAttributes: readonly string[];
}

/** What a fresh copy carries besides the record's body and attributes (`requeueCopy`). */
export interface CopyOptions {
  /**
   * The open attempt and its answer, when its settle could not be written (`carried_answer`); `null` when the
   * record's carried answer was used (written to the ledger) and the copy is to carry none; absent: the record's.
   */
  readonly carry?: CarriedAnswer | null | undefined;
  /**
   * The job settled but its `eCourtDate Job Settled` event is not out yet (`settled_event_pending`): the
   * ledger's `event_token` the copy is to take over before it publishes.
   */
  readonly settledEventPending?: string | undefined;
  /**
   * Keep the redrive token (`dead_letter_id`): only for a copy of a redriven record whose redrive has not yet
   * started its generation. Every other copy drops it, so a copy the sender made never redrives a job. The other
   * dead-letter attributes are always dropped (they described the dead letter, not this copy).
   */
  readonly keepRedriveToken?: boolean | undefined;
  /**
   * The copy's `MessageGroupId`: the job's group (shared/sqs/message-group.ts). Absent: the record's own, so that
   * a copy never leaves its agency's group of the fair queue (docs/pacing.md, "Fairness").
   */
  readonly messageGroupId?: string | undefined;
}

/**
 * Sends a fresh copy of a received record to `queueUrl`, so that SQS's receive count starts again: the same body,
 * the relay's own attributes only (below; the redrive token when asked for), and `DelaySeconds` =
 * min(`delaySeconds`, 900), SQS's maximum. The caller then
 * acknowledges the original (does not report it as a batch item failure); if this throws, it keeps the original.
 *
 * The copy also carries, in this order of priority and each only when it fits SQS's 10 attributes and 1 MiB:
 * `carried_answer` (`options.carry`, or the one the record carries unless `options.carry` is `null`),
 * `first_received_at` (epoch ms, taken from the record when it is itself a copy, so that a job's life is counted
 * from its first receipt across copies),
 * `settled_event_pending`, and `requeued_from` (docs/sqs-limits.md, "Fresh copies"), and the job's `MessageGroupId`
 * (`options.messageGroupId`, else the record's; docs/pacing.md, "Fairness"). `now` (epoch ms) stands in
 * for a record with no first-receive timestamp. A carried answer that does not fit goes without its `detail` and
 * `excerpt`; one that does not fit even so throws `RangeError`, and the caller hides the original instead (which
 * cannot hold a new answer: it is then lost, as when SQS refuses the copy; docs/contract.md).
 *
 * Throws `RangeError` for a NaN delay, and whatever SQS throws.
 *
 * @example
 * await requeueCopy(sqs, config.sendQueueUrl, record, 3_600); // visible again in 900 s, receive count 1
 */
export async function requeueCopy(
  sqs: SQSClient,
  queueUrl: string,
  record: SQSRecord,
  delaySeconds: number,
  now: number = Date.now(),
  options: CopyOptions = {},
): Promise<RequeuedCopy> {
  const delay = clampSeconds(delaySeconds, MAX_DELAY_SECONDS, 'delay');
  const { attributes, droppedAttributes } = producerAttributes(record, options);
  // What the record carries travels on until it is used: its answer, and the event it is to publish. An answer
  // too big for the copy sheds what only the log and a dead letter read (`detail`, `excerpt`) before it is refused.
  const carry =
    options.carry === null
      ? undefined
      : options.carry === undefined
        ? stringAttribute(record, REQUEUE_ATTRIBUTE.carriedAnswer)
        : JSON.stringify(options.carry);
  const shed =
    options.carry === undefined || options.carry === null
      ? undefined
      : JSON.stringify({ ...options.carry, detail: undefined, excerpt: undefined });
  const pending =
    options.settledEventPending ?? stringAttribute(record, REQUEUE_ATTRIBUTE.settledEventPending);
  const additions: [string, MessageAttributeValue | undefined][] = [
    [
      REQUEUE_ATTRIBUTE.carriedAnswer,
      carry === undefined ? undefined : { DataType: 'String', StringValue: sqsSafeText(carry) },
    ],
    [
      REQUEUE_ATTRIBUTE.firstReceivedAt,
      { DataType: 'Number', StringValue: String(firstReceivedAt(record) ?? Math.trunc(now)) },
    ],
    [
      REQUEUE_ATTRIBUTE.settledEventPending,
      pending ? { DataType: 'String', StringValue: sqsSafeText(pending) } : undefined,
    ],
    [
      REQUEUE_ATTRIBUTE.requeuedFrom,
      {
        DataType: 'String',
        StringValue: sqsSafeText(stringAttribute(record, REQUEUE_ATTRIBUTE.requeuedFrom) ?? record.messageId),
      },
    ],
  ];
  const fits = (name: string, value: MessageAttributeValue) => {
    const candidate = { ...attributes, [name]: value };
    return (
      Object.keys(candidate).length <= SQS_MAX_MESSAGE_ATTRIBUTES &&
      sqsMessageBytes(record.body, candidate) <= SQS_MAX_MESSAGE_BYTES
    );
  };
  for (const [name, value] of additions) {
    if (value === undefined) continue;
    if (fits(name, value)) {
      attributes[name] = value;
    } else if (name === REQUEUE_ATTRIBUTE.carriedAnswer) {
      const lighter = shed === undefined ? undefined : { DataType: 'String', StringValue: sqsSafeText(shed) };
      if (lighter === undefined || !fits(name, lighter)) {
        throw new RangeError(
          'the carried answer does not fit on a copy of this message (10 attributes, 1 MiB)',
        );
      }
      attributes[name] = lighter;
    }
  }
  const group = options.messageGroupId ?? recordMessageGroup(record);
  const sent = await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: record.body,
      MessageAttributes: attributes,
      DelaySeconds: delay,
      ...(group === undefined ? {} : { MessageGroupId: group }),
    }),
  );
  return { messageId: sent.MessageId ?? '', delaySeconds: delay, droppedAttributes };
}

/**
 * The record's attributes a copy keeps: the redrive token when asked for, nothing else. The producer's own
 * attributes are not copied: nothing reads them (the sender reads the body; a dead letter carries only the
 * relay's attributes), and without them the relay's own always fit SQS's 10.
 */
function producerAttributes(
  record: SQSRecord,
  options: CopyOptions,
): { attributes: Record<string, MessageAttributeValue>; droppedAttributes: string[] } {
  const attributes: Record<string, MessageAttributeValue> = {};
  const droppedAttributes: string[] = [];
  for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
    const keep = options.keepRedriveToken === true && name === DLQ_ATTRIBUTE.deadLetterId;
    const converted = keep ? toSendAttribute(value) : undefined;
    if (converted) attributes[name] = converted;
    else if (!(Object.values(REQUEUE_ATTRIBUTE) as string[]).includes(name)) droppedAttributes.push(name);
  }
  return { attributes, droppedAttributes };
}

function toSendAttribute(value: SQSRecord['messageAttributes'][string]): MessageAttributeValue | undefined {
  const dataType = value.dataType;
  if (!dataType) return undefined;
  if (dataType.startsWith('Binary')) {
    return value.binaryValue
      ? { DataType: dataType, BinaryValue: Buffer.from(value.binaryValue, 'base64') }
      : undefined;
  }
  const text = value.stringValue === undefined ? '' : sqsSafeText(value.stringValue);
  return text.length > 0 ? { DataType: dataType, StringValue: text } : undefined;
}

function clampSeconds(seconds: number, max: number, what: string): number {
  if (Number.isNaN(seconds)) throw new RangeError(`the ${what} must be a number of seconds, not NaN`);
  return Math.min(Math.max(Math.round(seconds), 0), max);
}

function isoTime(epochMs: number): string | undefined {
  const date = new Date(epochMs);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function isRefusedMessage(error: unknown): boolean {
  return error instanceof Error && REFUSED_MESSAGE.has(error.name);
}
