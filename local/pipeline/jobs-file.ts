import { readFile } from 'node:fs/promises';
import { RelayError } from '#shared/errors.ts';
import { peekJobId, withoutByteOrderMark } from '#shared/job.ts';

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

/** Largest SQS message body (256 KiB). */
const MAX_BODY_BYTES = 256 * 1024;

/**
 * Reads a JSON Lines file of send jobs. Lines are not validated (invalid jobs may be tried on purpose: the
 * sender dead-letters them `invalid_job`); only blank lines are skipped, and a trailing `\r` is dropped.
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
  text.split('\n').forEach((raw, index) => {
    const body = raw.replace(/\r$/, '');
    if (body.trim() === '') return;
    const line = index + 1;
    if (Buffer.byteLength(body) > MAX_BODY_BYTES) {
      throw new JobsFileError(`${path}:${line}: the line is larger than SQS's 256 KiB message limit`);
    }
    jobs.push({ line, body, id: peekJobId(body) });
  });
  if (jobs.length === 0)
    throw new JobsFileError(`the jobs file ${path} holds no job (one JSON job per line)`);
  return jobs;
}
