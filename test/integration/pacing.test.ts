import { beforeAll, describe, expect, it } from 'vitest';
import { ECOURTDATE_LIMIT_PER_MINUTE, type PacingDrillResult, runPacingDrill } from '#local/pacing-drill.ts';

/**
 * N sender instances sharing the default 900/min budget through the ledger table's api-client item
 * (docs/pacing.md), against the simulator enforcing eCourtDate's 1,000 requests per API client in any minute with
 * a sliding window. A minute lasts 7.5 s here (TIME_SCALE 8): 900 jobs in 7.5 s is 120 a second, a third of what
 * one core runs through the whole pipeline (emulators included), so the figures stay the budget's and not the
 * machine's. The file runs alone (the `timing` files of vitest.config.ts). Each run takes about 16 s: two windows,
 * then the invocations still waiting for a slot finish. Uneven load: every instance but the first holds each batch
 * a while, so the first takes most jobs. Churn: a fresh container replaces one every 20 (scaled) seconds. The
 * assertions are counts of what the simulator and the DynamoDB emulator saw, never times.
 */
const TIME_SCALE = 8;
const WINDOWS = 2;
const CHURN_EVERY_MS = 20_000 / TIME_SCALE;

const RUNS: { label: string; instances: number; uneven: boolean; churn: boolean }[] = [
  { label: '1 instance (a lone busy instance)', instances: 1, uneven: false, churn: false },
  { label: '2 instances, uneven load', instances: 2, uneven: true, churn: false },
  { label: '3 instances, churn', instances: 3, uneven: false, churn: true },
  { label: '4 instances, uneven load', instances: 4, uneven: true, churn: false },
  { label: '5 instances, uneven load and churn', instances: 5, uneven: true, churn: true },
];

describe.each(RUNS)('the shared budget with $label against a 1,000/min sliding window', (run) => {
  let result: PacingDrillResult;

  beforeAll(async () => {
    result = await runPacingDrill({
      instances: run.instances,
      timeScale: TIME_SCALE,
      windows: WINDOWS,
      uneven: run.uneven,
      ...(run.churn ? { churnEveryMs: CHURN_EVERY_MS } : {}),
    });
  }, 60_000);

  it('gets no 429', () => {
    expect(result.rateLimited, JSON.stringify(result)).toBe(0);
  });

  it('never lets eCourtDate see more than its limit in any window', () => {
    expect(result.busiestWindow, JSON.stringify(result)).toBeLessThanOrEqual(ECOURTDATE_LIMIT_PER_MINUTE);
  });

  // Under churn each replaced container takes its unspent lease with it (at most one, about 30 slots): a fresh
  // container every 20 s costs a few percent of the budget (docs/pacing.md).
  const share = run.churn ? 0.9 : 0.95;
  it(`uses at least ${share * 100} % of the budget while jobs are waiting`, () => {
    expect(result.sustainedShare, JSON.stringify(result)).toBeGreaterThanOrEqual(share);
  });

  it('costs at most one DynamoDB request to the api-client item per 20 eCourtDate requests', () => {
    expect(result.budgetRequests * 20, JSON.stringify(result)).toBeLessThanOrEqual(result.ecourtdateRequests);
  });

  if (run.churn) {
    it('replaced containers while it ran', () => {
      expect(result.replacedContainers).toBeGreaterThanOrEqual(2);
    });
  }
});
