import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CHAOS_ENV, chaosOptions, ROOT } from '#test/chaos/options.ts';
import { type ChaosFigures, renderFigures } from '#test/chaos/summary.ts';

const HELP = `Usage: npm run chaos -- [options]

Runs the chaos suite (test/chaos/): the mixed-faults run (seeded jobs against every response of the table and
the fault kinds production integrations meet, with instances killed, secret and token outages, SQS redeliveries and copies, lost
DynamoDB answers, outages of DynamoDB, SQS and EventBridge, slow DynamoDB and a stalled secret read that outlive
the function timeout, eCourtDate's webhooks, a redrive of the dead-letter queue and replays after the dedupe
window) and the 429 storm. Prints each run's figures; they are also written
to reports/chaos.local.json and reports/chaos-storm.local.json. Exit status: vitest's.

Options:
  --jobs N          jobs of the mixed-faults run (default 500, as in CI)
  --seed N          seed of the plan of faults (default 20261125)
  --time-scale N    time scale of the mixed-faults run (default 120)
  --instances N     simulated sender instances of the mixed-faults run (default 4)
  --wave N          jobs per pipeline run: more jobs run in waves (default 125; a larger burst waits in
                    the queue for hours of scaled time, past the duplicate window)
  --parallel N      waves that run at once, each a pipeline of its own (default 4)
  --storm-hours H   length of the 429 storm, in the API's hours (default 4)
  --only NAME       run only "mixed", "storm" or "outages"
  --help            show this help`;

const REPORTS = {
  mixed: 'chaos.local.json',
  storm: 'chaos-storm.local.json',
  outages: 'chaos-outages.local.json',
} as const;

/**
 * `npm run chaos -- --jobs 10000 --seed 7`: passes the options to the chaos suite through its environment
 * variables (test/chaos/options.ts), runs it with vitest, and prints a summary table of each run.
 */
async function main(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      jobs: { type: 'string' },
      seed: { type: 'string' },
      'time-scale': { type: 'string' },
      instances: { type: 'string' },
      wave: { type: 'string' },
      parallel: { type: 'string' },
      'storm-hours': { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const env: Record<string, string | undefined> = { ...process.env };
  const set = (name: keyof typeof CHAOS_ENV, value: string | undefined) => {
    if (value !== undefined) env[CHAOS_ENV[name]] = value;
  };
  set('jobs', values.jobs);
  set('seed', values.seed);
  set('timeScale', values['time-scale']);
  set('instances', values.instances);
  set('wave', values.wave);
  set('parallel', values.parallel);
  set('stormHours', values['storm-hours']);
  // Checked here, so a typo fails before anything starts, naming the option's variable.
  const options = chaosOptions(env);
  const only = values.only;
  if (only !== undefined && only !== 'mixed' && only !== 'storm' && only !== 'outages') {
    throw new RangeError(`--only: expected "mixed", "storm" or "outages", got "${only}"`);
  }
  const runs = only === undefined ? (['mixed', 'storm', 'outages'] as const) : ([only] as const);
  if (only !== undefined) env.CHAOS_ONLY = only;

  const startedAt = Date.now();
  const vitest = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
  const code = await new Promise<number>((resolveExit, reject) => {
    const child = spawn(process.execPath, [vitest, 'run', 'test/chaos/chaos.test.ts'], {
      cwd: ROOT,
      env,
      stdio: 'inherit',
    });
    child.once('error', reject);
    child.once('exit', (exitCode, signal) => resolveExit(exitCode ?? (signal ? 1 : 0)));
  });

  for (const run of runs) {
    const path = join(options.reportDir, REPORTS[run]);
    const written = await stat(path).catch(() => undefined);
    if (written === undefined || written.mtimeMs < startedAt) {
      process.stdout.write(`\n${run}: no figures (the run did not finish)\n`);
      continue;
    }
    const figures = JSON.parse(await readFile(path, 'utf8')) as ChaosFigures;
    process.stdout.write(`\n${renderFigures(figures)}`);
  }
  return code;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`npm run chaos: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
