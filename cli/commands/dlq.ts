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
import { awsErrorText, need, type Target } from '#cli/target.ts';
import { formatTable } from '#local/terminal/table.ts';
import { parseLastStatus } from '#shared/ecourtdate/status.ts';
import { invalidIdLabel, peekJobId } from '#shared/job.ts';
import { DEAD_LETTER_REASONS } from '#shared/outcome.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';

/**
 * What an operator may see of one dead-lettered job: its dead-letter attributes (docs/runbook.md,
 * "DeadLetterQueueNotEmpty"), never the message text or the recipient. `null` where the message has nothing: a message SQS moved
 * by itself (maxReceiveCount) carries no attribute at all.
 */
export interface DeadLetterView {
  readonly messageId: string;
  /** The job's `id` (attribute `job_id`, else read from the body); null when the body has no readable one. */
  readonly jobId: string | null;
  /** How tables name the job: its id, else `(invalid id "...")` or `(no id)` (`invalidIdLabel`). */
  readonly label: string;
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
  /** Seconds each received message stays hidden. @default 30 (list), 120 (redrive, delete) */
  readonly hideSeconds?: number;
  /** Milliseconds after which the pass receives no more. @default 20,000 (list), 90,000 (redrive, delete) */
  readonly budgetMs?: number;
  /** Epoch ms: the clock of the budget, and of the cutoff of a redrive or a delete. @default Date.now */
  readonly now?: () => number;
}

/**
 * Why a pass stopped while the queue may still hold messages it did not see: `max`, the `--max` of `dlq list`;
 * `seen_again`, a receive brought only messages the pass already had; `time_budget`, the budget was spent.
 */
export type StopReason = 'max' | 'seen_again' | 'time_budget';

const LIST_PASS = { hideSeconds: 30, budgetMs: 20_000 } as const;
// Enough to send and delete each message of a batch; the messages a redrive or a delete leaves are shown again
// at its end.
const ACT_PASS = { hideSeconds: 120, budgetMs: 90_000 } as const;
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
 * `deadLetterJson`) and, when the listing may be incomplete, a last line (`listingSummaryJson`) that says why.
 */
export function renderDeadLetters(listing: DeadLetterListing, json: boolean): string {
  const { views } = listing;
  if (json) {
    const lines = views.map((v) => JSON.stringify(deadLetterJson(v)));
    const last = listingSummaryJson(listing);
    if (last !== null) lines.push(JSON.stringify(last));
    return lines.join('\n');
  }
  if (views.length === 0) return 'The dead-letter queue has no visible message.';
  const table = formatTable(
    ['job_id', 'reason', 'last_status', 'attempts', 'first_attempt_at', 'dead_lettered_at', 'detail'],
    views.map((v) => [
      v.label,
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

/**
 * `dlq list --json`'s last line, snake_case as every `--json`, holding what `listingNotes` says: `stopped_early`
 * (why, how many listed, the counts at the start) when the listing stopped early, and `in_flight_at_start` when
 * messages in flight at the start may have gone unlisted (`inFlightNotListed`). Null when neither applies: the
 * listing is the whole queue, and every line is a job.
 *
 * @example
 * {"in_flight_at_start": 3}
 */
export function listingSummaryJson(listing: DeadLetterListing): Record<string, unknown> | null {
  const inFlight = inFlightNotListed(listing);
  if (listing.stoppedEarly === null && inFlight === null) return null;
  return {
    ...(listing.stoppedEarly === null
      ? {}
      : {
          stopped_early: {
            reason: listing.stoppedEarly,
            listed: listing.views.length,
            visible_at_start: listing.visibleAtStart,
            not_visible_at_start: listing.notVisibleAtStart,
          },
        }),
    ...(inFlight === null ? {} : { in_flight_at_start: inFlight }),
  };
}

/**
 * About how many messages were in flight (held hidden by another reader) when the listing began, when that may
 * explain messages it did not list: only when it listed fewer distinct messages than were on the queue then
 * (visible and in flight). A reader that let its messages go while the listing ran (another listing ending)
 * leaves nothing unlisted, and then there is nothing to say. Null when there is nothing to say.
 */
export function inFlightNotListed(listing: DeadLetterListing): number | null {
  const inFlight = listing.notVisibleAtStart;
  if (inFlight === null || inFlight === 0) return null;
  return listing.views.length < (listing.visibleAtStart ?? 0) + inFlight ? inFlight : null;
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
  const inFlight = inFlightNotListed(listing);
  if (inFlight !== null) {
    const onQueue = (listing.visibleAtStart ?? 0) + inFlight;
    notes.push(
      `About ${inFlight} were in flight when the listing began (received by another reader, e.g. a redrive or ` +
        `another listing running, and hidden): it listed ${listed} of about ${onQueue} on the queue then. Run ` +
        'dlq list again once they are visible.',
    );
  }
  return notes;
}

/**
 * Which dead letters a redrive or a delete acts on: those with the `reason` attribute `reason`, those of the
 * jobs `jobIds` (attribute `job_id`, else the body's `id`), or those matching both when both are given.
 */
export interface DeadLetterSelection {
  readonly reason?: string | undefined;
  readonly jobIds?: readonly string[] | undefined;
}

/** A job id given to a redrive or a delete that matched no dead letter of the pass. */
export interface NotFound {
  readonly jobId: string;
  /** With a reason: the reasons of the job's dead letters the pass saw and left (another reason). */
  readonly otherReasons: readonly string[];
}

/** What one pass of a redrive or a delete by selection did (see `redriveDeadLetters`). */
export interface SelectionPass {
  /** The dead letters acted on (sent back, or deleted), each once, in the order received. */
  readonly taken: readonly DeadLetterView[];
  /** Distinct dead letters that were on the queue when the pass began, looked at and left: not selected. */
  readonly left: number;
  /**
   * Distinct dead letters the pass met that came onto the queue after it began, and left there: a job that
   * fails again comes back as a new message. `againOfTaken` of them are dead letters of jobs this pass took.
   */
  readonly arrivedMeanwhile: number;
  readonly againOfTaken: number;
  /** The job ids of the selection that matched no dead letter, in the order given. */
  readonly notFound: readonly NotFound[];
  /** Why the pass stopped while the queue may hold selected dead letters it did not see (run it again). */
  readonly stoppedEarly: StopReason | null;
}

/**
 * `dlq redrive` by selection: `resend`, the messages sent back one by one (a move task is `startMoveTask`'s);
 * `moved`, how many (the same as `taken.length`); and the pass.
 */
export type RedriveResult = { readonly kind: 'resend'; readonly moved: number } & SelectionPass;

/**
 * `dlq redrive --reason R` / `--job-id ID`: one pass over the dead-letter queue (see `PassOptions`) for the
 * dead letters of a reason, of job ids, or both (a string is a reason). Each selected message is sent to the
 * send queue with its body and every message attribute unchanged (`dead_letter_id`, the redrive token, with
 * them), then deleted from the dead-letter queue; the others, and any dead-lettered after the redrive began, are
 * made visible again. A message is sent at most once per pass: one that comes again after it was sent (its
 * delete did not take, or SQS delivered it twice) is deleted, not sent. A crash between the send and the delete
 * leaves a copy in both queues, which the sender's job ledger settles once. Without a selection, see
 * `startMoveTask`.
 *
 * @example
 * await redriveDeadLetters(target, { jobIds: ['cms-48213-reminder-1'] });
 */
export async function redriveDeadLetters(
  target: Target,
  selection: DeadLetterSelection | string,
  options: PassOptions = {},
): Promise<RedriveResult> {
  const selected = checkSelection(typeof selection === 'string' ? { reason: selection } : selection);
  if (selected === null) throw new CliError('dlq redrive by selection needs --reason R or --job-id ID');
  const dlqUrl = need(target.deadLetterQueueUrl, 'the dead-letter queue', '--dlq-url');
  const sendUrl = need(target.sendQueueUrl, 'the send queue', '--send-queue-url');
  const pass = await selectionPass(target.sqs, dlqUrl, selected, passSettings(ACT_PASS, options), (message) =>
    // Every attribute travels with it, as with SQS's move task: the redrive token marks an operator's redrive.
    target.sqs.send(
      new SendMessageCommand({
        QueueUrl: sendUrl,
        MessageBody: message.Body ?? '',
        MessageAttributes: message.MessageAttributes,
        // And its agency's message group of the fair send queue (docs/contract.md, "Message group").
        ...(message.Attributes?.MessageGroupId ? { MessageGroupId: message.Attributes.MessageGroupId } : {}),
      }),
    ),
  );
  return { kind: 'resend', moved: pass.taken.length, ...pass };
}

/**
 * `dlq delete`: one pass over the dead-letter queue as a redrive by selection makes (see `redriveDeadLetters`),
 * deleting each selected dead letter instead of sending it back; the others, and any dead-lettered after the
 * delete began, are made visible again. The selection must name a reason or job ids: a delete never takes the
 * whole queue.
 */
export async function deleteDeadLetters(
  target: Target,
  selection: DeadLetterSelection,
  options: PassOptions = {},
): Promise<SelectionPass> {
  const selected = checkSelection(selection);
  if (selected === null) throw new CliError('dlq delete needs --job-id ID (or --reason R --yes)');
  const dlqUrl = need(target.deadLetterQueueUrl, 'the dead-letter queue', '--dlq-url');
  return selectionPass(target.sqs, dlqUrl, selected, passSettings(ACT_PASS, options), async () => {});
}

/** A selection checked: a known reason, job ids without repeats; null when it selects nothing at all. */
interface CheckedSelection {
  readonly reason: string | undefined;
  readonly jobIds: ReadonlySet<string> | undefined;
}

function checkSelection(selection: DeadLetterSelection): CheckedSelection | null {
  const { reason, jobIds } = selection;
  if (reason !== undefined && !(DEAD_LETTER_REASONS as readonly string[]).includes(reason)) {
    throw new CliError(`--reason: expected one of ${DEAD_LETTER_REASONS.join(', ')}, got "${reason}"`);
  }
  if (jobIds?.some((id) => id.trim() === '')) throw new CliError('--job-id: expected a job id, got ""');
  if (reason === undefined && (jobIds === undefined || jobIds.length === 0)) return null;
  return { reason, jobIds: jobIds === undefined || jobIds.length === 0 ? undefined : new Set(jobIds) };
}

/** What a pass does with one message it meets for the first time (decided by `verdictOf`). */
type Verdict = 'take' | 'leave' | 'arrived_meanwhile';

/**
 * `take` a selected dead letter that was on the queue when the pass began (`SentTimestamp` not after `cutoff`);
 * `arrived_meanwhile` one that came after: a job that fails again while the pass runs comes back as a new
 * message, and must not go round again (and again); `leave` the rest.
 */
function verdictOf(message: Message, selection: CheckedSelection, cutoff: number): Verdict {
  if (Number(message.Attributes?.SentTimestamp) > cutoff) return 'arrived_meanwhile';
  const reason = attribute(message, DLQ_ATTRIBUTE.reason);
  if (selection.reason !== undefined && reason !== selection.reason) return 'leave';
  if (selection.jobIds === undefined) return 'take';
  const jobId = jobIdOf(message);
  return jobId !== undefined && selection.jobIds.has(jobId) ? 'take' : 'leave';
}

/**
 * One pass (see `PassOptions`) that hands each selected dead letter to `act` once, then deletes it (again, with
 * its new receipt handle, should it come back); every other message it met is made visible again at the end.
 */
async function selectionPass(
  sqs: SQSClient,
  dlqUrl: string,
  selection: CheckedSelection,
  settings: PassSettings,
  act: (message: Received) => Promise<unknown>,
): Promise<SelectionPass> {
  const cutoff = settings.now();
  const taken = new Map<string, DeadLetterView>();
  // Each message left on the queue, with its verdict and the newest receipt handle, to show it again at the end.
  const unTaken = new Map<string, { verdict: Verdict; handle: string; message: Received }>();
  let stop: StopReason | null;
  try {
    stop = await onePass(sqs, dlqUrl, settings, async (message) => {
      const id = message.MessageId;
      const known = unTaken.get(id);
      if (known !== undefined) {
        known.handle = message.ReceiptHandle;
        return;
      }
      if (!taken.has(id)) {
        const verdict = verdictOf(message, selection, cutoff);
        if (verdict !== 'take') {
          unTaken.set(id, { verdict, handle: message.ReceiptHandle, message });
          return;
        }
        await act(message);
        taken.set(id, view(message));
      }
      // A message taken before and received again (its delete did not take, or SQS delivered it twice) is only
      // deleted: a pass acts on each message once.
      await sqs.send(new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: message.ReceiptHandle }));
    });
  } finally {
    await makeVisible(
      sqs,
      dlqUrl,
      [...unTaken.values()].map((m) => m.handle),
    );
  }
  return passOutcome(selection, [...taken.values()], [...unTaken.values()], stop);
}

/** Counts what a pass met, each message once: the pure end of `selectionPass`. */
function passOutcome(
  selection: CheckedSelection,
  taken: readonly DeadLetterView[],
  unTaken: readonly { readonly verdict: Verdict; readonly message: Message }[],
  stoppedEarly: StopReason | null,
): SelectionPass {
  const takenJobs = new Set(taken.flatMap((v) => (v.jobId === null ? [] : [v.jobId])));
  const ofTaken = (message: Message) => {
    const jobId = jobIdOf(message);
    return jobId !== undefined && takenJobs.has(jobId);
  };
  const meanwhile = unTaken.filter((m) => m.verdict === 'arrived_meanwhile');
  const left = unTaken.filter((m) => m.verdict === 'leave');
  const notFound = [...(selection.jobIds ?? [])]
    .filter((jobId) => !takenJobs.has(jobId))
    .map((jobId) => ({
      jobId,
      otherReasons: [
        ...new Set(
          left
            .filter((m) => jobIdOf(m.message) === jobId)
            .map((m) => attribute(m.message, DLQ_ATTRIBUTE.reason) ?? SQS_REDRIVE_LABEL),
        ),
      ],
    }));
  return {
    taken,
    left: left.length,
    arrivedMeanwhile: meanwhile.length,
    againOfTaken: meanwhile.filter((m) => ofTaken(m.message)).length,
    notFound,
    stoppedEarly,
  };
}

/**
 * What a redrive by selection did, for the operator: how many it sent (and, given job ids, which), how many it
 * left, what came onto the queue while it ran, and why it stopped early. The job ids it did not find are
 * `notFoundNote`'s.
 */
export function renderRedrive(
  result: RedriveResult,
  selection: DeadLetterSelection,
  description: string,
): string {
  const which = selection.reason === undefined ? '' : ` with reason ${selection.reason}`;
  const ids = selection.jobIds === undefined ? '' : ` (${jobList(result.taken)})`;
  const lines = [
    `Sent ${result.moved} job(s)${which} back to the send queue of ${description}${ids}; ` +
      `${result.left} other dead-lettered job(s) left where they were.`,
  ];
  const again = result.againOfTaken;
  if (again > 0) {
    lines.push(
      `${again} dead-lettered again meanwhile: jobs this redrive sent failed again and came back as new ` +
        'messages, left on the dead-letter queue (each dead letter is sent once).',
    );
  }
  if (result.arrivedMeanwhile > again) {
    lines.push(
      `${result.arrivedMeanwhile - again} other job(s) dead-lettered meanwhile, left where they were.`,
    );
  }
  if (result.stoppedEarly !== null) lines.push(passStoppedEarly(result.stoppedEarly, 'send'));
  return lines.join('\n');
}

/**
 * What a delete did: each dead letter deleted (job id, reason, dead-letter time; never the body), how many it
 * left, and why it stopped early. The job ids it did not find are `notFoundNote`'s.
 */
export function renderDelete(pass: SelectionPass, description: string): string {
  const lines: string[] = [];
  if (pass.taken.length > 0) {
    lines.push(
      formatTable(
        ['job_id', 'reason', 'dead_lettered_at'],
        pass.taken.map((v) => [v.label, v.reason ?? SQS_REDRIVE_LABEL, v.deadLetteredAt ?? '-']),
      ),
      '',
    );
  }
  lines.push(
    `Deleted ${pass.taken.length} dead letter(s) from the dead-letter queue of ${description}; ` +
      `${pass.left} other dead-lettered job(s) left where they were.`,
  );
  if (pass.arrivedMeanwhile > 0) {
    lines.push(`${pass.arrivedMeanwhile} job(s) dead-lettered meanwhile, left where they were.`);
  }
  if (pass.stoppedEarly !== null) lines.push(passStoppedEarly(pass.stoppedEarly, 'delete'));
  return lines.join('\n');
}

/** The job ids given that the pass did not find, and why that may be; null when it found every one. */
export function notFoundNote(pass: SelectionPass, selection: DeadLetterSelection): string | null {
  if (pass.notFound.length === 0) return null;
  const withReason = selection.reason === undefined ? '' : ` with reason ${selection.reason}`;
  const elsewhere = pass.notFound
    .filter((n) => n.otherReasons.length > 0)
    .map((n) => `${n.jobId} is dead-lettered with reason ${n.otherReasons.join(', ')}`);
  const parts = [
    `no dead letter${withReason} of job(s) ${pass.notFound.map((n) => n.jobId).join(', ')} was found in this pass`,
    ...elsewhere,
  ];
  const why =
    pass.stoppedEarly === null
      ? 'Check the ids with dlq list.'
      : 'The pass stopped before the end of the queue: run the same command again.';
  return `${parts.join('; ')}. ${why}`;
}

/** Why a pass by selection stopped before the end of the queue, and the next step. */
function passStoppedEarly(reason: StopReason, verb: 'send' | 'delete'): string {
  const why =
    reason === 'time_budget'
      ? 'its time budget was spent, before the first job it left is shown again'
      : 'the jobs it left were shown again (their hide ran out), so it had been round the queue once';
  const next =
    verb === 'send'
      ? 'send the rest: the jobs sent are off the dead-letter queue, so none goes twice.'
      : 'delete the rest.';
  return `Stopped before the end of the dead-letter queue: ${why}. Run the same command again to ${next}`;
}

/** Distinct job ids of the views, in order. */
function jobList(views: readonly DeadLetterView[]): string {
  const ids = [...new Set(views.map((v) => v.label))];
  return ids.length === 0 ? 'none' : ids.join(', ');
}

/**
 * `dlq redrive` without a selection: an SQS message move task from the dead-letter queue to the send queue (the
 * same bodies and attributes go back, a fixed job just works). Returns the task's handle.
 */
export async function startMoveTask(target: Target): Promise<string | undefined> {
  const sourceArn =
    target.deadLetterQueueArn ?? (await queueArn(target, target.deadLetterQueueUrl, '--dlq-url'));
  const destinationArn =
    target.sendQueueArn ?? (await queueArn(target, target.sendQueueUrl, '--send-queue-url'));
  try {
    const out = await target.sqs.send(
      new StartMessageMoveTaskCommand({ SourceArn: sourceArn, DestinationArn: destinationArn }),
    );
    return out.TaskHandle;
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

function passSettings(defaults: typeof LIST_PASS | typeof ACT_PASS, options: PassOptions): PassSettings {
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
    jobId: jobIdOf(message) ?? null,
    label: jobIdOf(message) ?? invalidIdLabel(message.Body ?? ''),
    reason: attribute(message, DLQ_ATTRIBUTE.reason) ?? null,
    lastStatus: parseLastStatus(attribute(message, DLQ_ATTRIBUTE.lastStatus)),
    attempts: Number.isInteger(attempts) ? attempts : null,
    firstAttemptAt: attribute(message, DLQ_ATTRIBUTE.firstAttemptAt) ?? null,
    deadLetteredAt: attribute(message, DLQ_ATTRIBUTE.deadLetteredAt) ?? null,
    detail: attribute(message, DLQ_ATTRIBUTE.detail) ?? null,
    responseExcerpt: attribute(message, DLQ_ATTRIBUTE.responseExcerpt) ?? null,
  };
}

/** The job's id: its `job_id` attribute, else (a message SQS moved on its own has no attributes) the body's. */
function jobIdOf(message: Message): string | undefined {
  return attribute(message, DLQ_ATTRIBUTE.jobId) ?? peekJobId(message.Body ?? '');
}

function attribute(message: Message, name: string): string | undefined {
  return message.MessageAttributes?.[name]?.StringValue;
}
