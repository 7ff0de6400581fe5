import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TIMEOUT_SECONDS, parseStartOptions } from '#local/pipeline/options.ts';
import type { OutageFigures } from '#local/pipeline/outage-report.ts';
import { type PipelineRun, runPipeline } from '#local/pipeline/run.ts';
import { jobLine, REPO_ROOT, tempDir } from '#test/local/io.ts';

/**
 * The outage drill (docs/operating.md, "Outages"): 40 jobs on one instance against a two-hour outage of 503s
 * (time-scaled), which begins at the first request to the messages endpoint. The relay must hold the jobs instead
 * of spending their attempts on the outage: every job not in flight when it began is delivered, each created once;
 * at most one batch's jobs meet it; the API sees at most 40 requests during it; no job is dead-lettered.
 *
 * TIME_SCALE 240: the two hours last 30 s, beyond the faithful limit `npm start` keeps (local/pipeline/time-scale.ts):
 * the run is built from the options directly, as the pacing drill is. A 503 is no unknown outcome, so the
 * duplicate window, which that limit protects, plays no part. The assertions are counts, never times.
 */
const TIME_SCALE = 240;
const JOBS = 40;

let dir: Awaited<ReturnType<typeof tempDir>>;
let run: PipelineRun;
let outage: OutageFigures;

beforeAll(async () => {
  dir = await tempDir();
  const jobs = await dir.file(
    'jobs.jsonl',
    Array.from({ length: JOBS }, (_, i) =>
      jobLine(`drill-${i + 1}`, `+1555123${String(i + 1).padStart(4, '0')}`),
    ).join('\n'),
  );
  const options = parseStartOptions([
    '--jobs',
    jobs,
    '--outage',
    '2h',
    '--concurrency',
    '1',
    '--time-scale',
    String(TIME_SCALE),
    '--timeout',
    String(DEFAULT_TIMEOUT_SECONDS),
    '--state-dir',
    dir.path,
  ]);
  run = await runPipeline(options, { stdout: { write: () => true, isTTY: false }, env: {}, cwd: REPO_ROOT });
  const [figures] = run.report.outages ?? [];
  if (figures === undefined) throw new Error('the run reported no outage');
  outage = figures;
}, 120_000);

afterAll(async () => {
  await run?.stop();
  await dir?.remove();
});

describe('a two-hour outage of 503s (time-scaled) over 40 jobs on one instance', () => {
  it('began, with the first request to the messages endpoint', () => {
    expect(outage.started_at_seconds).not.toBeNull();
  });

  it('settles every job', () => {
    expect(run.report.summary.unsettled).toBe(0);
  });

  it('delivers every job that was not in flight when the outage began, each created once', () => {
    const goal = outage.goals.find((g) => g.goal.startsWith('every job that did not meet it'));
    expect(goal?.met, JSON.stringify(outage)).toBe(true);
    expect(outage.jobs_created_more_than_once).toBe(0);
  });

  it('lets at most one batch of jobs meet the outage', () => {
    expect(outage.jobs_met, JSON.stringify(outage)).toBeLessThanOrEqual(10);
  });

  it('sends the API at most 40 requests during the outage: probes, not a flood', () => {
    const { probes, token, messages, other } = outage.requests_during;
    expect(probes + token + messages + other, JSON.stringify(outage)).toBeLessThanOrEqual(40);
  });

  it('dead-letters no job that did not meet the outage; those that met it keep the unknown-outcome rules', () => {
    expect(outage.dead_letters_before_deadline, JSON.stringify(outage)).toBe(0);
    expect(Object.keys(outage.dead_letters).filter((reason) => reason !== 'unknown_outcome')).toEqual([]);
    expect(run.report.summary.dead_lettered).toBeLessThanOrEqual(outage.jobs_met);
  });
});
