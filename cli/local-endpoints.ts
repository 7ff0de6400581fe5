import { readFile, rm, writeFile } from 'node:fs/promises';
import { CliError } from '#cli/errors.ts';

/**
 * The local endpoints file: where the pieces of a local pipeline listen. `npm start -- --keep-running` writes it
 * (local/pipeline/) and removes it when it stops; `npm run relay -- --local` reads it. One type for the writer and
 * the reader, in cli/ because local/ may import from cli/ and never the reverse.
 */
export interface LocalEndpoints {
  /** The process of `npm start` that wrote the file: a reader can tell a running pipeline from a stale file. */
  readonly pid: number;
  readonly region: string;
  readonly sqsEndpoint: string;
  readonly sendQueueUrl: string;
  readonly sendQueueArn: string;
  readonly deadLetterQueueUrl: string;
  readonly deadLetterQueueArn: string;
  readonly secretsManagerEndpoint: string;
  readonly secretId: string;
  /** The built-in simulator, or the `--ecourtdate-url` of the run. */
  readonly ecourtdateUrl: string;
  /** The job ledger, for `npm run relay -- job ID --local`. */
  readonly dynamodbEndpoint: string;
  readonly ledgerTableName: string;
  /**
   * The local webhook receiver (docs/webhooks.md): POST signed payloads here. Its shared secret is in the local
   * Secrets Manager under `webhookSecretId`. Absent in files written before webhooks.
   */
  readonly webhookUrl?: string;
  readonly webhookSecretId?: string;
}

/** The state directory of `npm start` (its `--state-dir` default): the sender log and the endpoints file. */
export const DEFAULT_STATE_DIR = '.relay-local';
/** The endpoints file's name inside the state directory. */
export const ENDPOINTS_FILE = 'endpoints.json';
/** Where `--local` looks unless `--local-file` says otherwise (relative to the working directory). */
export const DEFAULT_LOCAL_FILE = `${DEFAULT_STATE_DIR}/${ENDPOINTS_FILE}`;
/** The region of the local pipeline's emulators (they accept any). */
export const LOCAL_REGION = 'us-east-1';
/** Credentials for the local emulators, which check none; explicit so that no AWS profile is ever sent to them. */
export const EMULATOR_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;
/** The command that starts a local pipeline the `--local` commands can use. */
export const START_LOCAL_PIPELINE = 'npm start -- --keep-running';

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

/** Writes the endpoints file (JSON, one field a line), replacing any earlier one. */
export async function writeLocalEndpoints(path: string, endpoints: LocalEndpoints): Promise<void> {
  await writeFile(path, `${JSON.stringify(endpoints, null, 2)}\n`);
}

/** Removes the endpoints file when the pipeline stops; a file already gone is fine. */
export async function removeLocalEndpoints(path: string): Promise<void> {
  await rm(path, { force: true });
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
    if (code === 'ENOENT') throw new LocalPipelineNotRunningError(`no ${path}`, { cause: error });
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

/** Whether a process with this id exists (signal 0 checks without sending anything). */
function processIsRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it is just not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
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
