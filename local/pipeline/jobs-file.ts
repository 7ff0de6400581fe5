import { readFile } from 'node:fs/promises';
import { RelayError } from '#shared/errors.ts';
import { peekJobId, withoutByteOrderMark } from '#shared/job.ts';
import { SQS_MAX_MESSAGE_BYTES } from '#shared/sqs/settle.ts';

/** One non-blank line of a JSON Lines jobs file, kept exactly as written: it becomes an SQS message body. */
export interface JobLine {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly body: string;
  /**
   * The job's `id` when the line is JSON with a well-formed one; undefined otherwise (the dead-letter queue then
   * has no `job_id` for it either, and reports show the line number instead).
   */
  readonly id: string | undefined;
}

/** The jobs file could not be read, or holds no job. */
export class JobsFileError extends RelayError {}

/** Lines a job spread over several lines (pretty-printed) may take at most. */
const MAX_LINES_PER_JOB = 1_000;

/**
 * The jobs of a jobs file's text, each with its first line (1-based): one job a line (JSON Lines), where a job
 * may also be spread over several lines as it is pasted from the docs (a line that starts a JSON object and is
 * not JSON by itself takes the following lines until they make one JSON value). A line that is not JSON stays
 * one job of its own, as written (the sender dead-letters it `invalid_job`). Blank lines are skipped; a trailing
 * `\r` is dropped. Used by `npm start --jobs` and `npm run relay -- send`, so both read a file alike.
 *
 * @example splitJobs('{"id":"a",\n "message":{}}\n{"id":"b"}') // [{ line: 1, body: '{"id":"a",\n "message":{}}' }, { line: 3, body: '{"id":"b"}' }]
 */
export function splitJobs(text: string): { readonly line: number; readonly body: string }[] {
  const lines = text.split('\n').map((raw) => raw.replace(/\r$/, ''));
  const jobs: { line: number; body: string }[] = [];
  for (let index = 0; index < lines.length; index++) {
    const first = lines[index] ?? '';
    if (first.trim() === '') continue;
    let end = index;
    if (first.trimStart().startsWith('{') && !isJson(first)) {
      for (let next = index + 1; next < Math.min(lines.length, index + MAX_LINES_PER_JOB); next++) {
        if (isJson(lines.slice(index, next + 1).join('\n'))) {
          end = next;
          break;
        }
      }
    }
    jobs.push({ line: index + 1, body: lines.slice(index, end + 1).join('\n') });
    index = end;
  }
  return jobs;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads a jobs file (`splitJobs`: JSON Lines, a job also spread over several lines). Jobs are not validated
 * (invalid jobs may be tried on purpose: the sender dead-letters them `invalid_job`).
 */
export async function readJobsFile(path: string): Promise<JobLine[]> {
  let text: string;
  try {
    // A byte order mark (as a Windows editor saves the file) can only stand before the first job.
    text = withoutByteOrderMark(await readFile(path, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new JobsFileError(`cannot read the jobs file ${path}${code ? ` (${code})` : ''}`, { cause: error });
  }
  const jobs: JobLine[] = [];
  for (const { line, body } of splitJobs(text)) {
    if (Buffer.byteLength(body) > SQS_MAX_MESSAGE_BYTES) {
      throw new JobsFileError(`${path}:${line}: the job is larger than SQS's 1 MiB message limit`);
    }
    jobs.push({ line, body, id: peekJobId(body) });
  }
  if (jobs.length === 0)
    throw new JobsFileError(`the jobs file ${path} holds no job (one JSON job per line)`);
  return jobs;
}
