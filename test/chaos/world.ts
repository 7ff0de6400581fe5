import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ChangeMessageVisibilityCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import {
  type CreatedMessage,
  createThen,
  type FaultAction,
  type FaultRequestView,
  hostile,
  type RecordedRequest,
  rateLimited,
  retryAfter,
  startSimulator,
} from '#local/ecourtdate-simulator/index.ts';
import type { RunReport } from '#local/pipeline/report.ts';
import { type PipelineHooks, runPipeline } from '#local/pipeline/run.ts';
import { cdkStageConfig, localSenderEnvironment } from '#local/pipeline/stage.ts';
import { faithfulTimeScaleLimit } from '#local/pipeline/time-scale.ts';
import { startSecretsManagerStub } from '#local/secrets-manager-stub.ts';
import type { SqsRefusal } from '#local/sqs-emulator.ts';
import { ENV, loadSenderConfig, type SenderConfig } from '#shared/config.ts';
import type { FetchLike } from '#shared/ecourtdate/http.ts';
import { InstanceKiller, type KillEvent } from '#test/chaos/kill.ts';
import { ROOT } from '#test/chaos/options.ts';
import { FAULTS, type Fault, jobIdOf, MAINTENANCE_SECONDS, type PlannedJob } from '#test/chaos/plan.ts';

export const ONEOFFS = '/v1/messages/oneoffs';
export const CHAOS_CLIENT = { id: 'chaos-client', secret: 'chaos-secret-0123456789abcdef0123' };
const CHAOS_SECRET_ID = 'ecourtdate-relay/chaos/api-client';
/** The request header through which a sender instance tells the simulator which fault a request meets. */
const FAULT_HEADER = 'x-chaos-fault';
const KILL_HEADER = 'x-chaos-kill';
/** How long after a backoff answer the duplicate copy of a job is put on the queue (real ms). */
const COPY_AFTER_MS = 100;

/** The settings of one chaos run. */
export interface ChaosSettings {
  readonly jobs: readonly PlannedJob[];
  readonly timeScale: number;
  /** Simulated sender instances. */
  readonly concurrency: number;
  /** The senders' HTTP timeout, real ms. */
  readonly httpTimeoutMs: number;
  /** The function timeout, real ms: a killed instance holds its batch this long. */
  readonly functionTimeoutMs: number;
  /** Give up waiting for the jobs to settle after this many real seconds. */
  readonly runTimeoutSeconds: number;
  /**
   * Stage settings over the project's cdk.json: the run reads a copy of it with these in its context, as a
   * deploy from that cdk.json would.
   */
  readonly stage?: Readonly<Record<string, string | number>>;
  /** Until `until` (epoch ms), every POST of the messages endpoint meets `action` instead of its plan. */
  readonly storm?: { readonly until: number; readonly action: FaultAction };
  /** Where the sender log goes. */
  readonly stateDir: string;
  /** Secrets Manager fails this many GetSecretValue calls at the start (every instance's cold start). */
  readonly coldStartSecretFailures?: number;
}

/** One request a sender instance made (or was about to make) to the messages endpoint. */
export interface PostEvent {
  readonly jobId: string;
  /** 1-based: the job's n-th request. */
  readonly n: number;
  readonly fault: Fault;
  readonly instance: string;
  /** Epoch ms the instance called fetch. */
  readonly at: number;
  /** False when the relay never learnt the answer: the instance died first (or before sending), or none came. */
  answered: boolean;
  /** The answer's HTTP status, when there was one. */
  status?: number;
}

/** Everything a chaos run leaves behind, for the checks. */
export interface ChaosEvidence {
  readonly settings: ChaosSettings;
  /** The lines put on the send queue at the start (upstream resends twice). */
  readonly lines: readonly string[];
  readonly report: RunReport;
  readonly settled: boolean;
  /** Real seconds from the start until every job settled (of the longest run, when runs are merged). */
  readonly seconds: number;
  /** Real seconds of every run together. */
  readonly wallSeconds: number;
  readonly requests: readonly RecordedRequest[];
  readonly messages: readonly CreatedMessage[];
  readonly posts: readonly PostEvent[];
  readonly kills: readonly KillEvent[];
  /** SQS receives per job (every copy of it included) by the senders. */
  readonly receives: ReadonlyMap<string, number>;
  /** Epoch ms of each of those receives. */
  readonly receiveTimes: ReadonlyMap<string, readonly number[]>;
  /** Copies of jobs put on the queue during a backoff. */
  readonly copies: readonly string[];
  /** In-flight messages handed out again by cutting their visibility to 0. */
  readonly redeliveries: number;
  readonly secretOutages: number;
  readonly tokenOutages: number;
  /** Every message on the dead-letter queue, with its attributes. */
  readonly deadLetters: readonly DeadLetter[];
  /** Messages still on the send queue after the run (copies included). */
  readonly leftOnSendQueue: number;
  /** What the strict SQS layer refused; undefined when the pipeline did not say. */
  readonly refusals: readonly SqsRefusal[] | undefined;
  /**
   * Receipt handles of the messages the suite handed out again: SQS refuses a later visibility change or delete
   * with such a handle (a newer receive superseded it), whoever makes it.
   */
  readonly redeliveredHandles: ReadonlySet<string>;
  /** The sender's log, one line per entry. */
  readonly logLines: readonly string[];
  /** The settings the world ran with (scaled, real ms). */
  readonly world: {
    readonly visibilityTimeoutSeconds: number;
    readonly duplicateWindowMs: number;
    readonly maxAgeMs: number;
    /**
     * The largest time scale at which the retry chain after an unknown outcome (two timeouts of the run's HTTP
     * timeout among its attempts, no 429 holding it back) still fits the scaled duplicate window, as
     * local/pipeline/time-scale.ts computes it for `npm start`.
     */
    readonly faithfulTimeScale: number;
    /** The sender's settings as the run loaded them (its duplicate-window rule is read with them). */
    readonly policy: SenderConfig;
  };
}

export interface DeadLetter {
  readonly body: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/**
 * Runs the local pipeline (the real sender handler, the strict SQS layer in front of the SQS emulator, the job
 * ledger in the DynamoDB emulator) against an eCourtDate simulator scripted by each job's plan, and collects
 * the evidence: every request the simulator saw, every message it created, every kill, every dead letter with its
 * attributes, the sender's log and the strict layer's refusals.
 *
 * The faults around the API are injected here: instances killed before or after a send (their batch comes
 * back after the queue's real, scaled, visibility timeout), a Secrets Manager that fails every instance's cold
 * start and throttles the re-read of the 401 path, a token endpoint answering 503, SQS redelivering messages
 * still in flight, and duplicate copies of a job arriving during its backoff.
 */
export async function runChaos(settings: ChaosSettings): Promise<ChaosEvidence> {
  const byId = new Map(settings.jobs.map((job) => [job.id, job]));
  const lines = settings.jobs.flatMap((job) => (job.resent ? [job.line, job.line] : [job.line]));
  const jobsFile = join(settings.stateDir, 'jobs.jsonl');
  await writeFile(jobsFile, `${lines.join('\n')}\n`);
  const cwd = await stageDirectory(settings);

  const secrets = await startSecretsManagerStub({
    secrets: {
      [CHAOS_SECRET_ID]: JSON.stringify({ client_id: CHAOS_CLIENT.id, client_secret: CHAOS_CLIENT.secret }),
    },
  });
  if (settings.coldStartSecretFailures) {
    secrets.failNext(settings.coldStartSecretFailures, 'InternalServiceError');
  }
  const sim = await startSimulator({
    clients: { [CHAOS_CLIENT.id]: CHAOS_CLIENT.secret },
    knownAgencies: ['county-a'],
    timeScale: settings.timeScale,
  });

  const killer = new InstanceKiller({
    functionTimeoutMs: settings.functionTimeoutMs,
    jobIdOfRecord: (body) => recordJobId(body),
  });
  const posts: PostEvent[] = [];
  const copies: string[] = [];
  let redeliveries = 0;
  const redeliveredHandles = new Set<string>();
  let secretOutages = 0;
  let tokenOutages = 0;
  let queue: { sqs: SQSClient; url: string; refusals?: () => readonly SqsRefusal[] } | undefined;
  const timers = new Set<NodeJS.Timeout>();

  const copyDuringBackoff = (request: FaultRequestView) => {
    const id = jobIdOf(request.body);
    const job = id === undefined ? undefined : byId.get(id);
    if (!job?.copied || copies.includes(job.id)) return;
    copies.push(job.id);
    const timer = setTimeout(() => {
      timers.delete(timer);
      queue?.sqs
        .send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: job.line }))
        .catch(() => undefined);
    }, COPY_AFTER_MS);
    timers.add(timer);
  };
  const sideEffects: Partial<Record<Fault, () => void>> = {
    'secret-outage': () => {
      secretOutages += 1;
      // Every try of the SDK's standard retry strategy (3) is throttled: the re-read fails.
      secrets.failNext(3, 'ThrottlingException');
    },
    'token-outage': () => {
      tokenOutages += 1;
      sim.script({
        name: 'token-endpoint-503',
        match: { path: '/oauth/token' },
        times: 2,
        action: { kind: 'respond', status: 503, body: { message: 'Service Unavailable' } },
      });
    },
  };
  if (settings.storm) {
    const storm = settings.storm;
    // Scripted first, so it wins over the plan's rules while it lasts.
    sim.script({
      name: 'storm',
      match: (req) => req.path === ONEOFFS && Date.now() < storm.until,
      action: storm.action,
    });
  }
  for (const [fault, action] of Object.entries(ACTIONS) as [Exclude<Fault, 'ok'>, FaultAction][]) {
    sim.script({
      name: fault,
      match: (req) => req.path === ONEOFFS && req.headers[FAULT_HEADER] === fault,
      ...(fault === 'latency' ? { delayMs: 60 } : {}),
      action,
      onApply(request) {
        sideEffects[fault]?.();
        if (FAULTS[fault].floorSeconds !== undefined) copyDuringBackoff(request);
      },
    });
  }

  // The n-th request of a job, over every instance: the one counter the plan is indexed by.
  const requestsOf = new Map<string, number>();
  const wrapFetch =
    (fetchImpl: FetchLike, instance: string): FetchLike =>
    async (input, init) => {
      const url = new URL(String(input));
      if (url.pathname !== ONEOFFS) return fetchImpl(input, init);
      if (killer.isDead(instance)) return new Promise<Response>(() => undefined);
      const jobId = jobIdOf(safeJson(typeof init?.body === 'string' ? init.body : undefined)) ?? '';
      const n = (requestsOf.get(jobId) ?? 0) + 1;
      requestsOf.set(jobId, n);
      const fault = byId.get(jobId)?.plan[n - 1] ?? 'ok';
      const post: PostEvent = { jobId, n, fault, instance, at: Date.now(), answered: false };
      posts.push(post);
      if (fault === 'kill-before-send') {
        killer.kill(instance, 'kill-before-send', jobId);
        return new Promise<Response>(() => undefined);
      }
      const headers = new Headers(init?.headers);
      headers.set(FAULT_HEADER, fault);
      const response = await killer.call(instance, () => fetchImpl(input, { ...init, headers }));
      if (response.headers.get(KILL_HEADER) === '1') {
        killer.kill(instance, 'kill-after-send', jobId);
        return new Promise<Response>(() => undefined);
      }
      post.answered = true;
      post.status = response.status;
      return response;
    };

  let monkey: NodeJS.Timeout | undefined;
  const hooks: PipelineHooks = {
    wrapFetch,
    onInstance: (instance, clients) => killer.instrument(instance, clients),
    senderEnv: {
      [ENV.httpTimeoutMs]: String(settings.httpTimeoutMs),
      // The chaos suite's own Secrets Manager, which it can make fail.
      [ENV.secretsManagerEndpoint]: secrets.url,
      [ENV.secretId]: CHAOS_SECRET_ID,
    },
    functionTimeoutMs: settings.functionTimeoutMs,
    onStarted(sendQueue) {
      queue = sendQueue;
      // SQS delivers at least once: some messages are handed out again while an instance holds them (working
      // on them, or hiding them for a backoff).
      const done = new Set<string>();
      monkey = setInterval(async () => {
        const state = await sendQueue.inspect().catch(() => undefined);
        for (const entry of state?.inflight ?? []) {
          const id = recordJobId(entry.message.body);
          if (!id || !byId.get(id)?.redelivered || done.has(entry.message.messageId)) continue;
          done.add(entry.message.messageId);
          redeliveries += 1;
          redeliveredHandles.add(entry.receiptHandle);
          await sendQueue.sqs
            .send(
              new ChangeMessageVisibilityCommand({
                QueueUrl: sendQueue.url,
                ReceiptHandle: entry.receiptHandle,
                VisibilityTimeout: 0,
              }),
            )
            .catch(() => undefined);
        }
      }, 25);
    },
  };

  const started = Date.now();
  let run: Awaited<ReturnType<typeof runPipeline>>;
  try {
    run = await runPipeline(
      {
        jobsFile,
        ecourtdateUrl: new URL(sim.url),
        timeScale: settings.timeScale,
        reportFile: undefined,
        concurrency: settings.concurrency,
        timeoutSeconds: settings.runTimeoutSeconds,
        // Kept running after the jobs settled: the dead-letter queue is read, and copies drain, before it stops.
        keepRunning: true,
        stateDir: settings.stateDir,
        help: false,
      },
      {
        stdout: { write: () => true, isTTY: false },
        env: { ECOURTDATE_CLIENT_ID: CHAOS_CLIENT.id, ECOURTDATE_CLIENT_SECRET: CHAOS_CLIENT.secret },
        cwd,
      },
      hooks,
    );
  } catch (error) {
    clearInterval(monkey);
    await Promise.all([sim.close(), secrets.close()]);
    throw error;
  }
  const seconds = (Date.now() - started) / 1000;
  clearInterval(monkey);
  let deadLetters: DeadLetter[] = [];
  let leftOnSendQueue = -1;
  let world: ChaosEvidence['world'];
  const refusals = queue?.refusals?.();
  try {
    const sqs = new SQSClient({
      endpoint: run.endpoints.sqsEndpoint,
      region: run.endpoints.region,
      useQueueUrlAsEndpoint: false,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      leftOnSendQueue = await drain(sqs, run.endpoints.sendQueueUrl, 20_000);
      deadLetters = await readAll(sqs, run.endpoints.deadLetterQueueUrl);
      world = await worldOf(sqs, run.endpoints.sendQueueUrl, settings, cwd);
    } finally {
      sqs.destroy();
    }
  } finally {
    for (const timer of timers) clearTimeout(timer);
    await run.stop();
    await Promise.all([sim.close(), secrets.close()]);
  }
  const log = await readFile(run.logFile, 'utf8').catch(() => '');
  return {
    settings,
    lines,
    report: run.report,
    settled: run.settled,
    seconds,
    wallSeconds: seconds,
    requests: sim.requests,
    messages: sim.messages,
    posts,
    kills: killer.kills,
    receives: killer.receives,
    receiveTimes: killer.receiveTimes,
    copies,
    redeliveries,
    secretOutages,
    tokenOutages,
    deadLetters,
    leftOnSendQueue,
    refusals: refusals ?? queue?.refusals?.(),
    redeliveredHandles,
    logLines: log.split('\n').filter((line) => line !== ''),
    world,
  };
}

/**
 * The evidence of several runs (waves of one plan) as one: every list joined, every count added, `seconds` the
 * longest run's (the time a job could live), `wallSeconds` all of them together. Job ids are unique over the
 * waves, so every check reads the merged evidence as it reads one run's.
 */
export function mergeEvidence(runs: readonly ChaosEvidence[]): ChaosEvidence {
  const [first] = runs;
  if (first === undefined) throw new RangeError('mergeEvidence: no runs');
  if (runs.length === 1) return first;
  const all = <T>(pick: (run: ChaosEvidence) => readonly T[]): T[] => runs.flatMap(pick);
  const sum = (pick: (run: ChaosEvidence) => number): number =>
    runs.reduce((total, run) => total + pick(run), 0);
  const summary = { jobs: 0, delivered: 0, duplicate: 0, dead_lettered: 0, unsettled: 0 };
  for (const run of runs) {
    for (const key of Object.keys(summary) as (keyof typeof summary)[])
      summary[key] += run.report.summary[key];
  }
  const receives = new Map<string, number>();
  const receiveTimes = new Map<string, number[]>();
  for (const run of runs) {
    for (const [id, n] of run.receives) receives.set(id, (receives.get(id) ?? 0) + n);
    for (const [id, times] of run.receiveTimes)
      receiveTimes.set(id, [...(receiveTimes.get(id) ?? []), ...times]);
  }
  const refusals = runs.every((run) => run.refusals !== undefined)
    ? all((run) => run.refusals ?? [])
    : undefined;
  return {
    settings: { ...first.settings, jobs: all((run) => run.settings.jobs) },
    lines: all((run) => run.lines),
    report: {
      ...first.report,
      ended: runs.every((run) => run.report.ended === 'settled') ? 'settled' : 'timed_out',
      summary,
      jobs: all((run) => run.report.jobs),
      api_calls: {
        token: sum((run) => run.report.api_calls.token),
        send: sum((run) => run.report.api_calls.send),
      },
      alarms: [],
    },
    settled: runs.every((run) => run.settled),
    seconds: Math.max(...runs.map((run) => run.seconds)),
    wallSeconds: sum((run) => run.wallSeconds),
    requests: all((run) => run.requests),
    messages: all((run) => run.messages),
    posts: all((run) => run.posts),
    kills: all((run) => run.kills),
    receives,
    receiveTimes,
    copies: all((run) => run.copies),
    redeliveries: sum((run) => run.redeliveries),
    secretOutages: sum((run) => run.secretOutages),
    tokenOutages: sum((run) => run.tokenOutages),
    deadLetters: all((run) => run.deadLetters),
    leftOnSendQueue: sum((run) => run.leftOnSendQueue),
    refusals,
    redeliveredHandles: new Set(all((run) => [...run.redeliveredHandles])),
    logLines: all((run) => run.logLines),
    world: first.world,
  };
}

/** What each fault makes the simulator answer (`kill-before-send` never reaches it). */
export const ACTIONS: Record<Exclude<Fault, 'ok'>, FaultAction> = {
  latency: { kind: 'pass' },
  r400: { kind: 'respond', status: 400, body: { message: 'The content field is invalid.' } },
  r401: { kind: 'respond', status: 401, body: { message: 'Unauthenticated.' } },
  r403: { kind: 'respond', status: 403, body: { message: 'Agency is inactive.' } },
  r404: { kind: 'respond', status: 404, body: { message: 'Not Found' } },
  r405: { kind: 'respond', status: 405, body: { message: 'Method Not Allowed' } },
  r408: { kind: 'respond', status: 408, body: { message: 'Request Timeout' } },
  r429: rateLimited(),
  'r429-retry-after': rateLimited({ header: 'retry-after', seconds: 60 }),
  'r429-reset-delta': rateLimited({ header: 'x-ratelimit-reset', seconds: 60, form: 'delta-seconds' }),
  'r429-reset-epoch-s': rateLimited({ header: 'x-ratelimit-reset', seconds: 60, form: 'epoch-seconds' }),
  'r429-reset-epoch-ms': rateLimited({ header: 'x-ratelimit-reset', seconds: 60, form: 'epoch-ms' }),
  r500: { kind: 'respond', status: 500, body: { message: 'Server Error' } },
  r502: { kind: 'respond', status: 502, body: '<html><body>502 Bad Gateway</body></html>' },
  r503: { kind: 'respond', status: 503, body: { message: 'Service Unavailable' } },
  'r503-retry-after': retryAfter(MAINTENANCE_SECONDS),
  'r503-retry-date': retryAfter(MAINTENANCE_SECONDS, { form: 'http-date' }),
  'created-500': createThen({ kind: 'respond', status: 500, body: { message: 'Server Error' } }),
  'created-502': createThen({ kind: 'respond', status: 502, body: '<html>502 Bad Gateway</html>' }),
  'created-503': createThen({ kind: 'respond', status: 503, body: { message: 'Service Unavailable' } }),
  'created-504': createThen({ kind: 'respond', status: 504, body: { message: 'Gateway Timeout' } }),
  hang: { kind: 'hang' },
  drop: { kind: 'drop' },
  'created-drop': createThen({ kind: 'drop' }),
  'hostile-control': hostile('control-characters', 400),
  'hostile-raw-control': hostile('raw-control-characters', 400),
  'hostile-huge': hostile('huge', 503),
  'hostile-escaped-echo': hostile('escaped-echo', 400),
  'hostile-unicode-echo': hostile('unicode-echo', 400),
  // Really created and answered 201, but the instance dies before it reads the answer.
  'kill-after-send': createThen({
    kind: 'respond',
    status: 201,
    body: { uuid: 'lost-with-the-instance' },
    headers: { [KILL_HEADER]: '1' },
  }),
  'kill-before-send': { kind: 'pass' },
  'token-outage': { kind: 'respond', status: 401, body: { message: 'Unauthenticated.' } },
  'secret-outage': { kind: 'respond', status: 401, body: { message: 'Unauthenticated.' } },
};

/** The job id of an SQS record body (the job's `id`, else the one its message text names). */
export function recordJobId(body: string | undefined): string | undefined {
  const job = safeJson(body) as { id?: unknown; message?: unknown } | undefined;
  if (typeof job?.id === 'string') return job.id;
  return jobIdOf(job?.message);
}

function safeJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text.replace(/^\uFEFF/, '')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The directory the pipeline runs in: the project root, or with `settings.stage` a directory holding a copy of
 * the project's cdk.json with those settings in its context (the pipeline reads the stage from cwd/cdk.json).
 */
async function stageDirectory(settings: ChaosSettings): Promise<string> {
  if (settings.stage === undefined) return ROOT;
  const project = JSON.parse(await readFile(join(ROOT, 'cdk.json'), 'utf8')) as { context?: object };
  const dir = join(settings.stateDir, 'stage');
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'cdk.json'),
    JSON.stringify({ ...project, context: { ...project.context, ...settings.stage } }, null, 2),
  );
  return dir;
}

/** Waits until the queue holds nothing (copies and redeliveries settle too); returns what is left. */
async function drain(sqs: SQSClient, queueUrl: string, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const out = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    const left = Object.values(out.Attributes ?? {}).reduce((sum, value) => sum + Number(value), 0);
    if (left === 0 || Date.now() >= until) return left;
    await new Promise((resolveTick) => setTimeout(resolveTick, 200));
  }
}

/** Every message on a queue with its attributes, each received once and hidden for the rest of the run. */
async function readAll(sqs: SQSClient, queueUrl: string): Promise<DeadLetter[]> {
  const all: DeadLetter[] = [];
  for (let empty = 0; empty < 2; ) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 3600,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = out.Messages ?? [];
    empty = messages.length === 0 ? empty + 1 : 0;
    for (const message of messages) {
      const attributes: Record<string, string> = {};
      for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
        if (value.StringValue !== undefined) attributes[name] = value.StringValue;
      }
      all.push({ body: message.Body ?? '', attributes });
    }
  }
  return all;
}

/** The send queue's visibility timeout as created, and the stage's windows scaled as the sender scales them. */
async function worldOf(
  sqs: SQSClient,
  queueUrl: string,
  settings: ChaosSettings,
  cwd: string,
): Promise<ChaosEvidence['world']> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['VisibilityTimeout'] }),
  );
  const stage = cdkStageConfig(cwd);
  const nowhere = 'http://127.0.0.1:1';
  const config = loadSenderConfig({
    ...localSenderEnvironment(stage, {
      baseUrl: nowhere,
      concurrency: settings.concurrency,
      timeScale: settings.timeScale,
      resources: {
        secretId: CHAOS_SECRET_ID,
        sendQueueUrl: queueUrl,
        deadLetterQueueUrl: queueUrl,
        ledgerTableName: 'chaos',
      },
      endpoints: { sqs: nowhere, secretsManager: nowhere, dynamodb: nowhere },
    }),
    [ENV.httpTimeoutMs]: String(settings.httpTimeoutMs),
  });
  return {
    visibilityTimeoutSeconds: Number(out.Attributes?.VisibilityTimeout ?? 0),
    duplicateWindowMs: (config.duplicateWindowSeconds * 1000) / settings.timeScale,
    maxAgeMs: (config.maxAgeSeconds * 1000) / settings.timeScale,
    faithfulTimeScale: faithfulTimeScaleLimit(config, { timeouts: 2, deferrals: 0 }, settings.timeScale * 10),
    policy: config,
  };
}
