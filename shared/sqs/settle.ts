import {
  ChangeMessageVisibilityCommand,
  type MessageAttributeValue,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { MAX_VISIBILITY_TIMEOUT_SECONDS } from '#shared/config.ts';
import type { DeadLetterReason } from '#shared/outcome.ts';
import { truncate } from '#shared/redact.ts';

/**
 * Keeps a record out of sight for `delaySeconds` before SQS offers it again: the relay's backoff. The
 * caller then reports the record as a batch item failure so that it is not deleted.
 */
export async function hideFor(
  sqs: SQSClient,
  queueUrl: string,
  receiptHandle: string,
  delaySeconds: number,
): Promise<void> {
  const timeout = Math.min(Math.max(Math.round(delaySeconds), 0), MAX_VISIBILITY_TIMEOUT_SECONDS);
  await sqs.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: queueUrl,
      ReceiptHandle: receiptHandle,
      VisibilityTimeout: timeout,
    }),
  );
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
  /** Short, already-redacted excerpt of the last response body. */
  readonly responseExcerpt?: string | undefined;
}

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
} as const;

/** The largest message SQS accepts (body and attributes together). */
export const SQS_MAX_MESSAGE_BYTES = 1_048_576;

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
];

/** Size of a message as SQS counts it: body bytes plus each attribute's name, type and value bytes. */
export function sqsMessageBytes(body: string, attributes: Record<string, MessageAttributeValue>): number {
  let size = Buffer.byteLength(body, 'utf8');
  for (const [name, value] of Object.entries(attributes)) {
    size +=
      Buffer.byteLength(name) +
      Buffer.byteLength(value.DataType ?? '') +
      Buffer.byteLength(value.StringValue ?? '');
  }
  return size;
}

/**
 * Sends the job's original body, unchanged, to the dead-letter queue with the reason and context as message
 * attributes, so that a redrive later sends the very same job back. A body near the size limit keeps as
 * many attributes as fit (the reason last), never a changed body; the names of the dropped attributes are
 * returned for the log. Throws if SQS refuses: the caller then leaves the record on the send queue rather
 * than lose it.
 */
export async function sendToDeadLetterQueue(
  sqs: SQSClient,
  deadLetterQueueUrl: string,
  body: string,
  info: DeadLetterInfo,
  now: number = Date.now(),
): Promise<{ droppedAttributes: string[] }> {
  const attributes: Record<string, MessageAttributeValue> = {
    [DLQ_ATTRIBUTE.reason]: text(info.reason),
    [DLQ_ATTRIBUTE.lastStatus]: text(info.lastStatus === undefined ? 'none' : String(info.lastStatus)),
    [DLQ_ATTRIBUTE.attempts]: { DataType: 'Number', StringValue: String(info.attempts) },
    [DLQ_ATTRIBUTE.firstAttemptAt]: text(new Date(info.firstAttemptAt).toISOString()),
    [DLQ_ATTRIBUTE.deadLetteredAt]: text(new Date(now).toISOString()),
  };
  if (info.jobId) attributes[DLQ_ATTRIBUTE.jobId] = text(info.jobId);
  if (info.detail) attributes[DLQ_ATTRIBUTE.detail] = text(truncate(info.detail, 512));
  if (info.responseExcerpt) attributes[DLQ_ATTRIBUTE.responseExcerpt] = text(info.responseExcerpt);
  const droppedAttributes: string[] = [];
  for (const name of SHED_ORDER) {
    if (sqsMessageBytes(body, attributes) <= SQS_MAX_MESSAGE_BYTES) break;
    if (name in attributes) {
      delete attributes[name];
      droppedAttributes.push(name);
    }
  }
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: deadLetterQueueUrl,
      MessageBody: body,
      MessageAttributes: attributes,
    }),
  );
  return { droppedAttributes };
}

function text(value: string): MessageAttributeValue {
  return { DataType: 'String', StringValue: value };
}
