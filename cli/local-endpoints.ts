import { readFile } from 'node:fs/promises';
import { CliError } from '#cli/errors.ts';
import { type LocalEndpoints, START_LOCAL_PIPELINE } from '#local/pipeline/endpoints-file.ts';
import { processIsRunning } from '#local/pipeline/run-lock.ts';

const STRING_FIELDS = [
  'region',
  'sqsEndpoint',
  'sendQueueUrl',
  'sendQueueArn',
  'deadLetterQueueUrl',
  'deadLetterQueueArn',
  'secretsManagerEndpoint',
  'secretId',
  'ecourtdateUrl',
  'dynamodbEndpoint',
  'ledgerTableName',
] as const satisfies readonly (keyof LocalEndpoints)[];

/**
 * `--local` was asked for, but no local pipeline is running: no endpoints file, a file left by a process that is
 * gone, or endpoints that refuse connections. The message says how to start one; the CLI exits with status 2.
 */
export class LocalPipelineNotRunningError extends CliError {
  constructor(why: string, options?: { cause?: unknown }) {
    super(
      `the local pipeline is not running (${why}). Start it in another terminal with "${START_LOCAL_PIPELINE}", ` +
        'wait for "Still running", then run this command again',
      options,
    );
  }
}

/**
 * Reads the endpoints file and checks that the process that wrote it still runs. Throws
 * `LocalPipelineNotRunningError` when there is no file or its process is gone, `CliError` when the file is not
 * one `npm start` wrote.
 *
 * @param isRunning whether a process id is alive; injectable for tests
 */
export async function readLocalEndpoints(
  path: string,
  isRunning: (pid: number) => boolean = processIsRunning,
): Promise<LocalEndpoints> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new LocalPipelineNotRunningError(
        `no ${path}; one started with --state-dir DIR is found with --local --state-dir DIR`,
        { cause: error },
      );
    }
    throw new CliError(`cannot read ${path} (${code ?? (error as Error).message})`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${path} is not the endpoints file "npm start" writes (not JSON)`, { cause: error });
  }
  const record = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const missing = STRING_FIELDS.filter((field) => typeof record[field] !== 'string' || record[field] === '');
  if (missing.length > 0 || typeof record.pid !== 'number') {
    throw new CliError(
      `${path} is not the endpoints file "npm start" writes (missing: ${[...missing, ...(typeof record.pid === 'number' ? [] : ['pid'])].join(', ')}); ` +
        `restart the local pipeline with "${START_LOCAL_PIPELINE}"`,
    );
  }
  const endpoints = record as unknown as LocalEndpoints;
  if (!isRunning(endpoints.pid)) {
    throw new LocalPipelineNotRunningError(`${path} was left by process ${endpoints.pid}, which has stopped`);
  }
  return endpoints;
}

/**
 * Whether an error (or one of its causes) is a refused connection: on a loopback endpoint of the local pipeline,
 * that means the pipeline has stopped.
 */
export function isConnectionRefused(error: unknown, depth = 0): boolean {
  if (depth > 5 || typeof error !== 'object' || error === null) return false;
  const candidate = error as { code?: unknown; cause?: unknown; errors?: unknown };
  if (candidate.code === 'ECONNREFUSED') return true;
  if (
    Array.isArray(candidate.errors) &&
    candidate.errors.some((inner) => isConnectionRefused(inner, depth + 1))
  ) {
    return true;
  }
  return isConnectionRefused(candidate.cause, depth + 1);
}
