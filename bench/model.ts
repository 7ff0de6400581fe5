/**
 * The benchmark's model (reports/bench.md, "Performance and cost"): the prices it assumes and every figure it
 * derives from the measurements, speeds, ratios, request and capacity counts per job, the cost per million jobs,
 * Lambda's CPU-share projection, the webhooks-off-and-on comparison and the webhook receiver's estimate. Pure:
 * no I/O, no clocks; measurements in, numbers out. bench/relay.bench.ts measures, bench/render.ts writes the
 * report.
 *
 * Units: costs in US dollars (`…Usd`, or `perMillion`: dollars per million jobs or status updates), times in ms
 * unless a name says `seconds`, sizes in bytes, memory in MB (1,024 MB to the GB).
 */
import { STAGES, type Stage, type StageConfig } from '#infra/config.ts';
import type { PacingDrillResult } from '#local/pacing-drill.ts';
import { PROBE_STEPS_SECONDS } from '#shared/ecourtdate/breaker.ts';
import { ECOURTDATE_LIMIT_PER_MINUTE } from '#shared/ecourtdate/pacer.ts';
import { API_CLIENT_ITEM_ID } from '#shared/ledger/schema.ts';
import type { ColdStartFigures } from './cold-start.ts';
import type {
  BatchLatencyFigures,
  CapacityCounts,
  CommandCounts,
  FairnessRun,
  WorkloadFigures,
} from './protocol.ts';

/**
 * AWS list prices in us-east-1, US dollars per unit, as AWS's pricing pages for Lambda, SQS, DynamoDB,
 * CloudWatch, X-Ray, Secrets Manager, API Gateway and EventBridge gave them in November 2026. Free tiers are left
 * out. reports/bench.md prints them with the cost.
 */
export const PRICE_USD = {
  /** Lambda arm64 duration, per GB-second (memory in GB times seconds). */
  lambdaArmGbSecond: 0.0000133334,
  /** Lambda, per invocation. */
  lambdaRequest: 0.2 / 1e6,
  /** SQS standard queue, per request (a batch of up to 10 messages is one request). */
  sqsRequest: 0.4 / 1e6,
  /** DynamoDB on-demand, per write request unit. */
  dynamoWriteUnit: 0.625 / 1e6,
  /** DynamoDB on-demand, per read request unit. */
  dynamoReadUnit: 0.125 / 1e6,
  /** Secrets Manager, per API call. */
  secretsManagerCall: 0.05 / 1e4,
  /** CloudWatch Logs, per GB (1,024³ bytes) ingested. */
  logsIngestedGb: 0.5,
  /** X-Ray, per trace recorded. */
  xrayTrace: 5 / 1e6,
  /** API Gateway HTTP API, the first 300 million requests a month, each up to 512 KB. */
  httpApiRequest: 1 / 1e6,
  /** EventBridge custom events put on a bus, each 64 KB chunk of an entry one event. */
  eventBridgeEvent: 1 / 1e6,
} as const;

/** Jobs the throughput runs settle before they measure (reports/bench.md, "Performance and cost"). */
export const WARMUP_JOBS = 100;
/** The eCourtDate simulator's answer time in the batch-latency runs, ms. */
export const API_LATENCY_MS = 200;
/** The upstream system's SendMessageBatch: 10 jobs a request. */
export const UPSTREAM_SQS_REQUESTS_PER_JOB = 0.1;
/**
 * X-Ray's default sampling rule records the first request each second and 5 % of the rest. At the relay's most,
 * 900 jobs a minute in batches of 10 (1.5 invocations a second), that is 1/1.5 + 5 % of the rest, about 68 % of
 * invocations; less traffic is sampled more. A fraction, 0 to 1.
 */
export const XRAY_SAMPLED_INVOCATIONS = 1 / 1.5 + 0.05 * (1 - 1 / 1.5);
/** Lambda's CPU allocation: one vCPU at this memory size, MB, and a share in proportion below it. */
export const LAMBDA_MB_PER_VCPU = 1769;
/** The receiver's memory size, MB, as infra/constructs/webhook-receiver.ts sets it. */
export const RECEIVER_MEMORY_MB = 256;
/**
 * The receiver's Lambda time per status update assumed by the estimate, ms: six sequential AWS calls of a few ms
 * each in the region (claim, two reads, the status write, PutEvents, done) plus the HMAC and JSON work at
 * 256 MB's share of a vCPU. Not measured.
 */
export const RECEIVER_ASSUMED_MS = 100;
/** The ledger item's size the receiver's estimate starts from when the run measured none, bytes. */
const RECEIVER_DEFAULT_JOB_BYTES = 412;

/** The SDK command names (`counting` in bench/protocol.ts) that write to DynamoDB. */
export const DYNAMO_WRITE_COMMANDS: ReadonlySet<string> = new Set([
  'PutItemCommand',
  'UpdateItemCommand',
  'DeleteItemCommand',
]);
/** The DynamoDB operations (as in `CapacityCounts` keys) that write. */
export const WRITE_OPERATIONS: ReadonlySet<string> = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);

/** The measurements of `npm run bench`: each throughput run, by kind, one a round. */
export type RunKind = 'relay' | 'fetch' | 'floor' | 'relayTraced' | 'relayWebhooks';

export interface Run<T> {
  readonly label: string;
  readonly figures: T;
  /** Bytes the workload wrote to the log file (the senders' log and EMF lines). */
  readonly logBytes?: number;
}

/** What the report is computed from: the run's settings and every measurement of it. */
export interface ReportInput {
  readonly options: {
    /** Jobs per throughput measurement, after `WARMUP_JOBS`. */
    readonly jobs: number;
    readonly instances: number;
    readonly repeats: number;
    /** Budget drills: a minute lasts 60 / timeScale s. */
    readonly timeScale: number;
  };
  /** The machine, as the report prints it (CPUs, load average, Node version). */
  readonly machine: string;
  /** The day of the run, as the report prints it: YYYY-MM-DD (UTC). */
  readonly date: string;
  readonly stages: Record<Stage, StageConfig>;
  readonly runs: Record<RunKind, Run<WorkloadFigures>[]>;
  /**
   * One batch on a lone instance of a shared budget: the sender's default first, then each stage's
   * `requestsPerMinute`, labelled starting with the stage.
   */
  readonly latency: Run<BatchLatencyFigures>[];
  /** One batch at each stage's budget with webhooks on, labelled by stage. */
  readonly latencyWebhooks: Run<BatchLatencyFigures>[];
  /** The budget drills, each scenario with the shared budget and today's static split (docs/pacing.md). */
  readonly budget: readonly BudgetDrill[];
  /** The outage drill that times the circuit breaker (its `breaker` set); undefined when not run. */
  readonly breaker: PacingDrillResult | undefined;
  /** One agency's burst beside a few jobs of another; undefined when not run. */
  readonly fairness: FairnessRun | undefined;
  readonly coldStart: ColdStartFigures;
  /** Requests at once in the throughput runs: instances × batch size. */
  readonly concurrency: number;
}

/**
 * The budget drills' scenarios (docs/pacing.md): a lone busy instance; N instances, all but one slowed (uneven
 * load); a fresh container every 20 (scaled) seconds (churn).
 */
export type BudgetScenario = 'lone' | 'uneven' | 'churn';

/** One scenario of the budget drills, run with the shared budget and with today's static split. */
export interface BudgetDrill {
  readonly scenario: BudgetScenario;
  readonly instances: number;
  /** The instances the static split divides the budget by (`maxConcurrency` of the stage it stands for). */
  readonly maxConcurrency: number;
  readonly shared: PacingDrillResult;
  readonly static: PacingDrillResult;
}

// --- counts, speeds and rounds ---

/** The sum of the counts whose command name passes `filter` (all of them by default). */
export function total(counts: CommandCounts, filter: (name: string) => boolean = () => true): number {
  return Object.entries(counts).reduce((sum, [name, n]) => (filter(name) ? sum + n : sum), 0);
}

/** `n` over the run's measured jobs. Infinity or NaN for a run of 0 jobs. */
export function perJob(n: number, figures: WorkloadFigures): number {
  return n / figures.jobs;
}

/** Measured jobs a second over the run's wall time. */
export function jobsPerSecond(f: WorkloadFigures): number {
  return f.jobs / f.seconds;
}

/**
 * The run with the most jobs a second: the one the rest of the machine disturbed least. `runs` must not be empty
 * (the result is undefined, typed as a run, if it is).
 */
export function bestRun(runs: readonly Run<WorkloadFigures>[]): Run<WorkloadFigures> {
  const sorted = [...runs].sort((a, b) => jobsPerSecond(b.figures) - jobsPerSecond(a.figures));
  return sorted[0] as Run<WorkloadFigures>;
}

/** The figures of `bestRun(runs)`. */
export function best(runs: readonly Run<WorkloadFigures>[]): WorkloadFigures {
  return bestRun(runs).figures;
}

/** The median of `values`: the middle one, or the mean of the middle two; NaN for none. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/**
 * Jobs a second if an instance spent all its time in the handler, as on Lambda, where the event source
 * mapping's poller receives and deletes outside the function: jobs over the instances' mean handler time.
 */
export function handlerJobsPerSecond(f: WorkloadFigures, instances: number): number {
  return f.jobs / (f.handlerMs / instances / 1000);
}

/** Requests and capacity units in `capacity` whose operation (`PutItem`) and item kind (`uuid#`) pass `filter`. */
export function capacityOf(
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
 * DynamoDB requests per job to the job ledger's items: every DynamoDB request but those to the `api-client` item
 * (the shared budget's leases and the circuit breaker's reads, counted per eCourtDate request in the budget's own
 * drills; docs/pacing.md).
 */
export function ledgerRequestsPerJob(f: WorkloadFigures): number {
  return perJob(ledgerRequests(f), f);
}

/** DynamoDB requests of a run to the job ledger's items: all but those to the `api-client` item. */
function ledgerRequests(f: WorkloadFigures): number {
  return total(f.dynamodb) - capacityOf(f.capacity, (_, kind) => kind === API_CLIENT_ITEM_ID).requests;
}

/** DynamoDB write requests per job (PutItem, UpdateItem, DeleteItem). */
export function dynamoWritesPerJob(f: WorkloadFigures): number {
  return perJob(
    total(f.dynamodb, (n) => DYNAMO_WRITE_COMMANDS.has(n)),
    f,
  );
}

/** DynamoDB requests other than writes per job. */
export function dynamoReadsPerJob(f: WorkloadFigures): number {
  return perJob(
    total(f.dynamodb, (n) => !DYNAMO_WRITE_COMMANDS.has(n)),
    f,
  );
}

/**
 * Write and read units per job: as DynamoDB reported them for the run (`capacity`, `measured: true`), else
 * bounded by the largest item: one write unit per KB, one strongly consistent read unit per 4 KB, at least one.
 */
export function unitsPerJob(f: WorkloadFigures): { writes: number; reads: number; measured: boolean } {
  if (f.capacity) {
    return {
      writes: perJob(capacityOf(f.capacity, (op) => WRITE_OPERATIONS.has(op)).units, f),
      reads: perJob(capacityOf(f.capacity, (op) => !WRITE_OPERATIONS.has(op)).units, f),
      measured: true,
    };
  }
  return {
    writes: dynamoWritesPerJob(f) * Math.max(1, Math.ceil((f.largestItemBytes ?? 0) / 1024)),
    reads: dynamoReadsPerJob(f) * Math.max(1, Math.ceil((f.largestItemBytes ?? 0) / 4096)),
    measured: false,
  };
}

// --- cost ---

/** Lambda arm64 duration cost of `ms` of one invocation at `memoryMb`, US dollars: GB-seconds at list price. */
export function lambdaDurationUsd(ms: number, memoryMb: number): number {
  return (ms / 1000) * (memoryMb / 1024) * PRICE_USD.lambdaArmGbSecond;
}

/** A cost line's item, as the report names it. */
export type CostItem =
  | 'Lambda duration'
  | 'Lambda requests'
  | 'SQS, the relay'
  | 'SQS, upstream send'
  | 'DynamoDB writes'
  | 'DynamoDB reads'
  | 'Secrets Manager';

/** The relay's cost per million jobs at one stage, with the per-job quantities it is priced from. */
export interface Cost {
  /** In the report's order; `perMillion` in US dollars per million jobs. */
  readonly lines: readonly { readonly item: CostItem; readonly perMillion: number }[];
  /** The sum of `lines`, US dollars per million jobs. */
  readonly awsPerMillion: number;
  /** What the lines are priced from. */
  readonly basis: {
    readonly memorySizeMb: number;
    /** The batch invocation priced, ms, and the jobs in it. */
    readonly batchMs: number;
    readonly batchSize: number;
    /** Per job: Lambda invocations, SQS requests, DynamoDB write and read requests, Secrets Manager calls. */
    readonly invocations: number;
    readonly sqsRequests: number;
    readonly writes: number;
    readonly reads: number;
    readonly secretsCalls: number;
    /** Per job: DynamoDB's capacity units, `measured` when DynamoDB reported them, else bounded by the item size. */
    readonly units: { readonly writes: number; readonly reads: number; readonly measured: boolean };
    readonly largestItemBytes: number;
  };
}

/**
 * The relay's AWS cost per million jobs (reports/bench.md, "Cost per million jobs"): Lambda duration of one
 * `batch` of `batchSize` jobs at `memorySizeMb`, Lambda invocations, the relay's SQS requests and the upstream
 * SendMessageBatch, DynamoDB capacity units (`unitsPerJob`), Secrets Manager calls, each per job as `relay`
 * measured them, at `PRICE_USD`.
 */
export function jobCost(
  relay: WorkloadFigures,
  batch: BatchLatencyFigures,
  memorySizeMb: number,
  batchSize: number,
): Cost {
  const million = 1e6;
  const units = unitsPerJob(relay);
  const invocations = perJob(relay.invocations, relay);
  const sqsRequests = perJob(total(relay.sqs), relay);
  const secretsCalls = perJob(total(relay.secrets), relay);
  const lines: { item: CostItem; perMillion: number }[] = [
    {
      item: 'Lambda duration',
      perMillion: lambdaDurationUsd(batch.batchMs / batchSize, memorySizeMb) * million,
    },
    { item: 'Lambda requests', perMillion: invocations * PRICE_USD.lambdaRequest * million },
    { item: 'SQS, the relay', perMillion: sqsRequests * PRICE_USD.sqsRequest * million },
    {
      item: 'SQS, upstream send',
      perMillion: UPSTREAM_SQS_REQUESTS_PER_JOB * PRICE_USD.sqsRequest * million,
    },
    { item: 'DynamoDB writes', perMillion: units.writes * PRICE_USD.dynamoWriteUnit * million },
    { item: 'DynamoDB reads', perMillion: units.reads * PRICE_USD.dynamoReadUnit * million },
    { item: 'Secrets Manager', perMillion: secretsCalls * PRICE_USD.secretsManagerCall * million },
  ];
  return {
    lines,
    awsPerMillion: lines.reduce((sum, l) => sum + l.perMillion, 0),
    basis: {
      memorySizeMb,
      batchMs: batch.batchMs,
      batchSize,
      invocations,
      sqsRequests,
      writes: dynamoWritesPerJob(relay),
      reads: dynamoReadsPerJob(relay),
      secretsCalls,
      units,
      largestItemBytes: relay.largestItemBytes ?? 0,
    },
  };
}

/** The per-million cost of the line named `item` in `cost`, US dollars; NaN if it has none. */
export function costOf(cost: Cost, item: CostItem): number {
  return cost.lines.find((l) => l.item === item)?.perMillion ?? Number.NaN;
}

/** Observability's cost per million jobs, US dollars, with what each line is priced from. */
export interface ObservabilityCost {
  readonly logs: { readonly perMillion: number; readonly bytesPerJob: number };
  readonly xray: { readonly perMillion: number; readonly sampledShare: number };
  readonly perMillion: number;
}

/**
 * CloudWatch Logs ingestion of `logBytesPerJob` (the senders' log and EMF lines) and X-Ray traces of the relay's
 * invocations under the default sampling rule (`XRAY_SAMPLED_INVOCATIONS`), per million jobs, US dollars.
 */
export function observabilityCost(relay: WorkloadFigures, logBytesPerJob: number): ObservabilityCost {
  const million = 1e6;
  const invocations = perJob(relay.invocations, relay);
  const logs = (logBytesPerJob * million * PRICE_USD.logsIngestedGb) / 1024 ** 3;
  const xray = invocations * XRAY_SAMPLED_INVOCATIONS * PRICE_USD.xrayTrace * million;
  return {
    logs: { perMillion: logs, bytesPerJob: logBytesPerJob },
    xray: { perMillion: xray, sampledShare: XRAY_SAMPLED_INVOCATIONS },
    perMillion: logs + xray,
  };
}

/**
 * Bytes the run logged per job: warm-up jobs log too, so the bytes are spread over every job the run settled
 * (`jobs + WARMUP_JOBS`). 0 when the run's bytes were not counted.
 */
export function logBytesPerJob(run: Run<WorkloadFigures>): number {
  return (run.logBytes ?? 0) / (run.figures.jobs + WARMUP_JOBS);
}

// --- Lambda's CPU share ---

/** The share of one vCPU Lambda gives a function of `memoryMb` (one vCPU at `LAMBDA_MB_PER_VCPU`), not capped. */
export function vcpuShare(memoryMb: number): number {
  return memoryMb / LAMBDA_MB_PER_VCPU;
}

/** The CPU time of one batch (`cpuMsPerJob` as measured in (a)), stretched to the vCPU share of `memoryMb`, ms. */
export function throttledCpuMs(cpuMsPerJob: number, batchSize: number, memoryMb: number): number {
  return (cpuMsPerJob * batchSize) / Math.min(1, vcpuShare(memoryMb));
}

/**
 * A measured batch with its CPU time stretched to Lambda's share, ms: the measured batch plus the time its CPU
 * work takes beyond what it took on a whole core. Never less than the measurement; NaN without one.
 */
export function projectedBatchMs(
  cpuMsPerJob: number,
  batch: BatchLatencyFigures | undefined,
  batchSize: number,
  memoryMb: number,
): number {
  const extra = throttledCpuMs(cpuMsPerJob, batchSize, memoryMb) - cpuMsPerJob * batchSize;
  return (batch?.batchMs ?? Number.NaN) + Math.max(0, extra);
}

// --- the webhook receiver ---

/** The webhook receiver's estimated cost per million status updates (reports/bench.md, "Webhooks off and on"). */
export interface ReceiverCost {
  readonly items: readonly {
    readonly item:
      | 'API Gateway HTTP API'
      | 'Lambda requests'
      | 'Lambda duration'
      | 'DynamoDB writes'
      | 'DynamoDB reads'
      | 'EventBridge PutEvents';
    /** US dollars per million status updates. */
    readonly perMillion: number;
  }[];
  /** The sum of `items`, US dollars per million status updates. */
  readonly perMillion: number;
  /** The job's ledger item the estimate starts from, bytes. */
  readonly jobBytes: number;
  /** Status updates whose write stays one unit (the item under 1 KB). */
  readonly updatesUnderOneKb: number;
}

/**
 * The webhook receiver's cost per million status updates, estimated from the operations shared/webhook/receiver.ts
 * makes for an outbound status update of one of the relay's jobs, delivered for the first time (no contention):
 * one HTTP API request, one invocation of `RECEIVER_ASSUMED_MS` at `RECEIVER_MEMORY_MB`, 3 write units, 2 read
 * units, 2 EventBridge entries. `jobBytes`: the job's ledger item measured after the run, bytes (412 if none).
 * Delivery attributes take about 125 bytes, each history entry about 150.
 */
export function receiverCost(jobBytes: number | undefined): ReceiverCost {
  const million = 1e6;
  const bytes = jobBytes ?? RECEIVER_DEFAULT_JOB_BYTES;
  const items: ReceiverCost['items'] = [
    { item: 'API Gateway HTTP API', perMillion: PRICE_USD.httpApiRequest * million },
    { item: 'Lambda requests', perMillion: PRICE_USD.lambdaRequest * million },
    {
      item: 'Lambda duration',
      perMillion: lambdaDurationUsd(RECEIVER_ASSUMED_MS, RECEIVER_MEMORY_MB) * million,
    },
    { item: 'DynamoDB writes', perMillion: 3 * PRICE_USD.dynamoWriteUnit * million },
    { item: 'DynamoDB reads', perMillion: 2 * PRICE_USD.dynamoReadUnit * million },
    { item: 'EventBridge PutEvents', perMillion: 2 * PRICE_USD.eventBridgeEvent * million },
  ];
  return {
    items,
    perMillion: items.reduce((n, l) => n + l.perMillion, 0),
    jobBytes: bytes,
    updatesUnderOneKb: Math.max(0, Math.floor((1024 - bytes - 125) / 150)),
  };
}

// --- webhooks off and on ---

/** The relay with webhooks off and on side by side, per delivered job (reports/bench.md, "Webhooks off and on"). */
export interface WebhookComparison {
  /** The best rounds: webhooks off (the relay's) and on. */
  readonly off: WorkloadFigures;
  readonly on: WorkloadFigures;
  readonly offLogBytesPerJob: number;
  readonly onLogBytesPerJob: number;
  /** Jobs delivered (the ledger after the run; the measured jobs if not counted). */
  readonly delivered: { readonly off: number; readonly on: number };
  /** PutItem requests in the run, all kinds. */
  readonly puts: { readonly off: number; readonly on: number };
  /** Per delivered job, on − off: PutItem requests and write units. */
  readonly extraPuts: number;
  readonly extraUnits: number;
  /** Writes of index items (`uuid#`) with webhooks off: none is the goal. */
  readonly offIndexWrites: number;
  /** At most one extra write unit per delivered job with webhooks on, and no index write with them off. */
  readonly within: boolean;
  /** The median of the rounds' jobs/s on ÷ off. */
  readonly ratioOnOff: number;
  /** Per delivered job, off and on. */
  readonly dynamoRequests: { readonly off: number; readonly on: number };
  readonly writeUnits: { readonly off: number; readonly on: number };
  readonly readUnits: { readonly off: number; readonly on: number };
  /** DynamoDB requests per delivered job by `CapacityCounts` key (`PutItem job#`), both settings' keys, sorted. */
  readonly byKey: readonly { readonly key: string; readonly off: number; readonly on: number }[];
  /** Per stage, AWS cost per million jobs and all-in (+ logs and X-Ray), US dollars, off and on. */
  readonly costs: readonly {
    readonly stage: Stage;
    readonly aws: { readonly off: number; readonly on: number };
    readonly allIn: { readonly off: number; readonly on: number };
  }[];
  /** The production cost with webhooks on, and the batch it was priced from (with webhooks on). */
  readonly onProduction: Cost | undefined;
  readonly onProductionBatch: BatchLatencyFigures | undefined;
  readonly receiver: ReceiverCost;
}

/** Jobs the run delivered: as counted in the ledger, else the measured jobs. */
export function deliveredJobs(f: WorkloadFigures): number {
  return f.delivered ?? f.jobs;
}

/**
 * The relay with webhooks off (`offRun`, the relay's best round, and its `offCosts` per stage) and on (the best
 * round of `input.runs.relayWebhooks`, priced from `input.latencyWebhooks`; docs/webhooks.md), per delivered job.
 */
export function webhookComparison(
  input: ReportInput,
  offRun: Run<WorkloadFigures>,
  offCosts: readonly { stage: Stage; cost: Cost }[],
): WebhookComparison {
  const { runs, stages } = input;
  const batchSize = stages.staging.batchSize;
  const off = offRun.figures;
  const onRun = bestRun(runs.relayWebhooks);
  const on = onRun.figures;
  const perDelivered = (n: number, f: WorkloadFigures) => n / deliveredJobs(f);
  // The job ledger's items only: the api-client item's leases come with the budget, webhooks on or off.
  const ledger = (kind: string) => kind !== API_CLIENT_ITEM_ID;
  const writesOf = (f: WorkloadFigures) =>
    capacityOf(f.capacity, (op, kind) => WRITE_OPERATIONS.has(op) && ledger(kind));
  const readsOf = (f: WorkloadFigures) =>
    capacityOf(f.capacity, (op, kind) => !WRITE_OPERATIONS.has(op) && ledger(kind));
  const puts = (f: WorkloadFigures) =>
    capacityOf(f.capacity, (op, kind) => op === 'PutItem' && ledger(kind)).requests;
  const extraPuts = perDelivered(puts(on), on) - perDelivered(puts(off), off);
  const extraUnits = perDelivered(writesOf(on).units, on) - perDelivered(writesOf(off).units, off);
  const offIndexWrites = capacityOf(
    off.capacity,
    (op, kind) => WRITE_OPERATIONS.has(op) && kind === 'uuid#',
  ).requests;
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
    return { stage, cost: jobCost(on, batch, stages[stage].memorySizeMb, batchSize) };
  });
  const offLogBytesPerJob = logBytesPerJob(offRun);
  const onLogBytesPerJob = logBytesPerJob(onRun);
  const keys = [...new Set([...Object.keys(off.capacity ?? {}), ...Object.keys(on.capacity ?? {})])].sort();
  return {
    off,
    on,
    offLogBytesPerJob,
    onLogBytesPerJob,
    delivered: { off: deliveredJobs(off), on: deliveredJobs(on) },
    puts: { off: puts(off), on: puts(on) },
    extraPuts,
    extraUnits,
    offIndexWrites,
    within: extraUnits <= 1 + 1e-9 && offIndexWrites === 0,
    ratioOnOff,
    dynamoRequests: { off: perDelivered(ledgerRequests(off), off), on: perDelivered(ledgerRequests(on), on) },
    writeUnits: { off: perDelivered(writesOf(off).units, off), on: perDelivered(writesOf(on).units, on) },
    readUnits: { off: perDelivered(readsOf(off).units, off), on: perDelivered(readsOf(on).units, on) },
    byKey: keys.map((key) => ({
      key,
      off: perDelivered(off.capacity?.[key]?.requests ?? 0, off),
      on: perDelivered(on.capacity?.[key]?.requests ?? 0, on),
    })),
    costs: STAGES.map((stage) => {
      const a = offCosts.find((c) => c.stage === stage)?.cost.awsPerMillion ?? Number.NaN;
      const b = onCosts.find((c) => c.stage === stage)?.cost.awsPerMillion ?? Number.NaN;
      return {
        stage,
        aws: { off: a, on: b },
        allIn: {
          off: a + observabilityCost(off, offLogBytesPerJob).perMillion,
          on: b + observabilityCost(on, onLogBytesPerJob).perMillion,
        },
      };
    }),
    onProduction: onCosts.find((c) => c.stage === 'production')?.cost,
    onProductionBatch: input.latencyWebhooks.find((l) => l.label === 'production')?.figures,
    receiver: receiverCost(on.largestItemBytesByKind?.['job#']),
  };
}

// --- the shared budget, the breaker and fairness (docs/pacing.md) ---

/** The goals for the shared budget (docs/pacing.md): share of a lone instance, DynamoDB cost. */
export const LONE_SHARE_GOAL = 0.95;
export const ITEM_REQUESTS_PER_20_SENDS_GOAL = 1;

/**
 * Requests to the api-client item per 20 eCourtDate requests (token and send) of a drill; NaN when it sent none.
 */
export function itemRequestsPer20Sends(drill: PacingDrillResult): number {
  return drill.ecourtdateRequests === 0
    ? Number.NaN
    : (drill.apiClientItemRequests * 20) / drill.ecourtdateRequests;
}

/** What one drill shows against the goals. */
export interface DrillFigures {
  /** Requests in the measured span over the budget it had: 0 to 1 (more if it overspent). */
  readonly share: number;
  /** The most requests eCourtDate saw in one (scaled) minute, and whether it stayed within its limit. */
  readonly busiestWindow: number;
  readonly withinLimit: boolean;
  readonly rateLimited: number;
  readonly itemRequestsPer20Sends: number;
}

/** A drill's figures (`limit`: eCourtDate's requests per minute per API client). */
export function drillFigures(drill: PacingDrillResult, limit = ECOURTDATE_LIMIT_PER_MINUTE): DrillFigures {
  return {
    share: drill.sustainedShare,
    busiestWindow: drill.busiestWindow,
    withinLimit: drill.busiestWindow <= limit,
    rateLimited: drill.rateLimited,
    itemRequestsPer20Sends: itemRequestsPer20Sends(drill),
  };
}

/** The budget drills against the goals, for the shared budget and for today's static split. */
export interface BudgetGoals {
  /** A lone busy instance's share of the whole budget; NaN without a `lone` drill. */
  readonly loneShare: { readonly shared: number; readonly static: number; readonly met: boolean };
  /** 429s over every drill, and whether every drill stayed within the limit in every window. */
  readonly rateLimited: { readonly shared: number; readonly static: number; readonly met: boolean };
  readonly withinLimit: { readonly shared: boolean; readonly static: boolean };
  /** The most (worst) requests to the api-client item per 20 eCourtDate requests over the shared drills. */
  readonly itemRequestsPer20Sends: { readonly worst: number; readonly met: boolean };
}

/**
 * The goals of docs/pacing.md over the budget drills: the lone instance's share >= 95 %, 0 × 429 and every window
 * within the limit, at most 1 request to the api-client item per 20 eCourtDate requests. `met` is the shared
 * budget's verdict; the static split's figures stand beside it. No drill: NaN figures, nothing met.
 */
export function budgetGoals(drills: readonly BudgetDrill[]): BudgetGoals {
  const lone = drills.find((d) => d.scenario === 'lone');
  const sum = (f: (d: BudgetDrill) => number) => drills.reduce((n, d) => n + f(d), 0);
  const sharedLone = lone?.shared.sustainedShare ?? Number.NaN;
  const per20 = drills.map((d) => itemRequestsPer20Sends(d.shared));
  const worst = per20.length === 0 ? Number.NaN : Math.max(...per20);
  const shared429 = sum((d) => d.shared.rateLimited);
  return {
    loneShare: {
      shared: sharedLone,
      static: lone?.static.sustainedShare ?? Number.NaN,
      met: sharedLone >= LONE_SHARE_GOAL,
    },
    rateLimited: {
      shared: shared429,
      static: sum((d) => d.static.rateLimited),
      met: drills.length > 0 && shared429 === 0,
    },
    withinLimit: {
      shared: drills.length > 0 && drills.every((d) => drillFigures(d.shared).withinLimit),
      static: drills.length > 0 && drills.every((d) => drillFigures(d.static).withinLimit),
    },
    itemRequestsPer20Sends: { worst, met: worst <= ITEM_REQUESTS_PER_20_SENDS_GOAL },
  };
}

/**
 * The probe schedule's wait from the end of an outage to the next probe, in eCourtDate's seconds: probes go
 * `PROBE_STEPS_SECONDS` apart from the opening (60, 120, 240, 480, then every 600 s; docs/pacing.md), and the first
 * one at or after the end closes the breaker. `openToEndSeconds`: from the opening to the end, >= 0. Pure.
 *
 * @example
 * nextProbeWaitSeconds(100); // 80: probes at 60 and 180 s after the opening
 */
export function nextProbeWaitSeconds(openToEndSeconds: number): number {
  let at = 0;
  for (let step = 0; ; step += 1) {
    at += PROBE_STEPS_SECONDS[Math.min(step, PROBE_STEPS_SECONDS.length - 1)] as number;
    if (at >= openToEndSeconds) return at - openToEndSeconds;
  }
}

/** The circuit breaker's times in the outage drill (docs/pacing.md, "The circuit breaker"). */
export interface BreakerFigures {
  readonly timeScale: number;
  /** The outage's length, eCourtDate's seconds. */
  readonly outageSeconds: number;
  /** From the first failed request to the breaker open (written to the item), real ms; NaN if it never opened. */
  readonly openMs: number;
  /** Message requests that met the outage before the breaker opened. */
  readonly messagesBeforeOpen: number;
  /**
   * From the end of the outage to the first delivered job, eCourtDate's seconds (the time scale undone); NaN when
   * no job was delivered after it.
   */
  readonly closeSeconds: number;
  /** What the probe schedule alone implies for `closeSeconds` (`nextProbeWaitSeconds`); NaN if it never opened. */
  readonly scheduleSeconds: number;
  readonly probesDuring: number;
  readonly requestsDuring: number;
}

/** The breaker's figures from an outage drill; undefined for a drill without one. */
export function breakerFigures(drill: PacingDrillResult): BreakerFigures | undefined {
  const b = drill.breaker;
  if (b === undefined) return undefined;
  const timeScale = 60_000 / drill.windowMs;
  const apiSeconds = (ms: number) => (ms * timeScale) / 1000;
  const diff = (to: number | undefined, from: number | undefined) =>
    to === undefined || from === undefined ? Number.NaN : to - from;
  const outageMs = diff(b.outageEndsAt, b.outageStartedAt);
  return {
    timeScale,
    outageSeconds: Math.round(apiSeconds(outageMs)),
    openMs: diff(b.openedAt, b.firstFailedAt),
    messagesBeforeOpen: b.messagesBeforeOpen,
    closeSeconds: apiSeconds(diff(b.firstDeliveredAfterAt, b.outageEndsAt)),
    scheduleSeconds:
      b.openedAt === undefined || b.outageEndsAt === undefined
        ? Number.NaN
        : nextProbeWaitSeconds(Math.max(0, apiSeconds(b.outageEndsAt - b.openedAt))),
    probesDuring: b.probesDuring,
    requestsDuring: b.requestsDuring,
  };
}

/** Fairness (docs/pacing.md, "Fairness"): where the few jobs of the other agency were served. */
export interface FairnessFigures {
  /** 1-based position of the few's last job in the order eCourtDate got message requests; NaN if not all served. */
  readonly lastFewPosition: number;
  /** The goal: within the first quarter of the burst (`burst / 4`). */
  readonly quarter: number;
  readonly met: boolean;
}

/** Where the last of the few was served, against the first quarter of the burst. */
export function fairnessFigures(run: FairnessRun): FairnessFigures {
  const served = run.served.filter((agency) => agency === run.fewAgency).length;
  const lastFewPosition = served >= run.few ? run.served.lastIndexOf(run.fewAgency) + 1 : Number.NaN;
  const quarter = run.burst / 4;
  return { lastFewPosition, quarter, met: lastFewPosition <= quarter };
}

// --- the whole model ---

/** Every figure the report prints that is not a measurement as it came. */
export interface BenchModel {
  /** The best round of each run kind. */
  readonly relay: WorkloadFigures;
  readonly fetch: WorkloadFigures;
  readonly floor: WorkloadFigures;
  readonly traced: WorkloadFigures;
  /** Medians of the rounds' own ratios (a round's runs ran one after the other under the same load). */
  readonly ratios: {
    readonly relayToFloor: number;
    readonly relayToFetch: number;
    /** The CPU per job the X-Ray SDK's hook adds, a fraction of the relay's. */
    readonly xrayHookCpuAdded: number;
    /** The change in jobs/s with X-Ray subsegments, a fraction (negative: slower). */
    readonly tracedThroughputChange: number;
    readonly handlerToFloor: number;
  };
  /** CPU ms per job, the least of the rounds (the one the rest of the machine disturbed least). */
  readonly cpuMsPerJob: {
    readonly relay: number;
    readonly fetch: number;
    readonly floor: number;
    readonly relayTraced: number;
  };
  readonly batchSize: number;
  readonly logBytesPerJob: number;
  /** Each stage's cost, priced from its batch-latency run (the default budget's if it has none). */
  readonly costs: readonly { readonly stage: Stage; readonly cost: Cost }[];
  readonly observability: ObservabilityCost;
  readonly webhooks: WebhookComparison;
  /** The budget drills against the goals (shared budget and static split). */
  readonly budget: BudgetGoals;
  readonly breaker: BreakerFigures | undefined;
  readonly fairness: FairnessFigures | undefined;
  /** Each batch-latency run's batch ÷ one call, in `input.latency`'s order. */
  readonly batchRatios: readonly number[];
  /** The sender's import time over the SQS-only handler's. */
  readonly importRatio: number;
  /** Production's measured batch stretched to Lambda's CPU share at its memory size (`projectedBatchMs`). */
  readonly productionProjection: {
    readonly memoryMb: number;
    readonly vcpuShare: number;
    readonly throttledCpuMs: number;
    readonly batchMs: number;
    /** `batchMs` over the production batch run's one call. */
    readonly toOneCall: number;
  };
  /**
   * Each stage with a measured batch, its batch stretched to Lambda's CPU share at the stage's memory size
   * (`projectedBatchMs`, ms) and the cost priced from it.
   */
  readonly throttledCosts: readonly {
    readonly stage: Stage;
    readonly batchMs: number;
    readonly cost: Cost;
  }[];
}

/** A batch-latency run's batch over one call; NaN without a run. */
export function batchRatio(l: Run<BatchLatencyFigures> | undefined): number {
  return l ? l.figures.batchMs / l.figures.oneCallMs : Number.NaN;
}

/**
 * The report's figures from `input`. Expects at least one round of every run kind and the default budget's
 * batch-latency run first in `input.latency`.
 */
export function benchModel(input: ReportInput): BenchModel {
  const { options, runs, latency, coldStart, stages } = input;
  const leastCpu = (all: readonly Run<WorkloadFigures>[]) =>
    Math.min(...all.map((r) => r.figures.cpuMs / r.figures.jobs));
  const roundRatio = (f: (round: number) => number) =>
    median(runs.relay.map((_, round) => f(round)).filter((n) => Number.isFinite(n)));
  const at = (all: readonly Run<WorkloadFigures>[], round: number) =>
    (all[round] as Run<WorkloadFigures>).figures;
  const relayRunBest = bestRun(runs.relay);
  const relay = relayRunBest.figures;
  const batchSize = stages.staging.batchSize;
  const defaultShare = latency[0];
  const costs = STAGES.map((stage) => {
    const batch = latency.find((l) => l.label.startsWith(stage)) ?? defaultShare;
    return {
      stage,
      cost: jobCost(
        relay,
        (batch as Run<BatchLatencyFigures>).figures,
        stages[stage].memorySizeMb,
        batchSize,
      ),
    };
  });
  const cpuMsPerJob = {
    relay: leastCpu(runs.relay),
    fetch: leastCpu(runs.fetch),
    floor: leastCpu(runs.floor),
    relayTraced: leastCpu(runs.relayTraced),
  };
  const production = latency.find((l) => l.label.startsWith('production'));
  const memoryMb = stages.production.memorySizeMb;
  const projected = projectedBatchMs(cpuMsPerJob.relay, production?.figures, batchSize, memoryMb);
  const relayLogBytesPerJob = logBytesPerJob(relayRunBest);
  return {
    relay,
    fetch: best(runs.fetch),
    floor: best(runs.floor),
    traced: best(runs.relayTraced),
    ratios: {
      relayToFloor: roundRatio((r) => jobsPerSecond(at(runs.relay, r)) / jobsPerSecond(at(runs.floor, r))),
      relayToFetch: roundRatio((r) => jobsPerSecond(at(runs.relay, r)) / jobsPerSecond(at(runs.fetch, r))),
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
    },
    cpuMsPerJob,
    batchSize,
    logBytesPerJob: relayLogBytesPerJob,
    costs,
    observability: observabilityCost(relay, relayLogBytesPerJob),
    webhooks: webhookComparison(input, relayRunBest, costs),
    budget: budgetGoals(input.budget),
    breaker: input.breaker === undefined ? undefined : breakerFigures(input.breaker),
    fairness: input.fairness === undefined ? undefined : fairnessFigures(input.fairness),
    batchRatios: latency.map((l) => batchRatio(l)),
    importRatio: coldStart.sender.importMs / coldStart.sqsOnly.importMs,
    productionProjection: {
      memoryMb,
      vcpuShare: vcpuShare(memoryMb),
      throttledCpuMs: throttledCpuMs(cpuMsPerJob.relay, batchSize, memoryMb),
      batchMs: projected,
      toOneCall: projected / (production?.figures.oneCallMs ?? Number.NaN),
    },
    throttledCosts: STAGES.flatMap((stage) => {
      const measured = latency.find((l) => l.label.startsWith(stage))?.figures;
      if (!measured) return [];
      const memory = stages[stage].memorySizeMb;
      const throttled = {
        ...measured,
        batchMs: projectedBatchMs(cpuMsPerJob.relay, measured, batchSize, memory),
      };
      return [{ stage, batchMs: throttled.batchMs, cost: jobCost(relay, throttled, memory, batchSize) }];
    }),
  };
}
