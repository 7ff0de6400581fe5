import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseStartOptions, START_HELP, type StartOptions, UsageError } from '#local/pipeline/options.ts';
import type { OutputStream } from '#local/pipeline/progress.ts';
import { ENDPOINTS_FILE, type PipelineRun, runPipeline, StartError } from '#local/pipeline/run.ts';

export interface MainIO {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** With --keep-running: resolves when the user asks to stop (Ctrl-C). */
  readonly waitForStop: () => Promise<void>;
}

/** The process's own streams, environment and signals. */
export function processIO(): MainIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    waitForStop: () =>
      new Promise<void>((done) => {
        process.once('SIGINT', () => done());
        process.once('SIGTERM', () => done());
      }),
  };
}

/**
 * `npm start`: parses the options, runs the local pipeline, prints the summary and writes the report.
 * Returns the exit status: 0 every job settled, 1 some did not, 2 the run could not start.
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

  const target = options.ecourtdateUrl ? options.ecourtdateUrl.origin : 'the built-in eCourtDate simulator';
  io.stdout.write(
    `ecourtdate-relay, local pipeline: jobs from ${options.jobsFile} to ${target}` +
      `${options.timeScale === 1 ? '' : `, ${options.timeScale}x faster`}\n`,
  );
  let run: PipelineRun;
  try {
    run = await runPipeline(options, io);
  } catch (error) {
    if (!(error instanceof StartError)) throw error;
    io.stderr.write(`npm start: ${error.message}\n`);
    return 2;
  }
  io.stdout.write(`\n${run.summary}\n`);

  if (options.reportFile !== undefined) {
    const path = resolve(io.cwd, options.reportFile);
    try {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, `${JSON.stringify(run.report, null, 2)}\n`);
      io.stdout.write(`Report: ${path}\n`);
    } catch (error) {
      await run.stop();
      io.stderr.write(`npm start: cannot write the report ${path}: ${(error as Error).message}\n`);
      return 2;
    }
  }

  if (options.keepRunning) {
    const endpointsFile = join(resolve(io.cwd, options.stateDir), ENDPOINTS_FILE);
    io.stdout.write(
      `\nStill running: the queues, ${options.ecourtdateUrl ? 'the secret' : 'the simulator, the secret'} and ` +
        `the sender instances. Endpoints: ${endpointsFile}\n` +
        `Try: npm run relay -- --local dlq list    (Ctrl-C stops)\n`,
    );
    await io.waitForStop();
    await run.stop();
  }
  return run.settled ? 0 : 1;
}
