import { PutEventsCommand, type PutEventsCommandOutput } from '@aws-sdk/client-eventbridge';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { checkJobs, readJobEntries } from '#cli/commands/validate.ts';
import { CliError, InvalidJobFileError } from '#cli/errors.ts';
import { awsErrorText, need, type Target } from '#cli/target.ts';
import {
  PUT_EVENTS_MAX_BYTES,
  PUT_EVENTS_MAX_ENTRIES,
  putEventsEntryBytes,
} from '#shared/clients/put-events-limits.ts';
import { messageGroupOfBody } from '#shared/sqs/message-group.ts';

export type Via = 'queue' | 'bus';

/** One job of the file, checked, with the text it will be sent as. */
export interface CheckedJob {
  /** 1-based line of a JSON Lines file; 1 for a file holding one (possibly pretty-printed) job. */
  readonly line: number;
  readonly id: string;
  readonly body: string;
  /** What eCourtDate may refuse or read otherwise (`SendJob.warnings`): said, never a reason to refuse. */
  readonly warnings: readonly string[];
}

export interface SendResult {
  readonly sent: readonly { readonly id: string; readonly messageId: string }[];
}

/**
 * Reads a job file as `npm start` does (`readJobEntries`: JSON Lines, a job may be spread over several lines),
 * and validates every job with the relay's own `parseJob` (`checkJobs`). Throws `InvalidJobFileError` listing every invalid job with the field that is wrong
 * (nothing is sent unless all are valid), and `CliError` when the file cannot be read or holds no job.
 */
export async function readJobs(path: string): Promise<CheckedJob[]> {
  const verdicts = checkJobs(await readJobEntries(path));
  const problems = verdicts
    .filter((verdict) => verdict.error !== null)
    .map((verdict) => `  ${path}:${verdict.line}: ${verdict.field}: ${verdict.error}`);
  if (problems.length > 0) {
    throw new InvalidJobFileError(`not a valid send job, nothing was sent:\n${problems.join('\n')}`);
  }
  return verdicts.map(({ line, label, body, warnings }) => ({ line, id: label, body, warnings }));
}

/**
 * `send FILE`: puts each job on the send queue (`--via queue`, the body exactly as written, in its agency's message
 * group: docs/contract.md, "Message group") or publishes it
 * to the event bus with the stack's source and detail-type (`--via bus`), where the rule forwards its detail.
 */
export async function sendJobs(target: Target, jobs: readonly CheckedJob[], via: Via): Promise<SendResult> {
  return via === 'queue' ? sendToQueue(target, jobs) : publishToBus(target, jobs);
}

async function sendToQueue(target: Target, jobs: readonly CheckedJob[]): Promise<SendResult> {
  const queueUrl = need(target.sendQueueUrl, 'the send queue', '--send-queue-url');
  const sent: { id: string; messageId: string }[] = [];
  for (const job of jobs) {
    try {
      const out = await target.sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: job.body,
          MessageGroupId: messageGroupOfBody(job.body),
        }),
      );
      sent.push({ id: job.id, messageId: out.MessageId ?? '' });
    } catch (error) {
      throw new CliError(
        `job ${job.id} was not sent: ${awsErrorText(error)}${sent.length ? ` (${sent.length} sent before it)` : ''}`,
        { cause: error },
      );
    }
  }
  return { sent };
}

async function publishToBus(target: Target, jobs: readonly CheckedJob[]): Promise<SendResult> {
  const bus = target.eventBus;
  if (bus === undefined) {
    throw new CliError(
      'no event bus is known for this target: use --stage (the stack outputs name it) or --event-bus; ' +
        'the local pipeline has no EventBridge, use --via queue',
    );
  }
  const size = (job: CheckedJob) => putEventsEntryBytes(bus.source, bus.detailType, job.body);
  // Checked before anything is sent, so that a refusal never leaves part of the file sent.
  const tooBig = jobs.filter((job) => size(job) > PUT_EVENTS_MAX_BYTES);
  if (tooBig.length > 0) {
    throw new CliError(
      `${tooBig.map((job) => `job ${job.id} (${size(job)} bytes)`).join(', ')}: larger than an EventBridge ` +
        `event may be (${PUT_EVENTS_MAX_BYTES} bytes); nothing was sent: send the file with --via queue (SQS ` +
        'takes 1 MiB), or leave out the fields eCourtDate does not need',
    );
  }
  const sent: { id: string; messageId: string }[] = [];
  for (const chunk of putEventsChunks(jobs, size)) {
    let out: PutEventsCommandOutput;
    try {
      out = await target.events.send(
        new PutEventsCommand({
          Entries: chunk.map((job) => ({
            EventBusName: bus.name,
            Source: bus.source,
            DetailType: bus.detailType,
            Detail: job.body,
          })),
        }),
      );
    } catch (error) {
      throw new CliError(`PutEvents failed: ${awsErrorText(error)}`, { cause: error });
    }
    const failures: string[] = [];
    (out.Entries ?? []).forEach((entry, index) => {
      const job = chunk[index];
      if (job === undefined) return;
      if (entry.ErrorCode)
        failures.push(`job ${job.id}: ${entry.ErrorCode} ${entry.ErrorMessage ?? ''}`.trim());
      else sent.push({ id: job.id, messageId: entry.EventId ?? '' });
    });
    if (failures.length > 0 || (out.FailedEntryCount ?? 0) > 0) {
      throw new CliError(
        `EventBridge refused ${failures.length || out.FailedEntryCount} event(s): ${failures.join('; ')}`,
      );
    }
  }
  return { sent };
}

/**
 * The jobs in order, in requests of at most `PUT_EVENTS_MAX_ENTRIES` entries and `PUT_EVENTS_MAX_BYTES` together
 * (`size` of each, bytes). A job larger than a request may be gets one of its own (the caller refuses those first).
 */
export function putEventsChunks<T>(jobs: readonly T[], size: (job: T) => number): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const job of jobs) {
    const jobBytes = size(job);
    if (
      current.length === PUT_EVENTS_MAX_ENTRIES ||
      (current.length > 0 && bytes + jobBytes > PUT_EVENTS_MAX_BYTES)
    ) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(job);
    bytes += jobBytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
