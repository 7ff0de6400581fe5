import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULT_STATE_DIR, ENDPOINTS_FILE, START_LOCAL_PIPELINE } from '#local/pipeline/endpoints-file.ts';
import { parseStartOptions, START_HELP, type StartOptions, UsageError } from '#local/pipeline/options.ts';
import { checkReportPath, checkTimeScale, planRun, type RunPlan } from '#local/pipeline/plan.ts';
import type { OutputStream } from '#local/pipeline/progress.ts';
import { type PipelineRun, runPlan, StartError } from '#local/pipeline/run.ts';

/** The exit status of a run the user interrupted (128 + SIGINT), as shells report a Ctrl-C. */
export const INTERRUPTED_STATUS = 130;

export interface MainIO {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Aborted when the user asks to stop (Ctrl-C): during the run, and with --keep-running after it. */
  readonly signal: AbortSignal;
}

/**
 * Signals this soon after the first are the same Ctrl-C: a terminal sends SIGINT to npm, tsx and this process at
 * once, and tsx passes its own on to this process as well.
 */
const SAME_CTRL_C_MS = 1_000;

/**
 * The process's own streams, environment and signals. The first Ctrl-C (SIGINT) or SIGTERM asks the run to
 * stop cleanly (summary, report, endpoints file removed); another one a second later ends the process at once.
 */
export function processIO(): MainIO {
  const controller = new AbortController();
  let firstAt: number | undefined;
  const stop = () => {
    const now = Date.now();
    if (firstAt === undefined) {
      firstAt = now;
      controller.abort();
    } else if (now - firstAt > SAME_CTRL_C_MS) {
      process.exit(INTERRUPTED_STATUS);
    }
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    signal: controller.signal,
  };
}

/**
 * `npm start`: parses the options, checks what can be checked before anything starts (the jobs file, the
 * credentials, the time scale, the report path), runs the local pipeline, prints the summary and writes the
 * report. Returns the exit status: 0 every job settled, 1 some did not, 2 the run could not start or the API of
 * `--ecourtdate-url` cannot be reached at all, 130 interrupted (Ctrl-C) before every job settled. With
 * `--keep-running`, a stop after the summary keeps the run's own status (0 or 1); npm itself reports 130 for
 * any Ctrl-C it receives (docs/operating.md, "Quick start (local pipeline)").
 *
 * @example
 * const status = await main(['--jobs', 'my-jobs.jsonl', '--report', 'report.json']);
 */
export async function main(argv: readonly string[], io: MainIO = processIO()): Promise<number> {
  let options: StartOptions;
  try {
    options = parseStartOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`npm start: ${error.message}\nSee: npm start -- --help\n`);
    return 2;
  }
  if (options.help) {
    io.stdout.write(`${START_HELP}\n`);
    return 0;
  }
  const reportPath = options.reportFile === undefined ? undefined : resolve(io.cwd, options.reportFile);

  let run: PipelineRun;
  try {
    const plan = await prepare(options, io, reportPath);
    const target = options.ecourtdateUrl ? options.ecourtdateUrl.origin : 'the built-in eCourtDate simulator';
    io.stdout.write(
      `ecourtdate-relay, local pipeline: jobs from ${options.jobsFile} to ${target}` +
        `${options.timeScale === 1 ? '' : `, ${options.timeScale}x faster`}\n`,
    );
    run = await runPlan(plan, io);
  } catch (error) {
    if (!(error instanceof StartError)) throw error;
    io.stderr.write(`npm start: ${error.message}\n`);
    return 2;
  }
  io.stdout.write(`\n${run.summary}\n`);

  if (reportPath !== undefined) {
    try {
      await writeFile(reportPath, `${JSON.stringify(run.report, null, 2)}\n`);
      io.stdout.write(`Report: ${reportPath}\n`);
    } catch (error) {
      await run.stop();
      io.stderr.write(`npm start: cannot write the report ${reportPath}: ${(error as Error).message}\n`);
      return 2;
    }
  }

  if (run.endpointsFile !== undefined) {
    // A state directory of its own: the hints name it, so that they work as printed.
    const own = options.stateDir !== DEFAULT_STATE_DIR;
    const local = own ? `--local --local-file ${join(options.stateDir, ENDPOINTS_FILE)}` : '--local';
    const start = own ? `${START_LOCAL_PIPELINE} --state-dir ${options.stateDir}` : START_LOCAL_PIPELINE;
    const stop = own ? `npm run stop -- --state-dir ${options.stateDir}` : 'npm run stop';
    io.stdout.write(
      `\nStill running: the queues, ${options.ecourtdateUrl ? 'the secret' : 'the simulator, the secret'}, ` +
        `the webhook receiver and the sender instances. Endpoints: ${run.endpointsFile}\n` +
        `Try: npm run relay -- dlq list ${local}    (Ctrl-C or ${stop} stops it)\n`,
    );
    await aborted(io.signal);
    await run.stop();
    io.stdout.write(`Stopped; removed ${run.endpointsFile}. Start again with: ${start}\n`);
  }
  if (run.ended === 'interrupted') return INTERRUPTED_STATUS;
  // The API given to --ecourtdate-url cannot be reached at all: like a bad option, nothing can run until fixed.
  if (run.ended === 'unreachable') return 2;
  return run.settled ? 0 : 1;
}

/** Everything checked before the run starts. Throws `StartError`. */
async function prepare(options: StartOptions, io: MainIO, reportPath: string | undefined): Promise<RunPlan> {
  const plan = await planRun(options, io);
  checkTimeScale(plan);
  if (reportPath !== undefined) await checkReportPath(reportPath);
  return plan;
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
