/**
 * `npm run bench`: what a job costs and how fast the relay goes, side by side with what any relay must do
 * (reports/bench.md, "Performance and cost"). In one run, at the same concurrency, against the same emulators:
 *
 * - (a) the relay: the real sender handler, polled like Lambda's SQS event source mapping;
 * - (b) a bare `fetch` loop posting the same messages;
 * - (c) the floor: a `fetch` plus two conditional DynamoDB writes per job (claim, settle).
 *
 * The relay runs again with webhooks on (`WEBHOOKS_ENABLED`; docs/webhooks.md): the same job bodies, the same
 * emulators, its DynamoDB requests and write units per delivered job and its cost side by side with webhooks off.
 *
 * Then the latency of one batch at 200 ms API latency at the deployed per-instance shares, the cost per million
 * jobs at the deployed memory size, the sustained share of the rate budget for 1, 2 and 4 instances against a
 * 1,000/min sliding window, and the cold start (bundle size, import time).
 *
 * The emulators run in one child process and every measurement in a fresh one, so CPU time is the workload's
 * own. Only the report goes to stdout; progress goes to stderr, and what the senders log to
 * .relay-local/bench/sender.log. reports/bench.md is rewritten only with --write, below its hand-written text.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadStageConfig, STAGES, type Stage, type StageConfig } from '#infra/config.ts';
import { perInstanceRequestsPerMinute, sendQueueVisibilityTimeoutSeconds } from '#infra/stack-contract.ts';
import type { PacingDrillResult } from '#local/pacing-drill.ts';
import { LOCAL_RESOURCE_NAMES } from '#local/resource-names.ts';
import { DEFAULTS } from '#shared/config.ts';
import { type ColdStartFigures, measureColdStart } from './cold-start.ts';
import {
  type BatchLatencyFigures,
  type BenchResources,
  type CapacityCounts,
  type CommandCounts,
  forkChild,
  type HostCommand,
  type HostEndpoints,
  RELAY_POLLERS_PER_INSTANCE,
  type WorkloadFigures,
  type WorkloadSpec,
} from './protocol.ts';
import { benchReportFile } from './report-file.ts';

const ROOT = resolve(import.meta.dirname, '..');
const LOG_FILE = join(ROOT, '.relay-local', 'bench', 'sender.log');
const API_LATENCY_MS = 200;
const WARMUP_JOBS = 100;
/** What the stack sets for the sender's Powertools (infra/constructs/relay-function.ts). */
const SENDER_OBSERVABILITY_ENV = {
  POWERTOOLS_LOG_LEVEL: 'INFO',
  POWERTOOLS_TRACE_ENABLED: 'false',
  POWERTOOLS_LOGGER_LOG_EVENT: 'false',
  POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false',
};
/** What the pacing must not limit in the throughput runs: the config's maximum share. */
const UNPACED_REQUESTS_PER_MINUTE = 100_000;

const USAGE = `Usage: npm run bench -- [options]

  --jobs N            jobs per throughput measurement (default 1000, after 100 warm-up jobs)
  --instances N       sender instances of the relay; the fetch loop and the floor run N x batchSize
                      requests at once, the relay's concurrency (default: staging's maxConcurrency, the
                      instances it deploys)
  --repeats N         rounds of (a), (b), (c), one after the other; ratios are the median of the rounds'
                      ratios, speeds the best round's (default 3)
  --time-scale N      pacing drills: a minute lasts 60/N s (default 3)
  --skip-pacing       leave out the pacing drills (they take about 3 minutes)
  --write             rewrite reports/bench.md with this run's report (the hand-written text at
                      its top is kept)
  -h, --help          this text
`;

/**
 * List prices, us-east-1, as of this writing (AWS pricing pages for Lambda, SQS, DynamoDB, CloudWatch, X-Ray,
 * Secrets Manager). Free tiers are left out.
 */
const PRICE = {
  lambdaArmGbSecond: 0.0000133334,
  lambdaRequest: 0.2 / 1e6,
  sqsRequest: 0.4 / 1e6,
  dynamoWriteUnit: 0.625 / 1e6,
  dynamoReadUnit: 0.125 / 1e6,
  secretsManagerCall: 0.05 / 1e4,
  logsIngestedGb: 0.5,
  xrayTrace: 5 / 1e6,
  /** API Gateway HTTP API, the first 300 million requests a month, each up to 512 KB. */
  httpApiRequest: 1 / 1e6,
  /** EventBridge custom events put on a bus, each 64 KB chunk of an entry one event. */
  eventBridgeEvent: 1 / 1e6,
} as const;
/** The upstream system's SendMessageBatch: 10 jobs a request. */
const UPSTREAM_SQS_REQUESTS_PER_JOB = 0.1;
/**
 * X-Ray's default sampling rule records the first request each second and 5 % of the rest. At the relay's most,
 * 900 jobs a minute in batches of 10 (1.5 invocations a second), that is 1/1.5 + 5 % of the rest, about 68 % of
 * invocations; less traffic is sampled more.
 */
const XRAY_SAMPLED_INVOCATIONS = 1 / 1.5 + 0.05 * (1 - 1 / 1.5);
const DYNAMO_WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand']);
/** The receiver's memory size, as infra/constructs/webhook-receiver.ts sets it. */
const RECEIVER_MEMORY_MB = 256;
/**
 * The receiver's Lambda time per status update assumed by the estimate, ms: six sequential AWS calls of a few ms
 * each in the region (claim, two reads, the status write, PutEvents, done) plus the HMAC and JSON work at
 * 256 MB's share of a vCPU. Not measured.
 */
const RECEIVER_ASSUMED_MS = 100;

interface Options {
  readonly jobs: number;
  readonly instances: number;
  readonly repeats: number;
  readonly timeScale: number;
  readonly pacing: boolean;
  readonly write: boolean;
}

function parseOptions(argv: string[], defaultInstances: number): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      jobs: { type: 'string' },
      instances: { type: 'string' },
      repeats: { type: 'string' },
      'time-scale': { type: 'string' },
      'skip-pacing': { type: 'boolean' },
      write: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const whole = (name: string, raw: string | undefined, fallback: number, min: number, max: number) => {
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new Error(`--${name} expects a whole number from ${min} to ${max}, got "${raw}"`);
    }
    return value;
  };
  return {
    jobs: whole('jobs', values.jobs, 1000, 10, 100_000),
    instances: whole('instances', values.instances, defaultInstances, 1, 20),
    repeats: whole('repeats', values.repeats, 3, 1, 10),
    timeScale: whole('time-scale', values['time-scale'], 3, 1, 60),
    pacing: !values['skip-pacing'],
    write: values.write === true,
  };
}

const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

type RunKind = 'relay' | 'fetch' | 'floor' | 'relayTraced' | 'relayWebhooks';

interface Run<T> {
  readonly label: string;
  readonly figures: T;
  /** Bytes the workload wrote to the log file (the senders' log and EMF lines). */
  readonly logBytes?: number;
}

async function main(): Promise<void> {
  const stages = Object.fromEntries(STAGES.map((stage) => [stage, loadStageConfig({ stage })])) as Record<
    Stage,
    StageConfig
  >;
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2), stages.staging.maxConcurrency);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const staging = stages.staging;
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, load average ${loadavg()
    .map((n) => n.toFixed(1))
    .join(' / ')} at start, Node ${process.version}`;
  const code = codeVersion();

  mkdirSync(join(ROOT, '.relay-local', 'bench'), { recursive: true });
  const logFd = openSync(LOG_FILE, 'w');
  progress(`sender logs: ${LOG_FILE}`);
  const { child: host, ready: endpoints } = await forkChild<unknown, HostEndpoints>(
    join(import.meta.dirname, 'emulator-host.ts'),
    { logFd },
  );
  const command = <T>(c: HostCommand) => host.call(c) as Promise<T>;
  let resourceCount = 0;
  const resources = async (): Promise<BenchResources> => {
    const n = ++resourceCount;
    // The world's names (local/resource-names.ts), numbered: each measurement starts from empty queues and table.
    const dlq = await command<{ url: string }>({
      cmd: 'createQueue',
      name: `${LOCAL_RESOURCE_NAMES.deadLetterQueue}-${n}`,
    });
    const queue = await command<{ url: string; arn: string }>({
      cmd: 'createQueue',
      name: `${LOCAL_RESOURCE_NAMES.sendQueue}-${n}`,
      attributes: { VisibilityTimeout: String(sendQueueVisibilityTimeoutSeconds(staging)) },
    });
    const table = `${LOCAL_RESOURCE_NAMES.ledgerTable}-${n}`;
    await command({ cmd: 'createTable', name: table });
    return { queue: { url: queue.url, arn: queue.arn }, deadLetterQueueUrl: dlq.url, table };
  };
  const workload = async <T>(spec: WorkloadSpec, env: NodeJS.ProcessEnv = {}): Promise<T> => {
    const { child } = await forkChild<T>(join(import.meta.dirname, 'workload.ts'), {
      logFd,
      env: { ...SENDER_OBSERVABILITY_ENV, ...env },
    });
    return child.call(spec);
  };
  /** A relay run, with the bytes it logged. */
  const relayRun = async (label: string, spec: WorkloadSpec, env: NodeJS.ProcessEnv = {}) => {
    const before = fstatSync(logFd).size;
    const figures = await workload<WorkloadFigures>(spec, env);
    return { label, figures, logBytes: fstatSync(logFd).size - before };
  };

  try {
    const concurrency = options.instances * staging.batchSize;
    const common = { jobs: options.jobs, warmup: WARMUP_JOBS, endpoints };
    const relaySpec = async (
      runId: string,
      webhooksEnabled = false,
      traceSubsegments = false,
    ): Promise<WorkloadSpec> => ({
      kind: 'relay',
      ...common,
      instances: options.instances,
      resources: await resources(),
      requestsPerMinute: UNPACED_REQUESTS_PER_MINUTE,
      batchSize: staging.batchSize,
      functionTimeoutMs: staging.functionTimeoutSeconds * 1000,
      runId,
      webhooksEnabled,
      traceSubsegments,
    });

    const runs: Record<RunKind, Run<WorkloadFigures>[]> = {
      relay: [],
      fetch: [],
      floor: [],
      relayTraced: [],
      relayWebhooks: [],
    };
    // Within a round the relay runs right after the floor, then with webhooks on, then with X-Ray subsegments, so
    // the ratios compare neighbours (or the next but one). Run ids of one length: the same job bodies, byte for
    // byte in size, while each job id is new to the simulator (a repeat would be a duplicate, not a delivery).
    for (let rep = 1; rep <= options.repeats; rep++) {
      progress(`throughput, round ${rep} of ${options.repeats}: floor`);
      const floorTable = (await resources()).table;
      runs.floor.push({
        label: 'floor',
        figures: await workload({
          kind: 'floor',
          ...common,
          concurrency,
          table: floorTable,
          runId: `floor-${rep}`,
        }),
      });
      progress(`throughput, round ${rep}: relay`);
      runs.relay.push(await relayRun('relay', await relaySpec(`relay-${rep}`)));
      progress(`throughput, round ${rep}: relay with webhooks on`);
      runs.relayWebhooks.push(
        await relayRun('relay, WEBHOOKS_ENABLED', await relaySpec(`hooks-${rep}`, true), {}),
      );
      progress(`throughput, round ${rep}: relay with X-Ray subsegments (traceSubsegments)`);
      runs.relayTraced.push(
        await relayRun('relay, traceSubsegments', await relaySpec(`relay-traced-${rep}`, false, true)),
      );
      progress(`throughput, round ${rep}: bare fetch`);
      runs.fetch.push({
        label: 'fetch',
        figures: await workload({ kind: 'fetch', ...common, concurrency, table: '', runId: `fetch-${rep}` }),
      });
    }

    await command({ cmd: 'latency', ms: API_LATENCY_MS });
    const shares: { label: string; requestsPerMinute: number }[] = [
      {
        label: `the sender's default (${DEFAULTS.requestsPerMinute}/min)`,
        requestsPerMinute: DEFAULTS.requestsPerMinute,
      },
      ...STAGES.map((stage) => {
        const share = perInstanceRequestsPerMinute(stages[stage]);
        return {
          label: `${stage}: ${stages[stage].requestsPerMinute}/min over ${stages[stage].maxConcurrency} instances = ${share}/min`,
          requestsPerMinute: share,
        };
      }),
    ];
    const latency: Run<BatchLatencyFigures>[] = [];
    const batchLatency = async (requestsPerMinute: number, runId: string, webhooksEnabled: boolean) =>
      workload<BatchLatencyFigures>({
        kind: 'batch-latency',
        endpoints,
        resources: await resources(),
        requestsPerMinute,
        batchSize: staging.batchSize,
        functionTimeoutMs: staging.functionTimeoutSeconds * 1000,
        runId,
        webhooksEnabled,
      });
    for (const share of shares) {
      progress(`batch of ${staging.batchSize} at ${API_LATENCY_MS} ms, ${share.label}`);
      latency.push({
        label: share.label,
        figures: await batchLatency(share.requestsPerMinute, `latency-${latency.length}`, false),
      });
    }
    // The same at each stage's share with webhooks on, for its cost.
    const latencyWebhooks: Run<BatchLatencyFigures>[] = [];
    for (const stage of STAGES) {
      progress(`batch of ${staging.batchSize} at ${API_LATENCY_MS} ms, ${stage} with webhooks on`);
      latencyWebhooks.push({
        label: stage,
        figures: await batchLatency(
          perInstanceRequestsPerMinute(stages[stage]),
          `latency-hooks-${latencyWebhooks.length}`,
          true,
        ),
      });
    }
    await command({ cmd: 'latency', ms: 0 });

    const pacing: PacingDrillResult[] = [];
    if (options.pacing) {
      for (const instances of [1, 2, 4]) {
        progress(`pacing drill, ${instances} instance(s), a minute of ${60 / options.timeScale} s`);
        pacing.push(await workload({ kind: 'pacing', instances, timeScale: options.timeScale, windows: 2 }));
      }
    }

    progress('cold start: bundling and importing');
    const coldStart = await measureColdStart();

    const report = render({
      options,
      machine: `${machine}; code ${code}`,
      stages,
      runs,
      latency,
      latencyWebhooks,
      pacing,
      coldStart,
      concurrency,
    });
    process.stdout.write(report);
    if (options.write) {
      const file = join(ROOT, 'reports', 'bench.md');
      const previous = await readFile(file, 'utf8').catch(() => undefined);
      await writeFile(file, benchReportFile(previous, report));
      progress('wrote reports/bench.md (the hand-written text above its marker kept)');
    }
  } finally {
    await host.call({ cmd: 'stop' } satisfies HostCommand).catch(() => undefined);
    closeSync(logFd);
  }
}

/** The commit the run measured, and whether the working tree differed from it. */
function codeVersion(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    return dirty.trim() === '' ? commit : `${commit} with uncommitted changes`;
  } catch {
    return 'not a git checkout';
  }
}

// --- figures ---

function total(counts: CommandCounts, filter: (name: string) => boolean = () => true): number {
  return Object.entries(counts).reduce((sum, [name, n]) => (filter(name) ? sum + n : sum), 0);
}

function perJob(n: number, figures: WorkloadFigures): number {
  return n / figures.jobs;
}

/** The run with the most jobs a second: the one the rest of the machine disturbed least. */
function bestRun(runs: readonly Run<WorkloadFigures>[]): Run<WorkloadFigures> {
  const sorted = [...runs].sort(
    (a, b) => b.figures.jobs / b.figures.seconds - a.figures.jobs / a.figures.seconds,
  );
  return sorted[0] as Run<WorkloadFigures>;
}

function best(runs: readonly Run<WorkloadFigures>[]): WorkloadFigures {
  return bestRun(runs).figures;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function jobsPerSecond(f: WorkloadFigures): number {
  return f.jobs / f.seconds;
}

/**
 * Jobs a second if an instance spent all its time in the handler, as on Lambda, where the event source
 * mapping's poller receives and deletes outside the function: jobs over the instances' mean handler time.
 */
function handlerJobsPerSecond(f: WorkloadFigures, instances: number): number {
  return f.jobs / (f.handlerMs / instances / 1000);
}

interface Cost {
  readonly lines: { item: string; perMillion: number; basis: string }[];
  readonly awsPerMillion: number;
}

const WRITE_OPERATIONS = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);

/** Requests and capacity units in `capacity` whose operation (`PutItem`) and item kind (`uuid#`) pass `filter`. */
function capacityOf(
  capacity: CapacityCounts | undefined,
  filter: (operation: string, kind: string) => boolean,
): { requests: number; units: number } {
  let requests = 0;
  let units = 0;
  for (const [key, value] of Object.entries(capacity ?? {})) {
    const [operation = '', kind = ''] = key.split(' ');
    if (!filter(operation, kind)) continue;
    requests += value.requests;
    units += value.capacityUnits;
  }
  return { requests, units };
}

/**
 * Write and read units per job: as DynamoDB reported them for the run (`capacity`), else bounded by the largest
 * item (one write unit per KB, one strongly consistent read unit per 4 KB).
 */
function unitsPerJob(f: WorkloadFigures): { writes: number; reads: number; measured: boolean } {
  if (f.capacity) {
    return {
      writes: perJob(capacityOf(f.capacity, (op) => WRITE_OPERATIONS.has(op)).units, f),
      reads: perJob(capacityOf(f.capacity, (op) => !WRITE_OPERATIONS.has(op)).units, f),
      measured: true,
    };
  }
  const writes = perJob(
    total(f.dynamodb, (n) => DYNAMO_WRITES.has(n)),
    f,
  );
  const reads = perJob(
    total(f.dynamodb, (n) => !DYNAMO_WRITES.has(n)),
    f,
  );
  return {
    writes: writes * Math.max(1, Math.ceil((f.largestItemBytes ?? 0) / 1024)),
    reads: reads * Math.max(1, Math.ceil((f.largestItemBytes ?? 0) / 4096)),
    measured: false,
  };
}

function cost(
  relay: WorkloadFigures,
  batch: BatchLatencyFigures,
  stage: StageConfig,
  batchSize: number,
): Cost {
  const million = 1e6;
  const writes = perJob(
    total(relay.dynamodb, (n) => DYNAMO_WRITES.has(n)),
    relay,
  );
  const reads = perJob(
    total(relay.dynamodb, (n) => !DYNAMO_WRITES.has(n)),
    relay,
  );
  const units = unitsPerJob(relay);
  const unitsBasis = units.measured ? 'as DynamoDB reports them' : 'bounded by the largest item';
  const invocations = perJob(relay.invocations, relay);
  const gb = stage.memorySizeMb / 1024;
  const secondsPerJob = batch.batchMs / 1000 / batchSize;
  const sqs = perJob(total(relay.sqs), relay);
  const lines = [
    {
      item: 'Lambda duration',
      perMillion: secondsPerJob * gb * PRICE.lambdaArmGbSecond * million,
      basis: `${stage.memorySizeMb} MB arm64, ${batch.batchMs.toFixed(0)} ms per batch of ${batchSize} at ${API_LATENCY_MS} ms API latency (measured)`,
    },
    {
      item: 'Lambda requests',
      perMillion: invocations * PRICE.lambdaRequest * million,
      basis: `${invocations.toFixed(2)} invocations per job`,
    },
    {
      item: 'SQS, the relay',
      perMillion: sqs * PRICE.sqsRequest * million,
      basis: `${sqs.toFixed(2)} requests per job (event source receive and delete, the sender's own calls)`,
    },
    {
      item: 'SQS, upstream send',
      perMillion: UPSTREAM_SQS_REQUESTS_PER_JOB * PRICE.sqsRequest * million,
      basis: 'SendMessageBatch of 10',
    },
    {
      item: 'DynamoDB writes',
      perMillion: units.writes * PRICE.dynamoWriteUnit * million,
      basis: `${writes.toFixed(2)} writes per job, ${units.writes.toFixed(2)} write units (${unitsBasis}; items up to ${relay.largestItemBytes ?? 0} bytes)`,
    },
    {
      item: 'DynamoDB reads',
      perMillion: units.reads * PRICE.dynamoReadUnit * million,
      basis: `${reads.toFixed(2)} strongly consistent reads per job, ${units.reads.toFixed(2)} read units`,
    },
    {
      item: 'Secrets Manager',
      perMillion: perJob(total(relay.secrets), relay) * PRICE.secretsManagerCall * million,
      basis: `${perJob(total(relay.secrets), relay).toFixed(4)} calls per job (cached 5 min per container)`,
    },
  ];
  const awsPerMillion = lines.reduce((sum, l) => sum + l.perMillion, 0);
  return { lines, awsPerMillion };
}

function observability(relay: WorkloadFigures, logBytesPerJob: number) {
  const million = 1e6;
  const invocations = perJob(relay.invocations, relay);
  return [
    {
      item: 'CloudWatch Logs ingestion',
      perMillion: (logBytesPerJob * million * PRICE.logsIngestedGb) / 1024 ** 3,
      basis: `${logBytesPerJob.toFixed(0)} bytes of log and EMF lines per job (measured)`,
    },
    {
      item: 'X-Ray traces',
      perMillion: invocations * XRAY_SAMPLED_INVOCATIONS * PRICE.xrayTrace * million,
      basis: `tracing Active, default sampling: about ${(XRAY_SAMPLED_INVOCATIONS * 100).toFixed(0)} % of invocations at 900 jobs/min`,
    },
  ];
}

/** Lambda's CPU allocation: one vCPU at this memory size, shares below it (Lambda developer guide). */
const LAMBDA_MB_PER_VCPU = 1769;

/** The CPU time of one batch (`cpuMsPerJob` as measured in (a)), stretched to the vCPU share of `memoryMb`, ms. */
function throttledCpuMs(cpuMsPerJob: number, batchSize: number, memoryMb: number): number {
  return (cpuMsPerJob * batchSize) / Math.min(1, memoryMb / LAMBDA_MB_PER_VCPU);
}

/**
 * A measured batch with its CPU time stretched to Lambda's share, ms: the measured batch plus the time its CPU
 * work takes beyond what it took on a whole core. Never less than the measurement.
 */
function projectedBatchMs(
  cpuMsPerJob: number,
  batch: BatchLatencyFigures | undefined,
  batchSize: number,
  memoryMb: number,
): number {
  const extra = throttledCpuMs(cpuMsPerJob, batchSize, memoryMb) - cpuMsPerJob * batchSize;
  return (batch?.batchMs ?? Number.NaN) + Math.max(0, extra);
}

// --- report ---

interface ReportInput {
  readonly options: Options;
  readonly machine: string;
  readonly stages: Record<Stage, StageConfig>;
  readonly runs: Record<RunKind, Run<WorkloadFigures>[]>;
  readonly latency: Run<BatchLatencyFigures>[];
  /** One batch at each stage's share with webhooks on, labelled by stage. */
  readonly latencyWebhooks: Run<BatchLatencyFigures>[];
  readonly pacing: PacingDrillResult[];
  readonly coldStart: ColdStartFigures;
  readonly concurrency: number;
}

/** A Markdown table: the header row, the separator, one line a row, and an empty line after it. */
function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
  ];
}

const money = (n: number) => `$${n.toFixed(2)}`;
const ratio = (n: number) => `${n.toFixed(2)}×`;
const fixed = (n: number, digits = 2) => n.toFixed(digits);

function render(input: ReportInput): string {
  const { options, runs, latency, pacing, coldStart, stages } = input;
  const relay = best(runs.relay);
  const bare = best(runs.fetch);
  const floor = best(runs.floor);
  const traced = best(runs.relayTraced);
  // CPU time per job: the least of the rounds, which the rest of the machine disturbed least.
  const leastCpu = (all: readonly Run<WorkloadFigures>[]) =>
    Math.min(...all.map((r) => r.figures.cpuMs / r.figures.jobs));
  // Each round's (a), (b) and (c) ran one after the other under the same load: ratios are taken within a round.
  const roundRatio = (f: (round: number) => number) =>
    median(runs.relay.map((_, round) => f(round)).filter((n) => Number.isFinite(n)));
  const at = (all: readonly Run<WorkloadFigures>[], round: number) =>
    (all[round] as Run<WorkloadFigures>).figures;
  const ratios = {
    relayToFloor: roundRatio((r) => jobsPerSecond(at(runs.relay, r)) / jobsPerSecond(at(runs.floor, r))),
    relayToFetch: roundRatio((r) => jobsPerSecond(at(runs.relay, r)) / jobsPerSecond(at(runs.fetch, r))),
    // Within a round: the CPU per job the X-Ray SDK's hook adds, as a share of the relay's, and the speed lost.
    xrayHookCpuAdded: roundRatio((r) => {
      const without = at(runs.relay, r);
      const withHook = at(runs.relayTraced, r);
      return withHook.cpuMs / withHook.jobs / (without.cpuMs / without.jobs) - 1;
    }),
    tracedThroughputChange: roundRatio(
      (r) => jobsPerSecond(at(runs.relayTraced, r)) / jobsPerSecond(at(runs.relay, r)) - 1,
    ),
    handlerToFloor: roundRatio(
      (r) => handlerJobsPerSecond(at(runs.relay, r), options.instances) / jobsPerSecond(at(runs.floor, r)),
    ),
  };
  const cpu = {
    relay: leastCpu(runs.relay),
    fetch: leastCpu(runs.fetch),
    floor: leastCpu(runs.floor),
    relayTraced: leastCpu(runs.relayTraced),
  };
  const batchSize = stages.staging.batchSize;
  // Warm-up jobs log too: the bytes are spread over every job the run settled.
  const relayRunBest = bestRun(runs.relay);
  const logBytesPerJob = (relayRunBest.logBytes ?? 0) / (relay.jobs + WARMUP_JOBS);
  const dynamo = (f: WorkloadFigures) => perJob(total(f.dynamodb), f);
  const writes = (f: WorkloadFigures) =>
    perJob(
      total(f.dynamodb, (n) => DYNAMO_WRITES.has(n)),
      f,
    );
  const api = (f: WorkloadFigures) => perJob(f.ecourtdate.token + f.ecourtdate.send, f);
  const sqs = (f: WorkloadFigures) => perJob(total(f.sqs), f);
  const defaultShare = latency[0];
  const production = latency.find((l) => l.label.startsWith('production'));
  const costs = STAGES.map((stage) => {
    const batch = latency.find((l) => l.label.startsWith(stage)) ?? defaultShare;
    return {
      stage,
      cost: cost(relay, (batch as Run<BatchLatencyFigures>).figures, stages[stage], batchSize),
    };
  });
  const productionCost = costs.find((c) => c.stage === 'production')?.cost as Cost;
  const obs = observability(relay, logBytesPerJob);
  const obsTotal = obs.reduce((s, l) => s + l.perMillion, 0);
  const webhooks = webhookFigures(input, relay, logBytesPerJob, costs);
  const total429 = pacing.reduce((n, p) => n + p.rateLimited, 0);
  const batchRatio = (l: Run<BatchLatencyFigures> | undefined) =>
    l ? l.figures.batchMs / l.figures.oneCallMs : Number.NaN;

  const lines: string[] = [];
  const table = (header: string[], rows: string[][]) => lines.push(...markdownTable(header, rows));

  lines.push(
    '# Benchmark: the relay, a bare fetch loop and the floor',
    '',
    `One \`npm run bench\` run on loopback emulators (fauxqs behind the strict SQS layer, dynalite, the eCourtDate`,
    `simulator, the Secrets Manager stand-in) in a process of their own; every measurement in a fresh process.`,
    `Machine: ${input.machine}. ${options.jobs} jobs per measurement after 100 warm-up jobs, ${input.concurrency} at`,
    `once (${options.instances} instance(s) x batches of ${batchSize}), ${options.repeats} rounds of (a), (b), (c): speeds from the`,
    "best round, ratios the median of the rounds' own ratios, CPU time the least of the rounds.",
    "Absolute speeds are this machine's; ratios and counts per job are what carry over. The throughput runs",
    'leave the pacer out of the way (a share of 100,000 requests a minute per instance): at a deployed share',
    'the relay would send at most 15 jobs a second, and the runs measure what it costs, not the rate limit.',
    ...(options.repeats === 1
      ? [
          '**One round:** every ratio below is a single sample, and on a busy machine the order of the runs',
          'can outweigh what they compare; use `--repeats 3` or more before drawing conclusions.',
        ]
      : []),
    '',
    '## Goals',
    '',
  );
  const met = (ok: boolean | undefined) => (ok === undefined ? '—' : ok ? 'yes' : '**no**');
  const batchRatios = latency.map((l) => batchRatio(l));
  const stagingCost = costs.find((c) => c.stage === 'staging')?.cost as Cost;
  const importRatio = coldStart.sender.importMs / coldStart.sqsOnly.importMs;
  table(
    ['figure', 'goal', 'this run', 'met'],
    [
      [
        'relay / floor throughput',
        '≥ 0.8×',
        `${ratio(ratios.relayToFloor)} end to end, ${input.concurrency} at once (${options.instances} instance(s)); ${ratio(
          ratios.handlerToFloor,
        )} counting the handler's time only`,
        met(ratios.relayToFloor >= 0.8),
      ],
      ['DynamoDB requests per first-attempt job', '≤ 2', fixed(dynamo(relay)), met(dynamo(relay) <= 2)],
      [
        `batch of ${batchSize} at ${API_LATENCY_MS} ms vs one call, default share (staging, production)`,
        '≤ 1.3×',
        `${ratio(batchRatio(defaultShare))} (${latency
          .slice(1)
          .map((l) => ratio(batchRatio(l)))
          .join(', ')})`,
        met(batchRatios.every((r) => r <= 1.3)),
      ],
      [
        `AWS cost per million jobs, deployed memory (${stages.production.memorySizeMb} MB), production (staging)`,
        '≤ $1.60',
        `${money(productionCost.awsPerMillion)} (${money(stagingCost.awsPerMillion)}), + ${money(obsTotal)} logs and X-Ray`,
        met(Math.max(productionCost.awsPerMillion, stagingCost.awsPerMillion) <= 1.6),
      ],
      [
        'sustained share of budget, N = 1, 2, 4; 429s',
        '≥ 95 %, 0',
        pacing.length
          ? `${pacing.map((p) => `${(p.sustainedShare * 100).toFixed(1)} %`).join(', ')}; ${total429}`
          : 'not run (--skip-pacing)',
        met(pacing.length ? pacing.every((p) => p.sustainedShare >= 0.95) && total429 === 0 : undefined),
      ],
      [
        'extra write units per delivered job for the uuid lookup',
        '≤ 1, only with webhooks on',
        webhooks.verdict,
        met(webhooks.within),
      ],
      [
        'sender bundle',
        '≤ 1 MB',
        `${(coldStart.sender.bytes / 1024 ** 2).toFixed(2)} MB`,
        met(coldStart.sender.bytes <= 1024 ** 2),
      ],
      [
        'import time vs a handler importing only the SQS client',
        '≤ 2×',
        ratio(importRatio),
        met(importRatio <= 2),
      ],
    ],
  );

  lines.push('## Throughput, side by side', '');
  table(
    [
      '',
      'jobs/s',
      'relay ÷ this (median of the rounds)',
      'CPU ms per job (least of the rounds)',
      'eCourtDate requests per job',
      'DynamoDB requests per job (writes)',
      'SQS requests per job',
    ],
    [
      [
        '(a) relay',
        fixed(jobsPerSecond(relay), 0),
        '1.00×',
        fixed(cpu.relay),
        fixed(api(relay), 3),
        `${fixed(dynamo(relay))} (${fixed(writes(relay))})`,
        fixed(sqs(relay)),
      ],
      [
        '(b) bare fetch',
        fixed(jobsPerSecond(bare), 0),
        ratio(ratios.relayToFetch),
        fixed(cpu.fetch),
        fixed(api(bare), 3),
        '0',
        '0',
      ],
      [
        '(c) floor: fetch + 2 conditional writes',
        fixed(jobsPerSecond(floor), 0),
        ratio(ratios.relayToFloor),
        fixed(cpu.floor),
        fixed(api(floor), 3),
        `${fixed(dynamo(floor))} (${fixed(writes(floor))})`,
        '0',
      ],
    ],
  );
  lines.push(
    `The relay is polled like Lambda's event source mapping: ${RELAY_POLLERS_PER_INSTANCE} pollers per instance receive batches, a received batch`,
    `waits for the next free instance, and a poller deletes a batch's records after the instance is free again`,
    `(Lambda runs at least five pollers for a queue). The pollers run in a process of their own, as Lambda's run`,
    `outside the function, and hand each batch to the relay's process over an IPC channel: the relay's CPU time is`,
    `its handler's (and the IPC's); the pollers took ${fixed((relay.pollerCpuMs ?? 0) / relay.jobs)} ms per job more. Requests by kind for (a), the pollers'`,
    `included: SQS ${fmt(relay.sqs)}; DynamoDB`,
    `${fmt(relay.dynamodb)}; Secrets Manager ${fmt(relay.secrets) || 'none'} (cached from the warm-up);`,
    `eCourtDate ${relay.ecourtdate.send} sends, ${relay.ecourtdate.token} token requests. Every round:`,
    `(a) ${runs.relay.map((r) => fixed(jobsPerSecond(r.figures), 0)).join(', ')}; (b) ${runs.fetch.map((r) => fixed(jobsPerSecond(r.figures), 0)).join(', ')};`,
    `(c) ${runs.floor.map((r) => fixed(jobsPerSecond(r.figures), 0)).join(', ')} jobs/s.`,
    '',
    `An instance handles one batch at a time (${fixed(relay.handlerMs / relay.invocations, 1)} ms in the handler per batch of`,
    `${fixed(relay.jobs / relay.invocations, 1)} here; ${fixed((relay.seconds * 1000 * options.instances) / relay.invocations, 1)} ms from one batch to the next), and a batch ends with its slowest job, while each`,
    `loop of (b) and (c) starts its next job as soon as one ends. Counting only the handler's time, (a) would run`,
    `${fixed(handlerJobsPerSecond(relay, options.instances), 0)} jobs/s: ${ratio(ratios.handlerToFloor)} the floor (median of the rounds).`,
    '',
    ...webhooks.lines,
    '## X-Ray subsegments (`traceSubsegments`)',
    '',
    'Importing the X-Ray SDK (through Powertools Tracer) installs an `async_hooks` hook (cls-hooked) on every',
    "async resource, and in Lambda even the SDK's manual mode installs it. So the stack deploys without the",
    "SDK: Lambda's active tracing records each invocation, and the Tracer with its subsegments (AWS SDK calls,",
    'requests to eCourtDate) is imported only with the stage setting `traceSubsegments=true`. The relay as',
    'deployed and with the setting on (the Tracer loaded; outside Lambda it records nothing, so in Lambda',
    'subsegments cost more than this); each round runs both:',
    '',
  );
  table(
    ['', 'jobs/s', 'CPU ms per job'],
    [
      ['relay (as deployed: no X-Ray SDK)', fixed(jobsPerSecond(relay), 0), fixed(cpu.relay)],
      ['relay with traceSubsegments=true', fixed(jobsPerSecond(traced), 0), fixed(cpu.relayTraced)],
      [
        'difference (median of the rounds)',
        `${ratios.tracedThroughputChange >= 0 ? '+' : ''}${fixed(ratios.tracedThroughputChange * 100, 1)} % jobs/s`,
        `+${fixed(ratios.xrayHookCpuAdded * 100, 1)} % CPU per job`,
      ],
    ],
  );

  lines.push(`## A batch of ${batchSize} at ${API_LATENCY_MS} ms API latency`, '');
  lines.push(
    `One instance paced to the share below, warmed by 3 batches, receives 3 single jobs and then 5 batches of`,
    `${batchSize}, one invocation at a time; the medians are reported. "One call" is the median of 5 bare \`fetch\`es`,
    `of the same endpoint on an open connection (${production ? fixed(production.figures.oneCallMs, 0) : '?'} ms).`,
    '',
  );
  table(
    ['per-instance share', 'batch invocation (ms)', 'single-job invocation (ms)', 'batch ÷ one call'],
    latency.map((l) => [
      l.label,
      fixed(l.figures.batchMs, 0),
      fixed(l.figures.singleJobMs, 0),
      `${ratio(batchRatio(l))}${l.figures.delivered === batchSize ? '' : ` (only ${l.figures.delivered} delivered)`}`,
    ]),
  );

  lines.push(
    `These are measured with a whole core. Lambda gives a function a share of a vCPU in proportion to its memory`,
    `(one vCPU at ${LAMBDA_MB_PER_VCPU} MB): at the deployed ${stages.production.memorySizeMb} MB, ${fixed(
      stages.production.memorySizeMb / LAMBDA_MB_PER_VCPU,
    )} of one. A batch's CPU time (${batchSize} × ${fixed(cpu.relay)} ms measured in (a)) then`,
    `takes about ${fixed(throttledCpuMs(cpu.relay, batchSize, stages.production.memorySizeMb), 0)} ms, so production's measured batch of ${batchSize} would take about`,
    `${fixed(projectedBatchMs(cpu.relay, production?.figures, batchSize, stages.production.memorySizeMb), 0)} ms on Lambda, ${ratio(
      projectedBatchMs(cpu.relay, production?.figures, batchSize, stages.production.memorySizeMb) /
        (production?.figures.oneCallMs ?? Number.NaN),
    )} one call, if a Graviton core is as fast as this one (a projection, not a measurement).`,
    '',
  );

  lines.push('## Cost per million jobs', '');
  lines.push(
    'AWS list prices in us-east-1, free tiers left out: Lambda arm64 $0.0000133334 per GB-s and $0.20 per million',
    'requests; SQS standard $0.40 per million requests; DynamoDB on-demand $0.625 per million write units and',
    '$0.125 per million read units; Secrets Manager $0.05 per 10,000 calls; CloudWatch Logs $0.50 per GB',
    'ingested; X-Ray $5.00 per million traces. Lambda time is the measured batch invocation at 200 ms API',
    'latency; on AWS, DynamoDB and SQS answer in a few ms too. Fixed monthly charges (the secret, alarms,',
    'dashboards, custom metrics) do not grow with jobs and are left out.',
    '',
  );
  for (const { stage, cost: c } of costs) {
    lines.push(
      `### ${stage} (${stages[stage].memorySizeMb} MB, ${perInstanceRequestsPerMinute(stages[stage])}/min per instance)`,
      '',
    );
    table(
      ['item', 'per million jobs', 'basis'],
      [
        ...c.lines.map((l) => [l.item, money(l.perMillion), l.basis]),
        ['**AWS requests and compute**', `**${money(c.awsPerMillion)}**`, ''],
        ...obs.map((l) => [l.item, money(l.perMillion), l.basis]),
        ['**all-in**', `**${money(c.awsPerMillion + obsTotal)}**`, ''],
      ],
    );
    const measured = latency.find((l) => l.label.startsWith(stage))?.figures;
    if (measured) {
      const memory = stages[stage].memorySizeMb;
      const throttled = { ...measured, batchMs: projectedBatchMs(cpu.relay, measured, batchSize, memory) };
      const projected = cost(relay, throttled, stages[stage], batchSize);
      lines.push(
        `With Lambda's CPU share at ${memory} MB (projection above) a batch takes about ${fixed(throttled.batchMs, 0)} ms:`,
        `Lambda duration ${money(projected.lines[0]?.perMillion ?? Number.NaN)}, AWS requests and compute ${money(projected.awsPerMillion)}.`,
        '',
      );
    }
  }

  lines.push('## Pacing against a 1,000/min sliding window', '');
  if (pacing.length === 0) {
    lines.push('Not run (`--skip-pacing`).', '');
  } else {
    lines.push(
      `N instances, each with the stack's share of the staging budget (${stages.staging.requestsPerMinute}/min), against`,
      'the simulator enforcing 1,000 requests per API client in any minute (sliding window), with a backlog;',
      `TIME_SCALE ${options.timeScale}: a minute lasts ${60 / options.timeScale} s. Sustained share: requests in the first two`,
      'minutes from the first one, over twice the budget (docs/pacing.md).',
      '',
    );
    table(
      ['instances', 'share each (/min)', 'sustained share', 'busiest minute', '429s', 'token requests'],
      pacing.map((p) => [
        String(p.instances),
        String(p.perInstancePerMinute),
        `${(p.sustainedShare * 100).toFixed(1)} %`,
        String(p.busiestWindow),
        String(p.rateLimited),
        String(p.tokenRequests),
      ]),
    );
  }

  lines.push('## Cold start', '');
  lines.push(
    `Bundled with esbuild as the stack bundles the function (ESM, node24, minified, source map beside it), then`,
    `\`await import()\` of the bundle in a fresh Node process, median of ${coldStart.runs}.`,
    '',
  );
  lines.push(
    `Largest parts of the sender's bundle: ${coldStart.sender.largest
      .map((p) => `${p.name} ${(p.bytes / 1024).toFixed(0)} KB`)
      .join(', ')}.`,
    '',
  );
  table(
    ['handler', 'bundle', 'import (ms)'],
    [
      [
        'the sender (functions/sender.ts)',
        `${(coldStart.sender.bytes / 1024).toFixed(0)} KB`,
        fixed(coldStart.sender.importMs, 0),
      ],
      [
        'only the SQS client',
        `${(coldStart.sqsOnly.bytes / 1024).toFixed(0)} KB`,
        fixed(coldStart.sqsOnly.importMs, 0),
      ],
      [
        'ratio',
        ratio(coldStart.sender.bytes / coldStart.sqsOnly.bytes),
        ratio(coldStart.sender.importMs / coldStart.sqsOnly.importMs),
      ],
    ],
  );
  return `${lines.join('\n').trimEnd()}\n`;
}

/**
 * The side by side of the relay with webhooks off and on (docs/webhooks.md): DynamoDB requests and
 * write units per delivered job, jobs/s and the cost per million jobs at each stage's memory size, then the
 * receiver's cost per status update, estimated from the operations it makes. Returns the report's lines and the
 * goal row's verdict.
 */
function webhookFigures(
  input: ReportInput,
  off: WorkloadFigures,
  offLogBytesPerJob: number,
  offCosts: readonly { stage: Stage; cost: Cost }[],
): { lines: string[]; verdict: string; within: boolean } {
  const { runs, stages } = input;
  const batchSize = stages.staging.batchSize;
  const onRun = bestRun(runs.relayWebhooks);
  const on = onRun.figures;
  const onLogBytesPerJob = (onRun.logBytes ?? 0) / (on.jobs + WARMUP_JOBS);
  const delivered = (f: WorkloadFigures) => f.delivered ?? f.jobs;
  const perDelivered = (n: number, f: WorkloadFigures) => n / delivered(f);
  const of = (f: WorkloadFigures, filter: (op: string, kind: string) => boolean) =>
    capacityOf(f.capacity, filter);
  const writesOf = (f: WorkloadFigures) => of(f, (op) => WRITE_OPERATIONS.has(op));
  const readsOf = (f: WorkloadFigures) => of(f, (op) => !WRITE_OPERATIONS.has(op));
  const indexWrites = (f: WorkloadFigures) =>
    of(f, (op, kind) => WRITE_OPERATIONS.has(op) && kind === 'uuid#');
  const puts = (f: WorkloadFigures) => of(f, (op) => op === 'PutItem').requests;
  const extraPuts = perDelivered(puts(on), on) - perDelivered(puts(off), off);
  const extraUnits = perDelivered(writesOf(on).units, on) - perDelivered(writesOf(off).units, off);
  const offIndexWrites = indexWrites(off).requests;
  const within = extraUnits <= 1 + 1e-9 && offIndexWrites === 0;
  const uuidBytes = on.largestItemBytesByKind?.['uuid#'];
  const signed = (n: number, digits = 2) => `${n >= 0 ? '+' : '−'}${Math.abs(n).toFixed(digits)}`;
  const verdict = `${signed(extraUnits)} with webhooks on (${signed(extraPuts)} PutItem of an index item of ${
    uuidBytes ?? '?'
  } bytes); ${offIndexWrites} index writes with webhooks off${within ? '' : ' — MORE than the goal allows'}`;

  const ratioOnOff = median(
    runs.relay
      .map((_, r) => {
        const a = runs.relay[r]?.figures;
        const b = runs.relayWebhooks[r]?.figures;
        return a && b ? jobsPerSecond(b) / jobsPerSecond(a) : Number.NaN;
      })
      .filter((n) => Number.isFinite(n)),
  );
  const onCosts = STAGES.map((stage) => {
    const batch =
      input.latencyWebhooks.find((l) => l.label === stage)?.figures ??
      (input.latency[0] as Run<BatchLatencyFigures>).figures;
    return { stage, cost: cost(on, batch, stages[stage], batchSize) };
  });
  const obsOf = (f: WorkloadFigures, bytes: number) =>
    observability(f, bytes).reduce((sum, l) => sum + l.perMillion, 0);
  const keys = [...new Set([...Object.keys(off.capacity ?? {}), ...Object.keys(on.capacity ?? {})])].sort();
  const largest = (f: WorkloadFigures, kind: string) => {
    const bytes = f.largestItemBytesByKind?.[kind];
    return bytes === undefined ? '—' : `${bytes}`;
  };

  const lines: string[] = [];
  const table = (header: string[], rows: string[][]) => lines.push(...markdownTable(header, rows));
  lines.push(
    '## Webhooks off and on',
    '',
    "With `WEBHOOKS_ENABLED=true` the sender writes a small index item, `uuid#<the 201's uuid>` → the job id, for",
    "each delivered job, after the settle write, so that the webhook receiver can tie eCourtDate's status updates",
    'to the job (docs/webhooks.md). The relay as in (a), run again in each round with webhooks on: the same job',
    'bodies (ids of the same length, new to the simulator), the same emulators, a fresh queue and table. Write',
    'and read units are what DynamoDB reports for each request (`ReturnConsumedCapacity`; dynalite sizes items as',
    'DynamoDB does: one write unit per KB of the larger of the item before and after the write); delivered jobs',
    "are counted in the ledger after the run. Figures from each setting's best round.",
    '',
  );
  const row = (label: string, a: string, b: string, d: string) => [label, a, b, d];
  table(
    ['per delivered job', 'webhooks off', 'webhooks on', 'on − off'],
    [
      row(
        'jobs/s (best of the rounds)',
        fixed(jobsPerSecond(off), 0),
        fixed(jobsPerSecond(on), 0),
        `${signed((ratioOnOff - 1) * 100, 1)} % (median of the rounds' on ÷ off)`,
      ),
      row(`delivered jobs (of ${off.jobs})`, String(delivered(off)), String(delivered(on)), ''),
      row(
        'DynamoDB requests',
        fixed(perDelivered(total(off.dynamodb), off)),
        fixed(perDelivered(total(on.dynamodb), on)),
        signed(perDelivered(total(on.dynamodb), on) - perDelivered(total(off.dynamodb), off)),
      ),
      ...keys.map((key) => {
        const a = perDelivered(off.capacity?.[key]?.requests ?? 0, off);
        const b = perDelivered(on.capacity?.[key]?.requests ?? 0, on);
        return row(`… ${key}`, fixed(a), fixed(b), signed(b - a));
      }),
      row(
        'write units',
        fixed(perDelivered(writesOf(off).units, off)),
        fixed(perDelivered(writesOf(on).units, on)),
        signed(extraUnits),
      ),
      row(
        'read units',
        fixed(perDelivered(readsOf(off).units, off)),
        fixed(perDelivered(readsOf(on).units, on)),
        signed(perDelivered(readsOf(on).units, on) - perDelivered(readsOf(off).units, off)),
      ),
      row(
        'largest item after the run, bytes: job# / uuid#',
        `${largest(off, 'job#')} / ${largest(off, 'uuid#')}`,
        `${largest(on, 'job#')} / ${largest(on, 'uuid#')}`,
        '',
      ),
      row('delivered jobs with an index item', String(off.uuidIndexed ?? 0), String(on.uuidIndexed ?? 0), ''),
      ...STAGES.flatMap((stage) => {
        const a = offCosts.find((c) => c.stage === stage)?.cost.awsPerMillion ?? Number.NaN;
        const b = onCosts.find((c) => c.stage === stage)?.cost.awsPerMillion ?? Number.NaN;
        const allA = a + obsOf(off, offLogBytesPerJob);
        const allB = b + obsOf(on, onLogBytesPerJob);
        return [
          row(
            `AWS cost per million jobs, ${stage} (${stages[stage].memorySizeMb} MB)`,
            money(a),
            money(b),
            `${b >= a ? '+' : '−'}${money(Math.abs(b - a))}`,
          ),
          row(
            `… all-in (+ logs and X-Ray), ${stage}`,
            money(allA),
            money(allB),
            `${allB >= allA ? '+' : '−'}${money(Math.abs(allB - allA))}`,
          ),
        ];
      }),
    ],
  );
  const onProduction = onCosts.find((c) => c.stage === 'production')?.cost;
  const onBatch = input.latencyWebhooks.find((l) => l.label === 'production')?.figures;
  lines.push(
    `Issue 10 allows a lookup by eCourtDate uuid at most one extra write unit per delivered job, and only with`,
    `webhooks on. This run: ${verdict}${within ? ', within it' : ''}. Exact counts: PutItem ${puts(on)} for ${delivered(on)} delivered`,
    `jobs with webhooks on, ${puts(off)} for ${delivered(off)} with webhooks off. Every round, jobs/s off: ${runs.relay
      .map((r) => fixed(jobsPerSecond(r.figures), 0))
      .join(', ')}; on: ${runs.relayWebhooks.map((r) => fixed(jobsPerSecond(r.figures), 0)).join(', ')}.`,
    `The costs use the same prices and method as "Cost per million jobs" below; with webhooks on, Lambda time is`,
    `a batch of ${batchSize} measured with webhooks on (production share: ${onBatch ? fixed(onBatch.batchMs, 0) : '?'} ms), DynamoDB writes ${
      onProduction
        ? money(onProduction.lines.find((l) => l.item === 'DynamoDB writes')?.perMillion ?? Number.NaN)
        : '?'
    } per million jobs.`,
    '',
  );
  lines.push(...receiverEstimate(on));
  return { lines, verdict, within };
}

/**
 * The webhook receiver's cost per status update, estimated from the operations shared/webhook/receiver.ts makes
 * for an outbound status update of one of the relay's jobs, delivered for the first time (no contention), at list
 * prices. Not measured: the bench does not drive the receiver.
 */
function receiverEstimate(on: WorkloadFigures): string[] {
  const million = 1e6;
  const gb = RECEIVER_MEMORY_MB / 1024;
  // Delivery attributes (delivery_status, _at, _version, _updated_at, delivery_history) about 125 bytes, each
  // history entry (status, at, received_at, webhook_uuid, message_uuid) about 150: sizes as DynamoDB counts them.
  const jobBytes = on.largestItemBytesByKind?.['job#'] ?? 412;
  const updatesUnderOneKb = Math.max(0, Math.floor((1024 - jobBytes - 125) / 150));
  const items = [
    {
      item: 'API Gateway HTTP API',
      perMillion: PRICE.httpApiRequest * million,
      basis: '1 request (up to 512 KB)',
    },
    { item: 'Lambda requests', perMillion: PRICE.lambdaRequest * million, basis: '1 invocation' },
    {
      item: 'Lambda duration',
      perMillion: (RECEIVER_ASSUMED_MS / 1000) * gb * PRICE.lambdaArmGbSecond * million,
      basis: `${RECEIVER_MEMORY_MB} MB arm64, ${RECEIVER_ASSUMED_MS} ms assumed (not measured)`,
    },
    {
      item: 'DynamoDB writes',
      perMillion: 3 * PRICE.dynamoWriteUnit * million,
      basis:
        "3 write units: the conditional PutItem of the dedupe claim, the UpdateItem of the job's delivery status, the UpdateItem that marks the delivery done; each 1 unit while its item is under 1 KB",
    },
    {
      item: 'DynamoDB reads',
      perMillion: 2 * PRICE.dynamoReadUnit * million,
      basis: "2 strongly consistent GetItems: the uuid# index item, then the job's entry (under 4 KB)",
    },
    {
      item: 'EventBridge PutEvents',
      perMillion: 2 * PRICE.eventBridgeEvent * million,
      basis:
        "1 request of 2 entries: the kind's event and `eCourtDate Job Delivery Status` (each under 64 KB)",
    },
  ];
  const sum = items.reduce((n, l) => n + l.perMillion, 0);
  const lines = [
    '### The webhook receiver, per status update (an estimate, not a measurement)',
    '',
    'Estimated from the operations the receiver makes (shared/webhook/receiver.ts) for an outbound status update of a relay job,',
    `delivered once, at list prices (API Gateway HTTP API $1.00 per million requests; EventBridge $1.00 per million`,
    `events put; the rest as below). The bench does not drive the receiver; Lambda time is assumed.`,
    '',
    '| item | per million status updates | basis |',
    '|---|---|---|',
    ...items.map((l) => `| ${l.item} | ${money(l.perMillion)} | ${l.basis} |`),
    `| **estimate** | **${money(sum)}** | |`,
    '',
    `A job's entry grows with its history: from the ${jobBytes} bytes measured above, at about 125 bytes of delivery`,
    `attributes and 150 per update, the status write stays 1 unit for the first ${updatesUnderOneKb} update(s) and then costs 2 or more`,
    `(the history keeps 20). A repeated delivery costs the failed conditional PutItem (1 write unit) and one read; an update`,
    `for a message the relay did not send, one read and one entry less. eCourtDate decides how many updates a message`,
    `gets; at two (sent, delivered) the receiver costs about ${money(2 * sum)} per million jobs, CloudWatch`,
    `Logs (one line per request) and X-Ray left out.`,
    '',
  ];
  return lines;
}

function fmt(counts: CommandCounts): string {
  return Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, n]) => `${name.replace(/Command$/, '')} ${n}`)
    .join(', ');
}

await main();
