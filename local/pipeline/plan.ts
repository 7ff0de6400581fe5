import { mkdir, open, rm, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { StageConfig } from '#infra/config.ts';
import { type JobLine, readJobsFile } from '#local/pipeline/jobs-file.ts';
import {
  CLIENT_ID_VARIABLE,
  CLIENT_SECRET_VARIABLE,
  DEMO_HTTP_TIMEOUT_MS,
  type StartOptions,
} from '#local/pipeline/options.ts';
import { SCENARIO_CLIENT } from '#local/pipeline/scenario.ts';
import { cdkStageConfig, localSenderEnvironment } from '#local/pipeline/stage.ts';
import { faithfulTimeScaleLimit } from '#local/pipeline/time-scale.ts';
import { loadSenderConfig, type SenderConfig } from '#shared/config.ts';
import { RelayError } from '#shared/errors.ts';

/** The run could not start: bad input, missing credentials, a port that would not open. */
export class StartError extends RelayError {}

/** Everything a run needs that can be checked before anything starts. */
export interface RunPlan {
  readonly options: StartOptions;
  /** The jobs file's lines, as read. */
  readonly lines: readonly JobLine[];
  /** The stage the CDK app would deploy from this checkout, with the demo's HTTP timeout for the simulator. */
  readonly stage: StageConfig;
  /** The API client the local secret holds: the simulator's, or the environment's for `--ecourtdate-url`. */
  readonly credentials: { readonly id: string; readonly secret: string };
  /** Simulated sender instances. */
  readonly concurrency: number;
  /** Absolute path of the state directory (sender.log, endpoints.json). */
  readonly stateDir: string;
}

/**
 * Reads and checks what a run needs before starting anything: the jobs file, the credentials (with
 * `--ecourtdate-url`), the stage settings from `cdk.json`. Throws `StartError` saying what is wrong.
 */
export async function planRun(
  options: StartOptions,
  io: { readonly env: Readonly<Record<string, string | undefined>>; readonly cwd: string },
): Promise<RunPlan> {
  let lines: JobLine[];
  try {
    lines = await readJobsFile(resolve(io.cwd, options.jobsFile));
  } catch (error) {
    throw new StartError(error instanceof Error ? error.message : String(error), { cause: error });
  }
  const credentials = options.ecourtdateUrl ? credentialsFromEnv(io.env) : SCENARIO_CLIENT;
  let stage: StageConfig;
  try {
    // The demo's scripted hang should not hold a batch for the deployed 10 s; a real API gets the real timeout.
    stage = cdkStageConfig(
      io.cwd,
      options.ecourtdateUrl ? {} : { httpTimeoutMs: String(DEMO_HTTP_TIMEOUT_MS) },
    );
  } catch (error) {
    throw new StartError(`cdk.json: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return {
    options,
    lines,
    credentials,
    stage,
    concurrency: options.concurrency ?? stage.maxConcurrency,
    stateDir: resolve(io.cwd, options.stateDir),
  };
}

/**
 * The sender's settings as the run will load them (the stage's, scaled; placeholder addresses), for checks made
 * before anything starts.
 */
export function plannedSenderConfig(plan: RunPlan): SenderConfig {
  const local = 'http://127.0.0.1:1';
  return loadSenderConfig(
    localSenderEnvironment(plan.stage, {
      baseUrl: plan.options.ecourtdateUrl?.href ?? local,
      concurrency: plan.concurrency,
      timeScale: plan.options.timeScale,
      resources: {
        secretId: 'planned',
        sendQueueUrl: `${local}/send`,
        deadLetterQueueUrl: `${local}/dlq`,
        ledgerTableName: 'planned',
      },
      endpoints: { sqs: local, secretsManager: local, dynamodb: local },
    }),
  );
}

/**
 * Refuses a `--time-scale` at which the run would no longer decide as the deployed relay does (see
 * local/pipeline/time-scale.ts): with the built-in simulator a job meets at most one timeout, against a real API
 * every attempt may; either way one 429 may hold it back. Throws `StartError` with the largest faithful scale
 * and why.
 */
export function checkTimeScale(plan: RunPlan): void {
  const config = plannedSenderConfig(plan);
  const timeouts = plan.options.ecourtdateUrl ? config.maxAttempts - 1 : 1;
  const limit = faithfulTimeScaleLimit(config, { timeouts, deferrals: 1 }, plan.options.timeScale);
  if (limit >= plan.options.timeScale) return;
  const scale = plan.options.timeScale;
  throw new StartError(
    `--time-scale ${scale} is too fast to be faithful; use ${limit} or less. At ${scale}x, eCourtDate's ` +
      `${config.duplicateWindowSeconds / 60}-minute duplicate window lasts ` +
      `${(config.duplicateWindowSeconds / scale).toFixed(1)} s, but a job's retries after an unknown outcome ` +
      'would not all fit in it: the backoffs shrink (rounded up to whole seconds), while a request without an ' +
      `answer still waits its whole ${config.httpTimeoutMs / 1000} s HTTP timeout in real time and a record held ` +
      'back by a 429 returns seconds later. Jobs the deployed relay retries would be dead-lettered ' +
      'unknown_outcome instead',
  );
}

/**
 * Checks up front that the report can be written at `path`, so that a bad path fails before the run rather than
 * after it. A missing folder is created (with its parents), as `--state-dir` is. Leaves no file behind (the
 * folders it created stay). Throws `StartError` naming the cause: a part of the path that is a file, a directory
 * at the path itself, or the system's error code (e.g. EACCES).
 */
export async function checkReportPath(path: string): Promise<void> {
  const file = await fileOnTheWay(dirname(path));
  if (file !== undefined) {
    throw new StartError(`--report: cannot write ${path}: ${file} is a file, not a folder`);
  }
  try {
    const found = await stat(path).catch(() => undefined);
    if (found?.isDirectory()) throw new Error('it is a directory');
    const existed = found !== undefined;
    await mkdir(dirname(path), { recursive: true });
    const handle = await open(path, 'a');
    await handle.close();
    if (!existed) await rm(path, { force: true });
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new StartError(`--report: cannot write ${path} (${reason})`, { cause: error });
  }
}

/** The closest part of `folder` (itself or an ancestor) that exists, when it is a file; undefined otherwise. */
async function fileOnTheWay(folder: string): Promise<string | undefined> {
  for (let current = folder; ; current = dirname(current)) {
    const found = await stat(current).catch(() => undefined);
    if (found !== undefined) return found.isDirectory() ? undefined : current;
    if (dirname(current) === current) return undefined;
  }
}

function credentialsFromEnv(env: Readonly<Record<string, string | undefined>>): {
  id: string;
  secret: string;
} {
  const id = env[CLIENT_ID_VARIABLE]?.trim();
  const secret = env[CLIENT_SECRET_VARIABLE]?.trim();
  const missing = [id ? undefined : CLIENT_ID_VARIABLE, secret ? undefined : CLIENT_SECRET_VARIABLE].filter(
    (name) => name !== undefined,
  );
  if (!id || !secret) {
    throw new StartError(
      `--ecourtdate-url needs the API client's credentials in the environment: ${missing.join(' and ')} ` +
        `${missing.length > 1 ? 'are' : 'is'} not set (the client id and secret from eCourtDate Console > APIs, ` +
        'for the same environment as the URL)',
    );
  }
  return { id, secret };
}
