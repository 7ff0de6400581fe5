import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { CliError } from '#cli/errors.ts';
import { formatTable } from '#cli/table.ts';
import { awsErrorText, need, type Target } from '#cli/target.ts';
import { parseLastStatus } from '#shared/ecourtdate/status.ts';
import { peekJobId } from '#shared/job.ts';
import { DEAD_LETTER_REASONS } from '#shared/outcome.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';

/**
 * What an operator may see of one dead-lettered job: its dead-letter attributes (README.md, "Alarms and
 * runbook"), never the message text or the recipient. `null` where the message has nothing: a message SQS moved
 * by itself (maxReceiveCount) carries no attribute at all.
 */
export interface DeadLetterView {
  readonly messageId: string;
  /** The job's `id` (attribute `job_id`, else read from the body); null when the body has no readable one. */
  readonly jobId: string | null;
  /** The relay's reason, or null when SQS moved the message itself (maxReceiveCount). */
  readonly reason: string | null;
  /** HTTP status as a number, `timeout`, `connection` or `lost`; null when nothing was sent. */
  readonly lastStatus: number | string | null;
  /** Requests the relay sent to the messages endpoint for the job. */
  readonly attempts: number | null;
  readonly firstAttemptAt: string | null;
  readonly deadLetteredAt: string | null;
  /** Why, in a sentence: the field an invalid job breaks, what the policy saw. */
  readonly detail: string | null;
  /** Short, redacted excerpt of eCourtDate's last answer. */
  readonly responseExcerpt: string | null;
}

/**
 * One dead-lettered job as `dlq list --json` prints it: the same conventions as every `--json` of the CLI and
 * the `npm start` report (snake_case keys, the attribute names; numbers as numbers; null where there is nothing).
 */
export function deadLetterJson(view: DeadLetterView): Record<string, string | number | null> {
  return {
    job_id: view.jobId,
    reason: view.reason,
    last_status: view.lastStatus,
    attempts: view.attempts,
    first_attempt_at: view.firstAttemptAt,
    dead_lettered_at: view.deadLetteredAt,
    detail: view.detail,
    response_excerpt: view.responseExcerpt,
    message_id: view.messageId,
  };
}

export interface ReceiveOptions {
  /** Long-poll wait of each receive: 1 s makes SQS look at all its servers, so nothing is missed. @default 1 */
  readonly waitTimeSeconds?: number;
}

/** How long a listed message stays hidden before the listing puts it back (if the CLI died in between). */
const LIST_HIDE_SECONDS = 30;
/** How long a message being redriven stays hidden: enough to send it and delete it. */
const REDRIVE_HIDE_SECONDS = 120;
const SQS_REDRIVE_LABEL = '(moved by SQS: maxReceiveCount)';

/**
 * `dlq list`: reads up to `max` messages of the dead-letter queue with their attributes, then makes every one
 * visible again at once (ChangeMessageVisibility 0), so listing leaves the queue as it was, apart from
 * receive counts. While the listing runs (seconds), the messages are hidden from other readers.
 */
export async function listDeadLetters(
  target: Target,
  max: number,
  options: ReceiveOptions = {},
): Promise<DeadLetterView[]> {
  const queueUrl = need(target.deadLetterQueueUrl, 'the dead-letter queue', '--dlq-url');
  const seen = new Map<string, Message>();
  const handles: string[] = [];
  try {
    while (seen.size < max) {
      const batch = await receive(
        target.sqs,
        queueUrl,
        Math.min(10, max - seen.size),
        LIST_HIDE_SECONDS,
        options,
      );
      if (batch.length === 0) break;
      for (const message of batch) {
        if (message.ReceiptHandle) handles.push(message.ReceiptHandle);
        if (message.MessageId && !seen.has(message.MessageId)) seen.set(message.MessageId, message);
      }
    }
  } finally {
    await makeVisible(target.sqs, queueUrl, handles);
  }
  return [...seen.values()].map(view);
}

/** The listing as a table with why each job is there (or JSON lines with `json`, see `deadLetterJson`). */
export function renderDeadLetters(views: readonly DeadLetterView[], json: boolean): string {
  if (json) return views.map((v) => JSON.stringify(deadLetterJson(v))).join('\n');
  if (views.length === 0) return 'The dead-letter queue is empty.';
  const table = formatTable(
    ['job_id', 'reason', 'last_status', 'attempts', 'first_attempt_at', 'dead_lettered_at', 'detail'],
    views.map((v) => [
      v.jobId ?? '(no id)',
      v.reason ?? SQS_REDRIVE_LABEL,
      v.lastStatus === null ? '-' : String(v.lastStatus),
      v.attempts === null ? '-' : String(v.attempts),
      v.firstAttemptAt ?? '-',
      v.deadLetteredAt ?? '-',
      [v.detail, v.responseExcerpt === null ? null : `eCourtDate: ${v.responseExcerpt}`]
        .filter((part) => part !== null && part !== '')
        .join('; '),
    ]),
  );
  const byReason = new Map<string, number>();
  for (const v of views)
    byReason.set(v.reason ?? SQS_REDRIVE_LABEL, (byReason.get(v.reason ?? SQS_REDRIVE_LABEL) ?? 0) + 1);
  const counts = [...byReason].map(([reason, n]) => `${reason} ${n}`).join(', ');
  return `${table}\n\n${views.length} dead-lettered job(s): ${counts}`;
}

export interface RedriveResult {
  /** `move-task`: StartMessageMoveTask started; `resend`: matching messages sent back and deleted. */
  readonly kind: 'move-task' | 'resend';
  readonly taskHandle?: string | undefined;
  readonly moved: number;
  /** Messages looked at and left on the dead-letter queue (another reason). */
  readonly kept: number;
}

/**
 * `dlq redrive`: without a reason, an SQS message move task from the dead-letter queue to the send queue
 * (the same bodies go back, a fixed job just works). With a reason, receive-and-resend: each message whose
 * `reason` attribute matches is sent to the send queue with its body unchanged, then deleted from the
 * dead-letter queue; the others, and any dead-lettered after the redrive began, are made visible again. A
 * crash between the send and the delete leaves a copy in both queues, which the sender's job ledger settles once.
 */
export async function redriveDeadLetters(
  target: Target,
  reason: string | undefined,
  options: ReceiveOptions & { readonly now?: () => number } = {},
): Promise<RedriveResult> {
  if (reason === undefined) return startMoveTask(target);
  if (!(DEAD_LETTER_REASONS as readonly string[]).includes(reason)) {
    throw new CliError(`--reason: expected one of ${DEAD_LETTER_REASONS.join(', ')}, got "${reason}"`);
  }
  const dlqUrl = need(target.deadLetterQueueUrl, 'the dead-letter queue', '--dlq-url');
  const sendUrl = need(target.sendQueueUrl, 'the send queue', '--send-queue-url');
  // Only what was dead-lettered before the redrive began: a job that fails again while the redrive runs comes
  // back to the dead-letter queue as a new message, and must not be sent round again (and again).
  const cutoff = (options.now ?? Date.now)();
  const keep: string[] = [];
  const keptIds = new Set<string>();
  let moved = 0;
  try {
    for (;;) {
      const batch = await receive(target.sqs, dlqUrl, 10, REDRIVE_HIDE_SECONDS, options);
      if (batch.length === 0) break;
      for (const message of batch) {
        if (!message.ReceiptHandle) continue;
        const sentAt = Number(message.Attributes?.SentTimestamp);
        if (attribute(message, DLQ_ATTRIBUTE.reason) !== reason || sentAt > cutoff) {
          keep.push(message.ReceiptHandle);
          if (message.MessageId) keptIds.add(message.MessageId);
          continue;
        }
        // The dead-letter attributes travel with it, as with SQS's move task: they mark an operator's redrive.
        await target.sqs.send(
          new SendMessageCommand({
            QueueUrl: sendUrl,
            MessageBody: message.Body ?? '',
            MessageAttributes: message.MessageAttributes,
          }),
        );
        await target.sqs.send(
          new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: message.ReceiptHandle }),
        );
        moved += 1;
      }
    }
  } finally {
    await makeVisible(target.sqs, dlqUrl, keep);
  }
  return { kind: 'resend', moved, kept: keptIds.size };
}

async function startMoveTask(target: Target): Promise<RedriveResult> {
  const sourceArn =
    target.deadLetterQueueArn ?? (await queueArn(target, target.deadLetterQueueUrl, '--dlq-url'));
  const destinationArn =
    target.sendQueueArn ?? (await queueArn(target, target.sendQueueUrl, '--send-queue-url'));
  try {
    const out = await target.sqs.send(
      new StartMessageMoveTaskCommand({ SourceArn: sourceArn, DestinationArn: destinationArn }),
    );
    return { kind: 'move-task', taskHandle: out.TaskHandle, moved: 0, kept: 0 };
  } catch (error) {
    throw new CliError(
      `StartMessageMoveTask failed: ${awsErrorText(error)}. An SQS emulator (the local pipeline) may not ` +
        'support it: redrive by reason instead (--reason <reason>, see "dlq list")',
      { cause: error },
    );
  }
}

async function queueArn(target: Target, url: string | undefined, option: string): Promise<string> {
  const queueUrl = need(url, option === '--dlq-url' ? 'the dead-letter queue' : 'the send queue', option);
  const out = await target.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  const arn = out.Attributes?.QueueArn;
  if (!arn) throw new CliError(`SQS did not report the ARN of ${queueUrl}`);
  return arn;
}

async function receive(
  sqs: SQSClient,
  queueUrl: string,
  count: number,
  hideSeconds: number,
  options: ReceiveOptions,
): Promise<Message[]> {
  const out = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: count,
      VisibilityTimeout: hideSeconds,
      WaitTimeSeconds: options.waitTimeSeconds ?? 1,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['All'],
    }),
  );
  return out.Messages ?? [];
}

async function makeVisible(sqs: SQSClient, queueUrl: string, handles: readonly string[]): Promise<void> {
  for (let start = 0; start < handles.length; start += 10) {
    const chunk = handles.slice(start, start + 10);
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((handle, index) => ({
          Id: String(index),
          ReceiptHandle: handle,
          VisibilityTimeout: 0,
        })),
      }),
    );
  }
}

function view(message: Message): DeadLetterView {
  const attempts = Number(attribute(message, DLQ_ATTRIBUTE.attempts) ?? Number.NaN);
  return {
    messageId: message.MessageId ?? '',
    // A message SQS moved on its own has no attributes: its id is read from the body, nothing else.
    jobId: attribute(message, DLQ_ATTRIBUTE.jobId) ?? peekJobId(message.Body ?? '') ?? null,
    reason: attribute(message, DLQ_ATTRIBUTE.reason) ?? null,
    lastStatus: parseLastStatus(attribute(message, DLQ_ATTRIBUTE.lastStatus)),
    attempts: Number.isInteger(attempts) ? attempts : null,
    firstAttemptAt: attribute(message, DLQ_ATTRIBUTE.firstAttemptAt) ?? null,
    deadLetteredAt: attribute(message, DLQ_ATTRIBUTE.deadLetteredAt) ?? null,
    detail: attribute(message, DLQ_ATTRIBUTE.detail) ?? null,
    responseExcerpt: attribute(message, DLQ_ATTRIBUTE.responseExcerpt) ?? null,
  };
}

function attribute(message: Message, name: string): string | undefined {
  return message.MessageAttributes?.[name]?.StringValue;
}
