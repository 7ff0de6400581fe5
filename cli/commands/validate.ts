import { readFile } from 'node:fs/promises';
import { CliError } from '#cli/errors.ts';
import { splitJobs } from '#local/pipeline/jobs-file.ts';
import { JobValidationError } from '#shared/errors.ts';
import {
  invalidIdLabel,
  jobFingerprint,
  parseJob,
  peekJobId,
  type SendJob,
  withoutByteOrderMark,
} from '#shared/job.ts';
import { SQS_MAX_MESSAGE_BYTES } from '#shared/sqs/settle.ts';

/** What the relay's own rules say of one job of a file (docs/contract.md, "The send job"). */
export interface JobVerdict {
  /** 1-based line the job starts on (a pretty-printed job spans several). */
  readonly line: number;
  /** The job's id; null when the body has no valid one. */
  readonly jobId: string | null;
  /** How reports name the job: its id, `(invalid id "...")` or `(no id)` (`invalidIdLabel`). */
  readonly label: string;
  /** The job's text as written; never printed (it holds the message text and the recipient). */
  readonly body: string;
  /** The field at fault (`message.content`, `id`, `body`), when the job is invalid. */
  readonly field: string | null;
  /** What is wrong with that field, when the job is invalid; never quotes the message text or the recipient. */
  readonly error: string | null;
  /** What eCourtDate may refuse or read otherwise (`SendJob.warnings`), and an identical job twice. */
  readonly warnings: readonly string[];
}

/**
 * Reads a job file (`-`: `stdin`) and splits it into jobs as `npm start` does (`splitJobs`: JSON Lines, a job may
 * be pretty-printed over several lines), without the byte order mark a Windows editor writes. Throws `CliError`
 * (exit 2) naming the file when it cannot be read or holds no job.
 */
export async function readJobEntries(
  path: string,
  stdin?: AsyncIterable<string | Uint8Array>,
): Promise<{ readonly line: number; readonly body: string }[]> {
  let text: string;
  try {
    text = withoutByteOrderMark(path === '-' ? await readAll(stdin) : await readFile(path, 'utf8'));
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(
      `cannot read the job file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: error },
    );
  }
  const entries = splitJobs(text);
  if (entries.length === 0) {
    throw new CliError(
      `${path === '-' ? 'standard input' : path} holds no job (one JSON job, or one per line)`,
    );
  }
  return entries;
}

async function readAll(stdin: AsyncIterable<string | Uint8Array> | undefined): Promise<string> {
  if (stdin === undefined) throw new CliError('no standard input to read the jobs from: give a FILE');
  const chunks: Buffer[] = [];
  for await (const chunk of stdin)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Checks every job with the relay's own `parseJob` (the authority, docs/contract.md "The send job"), and the
 * file as a whole as the job ledger would see it: one id under two bodies is invalid on its second line (the
 * relay dead-letters it `id_conflict`), the same job twice is a warning (it goes out once). A body larger than
 * SQS's largest message (`SQS_MAX_MESSAGE_BYTES`, docs/sqs-limits.md) is invalid (`body`): no send queue takes it.
 * Never throws for a bad job: each verdict says what is wrong.
 */
export function checkJobs(
  entries: readonly { readonly line: number; readonly body: string }[],
  now: number = Date.now(),
): JobVerdict[] {
  const seen = new Map<string, { line: number; fingerprint: string }>();
  return entries.map((entry): JobVerdict => {
    try {
      // The body goes on the send queue as written: SQS refuses one larger than its largest message.
      const bytes = Buffer.byteLength(entry.body);
      if (bytes > SQS_MAX_MESSAGE_BYTES) {
        throw new JobValidationError(
          'body',
          `expected at most ${SQS_MAX_MESSAGE_BYTES} bytes (SQS's largest message), got ${bytes}: ` +
            'leave out the fields eCourtDate does not need',
        );
      }
      const job = parseJob(entry.body);
      const warnings = [...job.warnings, ...expiryWarnings(job, now)];
      const fingerprint = jobFingerprint(job);
      const first = seen.get(job.id);
      const verdict = { line: entry.line, jobId: job.id, label: job.id, body: entry.body };
      if (first === undefined) seen.set(job.id, { line: entry.line, fingerprint });
      else if (first.fingerprint !== fingerprint) {
        return {
          ...verdict,
          field: 'id',
          error:
            `${job.id} is also on line ${first.line} with another body; the relay would dead-letter this one ` +
            'id_conflict: give each version of a message its own id',
          warnings,
        };
      } else {
        return {
          ...verdict,
          field: null,
          error: null,
          warnings: [
            ...warnings,
            `id: ${job.id} is also on line ${first.line}, the same job: it goes out once`,
          ],
        };
      }
      return { ...verdict, field: null, error: null, warnings };
    } catch (error) {
      if (!(error instanceof JobValidationError)) throw error;
      const id = peekJobId(entry.body);
      return {
        line: entry.line,
        jobId: id ?? null,
        label: id ?? invalidIdLabel(entry.body),
        body: entry.body,
        field: error.field,
        error: error.message.slice(error.field.length + 2),
        warnings: [],
      };
    }
  });
}

/**
 * `validate`'s report. Text: one line per job (`FILE:LINE: ok JOB`, `FILE:LINE: invalid JOB: field: error`), one
 * per warning (`FILE:LINE: warning: JOB: ...`), and a count. `json`: one object per job, snake_case as the other
 * commands' `--json` (`line`, `job_id`, `valid`, `field`, `error`, `warnings`; `null` where there is nothing).
 * Never prints a job's text.
 */
export function renderVerdicts(verdicts: readonly JobVerdict[], source: string, json: boolean): string {
  if (json) {
    return verdicts
      .map((v) =>
        JSON.stringify({
          line: v.line,
          job_id: v.jobId,
          valid: v.error === null,
          field: v.field,
          error: v.error,
          warnings: v.warnings,
        }),
      )
      .join('\n');
  }
  const lines = verdicts.flatMap((v) => [
    v.error === null
      ? `${source}:${v.line}: ok ${v.label}`
      : `${source}:${v.line}: invalid ${v.label}: ${v.field}: ${v.error}`,
    ...v.warnings.map((warning) => `${source}:${v.line}: warning: ${v.label}: ${warning}`),
  ]);
  const invalid = verdicts.filter((v) => v.error !== null).length;
  const warned = verdicts.filter((v) => v.warnings.length > 0).length;
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  lines.push(
    `${count(verdicts.length, 'job')}: ${verdicts.length - invalid} valid, ${invalid} invalid` +
      (warned > 0 ? `, ${count(warned, 'job')} with warnings` : '') +
      (invalid > 0
        ? ': the relay would dead-letter the invalid ones (invalid_job or id_conflict); fix the fields named'
        : ''),
  );
  return lines.join('\n');
}

/** A job whose `expires_at` (epoch ms `job.expiresAt`) is not after `now` is never sent: say so before it is. */
function expiryWarnings(job: SendJob, now: number): string[] {
  if (job.expiresAt === undefined || job.expiresAt > now) return [];
  return [
    `expires_at: ${new Date(job.expiresAt).toISOString()} has passed: the relay would dead-letter this job ` +
      'expired without sending it',
  ];
}
