/**
 * A fixed `npm run bench` run for the bench model's and report's tests (test/unit/bench-model.test.ts): two
 * rounds, round figures chosen so that every derived figure can be worked out by hand.
 */
import { loadStageConfig, type Stage, type StageConfig } from '#infra/config.ts';
import type { BreakerTimes, PacingDrillResult } from '#local/pacing-drill.ts';
import type { ReportInput, Run } from '../../bench/model.ts';
import type { BatchLatencyFigures, FairnessRun, WorkloadFigures } from '../../bench/protocol.ts';

/** Both stages at 256 MB, batches of 10, a 900/min budget over 2 (staging) and 5 (production) instances. */
export const BENCH_STAGES: Record<Stage, StageConfig> = {
  staging: {
    ...loadStageConfig({ stage: 'staging' }),
    memorySizeMb: 256,
    batchSize: 10,
    maxConcurrency: 2,
    requestsPerMinute: 900,
  },
  production: {
    ...loadStageConfig({ stage: 'production' }),
    memorySizeMb: 256,
    batchSize: 10,
    maxConcurrency: 5,
    requestsPerMinute: 900,
  },
};

/**
 * A relay run of 1,000 jobs in `seconds`: 100 invocations (batches of 10), 0.2 SQS requests and 2 PutItems of
 * `job#` items per job, one write unit each, every job delivered; `cpuMs` of CPU, 3,000 ms in the handler.
 */
export function relayFigures(seconds: number, cpuMs = 1600): WorkloadFigures {
  return {
    jobs: 1000,
    seconds,
    cpuMs,
    sqs: { DeleteMessageBatchCommand: 100, ReceiveMessageCommand: 100 },
    dynamodb: { PutItemCommand: 2000 },
    secrets: {},
    ecourtdate: { token: 0, send: 1000 },
    invocations: 100,
    handlerMs: 3000,
    largestItemBytes: 412,
    largestItemBytesByKind: { 'job#': 412 },
    capacity: { 'PutItem job#': { requests: 2000, capacityUnits: 2000, conditionFailed: 0 } },
    pollerCpuMs: 350,
    delivered: 1000,
    uuidIndexed: 0,
  };
}

/** The relay with webhooks on: as `relayFigures`, plus one PutItem of a 98-byte `uuid#` item per job. */
export function webhookFigures(seconds: number): WorkloadFigures {
  const off = relayFigures(seconds, 2000);
  return {
    ...off,
    dynamodb: { PutItemCommand: 3000 },
    largestItemBytesByKind: { 'job#': 412, 'uuid#': 98 },
    capacity: {
      'PutItem job#': { requests: 2000, capacityUnits: 2000, conditionFailed: 0 },
      'PutItem uuid#': { requests: 1000, capacityUnits: 1000, conditionFailed: 0 },
    },
    uuidIndexed: 1000,
  };
}

/** A bare fetch loop or the floor: 1,000 jobs, one eCourtDate request each, `writes` PutItems per job. */
export function loopFigures(seconds: number, cpuMs: number, writes: number): WorkloadFigures {
  return {
    jobs: 1000,
    seconds,
    cpuMs,
    sqs: {},
    dynamodb: writes ? { PutItemCommand: 1000 * writes } : {},
    secrets: {},
    ecourtdate: { token: 0, send: 1000 },
    invocations: 0,
    handlerMs: 0,
  };
}

const batch = (label: string, batchMs: number): Run<BatchLatencyFigures> => ({
  label,
  figures: { batchMs, oneCallMs: 200, singleJobMs: 205, delivered: 10 },
});

/** Each round's runs, as `runs` takes them: 660,000 bytes logged by each relay run (600 a job with the warm-up). */
const run = (label: string, figures: WorkloadFigures, logBytes?: number): Run<WorkloadFigures> => ({
  label,
  figures,
  ...(logBytes === undefined ? {} : { logBytes }),
});

/**
 * The run: round 1 the relay at 500 jobs/s (the best round), the floor at 625, bare fetch at 2,500; round 2 the
 * relay at 400, the floor at 625. Batches of 10 at 200 ms: 230 ms at the default share and staging's, 250 ms at
 * production's (240 and 260 with webhooks on); one call 200 ms.
 */
export function benchReportInput(overrides: Partial<ReportInput> = {}): ReportInput {
  return {
    options: { jobs: 1000, instances: 2, repeats: 2, timeScale: 3 },
    machine: '2 × Test CPU, load average 1.0 / 1.0 / 1.0 at start, Node v24.0.0',
    date: '2026-12-01',
    stages: BENCH_STAGES,
    runs: {
      relay: [run('relay', relayFigures(2), 660_000), run('relay', relayFigures(2.5, 1700), 660_000)],
      fetch: [run('fetch', loopFigures(0.4, 450, 0)), run('fetch', loopFigures(0.5, 460, 0))],
      floor: [run('floor', loopFigures(1.6, 1500, 2)), run('floor', loopFigures(1.6, 1520, 2))],
      relayTraced: [
        run('relay, traceSubsegments', relayFigures(2.5, 2000)),
        run('relay, traceSubsegments', relayFigures(3.125, 2040)),
      ],
      relayWebhooks: [
        run('relay, WEBHOOKS_ENABLED', webhookFigures(2.5), 660_000),
        run('relay, WEBHOOKS_ENABLED', webhookFigures(3.2), 660_000),
      ],
    },
    latency: [
      batch("the sender's default (900/min)", 230),
      batch('staging: 900/min over 2 instances = 450/min', 230),
      batch('production: 900/min over 5 instances = 180/min', 250),
    ],
    latencyWebhooks: [batch('staging', 240), batch('production', 260)],
    budget: [
      {
        scenario: 'lone',
        instances: 1,
        maxConcurrency: 5,
        shared: drillResult({ sustainedShare: 0.968, busiestWindow: 871, apiClientItemRequests: 70 }),
        static: drillResult({
          sustainedShare: 0.2,
          busiestWindow: 180,
          ecourtdateRequests: 400,
          apiClientItemRequests: 10,
          staticSharePerMinute: 180,
        }),
      },
      {
        scenario: 'churn',
        instances: 2,
        maxConcurrency: 2,
        shared: drillResult({
          instances: 2,
          sustainedShare: 0.96,
          apiClientItemRequests: 80,
          replacedContainers: 6,
        }),
        static: drillResult({
          instances: 2,
          sustainedShare: 1.3,
          busiestWindow: 1000,
          rateLimited: 120,
          staticSharePerMinute: 450,
          replacedContainers: 6,
        }),
      },
    ],
    breaker: breakerDrill(),
    fairness: fairnessRun(50),
    coldStart: {
      sender: { bytes: 933 * 1024, importMs: 96, largest: [{ name: 'undici', bytes: 280 * 1024 }] },
      sqsOnly: { bytes: 309 * 1024, importMs: 60, largest: [] },
      runs: 9,
    },
    concurrency: 20,
    ...overrides,
  };
}

/**
 * One pacing drill at TIME_SCALE 8 (a 7.5 s minute), 1 instance on the shared budget of 900/min: 2,000 eCourtDate
 * requests, 0 × 429, no request to the api-client item; `overrides` changes any of it.
 */
export function drillResult(overrides: Partial<PacingDrillResult> = {}): PacingDrillResult {
  return {
    instances: 1,
    budgetPerMinute: 900,
    windowMs: 7500,
    windows: 2,
    requestsInSpan: 1800,
    sustainedShare: 1,
    busiestWindow: 900,
    rateLimited: 0,
    tokenRequests: 1,
    ecourtdateRequests: 2000,
    budgetRequests: 0,
    replacedContainers: 0,
    apiClientItemRequests: 0,
    staticSharePerMinute: undefined,
    ...overrides,
  };
}

/**
 * The outage drill at TIME_SCALE 240 (a 250 ms minute): a 30 s window (two hours of eCourtDate's) from 10,000 to
 * 40,000 ms; the first failure at 10,002, the breaker open at 10,042 (40 ms) after 12 message requests met it; the
 * first job delivered 1,250 ms (300 eCourtDate seconds) after the end.
 */
export function breakerDrill(times: Partial<BreakerTimes> = {}): PacingDrillResult {
  return drillResult({
    instances: 2,
    windowMs: 250,
    breaker: {
      outageStartedAt: 10_000,
      outageEndsAt: 40_000,
      firstFailedAt: 10_002,
      openedAt: 10_042,
      closedAt: 41_200,
      firstDeliveredAfterAt: 41_250,
      messagesBeforeOpen: 12,
      probesDuring: 14,
      messagesDuring: 12,
      requestsDuring: 27,
      ...times,
    },
  });
}

/** 450 jobs of county-a, then 5 of county-b, the last of them served as message request number `last`. */
export function fairnessRun(last: number): FairnessRun {
  const served = Array.from({ length: 455 }, () => 'county-a');
  for (let i = 0; i < 5; i++) served[last - 1 - i * 10] = 'county-b';
  return { burstAgency: 'county-a', burst: 450, fewAgency: 'county-b', few: 5, served };
}
