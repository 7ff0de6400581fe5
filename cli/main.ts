import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkCredentials, renderCheck } from '#cli/commands/check-credentials.ts';
import {
  type DeadLetterSelection,
  deleteDeadLetters,
  listDeadLetters,
  listingNotes,
  notFoundNote,
  redriveDeadLetters,
  renderDeadLetters,
  renderDelete,
  renderRedrive,
  startMoveTask,
} from '#cli/commands/dlq.ts';
import { readJob, renderJob } from '#cli/commands/job.ts';
import { readJobs, sendJobs, type Via } from '#cli/commands/send.ts';
import { checkJobs, readJobEntries, renderVerdicts } from '#cli/commands/validate.ts';
import { CliError, InvalidJobFileError } from '#cli/errors.ts';
import {
  awsErrorText,
  closeTarget,
  explainTargetError,
  resolveTarget,
  type Target,
  type TargetOptions,
} from '#cli/target.ts';
import {
  DEFAULT_LOCAL_FILE,
  DEFAULT_STATE_DIR,
  ENDPOINTS_FILE,
  START_LOCAL_PIPELINE,
} from '#local/pipeline/endpoints-file.ts';
import { processIsRunning, RUN_LOCK_FILE, readRunLock } from '#local/pipeline/run-lock.ts';
import { joinNegativeValues } from '#local/terminal/args.ts';
import { closestName } from '#shared/closest-name.ts';
import { ConfigError } from '#shared/errors.ts';

export interface CliIO {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly cwd: string;
  /** For `AWS_ENDPOINT_URL_DYNAMODB`; the AWS SDK reads its own variables (profile, region) itself. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** What `validate -` reads its jobs from. */
  readonly stdin?: AsyncIterable<string | Uint8Array>;
}

export const RELAY_HELP = `Usage: npm run relay -- <command> [options]

Day-two tools for the relay, against a deployed stage or the local pipeline.

Commands:
  dlq list                   dead-lettered jobs: job id, reason, last status, attempts, first attempt and
                             dead-letter times (never the message text or the recipient); the messages stay
                             on the queue. One pass: it stops after 20 s, or when the messages it listed
                             come round again, and says so, with how many it listed; when it listed fewer
                             than were on the queue, also about how many others held hidden (in flight)
                             when it began
      --max N                list at most N (default 100)
      --json                 one JSON object per line instead of a table (snake_case keys as in the
                             table, numbers as numbers, detail and response_excerpt included); a listing
                             that may be incomplete ends with one line that says why: {"stopped_early":
                             {...}}, "in_flight_at_start": N, or both keys
  dlq redrive                move every dead-lettered job back to the send queue (SQS StartMessageMoveTask)
      --reason R             only jobs dead-lettered for R (e.g. forbidden, retries_exhausted): each is sent
                             back with its body and attributes unchanged, then deleted from the dead-letter
                             queue; one pass (90 s at most), each dead letter sent once; run it again when it
                             says it stopped early
      --job-id ID            only the dead letters of job ID (repeat for more jobs; with --reason, those of
                             both), in the same way; says which ids it did not find (exit 1)
  dlq delete                 delete dead letters from the dead-letter queue, for good (one pass, as a
                             redrive), printing the job id, reason and dead-letter time of each
      --job-id ID            the dead letters of job ID (repeat for more jobs); says which ids it did not
                             find (exit 1)
      --reason R --yes       every dead letter with reason R (--yes required), or with --job-id only those
                             of the jobs given
  job ID                     the job's entry in the job ledger: status, generation, attempts (sent, retryable,
                             HTTP 500, 429 waits), whether an outcome is unknown, uuid, first attempt, last
                             status, dead-letter reason, and its history (time, generation, status, outcome,
                             detail); never the message text or the recipient, which the ledger does not hold.
                             Exit 1 when the ledger has no entry for ID
      --json                 one JSON object instead of text (snake_case keys, numbers as numbers; history
                             outcomes as codes: delivered, duplicate, retry with retry_cause and
                             retry_in_seconds, dead_lettered with reason, unknown, redriven); for a job the
                             ledger does not know, {"job_id": ID, "found": false}
  send FILE                  validate a job file (one JSON job, or JSON Lines) and send every job
      --via queue|bus        the send queue (default) or the stack's EventBridge bus
  validate FILE              check a job file (FILE, or - for standard input) with the relay's own rules,
                             offline (no target, no AWS): each job ok, or the field and the error, and the
                             warnings. Exit 1 when a job is invalid
      --json                 one JSON object per job: line, job_id, valid, field, error, warnings
  local stop                 stop the local pipeline (npm start) of the state directory, as Ctrl-C in its
                             terminal does, and wait for it to end; also: npm run stop
      --state-dir DIR        the run's --state-dir (default ${DEFAULT_STATE_DIR})
  check-credentials          read the secret, get a token, call GET /v1/settings, and say what is wrong
      --agency-reference R   then check that the API client can reach agency R
      --json                 one JSON object: {"passed": ..., "steps": [{"step", "ok", "summary", "advice"}]}

Target (one of):
  --stage staging|production the deployed stack EcourtdateRelay-<stage>: names and the eCourtDate URL from its
                             outputs, default AWS credentials (AWS_PROFILE, ...); --region R if not the
                             default region
  --local                    the local pipeline started with "${START_LOCAL_PIPELINE}"
                             (reads ${DEFAULT_LOCAL_FILE}; --state-dir DIR: the run's --state-dir,
                             reads DIR/${ENDPOINTS_FILE}; --local-file FILE for another file)
  explicit options           --send-queue-url URL, --dlq-url URL, --secret-id ID, --ecourtdate-url URL,
                             --ledger-table NAME, --endpoint-url URL (an SQS emulator),
                             --secrets-endpoint-url URL, --dynamodb-endpoint URL (else
                             AWS_ENDPOINT_URL_DYNAMODB), --event-bus NAME [--event-source S]; these also
                             override a stage's outputs

Exit status: 0 done; 1 the check failed, the job file holds an invalid job (nothing sent, or validate found
one), the ledger has
no entry for the job, or a --job-id of dlq redrive or dlq delete was not found on the dead-letter queue; 2 the
command could not run (a missing or empty file, an unknown target, the local pipeline not running, an AWS
error: the message says which).`;

const OPTIONS = {
  stage: { type: 'string' },
  region: { type: 'string' },
  local: { type: 'boolean' },
  'local-file': { type: 'string' },
  'send-queue-url': { type: 'string' },
  'dlq-url': { type: 'string' },
  'secret-id': { type: 'string' },
  'endpoint-url': { type: 'string' },
  'secrets-endpoint-url': { type: 'string' },
  'ecourtdate-url': { type: 'string' },
  'event-bus': { type: 'string' },
  'event-source': { type: 'string' },
  'ledger-table': { type: 'string' },
  'dynamodb-endpoint': { type: 'string' },
  reason: { type: 'string' },
  'job-id': { type: 'string', multiple: true },
  yes: { type: 'boolean' },
  via: { type: 'string' },
  max: { type: 'string' },
  json: { type: 'boolean' },
  'agency-reference': { type: 'string' },
  'state-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * `npm run relay -- <command>`: the operator CLI. Returns the exit status.
 *
 * @example
 * await runCli(['dlq', 'list', '--stage', 'staging']);
 */
export async function runCli(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(argv, OPTIONS),
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    io.stderr.write(`relay: ${argumentErrorText(error)}\nSee: npm run relay -- --help\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, sub, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    io.stdout.write(`${RELAY_HELP}\n`);
    return values.help || command === 'help' ? 0 : 2;
  }

  const targetOptions: TargetOptions = {
    stage: values.stage,
    region: values.region,
    local: values.local,
    localFile: values['local-file'],
    stateDir: values['state-dir'],
    sendQueueUrl: values['send-queue-url'],
    dlqUrl: values['dlq-url'],
    secretId: values['secret-id'],
    endpointUrl: values['endpoint-url'],
    secretsEndpointUrl: values['secrets-endpoint-url'],
    ecourtdateUrl: values['ecourtdate-url'],
    eventBus: values['event-bus'],
    eventSource: values['event-source'],
    ledgerTable: values['ledger-table'],
    dynamodbEndpoint: values['dynamodb-endpoint'],
  };

  if (command === 'local') return localCommand(sub, rest, values['state-dir'], io);
  if (command === 'validate') return validateCommand(sub, rest, values.json === true, io);

  let target: Target | undefined;
  try {
    const run = commandOf(command, sub, rest);
    target = await resolveTarget(targetOptions, io.cwd, io.env);
    return await run(target, values, io);
  } catch (caught) {
    const error = explainTargetError(target, caught);
    if (error instanceof InvalidJobFileError) {
      io.stderr.write(`relay: ${error.message}\n`);
      return 1;
    }
    if (error instanceof CliError || error instanceof ConfigError) {
      io.stderr.write(`relay: ${error.message}\n`);
      return 2;
    }
    // An AWS error the command did not expect (permissions, throttling, a queue that is gone): say it plainly.
    io.stderr.write(`relay: ${awsErrorText(error)}\n`);
    return 2;
  } finally {
    if (target) closeTarget(target);
  }
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];
type Command = (target: Target, values: Values, io: CliIO) => Promise<number>;

function commandOf(command: string, sub: string | undefined, rest: readonly string[]): Command {
  const extra = (args: readonly (string | undefined)[]) => {
    const unexpected = args.filter((arg) => arg !== undefined);
    if (unexpected.length > 0) throw new CliError(`unexpected argument(s): ${unexpected.join(' ')}`);
  };
  if (command === 'dlq' && sub === 'list') {
    extra(rest);
    return async (target, values, io) => {
      const max = whole(values.max, '--max') ?? 100;
      const listing = await listDeadLetters(target, max);
      const json = values.json === true;
      io.stdout.write(`${renderDeadLetters(listing, json)}\n`);
      // What the listing did not show: after the table; with --json on stderr, so stdout stays JSON.
      const notes = listingNotes(listing);
      if (notes.length > 0) (json ? io.stderr : io.stdout).write(`${json ? '' : '\n'}${notes.join('\n')}\n`);
      return 0;
    };
  }
  if (command === 'dlq' && sub === 'redrive') {
    extra(rest);
    return async (target, values, io) => {
      const selection = selectionOf(values);
      if (selection.jobIds === undefined && selection.reason === undefined) {
        const taskHandle = await startMoveTask(target);
        io.stdout.write(
          `Started moving every dead-lettered job back to the send queue of ${target.description} ` +
            `(message move task ${taskHandle ?? '?'}).\n` +
            'Follow it with: aws sqs list-message-move-tasks --source-arn <dead-letter queue ARN>\n',
        );
        return 0;
      }
      const result = await redriveDeadLetters(target, selection);
      io.stdout.write(`${renderRedrive(result, selection, target.description)}\n`);
      return reportNotFound(notFoundNote(result, selection), io);
    };
  }
  if (command === 'dlq' && sub === 'delete') {
    extra(rest);
    return async (target, values, io) => {
      const selection = selectionOf(values);
      if (selection.jobIds === undefined && selection.reason === undefined) {
        throw new CliError('dlq delete needs --job-id ID (one per job), or --reason R with --yes');
      }
      // Every dead letter of a reason is many jobs, maybe all of them: the operator says so in as many words.
      if (selection.jobIds === undefined && values.yes !== true) {
        throw new CliError(
          `dlq delete --reason ${selection.reason} deletes every dead letter with that reason, for good: add ` +
            '--yes to go on, or name the jobs with --job-id (see dlq list)',
        );
      }
      const pass = await deleteDeadLetters(target, selection);
      io.stdout.write(`${renderDelete(pass, target.description)}\n`);
      return reportNotFound(notFoundNote(pass, selection), io);
    };
  }
  if (command === 'job') {
    if (sub === undefined)
      throw new CliError('job needs an ID: npm run relay -- job cms-48213-reminder-1 --stage staging');
    extra(rest);
    return async (target, values, io) => {
      const view = await readJob(target, sub);
      if (view === undefined) {
        io.stderr.write(
          `relay: the job ledger of ${target.description} has no entry for job ${sub}: the sender never ` +
            'received it, it refused it before any attempt (an invalid job is dead-lettered invalid_job without an ' +
            "entry: relay dlq list shows it), or the entry expired (ledgerTtlDays after the job's last change)\n",
        );
        // A script reading --json gets an answer on stdout too, in the same shape's terms.
        if (values.json === true) io.stdout.write(`${JSON.stringify({ job_id: sub, found: false })}\n`);
        return 1;
      }
      io.stdout.write(`${renderJob(view, values.json === true)}\n`);
      return 0;
    };
  }
  if (command === 'send') {
    if (sub === undefined)
      throw new CliError('send needs a FILE: npm run relay -- send job.json --stage staging');
    extra(rest);
    return async (target, values, io) => {
      const via = values.via ?? 'queue';
      if (via !== 'queue' && via !== 'bus') throw new CliError(`--via: expected queue or bus, got "${via}"`);
      // A file that cannot be read or holds no job: exit 2; a job the relay would refuse: exit 1 (runCli).
      const jobs = await readJobs(resolve(io.cwd, sub));
      for (const job of jobs) {
        for (const warning of job.warnings)
          io.stderr.write(`relay: warning: ${sub}:${job.line}: ${warning}\n`);
      }
      const result = await sendJobs(target, jobs, via as Via);
      for (const sent of result.sent) {
        io.stdout.write(
          `sent job ${sent.id} to the ${via === 'queue' ? 'send queue' : 'event bus'} (${sent.messageId})\n`,
        );
      }
      return 0;
    };
  }
  if (command === 'check-credentials') {
    extra([sub, ...rest]);
    return async (target, values, io) => {
      const check = await checkCredentials(target, { agencyReference: values['agency-reference'] });
      io.stdout.write(`${renderCheck(check, target, values.json === true)}\n`);
      return check.passed ? 0 : 1;
    };
  }
  if (command === 'dlq') {
    throw new CliError(
      `dlq needs a subcommand: list, redrive or delete${sub === undefined ? '' : ` (got "${sub}")`}; ` +
        'e.g. npm run relay -- dlq list --stage staging',
    );
  }
  throw new CliError(
    `unknown command "${[command, sub].filter(Boolean).join(' ')}"; see npm run relay -- --help`,
  );
}

/**
 * `parseArgs`'s refusal in the CLI's words: an unknown option is named, with the closest known one when a
 * letter or two is off (`--jsn`: did you mean --json?). Other refusals keep Node's message.
 */
function argumentErrorText(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  const message = (error as Error).message;
  if (code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return message;
  const option = /'(-{1,2}[^']+)'/.exec(message)?.[1] ?? '';
  const name = option.replace(/^-+/, '');
  const known = closestName(name, Object.keys(OPTIONS));
  const hint = known === undefined ? '' : ` (did you mean --${known}?)`;
  return `unknown option ${option}${hint}`;
}

/**
 * `local stop`: stops the `npm start` that holds the state directory (its `run.lock`), as Ctrl-C in its terminal
 * would (SIGINT), and waits for it to end. Exit 0 once it stopped; 2 when none runs there or it did not stop.
 */
async function localCommand(
  sub: string | undefined,
  rest: readonly string[],
  stateDir: string | undefined,
  io: CliIO,
): Promise<number> {
  if (sub !== 'stop' || rest.length > 0) {
    io.stderr.write(`relay: local needs the subcommand stop, e.g. npm run relay -- local stop\n`);
    return 2;
  }
  const dir = resolve(io.cwd, stateDir ?? DEFAULT_STATE_DIR);
  const pid = await readRunLock(dir);
  if (pid === undefined || !processIsRunning(pid)) {
    io.stderr.write(
      `relay: no local pipeline is running with the state directory ${dir} (no live ${RUN_LOCK_FILE})\n`,
    );
    return 2;
  }
  process.kill(pid, 'SIGINT');
  for (let waited = 0; waited < LOCAL_STOP_WAIT_MS; waited += 200) {
    if (!processIsRunning(pid)) {
      io.stdout.write(`Stopped the local pipeline (process ${pid}).\n`);
      return 0;
    }
    await new Promise((wake) => setTimeout(wake, 200));
  }
  io.stderr.write(
    `relay: the local pipeline (process ${pid}) did not stop within ${LOCAL_STOP_WAIT_MS / 1000} s of SIGINT; ` +
      `end it with: kill ${pid}\n`,
  );
  return 2;
}

/**
 * `validate FILE` (`-`: standard input): every job checked with the relay's own rules (`checkJobs`), no target
 * needed. Exit 0 when every job is valid (warnings or not), 1 when one is not, 2 when the file cannot be read or
 * holds no job (docs/operating.md, "Validate a job file").
 */
async function validateCommand(
  file: string | undefined,
  rest: readonly string[],
  json: boolean,
  io: CliIO,
): Promise<number> {
  try {
    if (file === undefined) {
      throw new CliError(
        'validate needs a FILE (or - for standard input): npm run relay -- validate jobs.jsonl',
      );
    }
    if (rest.length > 0) throw new CliError(`unexpected argument(s): ${rest.join(' ')}`);
    const verdicts = checkJobs(await readJobEntries(file === '-' ? '-' : resolve(io.cwd, file), io.stdin));
    io.stdout.write(`${renderVerdicts(verdicts, file === '-' ? 'stdin' : file, json)}\n`);
    return verdicts.some((verdict) => verdict.error !== null) ? 1 : 0;
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    io.stderr.write(`relay: ${error.message}\n`);
    return 2;
  }
}

/** How long `local stop` waits for the pipeline to end after SIGINT, ms. */
const LOCAL_STOP_WAIT_MS = 30_000;

/** The dead letters `--reason` and `--job-id` select. */
function selectionOf(values: Values): DeadLetterSelection {
  const jobIds = values['job-id'];
  return { reason: values.reason, jobIds: jobIds === undefined || jobIds.length === 0 ? undefined : jobIds };
}

/** A job id the pass did not find: said on stderr, exit 1 (as for a job the ledger does not know). */
function reportNotFound(note: string | null, io: CliIO): number {
  if (note === null) return 0;
  io.stderr.write(`relay: ${note}\n`);
  return 1;
}

function whole(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    throw new CliError(`${name}: expected a whole number above 0, got "${raw}"`);
  return value;
}

function processIO(): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: process.cwd(),
    env: process.env,
    stdin: process.stdin,
  };
}
