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
  /** Outages the built-in simulator plays (`--outage`, `--auth-outage`); absent or empty for none. */
  readonly outages?: readonly OutageOption[] | undefined;
  /**
   * When the outages start, in eCourtDate's own seconds after the simulator is up, a moment before the jobs are put
   * on the queue (`--outage-at`, local/pipeline/resources.ts);
   * undefined: at the first request to the messages endpoint, that request included.
   */
  readonly outageAtSeconds?: number | undefined;
  readonly help: boolean;
}

/** One outage of the built-in simulator, as `--outage` or `--auth-outage` asks for it (docs/test-world.md). */
export interface OutageOption {
  /** `unavailable` (503), `hang` or `drop` for `--outage` (`--outage-kind`); `auth` for `--auth-outage`. */
  readonly kind: 'unavailable' | 'hang' | 'drop' | 'auth';
  /** Length in eCourtDate's own seconds: divided by the time scale like every other window. */
  readonly durationSeconds: number;
  /** The 503s carry `Retry-After` with the seconds left in the outage (`--outage-retry-after`). */
  readonly retryAfter: boolean;
}

/** What `--outage-kind` takes, and the simulator outage each one is. */
export const OUTAGE_KINDS = { '503': 'unavailable', hang: 'hang', drop: 'drop' } as const;

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
  --concurrency N        simulated sender instances, each with its own token cache, sharing the stage's one
                         rate budget (default: the stage's maxConcurrency)
  --timeout SECONDS      stop waiting after this long; unsettled jobs make the exit status 1
                         (default: ${DEFAULT_TIMEOUT_SECONDS}, plus the outages' length and 10 minutes of probe
                         wait, divided by the time scale)
  --report FILE          write the result as JSON (summary, every job with why, API calls, alarm states);
                         checked before the run starts (a missing folder is created), written also when
                         the run is interrupted
  --keep-running         keep the queues, simulator, webhook receiver, secret and sender running after the
                         summary, and write <state dir>/${ENDPOINTS_FILE} for "npm run relay -- --local ...";
                         Ctrl-C stops them and removes the file. In the background, stop it by signalling the
                         pid in ${ENDPOINTS_FILE} (kill -INT <pid>): a signal to npm alone does not reach it
  --outage DURATION      the built-in simulator is down for this long, in eCourtDate's time (e.g. 2h, 30m,
                         90s; divided by the time scale like every window): every request, token, messages
                         and GET /v1/settings alike, meets the outage. The summary and the report count
                         what the API saw during it and what became of the jobs
  --outage-kind KIND     what the API does during --outage: 503 (default), hang (no answer) or drop (the
                         connection closed)
  --outage-retry-after   the outage's 503s carry Retry-After with the seconds left in it
  --auth-outage DURATION the API client is revoked for this long: the token endpoint, messages and
                         GET /v1/settings answer 401, and the tokens issued before stay revoked
  --outage-at DURATION   start the outages this long (eCourtDate's time) after the simulator is up, a moment
                         before the jobs are put on the queue (default: at the first request to the
                         messages endpoint, so that the first jobs are in flight)
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
  outage: { type: 'string' },
  'outage-kind': { type: 'string' },
  'outage-retry-after': { type: 'boolean' },
  'auth-outage': { type: 'string' },
  'outage-at': { type: 'string' },
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
  const outages = outageOptions(text, values['outage-retry-after'] === true);
  const outageAt = text('outage-at');
  if (outageAt !== undefined && outages.length === 0) {
    throw new UsageError(
      '--outage-at needs --outage DURATION or --auth-outage DURATION: it says when they start',
    );
  }
  if (ecourtdateUrl !== undefined && outages.length > 0) {
    throw new UsageError(
      `--${outages[0]?.kind === 'auth' ? 'auth-outage' : 'outage'} plays an outage in the built-in simulator; ` +
        'it cannot be used with --ecourtdate-url. Leave out --ecourtdate-url to see the relay ride out an outage',
    );
  }
  const timeScale =
    whole(text('time-scale'), '--time-scale', 1, 100_000) ?? (ecourtdateUrl ? 1 : DEMO_TIME_SCALE);
  return {
    jobsFile: jobsFile ?? SAMPLE_JOBS_FILE,
    ecourtdateUrl,
    timeScale,
    reportFile: text('report'),
    concurrency: whole(text('concurrency'), '--concurrency', 1, 100),
    timeoutSeconds:
      positive(text('timeout'), '--timeout') ??
      defaultTimeoutSeconds(
        outages,
        outageAt === undefined ? 0 : parseDuration(outageAt, '--outage-at', true),
        timeScale,
      ),
    keepRunning: values['keep-running'] === true,
    stateDir: text('state-dir') ?? DEFAULT_STATE_DIR,
    outages,
    outageAtSeconds: outageAt === undefined ? undefined : parseDuration(outageAt, '--outage-at', true),
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

/**
 * `--timeout`'s default, seconds of real time: `DEFAULT_TIMEOUT_SECONDS`, and with outages, also the longest
 * outage (after `--outage-at`) and the circuit breaker's longest probe wait (600 s) it may take to notice the end,
 * in eCourtDate's seconds divided by the time scale (docs/pacing.md, "The circuit breaker").
 */
export function defaultTimeoutSeconds(
  outages: readonly Pick<OutageOption, 'durationSeconds'>[],
  outageAtSeconds: number,
  timeScale: number,
): number {
  if (outages.length === 0) return DEFAULT_TIMEOUT_SECONDS;
  const longest = Math.max(...outages.map((outage) => outage.durationSeconds));
  return DEFAULT_TIMEOUT_SECONDS + Math.ceil((outageAtSeconds + longest + 600) / timeScale);
}

/** `--outage`, `--outage-kind`, `--outage-retry-after` and `--auth-outage`, checked together. */
function outageOptions(text: (name: string) => string | undefined, retryAfter: boolean): OutageOption[] {
  const outage = text('outage');
  const kindText = text('outage-kind');
  if (outage === undefined && (kindText !== undefined || retryAfter)) {
    throw new UsageError(
      `--${kindText === undefined ? 'outage-retry-after' : 'outage-kind'} needs --outage DURATION, e.g. --outage 2h`,
    );
  }
  const kinds: Record<string, OutageOption['kind']> = OUTAGE_KINDS;
  const kind = kinds[kindText ?? '503'];
  if (kind === undefined) {
    throw new UsageError(
      `--outage-kind: expected one of ${Object.keys(OUTAGE_KINDS).join(', ')}, got "${kindText}"`,
    );
  }
  if (retryAfter && kind !== 'unavailable') {
    throw new UsageError('--outage-retry-after needs --outage-kind 503: only a 503 carries Retry-After');
  }
  const outages: OutageOption[] = [];
  if (outage !== undefined) {
    outages.push({ kind, durationSeconds: parseDuration(outage, '--outage'), retryAfter });
  }
  const auth = text('auth-outage');
  if (auth !== undefined) {
    outages.push({ kind: 'auth', durationSeconds: parseDuration(auth, '--auth-outage'), retryAfter: false });
  }
  return outages;
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600 };

/**
 * A duration in eCourtDate's own seconds from a number and a unit: `90s`, `30m`, `2h`, `1.5h` (one unit).
 * Throws `UsageError` naming the option for anything else, or for 0 unless `zero`.
 */
export function parseDuration(raw: string, name: string, zero = false): number {
  const match = /^(\d+(?:\.\d+)?)(s|m|h)$/.exec(raw.trim());
  const seconds = match ? Number(match[1]) * (DURATION_UNITS[match[2] ?? ''] ?? Number.NaN) : Number.NaN;
  if (!Number.isFinite(seconds) || seconds < 0 || (seconds === 0 && !zero)) {
    throw new UsageError(
      `${name}: expected a duration${zero ? '' : ' above 0'} in eCourtDate's time, a number and s, m or h ` +
        `(e.g. 90s, 30m, 2h), got "${raw}"`,
    );
  }
  return seconds;
}
