import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { rateLimited } from '#local/ecourtdate-simulator/index.ts';
import { Facts } from '#test/chaos/checks.ts';
import { figuresOf } from '#test/chaos/figures.ts';
import { type ChaosOptions, runTimeoutSeconds, waves } from '#test/chaos/options.ts';
import { plainJobs, planJobs, planOutages, planTimeouts } from '#test/chaos/plan.ts';
import { writeFigures } from '#test/chaos/summary.ts';
import { type ChaosEvidence, mergeEvidence, type PlannedApiOutage, runChaos } from '#test/chaos/world.ts';

/** The senders' HTTP timeout in both scenarios, real ms. */
export const HTTP_TIMEOUT_MS = 500;
/**
 * The function timeout, real ms: room for the 401 path's sends and the sender's settling margin. A killed
 * instance holds its batch this long; it must end before the queue's (scaled) visibility timeout does.
 */
export const FUNCTION_TIMEOUT_MS = 8_000;

/**
 * The mixed-faults run: `options.jobs` seeded jobs through `options.instances` sender instances at
 * `options.timeScale`, every instance's first secret read failing; in waves of `options.wave` jobs, each a
 * pipeline run of its own, `options.parallel` at a time (the plan is the seed's, whatever the waves). Each wave
 * meets outages of DynamoDB, SQS and EventBridge, eCourtDate's webhooks, a redrive of its dead-letter queue once
 * it has settled, replays of old webhook deliveries after the dedupe window, and the timeout faults: windows of
 * slow DynamoDB and a stalled cold-start secret read, each outliving the function timeout. Writes
 * reports/chaos.local.json.
 */
export async function runMixed(options: ChaosOptions): Promise<Facts> {
  const started = Date.now();
  const runs: ChaosEvidence[] = [];
  const count = waves(options);
  for (let first = 0; first < count; first += options.parallel) {
    const round = Array.from({ length: Math.min(options.parallel, count - first) }, (_, i) => first + i);
    runs.push(...(await Promise.all(round.map((wave) => runWave(options, wave)))));
  }
  const facts = new Facts(mergeEvidence(runs));
  await writeFigures(
    join(options.reportDir, 'chaos.local.json'),
    figuresOf(facts, 'mixed faults', options.seed, options.wave, (Date.now() - started) / 1000),
  );
  return facts;
}

/** One wave of the mixed-faults run: a pipeline of its own over the wave's slice of the seed's plan. */
async function runWave(options: ChaosOptions, wave: number): Promise<ChaosEvidence> {
  const stateDir = await mkdtemp(join(tmpdir(), 'relay-chaos-'));
  // Planned anew for each wave so that expires_at is relative to the wave's start; the faults are the seed's.
  const jobs = planJobs(options.jobs, options.seed, Date.now()).slice(
    wave * options.wave,
    (wave + 1) * options.wave,
  );
  return runChaos({
    jobs,
    timeScale: options.timeScale,
    concurrency: options.instances,
    httpTimeoutMs: HTTP_TIMEOUT_MS,
    functionTimeoutMs: FUNCTION_TIMEOUT_MS,
    runTimeoutSeconds: runTimeoutSeconds(options),
    stateDir,
    // Every instance's first read of the secret fails (all three tries of the SDK).
    coldStartSecretFailures: options.instances * 3,
    // The senders publish eCourtDate Job Settled, so an EventBridge outage has something to refuse.
    stage: { publishJobSettled: 'true' },
    outages: planOutages(options.seed, wave, options.timeScale),
    timeouts: planTimeouts(options.seed, wave, options.timeScale, options.instances),
    webhooks: true,
    redrive: true,
  });
}

/**
 * The 429 storm: every POST answers 429 without headers for `options.stormHours` (time-scaled), over
 * `STORM_JOBS` jobs on one instance paced as deployed. Each deferral spends an SQS receive, and the send
 * queue's redrive would move a job to the dead-letter queue without the relay's reason once it has spent
 * `maxReceiveCount` of them; the relay must keep each job its whole life through the storm and deliver it
 * afterwards. Writes reports/chaos-storm.local.json.
 *
 * At time scale 600 an hour takes 6 s, but SQS hides a record for whole seconds, so a deferral costs at least
 * 10 scaled minutes where the deployed relay spends about one: `maxReceiveCount` is lowered to
 * `STORM_MAX_RECEIVE_COUNT` (from the stage's) so that the storm still outlasts the receive limit.
 *
 * It runs on a worker thread of its own (test/chaos/storm-worker.ts): how often a job is received in the storm
 * depends on its instance's clock, which the mixed-faults run's waves, busy on the main thread, would slow.
 */
export async function runStorm(options: ChaosOptions): Promise<{ facts: Facts; stormEnds: number }> {
  const worker = new Worker(new URL('./storm-worker.ts', import.meta.url), {
    workerData: options,
    execArgv: ['--disable-warning=ExperimentalWarning'],
  });
  const posted = await new Promise<PostedStorm>((resolveStorm, reject) => {
    worker.once('message', resolveStorm);
    worker.once('error', reject);
    worker.once('exit', (code) =>
      reject(new Error(`the storm's worker exited (${code}) without its evidence`)),
    );
  });
  await worker.terminate();
  const { evidence: cloned, stormEnds, baseUrl } = posted;
  const policy = { ...cloned.world.policy, baseUrl: new URL(baseUrl) };
  const evidence = { ...cloned, world: { ...cloned.world, policy } };
  const facts = new Facts(evidence);
  await writeFigures(join(options.reportDir, 'chaos-storm.local.json'), figuresOf(facts, '429 storm', 0));
  return { facts, stormEnds };
}

/**
 * What the storm's worker posts back (structured-cloned): the run's evidence and when the storm ended. The
 * sender's base URL is a `URL`, which does not clone: it travels as text, `policy.baseUrl` as its `href`.
 */
export interface PostedStorm {
  readonly evidence: Omit<ChaosEvidence, 'world'> & {
    readonly world: Omit<ChaosEvidence['world'], 'policy'> & {
      readonly policy: Omit<ChaosEvidence['world']['policy'], 'baseUrl'>;
    };
  };
  readonly stormEnds: number;
  readonly baseUrl: string;
}

/** Runs the storm's pipeline (on the storm's worker thread); see `runStorm`. */
export async function stormEvidence(options: ChaosOptions): Promise<PostedStorm> {
  const stateDir = await mkdtemp(join(tmpdir(), 'relay-storm-'));
  const stormMs = stormDurationMs(options);
  const stormEnds = Date.now() + stormMs;
  const evidence = await runChaos({
    jobs: plainJobs(STORM_JOBS),
    timeScale: STORM_TIME_SCALE,
    concurrency: 1,
    httpTimeoutMs: HTTP_TIMEOUT_MS,
    functionTimeoutMs: FUNCTION_TIMEOUT_MS,
    runTimeoutSeconds: Math.ceil(stormMs / 1000) + 60,
    stateDir,
    stage: { maxReceiveCount: STORM_MAX_RECEIVE_COUNT },
    storm: { until: stormEnds, action: rateLimited() },
  });
  // The storm's scripted answer is not plain data, and the checks do not read it.
  const { storm: _storm, ...settings } = evidence.settings;
  const { baseUrl, ...policy } = evidence.world.policy;
  return {
    evidence: { ...evidence, settings, world: { ...evidence.world, policy } },
    stormEnds,
    baseUrl: baseUrl.href,
  };
}

export const STORM_TIME_SCALE = 600;
export const STORM_JOBS = 20;
export const STORM_MAX_RECEIVE_COUNT = 10;

/** Real ms the storm lasts. */
export function stormDurationMs(options: Pick<ChaosOptions, 'stormHours'>): number {
  return (options.stormHours * 3_600_000) / STORM_TIME_SCALE;
}

/**
 * The outages of eCourtDate (docs/chaos.md, "Outages of hours, auth outages, churn"), one run each over jobs of
 * their own, each starting at the first request to the messages endpoint (a token is then in hand): two hours of 503s, an hour without
 * answers, and half an hour with the API client revoked (time-scaled).
 */
export const API_OUTAGES: readonly PlannedApiOutage[] = [
  { kind: 'unavailable', durationSeconds: 2 * 3600 },
  { kind: 'hang', durationSeconds: 3600 },
  { kind: 'auth', durationSeconds: 1800 },
];
export const OUTAGES_TIME_SCALE = 300;
/** More jobs than the instances' batches in flight when the outage begins: those held show the breaker at work. */
export const OUTAGES_JOBS_PER_RUN = 60;
export const OUTAGES_INSTANCES = 2;
/** Container churn in the outage runs: a container older than this (real ms; 5 minutes scaled) is replaced. */
export const CHURN_EVERY_MS = 1_000;

/**
 * The outages of eCourtDate: one pipeline run per outage of `API_OUTAGES`, `OUTAGES_JOBS_PER_RUN` plain jobs on
 * `OUTAGES_INSTANCES` instances whose containers are replaced every `CHURN_EVERY_MS`, at
 * `OUTAGES_TIME_SCALE`. Writes reports/chaos-outages.local.json.
 */
export async function runOutages(options: ChaosOptions): Promise<Facts> {
  const started = Date.now();
  const jobs = plainJobs(OUTAGES_JOBS_PER_RUN * API_OUTAGES.length);
  const runs: ChaosEvidence[] = [];
  for (const [index, outage] of API_OUTAGES.entries()) {
    const stateDir = await mkdtemp(join(tmpdir(), 'relay-outage-'));
    const outageMs = (outage.durationSeconds * 1000) / OUTAGES_TIME_SCALE;
    runs.push(
      await runChaos({
        jobs: jobs.slice(index * OUTAGES_JOBS_PER_RUN, (index + 1) * OUTAGES_JOBS_PER_RUN),
        timeScale: OUTAGES_TIME_SCALE,
        concurrency: OUTAGES_INSTANCES,
        httpTimeoutMs: HTTP_TIMEOUT_MS,
        functionTimeoutMs: FUNCTION_TIMEOUT_MS,
        runTimeoutSeconds: Math.ceil(outageMs / 1000) + 60,
        stateDir,
        apiOutages: [outage],
        churnEveryMs: CHURN_EVERY_MS,
      }),
    );
  }
  const evidence: ChaosEvidence = {
    ...mergeEvidence(runs),
    apiOutages: runs.flatMap((run) => run.apiOutages ?? []),
    churned: runs.reduce((n, run) => n + (run.churned ?? 0), 0),
  };
  const facts = new Facts(evidence);
  await writeFigures(
    join(options.reportDir, 'chaos-outages.local.json'),
    figuresOf(facts, 'eCourtDate outages', 0, Number.POSITIVE_INFINITY, (Date.now() - started) / 1000),
  );
  return facts;
}
