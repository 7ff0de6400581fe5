import { describe, expect, it } from 'vitest';
import {
  benchModel,
  bestRun,
  breakerFigures,
  budgetGoals,
  costOf,
  drillFigures,
  fairnessFigures,
  handlerJobsPerSecond,
  itemRequestsPer20Sends,
  jobCost,
  lambdaDurationUsd,
  ledgerRequestsPerJob,
  logBytesPerJob,
  median,
  nextProbeWaitSeconds,
  observabilityCost,
  PRICE_USD,
  perJob,
  projectedBatchMs,
  receiverCost,
  throttledCpuMs,
  unitsPerJob,
  webhookComparison,
} from '../../bench/model.ts';
import { money, ratio, renderReport } from '../../bench/render.ts';
import {
  benchReportInput,
  breakerDrill,
  drillResult,
  fairnessRun,
  loopFigures,
  relayFigures,
  webhookFigures,
} from '../helpers/bench-report-input.ts';

/** A batch of 10 measured at 250 ms, one call 200 ms. */
const BATCH_250 = { batchMs: 250, oneCallMs: 200, singleJobMs: 205, delivered: 10 };

describe('Lambda duration cost', () => {
  it('is GB-seconds at the arm64 price: 1,000 ms at 1,024 MB is one GB-second', () => {
    expect(lambdaDurationUsd(1000, 1024)).toBeCloseTo(PRICE_USD.lambdaArmGbSecond, 15);
  });

  it('scales with ms and MB: 25 ms at 256 MB is 0.025 s × 0.25 GB', () => {
    expect(lambdaDurationUsd(25, 256)).toBeCloseTo(0.025 * 0.25 * 0.0000133334, 15);
  });

  it('is nothing for no time', () => {
    expect(lambdaDurationUsd(0, 256)).toBe(0);
  });
});

describe('the relay’s cost per million jobs', () => {
  // 1,000 jobs: 100 invocations, 200 SQS requests, 2,000 PutItems of one write unit each, no reads, no secrets.
  const cost = jobCost(relayFigures(2), BATCH_250, 256, 10);

  it('prices Lambda duration from the batch spread over its jobs: 25 ms a job at 256 MB', () => {
    expect(costOf(cost, 'Lambda duration')).toBeCloseTo(0.025 * 0.25 * 0.0000133334 * 1e6, 9);
  });

  it('prices Lambda requests per invocation: 0.1 invocations a job is $0.02 a million', () => {
    expect(cost.basis.invocations).toBe(0.1);
    expect(costOf(cost, 'Lambda requests')).toBeCloseTo(0.02, 9);
  });

  it("counts the relay's SQS requests per job: 200 for 1,000 jobs is 0.2, $0.08 a million", () => {
    expect(cost.basis.sqsRequests).toBe(0.2);
    expect(costOf(cost, 'SQS, the relay')).toBeCloseTo(0.08, 9);
  });

  it('adds the upstream SendMessageBatch, one request per 10 jobs: $0.04 a million', () => {
    expect(costOf(cost, 'SQS, upstream send')).toBeCloseTo(0.04, 9);
  });

  it('prices DynamoDB by the write units it reported: 2 a job is $1.25 a million', () => {
    expect(cost.basis.units).toEqual({ writes: 2, reads: 0, measured: true });
    expect(costOf(cost, 'DynamoDB writes')).toBeCloseTo(1.25, 9);
    expect(costOf(cost, 'DynamoDB reads')).toBe(0);
  });

  it('prices no Secrets Manager call when the secret was cached', () => {
    expect(costOf(cost, 'Secrets Manager')).toBe(0);
  });

  it('sums its lines: $1.4733 a million, printed $1.47', () => {
    expect(cost.awsPerMillion).toBeCloseTo(0.08333375 + 0.02 + 0.08 + 0.04 + 1.25, 9);
    expect(money(cost.awsPerMillion)).toBe('$1.47');
  });

  it('prices Secrets Manager calls at $0.05 per 10,000: 3 calls over 1,000 jobs is $0.015 a million', () => {
    const withCalls = jobCost(
      { ...relayFigures(2), secrets: { GetSecretValueCommand: 3 } },
      BATCH_250,
      256,
      10,
    );

    expect(costOf(withCalls, 'Secrets Manager')).toBeCloseTo(0.015, 12);
  });
});

describe('DynamoDB requests per job to the job ledger', () => {
  it("leave out the api-client item's leases and breaker reads, which the budget's drills count", () => {
    const figures = {
      ...relayFigures(2),
      dynamodb: { PutItemCommand: 2000, UpdateItemCommand: 25, GetItemCommand: 5 },
      capacity: {
        'PutItem job#': { requests: 2000, capacityUnits: 2000, conditionFailed: 0 },
        'UpdateItem api-client': { requests: 25, capacityUnits: 25, conditionFailed: 0 },
        'GetItem api-client': { requests: 5, capacityUnits: 2.5, conditionFailed: 0 },
      },
    };

    expect(ledgerRequestsPerJob(figures)).toBe(2);
  });
});

describe('DynamoDB request units per job', () => {
  it('are the units DynamoDB reported when the run has them', () => {
    expect(unitsPerJob(webhookFigures(2))).toEqual({ writes: 3, reads: 0, measured: true });
  });

  it('without reported units, are bounded by the largest item: a 1,500-byte item is 2 write units and 1 read unit', () => {
    const figures = {
      ...relayFigures(2),
      capacity: undefined,
      largestItemBytes: 1500,
      dynamodb: { PutItemCommand: 2000, GetItemCommand: 500 },
    };

    expect(unitsPerJob(figures)).toEqual({ writes: 4, reads: 0.5, measured: false });
  });

  it('without reported units or a measured item, are one unit a request', () => {
    const figures = { ...relayFigures(2), capacity: undefined, largestItemBytes: undefined };

    expect(unitsPerJob(figures)).toEqual({ writes: 2, reads: 0, measured: false });
  });
});

describe('observability cost per million jobs', () => {
  const obs = observabilityCost(relayFigures(2), 600);

  it('prices CloudWatch Logs by GB ingested: 600 bytes a job is 6e8 bytes, $0.28 a million', () => {
    expect(obs.logs.perMillion).toBeCloseTo((600e6 / 1024 ** 3) * 0.5, 12);
    expect(money(obs.logs.perMillion)).toBe('$0.28');
  });

  it('prices X-Ray traces of the sampled invocations: 0.1 a job, 68.3 % sampled, $0.34 a million', () => {
    expect(obs.xray.perMillion).toBeCloseTo(0.1 * (2 / 3 + 0.05 / 3) * 5, 12);
  });

  it('spreads the logged bytes over the warm-up jobs too: 660,000 bytes over 1,000 + 100 jobs is 600 a job', () => {
    expect(logBytesPerJob({ label: 'relay', figures: relayFigures(2), logBytes: 660_000 })).toBe(600);
  });

  it('counts no log bytes for a run that did not measure them', () => {
    expect(logBytesPerJob({ label: 'relay', figures: relayFigures(2) })).toBe(0);
  });
});

describe('speeds and rounds', () => {
  it('takes the best round as the one with the most jobs a second', () => {
    const slow = { label: 'slow', figures: relayFigures(2.5) };
    const fast = { label: 'fast', figures: relayFigures(2) };

    expect(bestRun([slow, fast]).label).toBe('fast');
  });

  it('counts handler-only speed over the instances’ mean handler time: 3,000 ms over 2 instances is 667 jobs/s', () => {
    expect(handlerJobsPerSecond(relayFigures(2), 2)).toBeCloseTo(1000 / 1.5, 9);
  });

  it('takes the median of an odd count as the middle value and of an even count as the mean of the middle two', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([0.64, 0.8])).toBeCloseTo(0.72, 12);
  });

  it('has no median for no rounds', () => {
    expect(median([])).toBeNaN();
  });

  it('has no per-job figure for a run of zero jobs, rather than a false zero', () => {
    expect(perJob(0, { ...loopFigures(1, 0, 0), jobs: 0 })).toBeNaN();
  });
});

describe("Lambda's CPU share projection", () => {
  it('stretches a batch’s CPU time to the vCPU share of its memory: 16 ms at 256 MB of 1,769 is 110.56 ms', () => {
    expect(throttledCpuMs(1.6, 10, 256)).toBeCloseTo((16 * 1769) / 256, 9);
  });

  it('does not speed CPU time up above one vCPU', () => {
    expect(throttledCpuMs(1.6, 10, 3008)).toBeCloseTo(16, 12);
  });

  it('adds only the extra CPU time to the measured batch: 250 + 110.56 − 16 ms', () => {
    expect(projectedBatchMs(1.6, BATCH_250, 10, 256)).toBeCloseTo(250 + (16 * 1769) / 256 - 16, 9);
  });

  it('is never less than the measured batch', () => {
    expect(projectedBatchMs(1.6, BATCH_250, 10, 3008)).toBe(250);
  });

  it('has no projection without a measured batch', () => {
    expect(projectedBatchMs(1.6, undefined, 10, 256)).toBeNaN();
  });
});

describe("the webhook receiver's estimate", () => {
  it('sums the HTTP API request, the invocation, 100 ms at 256 MB, 3 write units, 2 read units and 2 events: $5.66', () => {
    const receiver = receiverCost(412);

    expect(receiver.perMillion).toBeCloseTo(1 + 0.2 + 0.1 * 0.25 * 0.0000133334 * 1e6 + 1.875 + 0.25 + 2, 9);
    expect(money(receiver.perMillion)).toBe('$5.66');
  });

  it('keeps a 412-byte entry under 1 KB for 3 updates of 150 bytes after 125 bytes of delivery attributes', () => {
    expect(receiverCost(412).updatesUnderOneKb).toBe(3);
  });

  it('starts from 412 bytes when the run measured no entry', () => {
    expect(receiverCost(undefined).jobBytes).toBe(412);
  });

  it('counts no update under 1 KB for an entry already near it, rather than a negative count', () => {
    expect(receiverCost(1000).updatesUnderOneKb).toBe(0);
  });
});

describe('webhooks off and on', () => {
  const input = benchReportInput();
  const model = benchModel(input);

  it('counts the index item’s PutItem as one extra write unit per delivered job, within the goal', () => {
    expect(model.webhooks.extraUnits).toBe(1);
    expect(model.webhooks.extraPuts).toBe(1);
    expect(model.webhooks.within).toBe(true);
  });

  it("leaves the api-client item's leases out: more leases with webhooks on add no index write unit", () => {
    const lease = (n: number) => ({
      'UpdateItem api-client': { requests: n, capacityUnits: n, conditionFailed: 0 },
    });
    const off = relayFigures(2);
    const on = webhookFigures(2);
    const withLeases = benchReportInput({
      runs: {
        ...input.runs,
        relayWebhooks: [
          { label: 'relay, webhooks on', figures: { ...on, capacity: { ...on.capacity, ...lease(33) } } },
        ],
      },
    });
    const offRun = { label: 'relay', figures: { ...off, capacity: { ...off.capacity, ...lease(30) } } };

    const comparison = webhookComparison(withLeases, offRun, model.costs);

    expect(comparison.extraUnits).toBe(1);
    expect(comparison.within).toBe(true);
  });

  it('is not within the goal when webhooks off wrote an index item', () => {
    const off = relayFigures(2);
    const offRun = {
      label: 'relay',
      figures: {
        ...off,
        capacity: { ...off.capacity, 'PutItem uuid#': { requests: 1, capacityUnits: 1, conditionFailed: 0 } },
      },
    };

    const comparison = webhookComparison(input, offRun, model.costs);

    expect(comparison.offIndexWrites).toBe(1);
    expect(comparison.within).toBe(false);
  });

  it('prices webhooks on from the batch measured with webhooks on: the third write unit adds $0.625 a million', () => {
    const production = model.webhooks.costs.find((c) => c.stage === 'production');
    const onLambda = (0.026 * 0.25 - 0.025 * 0.25) * 0.0000133334 * 1e6;

    expect((production?.aws.on ?? 0) - (production?.aws.off ?? 0)).toBeCloseTo(0.625 + onLambda, 9);
  });
});

describe('the whole model of a fixed run', () => {
  const model = benchModel(benchReportInput());

  it("takes each ratio as the median of the rounds' own: relay ÷ floor 0.8 and 0.64 is 0.72", () => {
    expect(model.ratios.relayToFloor).toBeCloseTo(0.72, 12);
    expect(model.ratios.relayToFetch).toBeCloseTo(0.2, 12);
  });

  it('takes CPU time per job as the least of the rounds', () => {
    expect(model.cpuMsPerJob).toEqual({ relay: 1.6, fetch: 0.45, floor: 1.5, relayTraced: 2 });
  });

  it("prices each stage from its own batch-latency run: production's 250 ms batch", () => {
    const production = model.costs.find((c) => c.stage === 'production')?.cost;

    expect(production?.basis.batchMs).toBe(250);
  });

  it("projects production's batch at its CPU share: 345 ms, 1.72× one call", () => {
    expect(model.productionProjection.batchMs).toBeCloseTo(250 + (16 * 1769) / 256 - 16, 9);
    expect(ratio(model.productionProjection.toOneCall)).toBe('1.72×');
  });
});

describe('the rendered report of a fixed run', () => {
  const input = benchReportInput();
  const lines = renderReport(input, benchModel(input)).split('\n');

  it('prints the day of the run and the machine, and no commit', () => {
    expect(lines).toContain(
      'Run on 2026-12-01. Machine: 2 × Test CPU, load average 1.0 / 1.0 / 1.0 at start, Node v24.0.0. 1000 jobs per measurement after 100 warm-up jobs, 20 at',
    );
    expect(lines.join('\n')).not.toMatch(/\bcode\b/);
  });

  it("gives the cost goal's row from both stages' costs and observability", () => {
    expect(lines).toContain(
      '| AWS cost per million jobs, deployed memory (256 MB), production (staging) | ≤ $1.60 | $1.47 ($1.47), + $0.62 logs and X-Ray | met |',
    );
  });

  it("gives the relay's throughput row", () => {
    expect(lines).toContain('| (a) relay | 500 | 1.00× | 1.60 | 1.000 | 2.00 (2.00) | 0.20 |');
  });

  it('gives each cost line with what it is priced from', () => {
    expect(lines).toContain(
      '| Lambda duration | $0.08 | 256 MB arm64, 250 ms per batch of 10 at 200 ms API latency (measured) |',
    );
    expect(lines).toContain('| **all-in** | **$2.09** |  |');
  });

  it('prints the list prices it assumes', () => {
    expect(lines).toContain(
      'AWS list prices in us-east-1, free tiers left out: Lambda arm64 $0.0000133334 per GB-s and $0.20 per million',
    );
    expect(lines).toContain(
      'requests; SQS standard $0.40 per million requests; DynamoDB on-demand $0.625 per million write units and',
    );
  });

  it("gives the lone busy instance's share beside the static split's, and marks the goal met", () => {
    expect(lines).toContain(
      "| a lone busy instance's share of the whole budget (shared budget; static split) | ≥ 95 % | 96.8 % (20.0 %) | met |",
    );
  });

  it('marks a goal it missed NOT MET', () => {
    const missed = benchReportInput({ fairness: fairnessRun(200) });
    const text = renderReport(missed, benchModel(missed));
    expect(text).toContain('| ≤ 112.5 | 200 | **NOT MET** |');
  });

  it('gives each budget drill in both modes side by side', () => {
    expect(lines).toContain(
      '| 2 of 2 instances, a fresh container every 20 s, static 450/min each | 96.0 % | 900 | 0 | 0.80 | 130.0 % | 1000 | 120 | 0.00 |',
    );
  });

  it("gives the breaker's times", () => {
    expect(lines).toContain('| time to open (first failed request → breaker open) | 40 ms |');
  });

  it("prints production's projection", () => {
    expect(lines).toContain(
      '345 ms on Lambda, 1.72× one call, if a Graviton core is as fast as this one (a projection, not a measurement).',
    );
  });
});

describe('the shared budget’s drills', () => {
  it('counts requests to the api-client item per 20 eCourtDate requests: 70 over 2,000 is 0.7', () => {
    expect(itemRequestsPer20Sends(drillResult({ apiClientItemRequests: 70 }))).toBeCloseTo(0.7, 9);
  });

  it('has no DynamoDB cost per 20 sends for a drill that sent nothing, rather than a false zero', () => {
    expect(itemRequestsPer20Sends(drillResult({ ecourtdateRequests: 0 }))).toBeNaN();
  });

  it('counts a busiest minute of exactly the limit as within it, and one more as over it', () => {
    expect(drillFigures(drillResult({ busiestWindow: 1000 })).withinLimit).toBe(true);
    expect(drillFigures(drillResult({ busiestWindow: 1001 })).withinLimit).toBe(false);
  });

  it("takes the lone busy instance's share from the lone drill, the static split's beside it", () => {
    const goals = budgetGoals(benchReportInput().budget);
    expect(goals.loneShare).toEqual({ shared: 0.968, static: 0.2, met: true });
  });

  it('misses the share goal below 95 %', () => {
    const [lone, churn] = benchReportInput().budget;
    if (lone === undefined || churn === undefined) throw new Error('fixture');
    const goals = budgetGoals([{ ...lone, shared: drillResult({ sustainedShare: 0.94 }) }, churn]);
    expect(goals.loneShare.met).toBe(false);
  });

  it('sums 429s over every drill, per mode, and meets the goal only with none on the shared budget', () => {
    const goals = budgetGoals(benchReportInput().budget);
    expect(goals.rateLimited).toEqual({ shared: 0, static: 120, met: true });
  });

  it('misses the 429 goal when any shared drill got one', () => {
    const [lone, churn] = benchReportInput().budget;
    if (lone === undefined || churn === undefined) throw new Error('fixture');
    const goals = budgetGoals([lone, { ...churn, shared: drillResult({ rateLimited: 1 }) }]);
    expect(goals.rateLimited.met).toBe(false);
  });

  it('takes the worst DynamoDB cost of the shared drills: 0.7 and 0.8 per 20 sends is 0.8, within 1', () => {
    const goals = budgetGoals(benchReportInput().budget);
    expect(goals.itemRequestsPer20Sends.worst).toBeCloseTo(0.8, 9);
    expect(goals.itemRequestsPer20Sends.met).toBe(true);
  });

  it('meets nothing without a drill', () => {
    const goals = budgetGoals([]);
    expect([goals.loneShare.met, goals.rateLimited.met, goals.itemRequestsPer20Sends.met]).toEqual([
      false,
      false,
      false,
    ]);
  });
});

describe("the circuit breaker's times", () => {
  it('waits for the next probe of the schedule: 100 s after the opening, probes at 60 and 180 s, is 80 s', () => {
    expect(nextProbeWaitSeconds(100)).toBe(80);
  });

  it('waits nothing when the outage ends on a probe', () => {
    expect(nextProbeWaitSeconds(420)).toBe(0);
  });

  it('repeats the last step once the steps run out: 7,000 s is 500 s before the probe at 7,500', () => {
    expect(nextProbeWaitSeconds(7000)).toBe(500);
  });

  it('times the opening in real ms, from the first failed request: 10,042 − 10,002 is 40 ms', () => {
    expect(breakerFigures(breakerDrill())?.openMs).toBe(40);
  });

  it("times the closing in eCourtDate's seconds: 1,250 ms after the end at TIME_SCALE 240 is 300 s", () => {
    expect(breakerFigures(breakerDrill())?.closeSeconds).toBeCloseTo(300, 9);
  });

  it('gives the outage’s length and the time scale from the drill: 30 s at TIME_SCALE 240 is two hours', () => {
    const figures = breakerFigures(breakerDrill());
    expect([figures?.timeScale, figures?.outageSeconds]).toEqual([240, 7200]);
  });

  it('compares with the probe schedule from the opening to the end of the outage', () => {
    // 29,958 ms at TIME_SCALE 240 is 7,189.92 s; the probe after it is at 7,500 s.
    expect(breakerFigures(breakerDrill())?.scheduleSeconds).toBeCloseTo(310.08, 6);
  });

  it('has no time to open nor a schedule when the breaker never opened', () => {
    const figures = breakerFigures(breakerDrill({ openedAt: undefined }));
    expect([figures?.openMs, figures?.scheduleSeconds]).toEqual([Number.NaN, Number.NaN]);
  });

  it('has no time to close when no job was delivered after the outage', () => {
    expect(breakerFigures(breakerDrill({ firstDeliveredAfterAt: undefined }))?.closeSeconds).toBeNaN();
  });

  it('has no figures for a drill without an outage', () => {
    expect(breakerFigures(drillResult())).toBeUndefined();
  });
});

describe('fairness', () => {
  it('gives the position of the last of the few, 1-based, within the first quarter of the burst', () => {
    expect(fairnessFigures(fairnessRun(50))).toEqual({ lastFewPosition: 50, quarter: 112.5, met: true });
  });

  it('misses the goal past the first quarter of the burst', () => {
    expect(fairnessFigures(fairnessRun(113)).met).toBe(false);
  });

  it('has no position, and misses the goal, when not all of the few were served', () => {
    const run = fairnessRun(50);
    const figures = fairnessFigures({ ...run, served: run.served.slice(0, 45) });
    expect(figures.lastFewPosition).toBeNaN();
    expect(figures.met).toBe(false);
  });
});

describe('money', () => {
  it('rounds to the cent, half a cent up', () => {
    expect(money(1.47333375)).toBe('$1.47');
    expect(money(0.125)).toBe('$0.13');
    expect(money(0)).toBe('$0.00');
  });
});
