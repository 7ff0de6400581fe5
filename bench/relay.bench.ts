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
 * Then the latency of one batch at 200 ms API latency on one instance leasing from the stage's shared budget, the
 * cost per million jobs at the deployed memory size; the shared budget beside today's static split against a 1,000/min sliding
 * window (a lone busy instance, 2 to 5 under uneven load, churn), the circuit breaker's time to open and to close
 * through a two-hour outage, one agency's burst beside a few jobs of another (docs/pacing.md); and the cold start
 * (bundle size, import time).
 *
 * The emulators run in one child process and every measurement in a fresh one, so CPU time is the workload's
 * own. Only the report goes to stdout; progress goes to stderr, and what the senders log to
 * .relay-local/bench/sender.log. reports/bench.md is rewritten only with --write, below its hand-written text.
 *
 * This file runs the measurements; bench/model.ts derives every figure from them (prices, cost, capacity units,
 * ratios, projections) and bench/render.ts writes the report.
 */
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
import { measureColdStart } from './cold-start.ts';
import {
  API_LATENCY_MS,
  type BudgetDrill,
  benchModel,
  type ReportInput,
  type Run,
  type RunKind,
  WARMUP_JOBS,
} from './model.ts';
import {
  type BatchLatencyFigures,
  type BenchResources,
  type FairnessRun,
  forkChild,
  type HostCommand,
  type HostEndpoints,
  type PacingDrillOptionsData,
  type WorkloadFigures,
  type WorkloadSpec,
} from './protocol.ts';
import { renderReport } from './render.ts';
import { benchReportFile } from './report-file.ts';

const ROOT = resolve(import.meta.dirname, '..');
const LOG_FILE = join(ROOT, '.relay-local', 'bench', 'sender.log');
/** What the stack sets for the sender's Powertools (infra/constructs/relay-function.ts). */
const SENDER_OBSERVABILITY_ENV = {
  POWERTOOLS_LOG_LEVEL: 'INFO',
  POWERTOOLS_TRACE_ENABLED: 'false',
  POWERTOOLS_LOGGER_LOG_EVENT: 'false',
  POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false',
};
/** Churn in the budget drills: a fresh container every this many (scaled) seconds (docs/pacing.md). */
const CHURN_EVERY_SECONDS = 20;
/**
 * The breaker drill: a two-hour outage at TIME_SCALE 240 lasts 30 s, as in test/integration/outage.test.ts; a
 * backlog that outlasts the few jobs delivered before it and the held ones.
 */
const OUTAGE_SECONDS = 2 * 3600;
const BREAKER_TIME_SCALE = 240;
const BREAKER_JOBS = 1500;
/** What the pacing must not limit in the throughput runs: the config's maximum share. */
const UNPACED_REQUESTS_PER_MINUTE = 100_000;

const USAGE = `Usage: npm run bench -- [options]

  --jobs N            jobs per throughput measurement (default 1000, after 100 warm-up jobs)
  --instances N       sender instances of the relay; the fetch loop and the floor run N x batchSize
                      requests at once, the relay's concurrency (default: staging's maxConcurrency, the
                      instances it deploys)
  --repeats N         rounds of (a), (b), (c), one after the other; ratios are the median of the rounds'
                      ratios, speeds the best round's (default 3)
  --time-scale N      budget drills: a minute lasts 60/N s (default 8)
  --skip-pacing       leave out the budget drills (shared budget and static split), the circuit
                      breaker's outage drill and the fairness run (about 5 minutes)
  --write             rewrite reports/bench.md with this run's report (the hand-written text at
                      its top is kept)
  -h, --help          this text
`;

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
    timeScale: whole('time-scale', values['time-scale'], 8, 1, 60),
    pacing: !values['skip-pacing'],
    write: values.write === true,
  };
}

const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

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
    // One instance leasing from the stage's one shared budget, as every sender instance does (docs/pacing.md): a
    // lone busy instance gets the whole budget, so a batch is paced by it, not by a static per-instance share.
    const budgets: { label: string; requestsPerMinute: number }[] = [
      {
        label: `the sender's default (${DEFAULTS.requestsPerMinute}/min)`,
        requestsPerMinute: DEFAULTS.requestsPerMinute,
      },
      ...STAGES.map((stage) => ({
        label: `${stage}: ${stages[stage].requestsPerMinute}/min`,
        requestsPerMinute: stages[stage].requestsPerMinute,
      })),
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
    for (const budget of budgets) {
      progress(`batch of ${staging.batchSize} at ${API_LATENCY_MS} ms, shared budget ${budget.label}`);
      latency.push({
        label: budget.label,
        figures: await batchLatency(budget.requestsPerMinute, `latency-${latency.length}`, false),
      });
    }
    // The same at each stage's budget with webhooks on, for its cost.
    const latencyWebhooks: Run<BatchLatencyFigures>[] = [];
    for (const stage of STAGES) {
      progress(`batch of ${staging.batchSize} at ${API_LATENCY_MS} ms, ${stage} with webhooks on`);
      latencyWebhooks.push({
        label: stage,
        figures: await batchLatency(
          stages[stage].requestsPerMinute,
          `latency-hooks-${latencyWebhooks.length}`,
          true,
        ),
      });
    }
    await command({ cmd: 'latency', ms: 0 });

    const budget: BudgetDrill[] = [];
    let breaker: PacingDrillResult | undefined;
    let fairness: FairnessRun | undefined;
    if (options.pacing) {
      const scale = options.timeScale;
      const drill = (o: PacingDrillOptionsData) =>
        workload<PacingDrillResult>({ kind: 'pacing', options: { windows: 2, ...o, timeScale: scale } });
      // The static split as deployed: production's fleet of which N are busy; churn at staging's shares.
      const scenarios: Omit<BudgetDrill, 'shared' | 'static'>[] = [
        { scenario: 'lone', instances: 1, maxConcurrency: stages.production.maxConcurrency },
        ...[2, 3, 4, 5].map((instances) => ({
          scenario: 'uneven' as const,
          instances,
          maxConcurrency: stages.production.maxConcurrency,
        })),
        {
          scenario: 'churn',
          instances: stages.staging.maxConcurrency,
          maxConcurrency: stages.staging.maxConcurrency,
        },
      ];
      for (const s of scenarios) {
        const o: PacingDrillOptionsData = {
          instances: s.instances,
          timeScale: scale,
          uneven: s.scenario === 'uneven',
          ...(s.scenario === 'churn' ? { churnEveryMs: CHURN_EVERY_SECONDS * (1000 / scale) } : {}),
        };
        const share = perInstanceRequestsPerMinute({
          requestsPerMinute: staging.requestsPerMinute,
          maxConcurrency: s.maxConcurrency,
        });
        progress(
          `budget drill, ${s.scenario}, ${s.instances} instance(s): shared budget (a minute of ${60 / scale} s)`,
        );
        const shared = await drill(o);
        progress(`budget drill, ${s.scenario}, ${s.instances} instance(s): static split, ${share}/min each`);
        budget.push({ ...s, shared, static: await drill({ ...o, staticSharePerMinute: share }) });
      }
      progress(`circuit breaker: a ${OUTAGE_SECONDS / 3600}-hour outage at TIME_SCALE ${BREAKER_TIME_SCALE}`);
      breaker = await workload<PacingDrillResult>({
        kind: 'pacing',
        options: {
          instances: staging.maxConcurrency,
          timeScale: BREAKER_TIME_SCALE,
          jobs: BREAKER_JOBS,
          outage: {
            kind: 'unavailable',
            durationSeconds: OUTAGE_SECONDS,
            afterMs: 500,
            // The longest probe step, then a job's wait after it: the first delivery comes within.
            maxWaitAfterMs: (2 * 600_000) / BREAKER_TIME_SCALE,
          },
        },
      });
      progress('fairness: 450 jobs of county-a, then 5 of county-b');
      fairness = await workload<FairnessRun>({
        kind: 'fairness',
        burstAgency: 'county-a',
        burst: 450,
        fewAgency: 'county-b',
        few: 5,
      });
    }

    progress('cold start: bundling and importing');
    const coldStart = await measureColdStart();

    const input: ReportInput = {
      options,
      machine,
      date: new Date().toISOString().slice(0, 10),
      stages,
      runs,
      latency,
      latencyWebhooks,
      budget,
      breaker,
      fairness,
      coldStart,
      concurrency,
    };
    const report = renderReport(input, benchModel(input));
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

await main();
