import { readFile } from 'node:fs/promises';
import { PutEventsCommand, type PutEventsCommandOutput } from '@aws-sdk/client-eventbridge';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { CliError, InvalidJobFileError } from '#cli/errors.ts';
import { awsErrorText, need, type Target } from '#cli/target.ts';
import { splitJobs } from '#local/pipeline/jobs-file.ts';
import { JobValidationError } from '#shared/errors.ts';
import { jobFingerprint, parseJob, withoutByteOrderMark } from '#shared/job.ts';

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
 * Reads a job file as `npm start` does (`splitJobs`: JSON Lines, a job may be spread over several lines), and
 * validates every job with the relay's own `parseJob`. Throws `InvalidJobFileError` listing every invalid job with the field that is wrong
 * (nothing is sent unless all are valid), and `CliError` when the file cannot be read or holds no job.
 */
export async function readJobs(path: string): Promise<CheckedJob[]> {
  let text: string;
  try {
    // A byte order mark (as a Windows editor saves the file) can only stand before the first job.
    text = withoutByteOrderMark(await readFile(path, 'utf8'));
  } catch (error) {
    throw new CliError(
      `cannot read the job file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        cause: error,
      },
    );
  }
  const entries = splitJobs(text);
  if (entries.length === 0) throw new CliError(`${path} holds no job (one JSON job, or one per line)`);
  const problems: string[] = [];
  const jobs: CheckedJob[] = [];
  // The ledger refuses a second body under one id (id_conflict) and sends an identical one once: both said here.
  const seen = new Map<string, { line: number; fingerprint: string }>();
  for (const entry of entries) {
    try {
      const job = parseJob(entry.body);
      const fingerprint = jobFingerprint(job);
      const first = seen.get(job.id);
      const warnings = [...job.warnings];
      if (first === undefined) seen.set(job.id, { line: entry.line, fingerprint });
      else if (first.fingerprint !== fingerprint) {
        problems.push(
          `  ${path}:${entry.line}: id: ${job.id} is also on line ${first.line} with another body; the relay ` +
            'would dead-letter this one id_conflict: give each version of a message its own id',
        );
        continue;
      } else {
        warnings.push(`id: ${job.id} is also on line ${first.line}, the same job: it goes out once`);
      }
      jobs.push({ ...entry, id: job.id, warnings });
    } catch (error) {
      if (!(error instanceof JobValidationError)) throw error;
      problems.push(`  ${path}:${entry.line}: ${error.message}`);
    }
  }
  if (problems.length > 0) {
    throw new InvalidJobFileError(`not a valid send job, nothing was sent:\n${problems.join('\n')}`);
  }
  return jobs;
}

/**
 * `send FILE`: puts each job on the send queue (`--via queue`, the body exactly as written) or publishes it
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
        new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: job.body }),
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
  const sent: { id: string; messageId: string }[] = [];
  for (let start = 0; start < jobs.length; start += 10) {
    const chunk = jobs.slice(start, start + 10);
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
