import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CreatedMessage, OutageRecord, RecordedRequest } from '#local/ecourtdate-simulator/index.ts';
import { main } from '#local/pipeline/main.ts';
import { type OutageRun, outageFigures, renderOutages } from '#local/pipeline/outage-report.ts';
import type { RunReport } from '#local/pipeline/report.ts';
import { type JobState, JobTracker } from '#local/pipeline/tracker.ts';
import { jobLine, tempDir, testIO } from '#test/local/io.ts';

/** What `npm start` reports of an outage (docs/operating.md, "Outages"), figure by figure. */

const T0 = 1_000_000;
const ONEOFFS = '/v1/messages/oneoffs';
const NONE = { token: 0, messages: 0, settings: 0, other: 0 };

function to(n: number): string {
  return `+1555123${String(n).padStart(4, '0')}`;
}

/** The run's jobs, `job-1` ... `job-n`, put on the queue at T0, and their lines. */
function jobsOfRun(n: number): { lines: { line: number; body: string; id: string }[]; jobs: JobState[] } {
  const tracker = new JobTracker(() => T0);
  const lines = Array.from({ length: n }, (_, i) => ({
    line: i + 1,
    body: jobLine(`job-${i + 1}`, to(i + 1)),
    id: `job-${i + 1}`,
  }));
  return { lines, jobs: lines.map((line) => tracker.add(line, `m-${line.line}`, T0)) };
}

function settle(
  job: JobState | undefined,
  outcome: JobState['outcome'],
  at: number,
  reason: string | null = null,
) {
  if (job === undefined) throw new Error('no such job');
  job.outcome = outcome;
  job.reason = reason;
  job.settledAt = at;
}

/** The request the sender makes for job n, as the simulator records it. */
function messageRequest(n: number, at: number): RecordedRequest {
  return {
    seq: n,
    at,
    method: 'POST',
    path: ONEOFFS,
    query: {},
    body: { to: to(n), content: `Reminder for job-${n}: court on Dec 3 at 9:00 AM.` },
    status: 503,
  };
}

function created(n: number): CreatedMessage {
  const request = messageRequest(n, T0);
  return {
    uuid: `u-${n}`,
    clientId: 'c',
    body: request.body as Record<string, unknown>,
    createdAt: T0,
    requestSeq: n,
  };
}

function run(overrides: Partial<OutageRun> & Pick<OutageRun, 'records' | 'jobs' | 'lines'>): OutageRun {
  return {
    outages: [{ kind: 'unavailable', durationSeconds: 7200, retryAfter: false }],
    messages: [],
    requests: [],
    startedAt: T0,
    timeScale: 100,
    batchSize: 10,
    instances: 1,
    maxAgeSeconds: 86_400,
    ...overrides,
  };
}

function record(overrides: Partial<OutageRecord> = {}): OutageRecord {
  return {
    name: '--outage',
    kind: 'unavailable',
    startedAt: T0 + 1000,
    // 7,200 s at 100x: 72 s.
    endsAt: T0 + 73_000,
    inside: NONE,
    outside: NONE,
    messageRequests: [],
    ...overrides,
  };
}

describe('outageFigures', () => {
  it('counts the requests the API saw during the outage by kind, probes being GET /v1/settings', () => {
    const { lines, jobs } = jobsOfRun(1);
    const [figures] = outageFigures(
      run({ lines, jobs, records: [record({ inside: { token: 2, messages: 3, settings: 4, other: 1 } })] }),
    );

    expect(figures?.requests_during).toEqual({ probes: 4, token: 2, messages: 3, other: 1 });
  });

  it('says when the outage began in eCourtDate’s seconds after the run started, and its duration', () => {
    const { lines, jobs } = jobsOfRun(1);
    const [figures] = outageFigures(run({ lines, jobs, records: [record()] }));

    expect([figures?.started_at_seconds, figures?.duration_seconds]).toEqual([100, 7200]);
  });

  it('a job met the outage when a message request of it arrived during it; the others waiting were held', () => {
    const { lines, jobs } = jobsOfRun(3);
    const [figures] = outageFigures(
      run({ lines, jobs, records: [record({ messageRequests: [messageRequest(1, T0 + 2000)] })] }),
    );

    expect([figures?.jobs_met, figures?.jobs_held]).toEqual([1, 2]);
  });

  it('a job settled before the outage began was neither held nor met', () => {
    const { lines, jobs } = jobsOfRun(2);
    settle(jobs[0], 'delivered', T0 + 500);
    const [figures] = outageFigures(run({ lines, jobs, records: [record()] }));

    expect([figures?.jobs_met, figures?.jobs_held]).toEqual([0, 1]);
  });

  it('counts the messages the simulator created for each delivered job: once, or more than once', () => {
    const { lines, jobs } = jobsOfRun(3);
    for (const job of jobs) settle(job, 'delivered', T0 + 80_000);
    const [figures] = outageFigures(
      run({ lines, jobs, records: [record()], messages: [created(1), created(2), created(2), created(3)] }),
    );

    expect(figures).toMatchObject({
      jobs_delivered: 3,
      jobs_created_once: 2,
      jobs_created_more_than_once: 1,
    });
  });

  it('counts dead letters by reason, and those of jobs whose deadline came after the outage ended', () => {
    const { lines, jobs } = jobsOfRun(3);
    settle(jobs[0], 'dead_lettered', T0 + 5000, 'retries_exhausted');
    settle(jobs[1], 'dead_lettered', T0 + 5000, 'retries_exhausted');
    settle(jobs[2], 'delivered', T0 + 80_000);
    const [figures] = outageFigures(run({ lines, jobs, records: [record()], messages: [created(3)] }));

    expect(figures?.dead_letters).toEqual({ retries_exhausted: 2 });
    expect(figures?.dead_letters_before_deadline).toBe(2);
  });

  it('a job whose request met a hang and was dead-lettered unknown_outcome keeps the unknown-outcome rules: not counted', () => {
    const { lines, jobs } = jobsOfRun(1);
    settle(jobs[0], 'dead_lettered', T0 + 5000, 'unknown_outcome');
    const [figures] = outageFigures(
      run({
        lines,
        jobs,
        outages: [{ kind: 'hang', durationSeconds: 7200, retryAfter: false }],
        records: [record({ kind: 'hang', messageRequests: [messageRequest(1, T0 + 2000)] })],
      }),
    );

    expect(figures?.dead_letters_before_deadline).toBe(0);
  });

  it('a job whose request met a 503 and was dead-lettered unknown_outcome is not counted: a 5xx may have created the message', () => {
    const { lines, jobs } = jobsOfRun(1);
    settle(jobs[0], 'dead_lettered', T0 + 5000, 'unknown_outcome');
    const [figures] = outageFigures(
      run({ lines, jobs, records: [record({ messageRequests: [messageRequest(1, T0 + 2000)] })] }),
    );

    expect(figures?.dead_letters_before_deadline).toBe(0);
  });

  it('a job whose request met an auth outage and was dead-lettered is counted: a 401 created nothing', () => {
    const { lines, jobs } = jobsOfRun(1);
    settle(jobs[0], 'dead_lettered', T0 + 5000, 'unknown_outcome');
    const auth = run({ lines, jobs, records: [record({ messageRequests: [messageRequest(1, T0 + 2000)] })] });
    const [figures] = outageFigures({
      ...auth,
      outages: auth.outages.map((o) => ({ ...o, kind: 'auth' as const })),
    });

    expect(figures?.dead_letters_before_deadline).toBe(1);
  });

  it('a job whose own request after the outage had a 5xx keeps the unknown-outcome rules: no goal counts it', () => {
    const { lines, jobs } = jobsOfRun(1);
    settle(jobs[0], 'dead_lettered', T0 + 90_000, 'unknown_outcome');
    const [figures] = outageFigures(
      run({ lines, jobs, requests: [messageRequest(1, T0 + 80_000)], records: [record()] }),
    );

    expect(figures?.jobs_unknown_outside).toBe(1);
    expect(figures?.goals.map((goal) => goal.met)).toEqual([true, true, true, true]);
  });

  it('a job whose deadline came before the outage ended may be dead-lettered expired: the delivery goal leaves it out', () => {
    const { lines, jobs } = jobsOfRun(1);
    settle(jobs[0], 'dead_lettered', T0 + 2_000, 'expired');
    // A maximum age of 10 s at 100x: 100 ms, long before the outage ends.
    const [figures] = outageFigures(run({ lines, jobs, maxAgeSeconds: 10, records: [record()] }));

    expect(figures?.goals.map((goal) => goal.met)).toEqual([true, true, true, true]);
  });

  it('a job in flight when the outage began (its request before it had a 5xx) keeps the unknown-outcome rules: no goal counts it', () => {
    const { lines, jobs } = jobsOfRun(2);
    settle(jobs[0], 'dead_lettered', T0 + 80_000, 'unknown_outcome');
    settle(jobs[1], 'delivered', T0 + 80_000);
    const [figures] = outageFigures(
      run({
        lines,
        jobs,
        messages: [created(2)],
        requests: [messageRequest(1, T0 + 500)],
        records: [record()],
      }),
    );

    expect(figures?.jobs_unknown_outside).toBe(1);
    expect(figures?.dead_letters_before_deadline).toBe(0);
    expect(figures?.goals.map((goal) => goal.met)).toEqual([true, true, true, true]);
    // The delivery goal says of how many jobs it counts the delivered ones.
    expect(figures?.goals[2]).toMatchObject({ figure: 1, of: 1 });
  });

  it('a job whose request before the outage was answered (a 4xx) is not in flight: the goals still count it', () => {
    const { lines, jobs } = jobsOfRun(1);
    settle(jobs[0], 'dead_lettered', T0 + 80_000, 'retries_exhausted');
    const answered = { ...messageRequest(1, T0 + 500), status: 429 };
    const [figures] = outageFigures(run({ lines, jobs, requests: [answered], records: [record()] }));

    expect(figures?.jobs_unknown_outside).toBe(0);
    expect(figures?.dead_letters_before_deadline).toBe(1);
    expect(figures?.goals.map((goal) => goal.met)).toEqual([true, true, false, false]);
  });

  it('a job whose deadline passed during the outage may be dead-lettered: not counted', () => {
    const { lines, jobs } = jobsOfRun(1);
    settle(jobs[0], 'dead_lettered', T0 + 40_000, 'expired');
    // 24 h at 2,000x is 43.2 s: before the outage's end at 73 s.
    const [figures] = outageFigures(run({ lines, jobs, records: [record()], timeScale: 2000 }));

    expect(figures?.dead_letters_before_deadline).toBe(0);
  });

  it('a job eCourtDate refused for itself after the outage (a 400, 403, 404 or 405) is no dead letter of the outage, and no job the outage kept from delivery', () => {
    const { lines, jobs } = jobsOfRun(5);
    settle(jobs[0], 'delivered', T0 + 80_000);
    settle(jobs[1], 'dead_lettered', T0 + 80_000, 'bad_request');
    settle(jobs[2], 'dead_lettered', T0 + 80_000, 'forbidden');
    settle(jobs[3], 'dead_lettered', T0 + 80_000, 'not_found');
    settle(jobs[4], 'dead_lettered', T0 + 80_000, 'client_error');
    const [figures] = outageFigures(run({ lines, jobs, records: [record()], messages: [created(1)] }));

    expect(figures?.dead_letters_before_deadline).toBe(0);
    expect(figures?.goals.map((goal) => goal.met)).toEqual([true, true, true, true]);
  });

  it('meets every goal when the API saw probes only, no job met it, and every job was delivered once', () => {
    const { lines, jobs } = jobsOfRun(3);
    for (const job of jobs) settle(job, 'delivered', T0 + 80_000);
    const [figures] = outageFigures(
      run({
        lines,
        jobs,
        records: [record({ inside: { ...NONE, settings: 20, token: 5 } })],
        messages: [created(1), created(2), created(3)],
      }),
    );

    expect(figures?.goals.map((goal) => [goal.figure, goal.met])).toEqual([
      [25, true],
      [0, true],
      [3, true],
      [0, true],
    ]);
  });

  it('misses the goals when every job spent its attempts on the outage', () => {
    const { lines, jobs } = jobsOfRun(12);
    for (const job of jobs) settle(job, 'dead_lettered', T0 + 5000, 'retries_exhausted');
    const requests = jobs.flatMap((_, i) => [1, 2, 3, 4, 5].map(() => messageRequest(i + 1, T0 + 2000)));
    const [figures] = outageFigures(
      run({
        lines,
        jobs,
        records: [record({ inside: { ...NONE, messages: 60 }, messageRequests: requests })],
      }),
    );

    expect(figures?.goals.map((goal) => [goal.figure, goal.met])).toEqual([
      [60, false],
      [12, false],
      [0, true],
      [12, false],
    ]);
  });

  it('an outage that never began has no start and nothing met or held', () => {
    const { lines, jobs } = jobsOfRun(2);
    const [figures] = outageFigures(
      run({ lines, jobs, records: [record({ startedAt: undefined, endsAt: undefined })] }),
    );

    expect(figures).toMatchObject({ started_at_seconds: null, jobs_met: 0, jobs_held: 0 });
  });
});

describe('renderOutages', () => {
  it('names each figure as the report does and says which goals were not met, and why', () => {
    const { lines, jobs } = jobsOfRun(12);
    for (const job of jobs) settle(job, 'dead_lettered', T0 + 5000, 'retries_exhausted');
    const requests = jobs.map((_, i) => messageRequest(i + 1, T0 + 2000));
    const text = renderOutages(
      outageFigures(
        run({
          lines,
          jobs,
          records: [record({ inside: { ...NONE, messages: 60 }, messageRequests: requests })],
        }),
      ),
    ).join('\n');

    expect(text).toContain('Outage (503, 2 h; began 1 min 40 s into the run)');
    expect(text).toMatch(
      /requests during the outage +60: probes \(GET \/v1\/settings\) 0, token 0, messages 60/,
    );
    expect(text).toMatch(/jobs that met the outage +12/);
    expect(text).toMatch(/dead letters +retries_exhausted 12/);
    expect(text).toContain('NOT MET: at most 40 API requests during the outage (60)');
    expect(text).toContain('Some goals were not met');
  });
});

describe('npm start --outage, in process', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;

  beforeEach(async () => {
    dir = await tempDir();
  });

  afterEach(async () => {
    await dir.remove();
  });

  it('plays the outage in the simulator and reports it, in the summary and under "outages" in the report', async () => {
    const jobs = await dir.file('jobs.jsonl', [1, 2, 3].map((n) => jobLine(`job-${n}`, to(n))).join('\n'));
    const report = `${dir.path}/report.json`;
    const { io, stdout } = testIO();

    await main(
      ['--jobs', jobs, '--outage', '1m', '--concurrency', '1', '--report', report, '--state-dir', dir.path],
      io,
    );

    const result = JSON.parse(await readFile(report, 'utf8')) as RunReport;
    const [outage] = result.outages ?? [];
    expect(outage?.kind).toBe('unavailable');
    // It began at the first message request, which met it.
    expect(outage?.started_at_seconds).not.toBeNull();
    expect(outage?.requests_during.messages).toBeGreaterThanOrEqual(1);
    expect(outage?.jobs_met).toBeGreaterThanOrEqual(1);
    expect(Object.keys(outage ?? {})).toEqual([
      'kind',
      'duration_seconds',
      'started_at_seconds',
      'requests_during',
      'requests_outside',
      'jobs_met',
      'jobs_unknown_outside',
      'jobs_held',
      'jobs_delivered',
      'jobs_created_once',
      'jobs_created_more_than_once',
      'dead_letters',
      'dead_letters_before_deadline',
      'goals',
    ]);
    expect(stdout.text).toContain('Outage (503, 1 min;');
  });

  it('without an outage option the report has no "outages"', async () => {
    const jobs = await dir.file('jobs.jsonl', jobLine('job-1', to(1)));
    const report = `${dir.path}/report.json`;
    const { io } = testIO();

    await main(['--jobs', jobs, '--report', report, '--state-dir', dir.path], io);

    const result = JSON.parse(await readFile(report, 'utf8')) as RunReport;
    expect(result).not.toHaveProperty('outages');
  });
});
