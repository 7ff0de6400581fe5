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

/**
 * How one pass over the dead-letter queue runs. A pass receives each message once, hidden for `hideSeconds`;
 * it ends when the queue has nothing more to give, when a receive returns only messages the pass already had
 * (their hide ran out: the pass has been round the queue), or when `budgetMs` is spent. The budget is shorter
 * than the hide, so that the first message received is still hidden when the pass stops.
 */
export interface PassOptions extends ReceiveOptions {
  /** Seconds each received message stays hidden. @default 30 (list), 120 (redrive) */
  readonly hideSeconds?: number;
  /** Milliseconds after which the pass receives no more. @default 20,000 (list), 90,000 (redrive) */
  readonly budgetMs?: number;
  /** Epoch ms: the clock of the budget, and of the redrive's cutoff. @default Date.now */
  readonly now?: () => number;
}

/**
 * Why a pass stopped while the queue may still hold messages it did not see: `max`, the `--max` of `dlq list`;
 * `seen_again`, a receive brought only messages the pass already had; `time_budget`, the budget was spent.
 */
export type StopReason = 'max' | 'seen_again' | 'time_budget';

const LIST_PASS = { hideSeconds: 30, budgetMs: 20_000 } as const;
// Enough to send and delete each message of a batch; the messages a redrive leaves are shown again at its end.
const REDRIVE_PASS = { hideSeconds: 120, budgetMs: 90_000 } as const;
const SQS_REDRIVE_LABEL = '(moved by SQS: maxReceiveCount)';

/** A message as SQS always returns it: with an id and a receipt handle. */
type Received = Message & { readonly MessageId: string; readonly ReceiptHandle: string };

/** `dlq list`: the jobs listed, and how complete the listing is. */
export interface DeadLetterListing {
  /** Each message listed once, in the order received. */
  readonly views: readonly DeadLetterView[];
  /** Why the listing stopped before the queue had nothing more to give; null when it had nothing more. */
  readonly stoppedEarly: StopReason | null;
  /** Messages visible when the listing began (ApproximateNumberOfMessages); null when SQS did not say. */
  readonly visibleAtStart: number | null;
  /**
   * Messages in flight when the listing began (ApproximateNumberOfMessagesNotVisible): received by another
   * reader and hidden, so not listed. Null when SQS did not say.
   */
  readonly notVisibleAtStart: number | null;
  readonly max: number;
  readonly hideSeconds: number;
  readonly budgetMs: number;
}

/**
 * `dlq list`: one pass over the dead-letter queue (see `PassOptions`), at most `max` messages, each listed once
 * with its attributes; then every message received is made visible again at once (ChangeMessageVisibility 0),
 * so listing leaves the queue as it was, apart from receive counts. While the listing runs, the messages are
 * hidden from other readers.
 */
export async function listDeadLetters(
  target: Target,
  max: number,
  options: PassOptions = {},
): Promise<DeadLetterListing> {
  const queueUrl = need(target.deadLetterQueueUrl, 'the dead-letter queue', '--dlq-url');
  const settings = passSettings(LIST_PASS, options);
  const counts = await approximateCounts(target.sqs, queueUrl);
  const listed = new Map<string, Message>();
  // The newest receipt handle of each message: SQS takes no other once a message was received again.
  const handles = new Map<string, string>();
  let stop: StopReason | null;
  try {
    stop = await onePass(
      target.sqs,
      queueUrl,
      settings,
      async (message) => {
        handles.set(message.MessageId, message.ReceiptHandle);
        if (!listed.has(message.MessageId)) listed.set(message.MessageId, message);
      },
      () => max - listed.size,
    );
  } finally {
    await makeVisible(target.sqs, queueUrl, [...handles.values()]);
  }
  // At --max with no more than that on the queue, the listing is whole.
  const whole = stop === 'max' && counts.visible !== null && counts.visible <= listed.size;
  return {
    views: [...listed.values()].map(view),
    stoppedEarly: whole ? null : stop,
    visibleAtStart: counts.visible,
    notVisibleAtStart: counts.notVisible,
    max,
    hideSeconds: settings.hideSeconds,
    budgetMs: settings.budgetMs,
  };
}

/**
 * The listing as a table with why each job is there, or with `json` one JSON object per line (see
 * `deadLetterJson`) and, when the listing stopped early, a last line `{"stopped_early": {...}}` with the reason
 * and the number listed.
 */
export function renderDeadLetters(listing: DeadLetterListing, json: boolean): string {
  const { views } = listing;
  if (json) {
    const lines = views.map((v) => JSON.stringify(deadLetterJson(v)));
    if (listing.stoppedEarly !== null) lines.push(JSON.stringify(stoppedEarlyJson(listing)));
    return lines.join('\n');
  }
  if (views.length === 0) return 'The dead-letter queue has no visible message.';
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

/** `dlq list --json`'s last line when the listing stopped early: one key, snake_case as every `--json`. */
export function stoppedEarlyJson(listing: DeadLetterListing): Record<string, unknown> {
  return {
    stopped_early: {
      reason: listing.stoppedEarly,
      listed: listing.views.length,
      visible_at_start: listing.visibleAtStart,
      not_visible_at_start: listing.notVisibleAtStart,
    },
  };
}

/**
 * What the operator should know about what the listing did not show, and what to do next: why it stopped
 * early, and the messages in flight. Empty when the listing is the whole queue.
 */
export function listingNotes(listing: DeadLetterListing): string[] {
  const notes: string[] = [];
  const listed = listing.views.length;
  const about =
    listing.visibleAtStart === null ? '' : ` of about ${listing.visibleAtStart} visible when it began`;
  const again =
    'SQS cannot page through a queue: run dlq list again for another sample, or act on every job of a ' +
    'reason with dlq redrive --reason R.';
  if (listing.stoppedEarly === 'max') {
    notes.push(
      `Stopped early at --max ${listing.max}: listed ${listed}${about}. Give a larger --max to list more ` +
        `(a listing stops after ${listing.budgetMs / 1000} s whatever --max says).`,
    );
  } else if (listing.stoppedEarly === 'time_budget') {
    notes.push(
      `Stopped early after ${listing.budgetMs / 1000} s, before the first message listed is shown again ` +
        `(each is hidden ${listing.hideSeconds} s): listed ${listed}${about}. ${again}`,
    );
  } else if (listing.stoppedEarly === 'seen_again') {
    notes.push(
      `Stopped early: the messages listed first were shown again (their ${listing.hideSeconds} s hide ran ` +
        `out), so the listing had been round the queue once: listed ${listed}${about}. ${again}`,
    );
  }
  if (listing.notVisibleAtStart !== null && listing.notVisibleAtStart > 0) {
    notes.push(
      `About ${listing.notVisibleAtStart} more were in flight (received by another reader, e.g. a redrive ` +
        'running, and hidden) and were not listed; run dlq list again once they are visible.',
    );
  }
  return notes;
}

export interface RedriveResult {
  /** `move-task`: StartMessageMoveTask started; `resend`: matching messages sent back and deleted. */
  readonly kind: 'move-task' | 'resend';
  readonly taskHandle?: string | undefined;
  readonly moved: number;
  /** Messages looked at and left on the dead-letter queue (another reason). */
  readonly kept: number;
  /**
   * `resend` only: why the pass stopped while the queue may still hold matching jobs it did not see (run it
   * again); null when the queue had nothing more to give, and for a move task.
   */
  readonly stoppedEarly: StopReason | null;
}

/**
 * `dlq redrive`: without a reason, an SQS message move task from the dead-letter queue to the send queue
 * (the same bodies go back, a fixed job just works). With a reason, one pass over the dead-letter queue (see
 * `PassOptions`): each message whose `reason` attribute matches is sent to the send queue with its body
 * unchanged, then deleted from the dead-letter queue; the others, and any dead-lettered after the redrive began,
 * are made visible again. A message is sent at most once per pass: one that comes again after it was sent (its
 * delete did not take, or SQS delivered it twice) is deleted, not sent. A crash between the send and the delete
 * leaves a copy in both queues, which the sender's job ledger settles once.
 */
export async function redriveDeadLetters(
  target: Target,
  reason: string | undefined,
  options: PassOptions = {},
): Promise<RedriveResult> {
  if (reason === undefined) return startMoveTask(target);
  if (!(DEAD_LETTER_REASONS as readonly string[]).includes(reason)) {
    throw new CliError(`--reason: expected one of ${DEAD_LETTER_REASONS.join(', ')}, got "${reason}"`);
  }
  const dlqUrl = need(target.deadLetterQueueUrl, 'the dead-letter queue', '--dlq-url');
  const sendUrl = need(target.sendQueueUrl, 'the send queue', '--send-queue-url');
  const settings = passSettings(REDRIVE_PASS, options);
  // Only what was dead-lettered before the redrive began: a job that fails again while the redrive runs comes
  // back to the dead-letter queue as a new message, and must not be sent round again (and again).
  const cutoff = settings.now();
  // The newest receipt handle of each message left on the queue, to show it again at the end.
  const kept = new Map<string, string>();
  const moved = new Set<string>();
  let stop: StopReason | null;
  try {
    stop = await onePass(target.sqs, dlqUrl, settings, async (message) => {
      const id = message.MessageId;
      if (kept.has(id)) {
        kept.set(id, message.ReceiptHandle);
        return;
      }
      if (!moved.has(id)) {
        const sentAt = Number(message.Attributes?.SentTimestamp);
        if (attribute(message, DLQ_ATTRIBUTE.reason) !== reason || sentAt > cutoff) {
          kept.set(id, message.ReceiptHandle);
          return;
        }
        // The dead-letter attributes travel with it, as with SQS's move task: they mark an operator's redrive.
        await target.sqs.send(
          new SendMessageCommand({
            QueueUrl: sendUrl,
            MessageBody: message.Body ?? '',
            MessageAttributes: message.MessageAttributes,
          }),
        );
        moved.add(id);
      }
      // A message sent before and received again (its delete did not take, or SQS delivered it twice) is only
      // deleted: a redrive sends each message once.
      await target.sqs.send(
        new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: message.ReceiptHandle }),
      );
    });
  } finally {
    await makeVisible(target.sqs, dlqUrl, [...kept.values()]);
  }
  return { kind: 'resend', moved: moved.size, kept: kept.size, stoppedEarly: stop };
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
    return { kind: 'move-task', taskHandle: out.TaskHandle, moved: 0, kept: 0, stoppedEarly: null };
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

type PassSettings = Required<PassOptions>;

function passSettings(defaults: typeof LIST_PASS | typeof REDRIVE_PASS, options: PassOptions): PassSettings {
  return {
    hideSeconds: options.hideSeconds ?? defaults.hideSeconds,
    budgetMs: options.budgetMs ?? defaults.budgetMs,
    waitTimeSeconds: options.waitTimeSeconds ?? 1,
    now: options.now ?? Date.now,
  };
}

/**
 * One pass over a queue (see `PassOptions`): receives up to `room()` messages at a time and hands each to
 * `take`, including one the pass already had (with its new receipt handle). Returns null when a receive came
 * back empty, else why it stopped. Each message received stays hidden: the caller shows it again or deletes it.
 */
async function onePass(
  sqs: SQSClient,
  queueUrl: string,
  settings: PassSettings,
  take: (message: Received) => Promise<void>,
  room: () => number = () => 10,
): Promise<StopReason | null> {
  const seen = new Set<string>();
  const started = settings.now();
  for (;;) {
    const count = Math.min(10, room());
    if (count <= 0) return 'max';
    if (settings.now() - started >= settings.budgetMs) return 'time_budget';
    const batch = await receive(sqs, queueUrl, count, settings);
    if (batch.length === 0) return null;
    let fresh = 0;
    for (const message of batch) {
      if (!seen.has(message.MessageId)) fresh += 1;
      seen.add(message.MessageId);
      await take(message);
    }
    // Only messages the pass already had: their hide ran out, so the pass has been round the queue.
    if (fresh === 0) return 'seen_again';
  }
}

/** ApproximateNumberOfMessages(NotVisible), or nulls when SQS does not say (e.g. no GetQueueAttributes right). */
async function approximateCounts(
  sqs: SQSClient,
  queueUrl: string,
): Promise<{ readonly visible: number | null; readonly notVisible: number | null }> {
  const count = (raw: string | undefined) => (raw === undefined || raw === '' ? null : Number(raw));
  try {
    const out = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      visible: count(out.Attributes?.ApproximateNumberOfMessages),
      notVisible: count(out.Attributes?.ApproximateNumberOfMessagesNotVisible),
    };
  } catch {
    // The counts only annotate the listing; a listing without them is still a listing.
    return { visible: null, notVisible: null };
  }
}

async function receive(
  sqs: SQSClient,
  queueUrl: string,
  count: number,
  settings: PassSettings,
): Promise<Received[]> {
  const out = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: count,
      VisibilityTimeout: settings.hideSeconds,
      WaitTimeSeconds: settings.waitTimeSeconds,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['All'],
    }),
  );
  // SQS gives every message an id and a receipt handle; one without either could be neither told apart nor put back.
  return (out.Messages ?? []).filter(
    (message): message is Received => message.MessageId !== undefined && message.ReceiptHandle !== undefined,
  );
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
