import { mkdir } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { type CheckedCall, describeDenials } from '#local/iam/gate.ts';
import { Closers } from '#local/pipeline/closers.ts';
import {
  DEFAULT_LOCAL_FILE,
  ENDPOINTS_FILE,
  LOCAL_REGION,
  type LocalEndpoints,
  removeLocalEndpoints,
  writeLocalEndpoints,
} from '#local/pipeline/endpoints-file.ts';
import type { StartOptions } from '#local/pipeline/options.ts';
import { outageFigures } from '#local/pipeline/outage-report.ts';
import { planRun, type RunPlan, StartError } from '#local/pipeline/plan.ts';
import type { OutputStream } from '#local/pipeline/progress.ts';
import { buildReport, type RunEnd, type RunReport, renderSummary } from '#local/pipeline/report.ts';
import { type LocalResources, startLocalResources, WEBHOOK_LOG_FILE } from '#local/pipeline/resources.ts';
import { acquireRunLock } from '#local/pipeline/run-lock.ts';
import { SAMPLE_JOBS_FILE } from '#local/pipeline/scenario.ts';
import { type PipelineHooks, type Senders, startSenders } from '#local/pipeline/senders.ts';
import { watchUntilSettled } from '#local/pipeline/watch.ts';
import { alarmDefinitions } from '#shared/alarm-definitions.ts';
import { parseJob } from '#shared/job.ts';

export { StartError } from '#local/pipeline/plan.ts';
export type { PipelineHooks } from '#local/pipeline/senders.ts';

export interface PipelineIO {
  /** Progress and, in keep-running mode, a line per job handled afterwards. */
  readonly stdout: OutputStream;
  /** For the eCourtDate credentials with `--ecourtdate-url`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Relative paths (jobs, report, state dir, cdk.json) are resolved here. */
  readonly cwd: string;
  /** Aborted when the user asks to stop (Ctrl-C): the run ends with what has settled, everything stops. */
  readonly signal?: AbortSignal | undefined;
}

export interface PipelineRun {
  readonly report: RunReport;
  /** The summary text, printed by `main`. */
  readonly summary: string;
  /** True when every job settled. */
  readonly settled: boolean;
  /** How the watch ended: settled, timed out, or interrupted. */
  readonly ended: RunEnd;
  readonly endpoints: LocalEndpoints;
  /** The endpoints file, written with --keep-running while the pipeline keeps running; else undefined. */
  readonly endpointsFile: string | undefined;
  readonly logFile: string;
  /**
   * Calls of the functions that the stack's IAM denied (docs/test-world.md): none in a run whose grants cover
   * what the code does; the summary names them.
   */
  readonly iamDenials: readonly CheckedCall[];
  /** Stops everything still running (with --keep-running) and removes the endpoints file; safe to repeat. */
  stop(): Promise<void>;
}

/**
 * Runs the whole pipeline locally (docs/operating.md, "Quick start (local pipeline)"): `planRun` (the jobs file, the credentials, the
 * stage settings), then `runPlan`. Throws `StartError` when the run cannot start.
 */
export async function runPipeline(
  options: StartOptions,
  io: PipelineIO,
  hooks: PipelineHooks = {},
): Promise<PipelineRun> {
  return runPlan(await planRun(options, io), io, hooks);
}

/**
 * Runs a planned pipeline, in four named steps: start the local resources (queues, ledger table, simulator,
 * secret), start the senders (the real handler under a local event source mapping, with the jobs enqueued),
 * watch until every job settled (or the timeout, or Ctrl-C), and report (the stack's alarms evaluated over the
 * run's metrics, the summary, the endpoints file with --keep-running). Throws `StartError`.
 */
export async function runPlan(
  plan: RunPlan,
  io: PipelineIO,
  hooks: PipelineHooks = {},
): Promise<PipelineRun> {
  const closers = new Closers();
  // One run per state directory: a second one would truncate the first one's logs.
  const lock = await acquireRunLock(plan.stateDir);
  if (lock.kind === 'held') {
    throw new StartError(
      `another npm start (process ${lock.pid}) is using the state directory ${displayPath(io.cwd, plan.stateDir)}: ` +
        'stop it first (npm run stop, or Ctrl-C in its terminal), or give this run a --state-dir of its own',
    );
  }
  closers.push(() => lock.release());
  // Jobs the relay sends as written but eCourtDate may refuse or read otherwise (docs/contract.md).
  for (const warning of jobWarnings(plan)) io.stdout.write(`warning: ${warning}\n`);
  try {
    const resources = await startLocalResources(plan, closers, hooks);
    const senders = await startSenders(plan, resources, hooks, closers);
    const ended = await watchUntilSettled(plan, resources, senders, io);
    return await report(plan, resources, senders, ended, io, closers);
  } catch (error) {
    await closers.closeAll();
    if (error instanceof StartError) throw error;
    throw new StartError(
      `the local pipeline could not start: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

/** `FILE:LINE: warning` for each valid job of the plan with a warning (`SendJob.warnings`). */
function jobWarnings(plan: RunPlan): string[] {
  return plan.lines.flatMap((line) => {
    try {
      return parseJob(line.body).warnings.map(
        (warning) => `${plan.options.jobsFile}:${line.line}: ${warning}`,
      );
    } catch {
      // An invalid job is the sender's to dead-letter, with its reason in the report.
      return [];
    }
  });
}

/**
 * Step 4: evaluates the alarms, builds the report and the summary, and either stops everything or, with
 * --keep-running (and not interrupted), writes the endpoints file for `npm run relay -- --local` and keeps going.
 */
async function report(
  plan: RunPlan,
  resources: LocalResources,
  senders: Senders,
  ended: RunEnd,
  io: PipelineIO,
  closers: Closers,
): Promise<PipelineRun> {
  const { tracker, monitor, apiCalls, logFile } = senders;
  const endedAt = Date.now();
  const alarms = monitor.evaluate(endedAt);
  // eCourtDate's webhooks for the run's messages trail the 201s: let them arrive, then read each job's status.
  if (ended !== 'interrupted') await resources.simulatorWebhooks?.idle();
  const deliveries = await resources.webhooks.deliveriesOf(
    tracker.jobs.flatMap((job) => (job.outcome === 'delivered' && job.id !== undefined ? [job.id] : [])),
  );
  const outages = plan.options.outages ?? [];
  const runReport = buildReport(
    tracker.jobs,
    apiCalls,
    alarms,
    ended,
    deliveries,
    resources.sim && outages.length > 0
      ? outageFigures({
          outages,
          records: resources.sim.outages(),
          messages: resources.sim.messages,
          requests: resources.sim.requests,
          lines: plan.lines,
          jobs: tracker.jobs,
          startedAt: senders.startedAt,
          timeScale: plan.options.timeScale,
          batchSize: plan.stage.batchSize,
          instances: plan.concurrency,
          maxAgeSeconds: senders.config.maxAgeSeconds,
        })
      : [],
  );
  const iamDenials = resources.world.iam?.gate.denials() ?? [];
  const rendered = renderSummary({
    jobs: tracker.jobs,
    report: runReport,
    alarms,
    alarmPeriodSeconds: Math.max(...alarmDefinitions(plan.stage.alarmThresholds).map((d) => d.periodSeconds)),
    elapsedMs: endedAt - senders.startedAt,
    timeScale: plan.options.timeScale,
    target: resources.sim ? 'the built-in eCourtDate simulator' : resources.baseUrl,
    logFile: displayPath(io.cwd, logFile.path),
    webhookLogFile: displayPath(io.cwd, join(plan.stateDir, WEBHOOK_LOG_FILE)),
    transportFailure: senders.firstTransportFailure(),
    nextStep: plan.options.ecourtdateUrl ? localCheckAdvice(plan, io.cwd) : undefined,
    deliveries,
    demo: plan.options.jobsFile === SAMPLE_JOBS_FILE && plan.options.ecourtdateUrl === undefined,
    width: io.stdout.isTTY ? io.stdout.columns : undefined,
  });
  // A grant the code needs and the stack lacks would fail in AWS: said after the summary, never hidden.
  const summary =
    iamDenials.length === 0
      ? rendered
      : `${rendered}\n\nIAM: ${describeDenials(iamDenials)} (docs/test-world.md)`;
  const endpoints = localEndpoints(resources);
  let endpointsFile: string | undefined;
  // Nothing to keep running for after a Ctrl-C, nor for an API that cannot be reached.
  if (plan.options.keepRunning && ended !== 'interrupted' && ended !== 'unreachable') {
    endpointsFile = join(plan.stateDir, ENDPOINTS_FILE);
    const written = endpointsFile;
    await mkdir(plan.stateDir, { recursive: true });
    await writeLocalEndpoints(written, endpoints);
    // Pushed last, so done first: a --local command never finds the file of a pipeline that is stopping.
    closers.push(() => removeLocalEndpoints(written));
    senders.afterRun = (line) => io.stdout.write(`${line}\n`);
  } else {
    await closers.closeAll();
  }
  return {
    report: runReport,
    summary,
    settled: ended === 'settled',
    ended,
    endpoints,
    endpointsFile,
    logFile: logFile.path,
    iamDenials,
    stop: () => closers.closeAll(),
  };
}

function localEndpoints(resources: LocalResources): LocalEndpoints {
  return {
    pid: process.pid,
    region: LOCAL_REGION,
    sqsEndpoint: resources.emulator.endpoint,
    sendQueueUrl: resources.sendQueue.url,
    sendQueueArn: resources.sendQueue.arn,
    deadLetterQueueUrl: resources.deadLetterQueue.url,
    deadLetterQueueArn: resources.deadLetterQueue.arn,
    secretsManagerEndpoint: resources.secrets.url,
    secretId: resources.world.apiCredentialsSecretId,
    ecourtdateUrl: resources.baseUrl,
    dynamodbEndpoint: resources.dynamodb.endpoint,
    ledgerTableName: resources.world.ledgerTableName,
    webhookUrl: resources.webhooks.url,
    webhookSecretId: resources.world.webhookSecretId ?? '',
  };
}

/**
 * How to check the credentials and the API step by step before the first deploy (docs/deploy.md, "Smoke test against
 * eCourtDate staging"): `check-credentials --local` against this run's local secret, which holds the
 * environment's credentials; with --keep-running the run is still up after the summary, else it must be started
 * again with it. Names the endpoints file when it is not the default one.
 */
export function localCheckAdvice(plan: RunPlan, cwd: string): string {
  const file = displayPath(cwd, join(plan.stateDir, ENDPOINTS_FILE));
  const check = `npm run relay -- check-credentials --local${file === DEFAULT_LOCAL_FILE ? '' : ` --local-file ${file}`}`;
  return plan.options.keepRunning
    ? `To check the credentials and the API step by step, run in another terminal: ${check}`
    : 'To check the credentials and the API step by step: run this again with --keep-running, then, in another ' +
        `terminal: ${check}`;
}

/** A path relative to the working directory when it is inside it, else absolute. */
function displayPath(cwd: string, path: string): string {
  const inside = relative(cwd, path);
  return inside && !inside.startsWith('..') && !isAbsolute(inside) ? inside : path;
}
