import { parseArgs } from 'node:util';
import { DEFAULT_STATE_DIR, ENDPOINTS_FILE } from '#local/pipeline/endpoints-file.ts';
import { SAMPLE_JOBS_FILE } from '#local/pipeline/scenario.ts';
import { joinNegativeValues } from '#local/terminal/args.ts';
import { parseBaseUrl } from '#shared/config.ts';
import { ConfigError, RelayError } from '#shared/errors.ts';

/**
 * Time scale of the built-in demo: a 60 s backoff takes 2 s. Below the largest faithful scale for the staging
 * settings and the demo's HTTP timeout (38, see local/pipeline/time-scale.ts), with room to spare.
 */
export const DEMO_TIME_SCALE = 30;
/** HTTP timeout of the built-in demo, so the scripted hang times out quickly. */
export const DEMO_HTTP_TIMEOUT_MS = 3_000;
export const DEFAULT_TIMEOUT_SECONDS = 120;
export { DEFAULT_STATE_DIR } from '#local/pipeline/endpoints-file.ts';
export const CLIENT_ID_VARIABLE = 'ECOURTDATE_CLIENT_ID';
export const CLIENT_SECRET_VARIABLE = 'ECOURTDATE_CLIENT_SECRET';

export interface StartOptions {
  /** JSON Lines file of jobs. */
  readonly jobsFile: string;
  /** A real (or test) eCourtDate-compatible API instead of the built-in simulator. */
  readonly ecourtdateUrl: URL | undefined;
  readonly timeScale: number;
  readonly reportFile: string | undefined;
  /** Simulated Lambda instances; undefined = the stage's maxConcurrency. */
  readonly concurrency: number | undefined;
  readonly timeoutSeconds: number;
  readonly keepRunning: boolean;
  /** Where the sender log and, with --keep-running, endpoints.json go. */
  readonly stateDir: string;
  readonly help: boolean;
}

/** A command line that cannot work; the message says why and `npm start -- --help` says more. */
export class UsageError extends RelayError {}

export const START_HELP = `Usage: npm start -- [options]

Runs the relay's whole pipeline on this machine: an SQS emulator with the send queue and its dead-letter
queue (configured as the stack configures them), a DynamoDB emulator with the job ledger table, the
eCourtDate simulator, a local Secrets Manager, and the real sender handler polled like Lambda's SQS event
source mapping. Puts the jobs on the queue, waits until every job is delivered, a duplicate or
dead-lettered, and prints a summary with the alarms' states.

Options:
  --jobs FILE            JSON Lines, one job per line, each put on the queue exactly as written
                         (default: ${SAMPLE_JOBS_FILE}: sample jobs that meet every answer eCourtDate can
                         give, from 201 to timeouts, with the outcome the relay gives each)
  --ecourtdate-url URL   send to this eCourtDate-compatible API (https://, or http:// to loopback) instead of
                         the built-in simulator, e.g. https://staging.api.ecourtdate.com; needs --jobs and
                         the credentials in ${CLIENT_ID_VARIABLE} and ${CLIENT_SECRET_VARIABLE}
  --time-scale N         run N times faster: backoffs, visibility timeouts, the 24 h maximum age, the
                         duplicate window, the simulator's windows and the alarm periods are divided by N
                         (default: ${DEMO_TIME_SCALE} with the built-in simulator, 1 with --ecourtdate-url). A scale
                         at which the run would decide jobs differently from the deployed relay is refused,
                         with the largest one that is faithful and why
  --concurrency N        simulated sender instances, each with its own token cache and its share of the
                         rate budget (default: the stage's maxConcurrency)
  --timeout SECONDS      stop waiting after this long; unsettled jobs make the exit status 1
                         (default: ${DEFAULT_TIMEOUT_SECONDS})
  --report FILE          write the result as JSON (summary, every job with why, API calls, alarm states);
                         checked before the run starts (a missing folder is created), written also when
                         the run is interrupted
  --keep-running         keep the queues, simulator, webhook receiver, secret and sender running after the
                         summary, and write <state dir>/${ENDPOINTS_FILE} for "npm run relay -- --local ...";
                         Ctrl-C stops them and removes the file. In the background, stop it by signalling the
                         pid in ${ENDPOINTS_FILE} (kill -INT <pid>): a signal to npm alone does not reach it
  --state-dir DIR        where sender.log, webhook.log (and ${ENDPOINTS_FILE}) go (default: ${DEFAULT_STATE_DIR})
  --help                 show this help

Ctrl-C stops the run: it prints how many jobs settled, the summary so far, and writes the report.
With --ecourtdate-url, the run stops at the first request if the API cannot be reached at all (its name
does not resolve, the connection is refused, the TLS handshake fails, or fetch blocks the port).

Exit status: 0 when every job settled, 1 when some did not before the timeout, 2 when the run could not
start (the message says why) or the --ecourtdate-url API cannot be reached, 130 when interrupted with
Ctrl-C before every job settled. With --keep-running, a signal to the pipeline's pid after the summary
ends it with the run's own status (0 or 1); a Ctrl-C in the terminal also reaches npm, which then exits
130 whatever the run's status (the report's "ended" says how the run ended).`;

const START_OPTIONS = {
  jobs: { type: 'string' },
  'ecourtdate-url': { type: 'string' },
  'time-scale': { type: 'string' },
  report: { type: 'string' },
  concurrency: { type: 'string' },
  timeout: { type: 'string' },
  'keep-running': { type: 'boolean' },
  'state-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * Parses `npm start` arguments. Throws `UsageError` naming the bad option. Credentials (environment) and the
 * jobs file are checked when the run starts.
 */
export function parseStartOptions(argv: readonly string[]): StartOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(argv, START_OPTIONS),
      strict: true,
      allowPositionals: false,
      options: START_OPTIONS,
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const text = (name: string) => {
    const value = values[name];
    return typeof value === 'string' ? value : undefined;
  };

  let ecourtdateUrl: URL | undefined;
  const rawUrl = text('ecourtdate-url');
  if (rawUrl !== undefined) {
    try {
      ecourtdateUrl = parseBaseUrl(rawUrl, '--ecourtdate-url');
    } catch (error) {
      throw new UsageError(error instanceof ConfigError ? error.message : String(error));
    }
  }
  const jobsFile = text('jobs');
  if (ecourtdateUrl !== undefined && jobsFile === undefined) {
    throw new UsageError(
      '--ecourtdate-url needs --jobs FILE: the sample jobs are scripted for the built-in simulator (their ' +
        'recipients trigger its faults) and mean nothing to a real API. For eCourtDate staging, try ' +
        '--jobs examples/staging-smoke.jsonl',
    );
  }
  return {
    jobsFile: jobsFile ?? SAMPLE_JOBS_FILE,
    ecourtdateUrl,
    timeScale: whole(text('time-scale'), '--time-scale', 1, 100_000) ?? (ecourtdateUrl ? 1 : DEMO_TIME_SCALE),
    reportFile: text('report'),
    concurrency: whole(text('concurrency'), '--concurrency', 1, 100),
    timeoutSeconds: positive(text('timeout'), '--timeout') ?? DEFAULT_TIMEOUT_SECONDS,
    keepRunning: values['keep-running'] === true,
    stateDir: text('state-dir') ?? DEFAULT_STATE_DIR,
    help: values.help === true,
  };
}

function whole(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${name}: expected a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function positive(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new UsageError(`${name}: expected a number of seconds above 0, got "${raw}"`);
  }
  return value;
}
