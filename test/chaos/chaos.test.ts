import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createThen, type FaultAction, type Simulator, startSimulator } from '#local/ecourtdate-simulator.ts';
import type { RunReport } from '#local/pipeline/report.ts';
import { runPipeline } from '#local/pipeline/run.ts';
import type { FetchLike } from '#shared/ecourtdate/http.ts';

/**
 * The chaos suite: hundreds of jobs through the local pipeline (the real sender, four instances, the SQS
 * emulator, the job ledger) against an eCourtDate simulator that answers every row of the response table at
 * random, plus latency, dropped connections, "created then 504", redelivered SQS messages, upstream resends
 * and instances killed after a send. Seeded: `CHAOS_SEED` and `CHAOS_JOBS` reproduce a run.
 */
const SEED = Number(process.env.CHAOS_SEED ?? 20261125);
const JOBS = Number(process.env.CHAOS_JOBS ?? 500);
const TIME_SCALE = 600;
const HTTP_TIMEOUT_MS = 500;
// Room for three 500 ms requests, the sender's 5 s settling margin and pacing; a killed invocation costs this.
const FUNCTION_TIMEOUT_MS = 8_000;
const ONEOFFS = '/v1/messages/oneoffs';
const CLIENT = { id: 'chaos-client', secret: 'chaos-secret-0123456789abcdef0123' };
const ROOT = resolve(import.meta.dirname, '../..');

type Fault =
  | 'ok'
  | 'latency'
  | 'r400'
  | 'r401'
  | 'r403'
  | 'r404'
  | 'r405'
  | 'r429'
  | 'r500'
  | 'r503'
  | 'c504'
  | 'hang'
  | 'drop'
  | 'cdrop'
  | 'kill';

// Weights of what one request meets; a job's plan is 0-4 of these, then plain success.
const WEIGHTS: readonly [Fault, number][] = [
  ['ok', 40],
  ['latency', 8],
  ['r400', 2],
  ['r401', 5],
  ['r403', 2],
  ['r404', 1],
  ['r405', 1],
  ['r429', 4],
  ['r500', 6],
  ['r503', 9],
  ['c504', 5],
  ['hang', 3],
  ['drop', 3],
  ['cdrop', 3],
  ['kill', 1],
];

/** Faults after which the message may exist without the relay knowing: a resend must be caught by a 409. */
const UNKNOWN: ReadonlySet<Fault> = new Set(['c504', 'hang', 'drop', 'cdrop', 'kill']);
const RETRYABLE: ReadonlySet<Fault> = new Set([...UNKNOWN, 'r401', 'r500', 'r503']);

interface PlannedJob {
  readonly id: string;
  readonly line: string;
  readonly valid: boolean;
  readonly plan: readonly Fault[];
  readonly skipDuplicate: boolean;
  readonly expiresAt?: number;
  readonly unknownAgency: boolean;
  readonly resent: boolean;
  readonly redelivered: boolean;
}

/** mulberry32: a tiny seeded generator, so the plan is the same on every machine. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function planJobs(count: number, seed: number, now: number): PlannedJob[] {
  const rand = random(seed);
  const total = WEIGHTS.reduce((sum, [, w]) => sum + w, 0);
  const pick = (): Fault => {
    let r = rand() * total;
    for (const [fault, weight] of WEIGHTS) {
      r -= weight;
      if (r < 0) return fault;
    }
    return 'ok';
  };
  return Array.from({ length: count }, (_, i) => {
    const id = `chaos-${String(i).padStart(4, '0')}`;
    const plan = Array.from({ length: Math.floor(rand() * 5) }, pick);
    const skipDuplicate = rand() < 0.08;
    const expiry = rand();
    // 4 % expired before they arrive, 4 % expiring a few seconds into the run (mid-retry).
    const expiresAt = expiry < 0.04 ? now - 60_000 : expiry < 0.08 ? now + 2_000 + rand() * 6_000 : undefined;
    const unknownAgency = rand() < 0.02;
    const valid = rand() >= 0.03;
    const message = {
      to: `+1555${String(1_000_000 + i).slice(1)}`,
      content: `Chaos reminder for job ${id}: court on Dec 3 at 9:00 AM.`,
      channel: 'text',
      ...(skipDuplicate ? { skip_duplicate: true } : {}),
    };
    const job = {
      id,
      message: valid ? message : { to: message.to },
      ...(expiresAt === undefined ? {} : { expires_at: new Date(expiresAt).toISOString() }),
      ...(unknownAgency ? { agency_reference: 'county-unknown' } : {}),
    };
    return {
      id,
      line: JSON.stringify(job),
      valid,
      plan,
      skipDuplicate,
      expiresAt,
      unknownAgency,
      resent: rand() < 0.05,
      redelivered: rand() < 0.05,
    };
  });
}

const ACTIONS: Record<Exclude<Fault, 'ok'>, FaultAction> = {
  latency: { kind: 'pass' },
  r400: { kind: 'respond', status: 400, body: { message: 'The content field is invalid.' } },
  r401: { kind: 'respond', status: 401, body: { message: 'Unauthenticated.' } },
  r403: { kind: 'respond', status: 403, body: { message: 'Agency is inactive.' } },
  r404: { kind: 'respond', status: 404, body: { message: 'Not Found' } },
  r405: { kind: 'respond', status: 405, body: { message: 'Method Not Allowed' } },
  r429: { kind: 'respond', status: 429, body: { message: 'Too Many Attempts.' } },
  r500: { kind: 'respond', status: 500, body: { message: 'Server Error' } },
  r503: { kind: 'respond', status: 503, body: { message: 'Service Unavailable' } },
  c504: createThen({ kind: 'respond', status: 504, body: { message: 'Gateway Timeout' } }),
  hang: { kind: 'hang' },
  drop: { kind: 'drop' },
  cdrop: createThen({ kind: 'drop' }),
  // Really created and answered 201, but the instance dies before it reads the answer (see `killing`).
  kill: createThen({
    kind: 'respond',
    status: 201,
    body: { uuid: 'lost-with-the-instance' },
    headers: { 'x-chaos-kill': '1' },
  }),
};

function jobIdOf(body: unknown): string | undefined {
  const content = (body as { content?: unknown } | undefined)?.content;
  return typeof content === 'string' ? /job (chaos-\d+)/.exec(content)?.[1] : undefined;
}

/** Scripts the simulator: the n-th request for a job meets the n-th fault of its plan, then success. */
function scriptChaos(sim: Simulator, jobs: ReadonlyMap<string, PlannedJob>): void {
  const seen = new Map<string, number>();
  let scanned = 0;
  const faultOf = (body: unknown): Fault => {
    // The simulator records a request before matching it: count this job's requests so far, this one included.
    for (; scanned < sim.requests.length; scanned++) {
      const request = sim.requests[scanned];
      if (request?.path !== ONEOFFS) continue;
      const id = jobIdOf(request.body);
      if (id) seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    const id = jobIdOf(body);
    const n = id ? (seen.get(id) ?? 0) : 0;
    return (id && jobs.get(id)?.plan[n - 1]) || 'ok';
  };
  for (const [fault, action] of Object.entries(ACTIONS) as [Exclude<Fault, 'ok'>, FaultAction][]) {
    sim.script({
      name: fault,
      match: (req) => req.path === ONEOFFS && faultOf(req.body) === fault,
      delayMs: fault === 'latency' ? 60 : undefined,
      action,
    });
  }
}

describe('chaos: nothing lost, nothing sent twice', () => {
  const now = Date.now();
  const planned = planJobs(JOBS, SEED, now);
  const byId = new Map(planned.map((j) => [j.id, j]));
  const lines = planned.flatMap((j) => (j.resent ? [j.line, j.line] : [j.line]));
  let sim: Simulator;
  let report: RunReport;
  let kills = 0;
  let redeliveries = 0;
  let seconds = 0;

  beforeAll(async () => {
    sim = await startSimulator({
      clients: { [CLIENT.id]: CLIENT.secret },
      knownAgencies: ['county-a'],
      timeScale: TIME_SCALE,
    });
    scriptChaos(sim, byId);
    const dir = await mkdtemp(join(tmpdir(), 'relay-chaos-'));
    const jobsFile = join(dir, 'jobs.jsonl');
    const reportFile = join(dir, 'report.json');
    await writeFile(jobsFile, `${lines.join('\n')}\n`);

    const killing =
      (fetchImpl: FetchLike): FetchLike =>
      async (input, init) => {
        const response = await fetchImpl(input, init);
        if (response.headers.get('x-chaos-kill') !== '1') return response;
        kills += 1;
        // The instance is gone: nothing after this send happens (no ledger write, no acknowledgement).
        return new Promise<Response>(() => undefined);
      };
    let monkey: NodeJS.Timeout | undefined;
    const started = Date.now();
    const run = await runPipeline(
      {
        jobsFile,
        ecourtdateUrl: new URL(sim.url),
        timeScale: TIME_SCALE,
        reportFile,
        concurrency: 4,
        timeoutSeconds: 600,
        keepRunning: false,
        stateDir: join(dir, 'state'),
        help: false,
      },
      {
        stdout: { write: () => true, isTTY: false },
        env: { ECOURTDATE_CLIENT_ID: CLIENT.id, ECOURTDATE_CLIENT_SECRET: CLIENT.secret },
        cwd: ROOT,
      },
      {
        wrapFetch: killing,
        senderEnv: { HTTP_TIMEOUT_MS: String(HTTP_TIMEOUT_MS) },
        functionTimeoutMs: FUNCTION_TIMEOUT_MS,
        onStarted(queue) {
          // SQS delivers at least once: some messages are handed out again while an instance still works on them.
          const done = new Set<string>();
          monkey = setInterval(async () => {
            const state = await queue.inspect().catch(() => undefined);
            for (const entry of state?.inflight ?? []) {
              const id = jobIdOf(safeJson(entry.message.body)?.message);
              if (!id || !byId.get(id)?.redelivered || done.has(entry.message.messageId)) continue;
              done.add(entry.message.messageId);
              redeliveries += 1;
              await queue.sqs
                .send(
                  new ChangeMessageVisibilityCommand({
                    QueueUrl: queue.url,
                    ReceiptHandle: entry.receiptHandle,
                    VisibilityTimeout: 0,
                  }),
                )
                .catch(() => undefined);
            }
          }, 25);
        },
      },
    );
    clearInterval(monkey);
    seconds = (Date.now() - started) / 1000;
    report = run.report;
    expect(run.settled).toBe(true);
    await writeFigures();
  }, 600_000);

  afterAll(async () => {
    await sim?.close();
  });

  async function writeFigures(): Promise<void> {
    const faults: Record<string, number> = {};
    for (const request of sim.requests) {
      if (request.path === ONEOFFS && request.faultApplied)
        faults[request.faultApplied] = (faults[request.faultApplied] ?? 0) + 1;
    }
    const figures = {
      seed: SEED,
      jobs: planned.length,
      messages_enqueued: lines.length,
      seconds: Math.round(seconds),
      summary: report.summary,
      api_calls: report.api_calls,
      faults_injected: {
        ...faults,
        instances_killed: kills,
        sqs_redeliveries: redeliveries,
        upstream_resends: lines.length - planned.length,
      },
      lost: report.summary.unsettled,
      sent_twice: [...messagesPerJob().values()].filter((n) => n > 1).length,
    };
    await mkdir(join(ROOT, 'reports'), { recursive: true });
    await writeFile(join(ROOT, 'reports', 'chaos.local.json'), `${JSON.stringify(figures, null, 2)}\n`);
  }

  function messagesPerJob(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const message of sim.messages) {
      const id = jobIdOf(message.body);
      if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return counts;
  }

  it('every message settles exactly once: none unsettled, outcomes add up', () => {
    const { summary } = report;
    expect(summary.jobs).toBe(lines.length);
    expect(summary.unsettled).toBe(0);
    expect(summary.delivered + summary.duplicate + summary.dead_lettered).toBe(summary.jobs);
    expect(report.jobs.every((j) => j.outcome !== 'unsettled')).toBe(true);
  });

  it('the simulator never holds two messages for one job', () => {
    const twice = [...messagesPerJob()].filter(([, n]) => n > 1);
    expect(twice).toEqual([]);
  });

  it('every delivered job has exactly one message in eCourtDate', () => {
    const counts = messagesPerJob();
    const delivered = new Set(report.jobs.filter((j) => j.outcome === 'delivered').map((j) => j.id));
    expect([...delivered].filter((id) => counts.get(id) !== 1)).toEqual([]);
  });

  it('a 409 only ever follows an unknown outcome, so no job is reported a duplicate of someone else', () => {
    expect(report.summary.duplicate).toBe(0);
  });

  it('every dead-letter reason is the one the response table gives for what the job met', () => {
    const wrong: string[] = [];
    for (const entry of report.jobs) {
      if (entry.outcome !== 'dead_lettered') continue;
      const job = byId.get(entry.id);
      const plan = job?.plan ?? [];
      const met = (f: Fault) => plan.includes(f);
      const ok = ((): boolean => {
        switch (entry.reason) {
          case 'invalid_job':
            return job?.valid === false || job === undefined;
          case 'expired':
            // Its expires_at, or the 24 h maximum age, which the time scale shortens to 144 s.
            return job?.expiresAt !== undefined || seconds > 86_400 / TIME_SCALE;
          case 'bad_request':
            return met('r400') && entry.last_status === 400;
          case 'forbidden':
            return met('r403') && entry.last_status === 403;
          case 'not_found':
            return (met('r404') || job?.unknownAgency === true) && entry.last_status === 404;
          case 'client_error':
            return met('r405') && entry.last_status === 405;
          case 'retries_exhausted':
            return plan.filter((f) => RETRYABLE.has(f)).length >= 2;
          case 'unknown_outcome':
            return plan.some((f) => UNKNOWN.has(f));
          default:
            return false;
        }
      })();
      if (!ok)
        wrong.push(
          `${entry.id}: ${entry.reason} (last ${entry.last_status}) after ${plan.join(',') || 'nothing'}`,
        );
    }
    expect(wrong).toEqual([]);
  });

  it('a job that met no fault is delivered', () => {
    const clean = planned.filter(
      (j) =>
        j.valid &&
        !j.unknownAgency &&
        j.expiresAt === undefined &&
        j.plan.every((f) => f === 'ok' || f === 'latency'),
    );
    expect(clean.length).toBeGreaterThan(JOBS / 10);
    const notDelivered = clean.filter((j) =>
      report.jobs.some((r) => r.id === j.id && r.outcome !== 'delivered'),
    );
    expect(notDelivered.map((j) => j.id)).toEqual([]);
  });

  it('nothing is sent after a job expires', () => {
    // The sender checks the deadline right before each request; arrival may lag that check by the transit.
    const TRANSIT_MS = 250;
    const late = sim.requests.filter((r) => {
      const expiresAt = byId.get(jobIdOf(r.body) ?? '')?.expiresAt;
      return r.path === ONEOFFS && expiresAt !== undefined && r.at >= expiresAt + TRANSIT_MS;
    });
    expect(late.map((r) => jobIdOf(r.body))).toEqual([]);
  });

  it('the run really was chaotic: every kind of fault, kills and redeliveries happened', () => {
    const applied = new Set(sim.requests.map((r) => r.faultApplied).filter(Boolean));
    for (const fault of Object.keys(ACTIONS)) expect(applied).toContain(fault);
    expect(kills).toBeGreaterThan(0);
    expect(redeliveries).toBeGreaterThan(0);
    expect(lines.length).toBeGreaterThan(planned.length);
  });
});

function safeJson(text: string): { message?: unknown } | undefined {
  try {
    return JSON.parse(text) as { message?: unknown };
  } catch {
    return undefined;
  }
}
