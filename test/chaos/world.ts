import { createHmac } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type AttributeValue,
  DeleteItemCommand,
  DynamoDBClient,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import {
  type CreatedMessage,
  createThen,
  type FaultAction,
  type FaultRequestView,
  hostile,
  type OutageKind,
  type OutageRecord,
  type RecordedRequest,
  rateLimited,
  retryAfter,
  type Simulator,
} from '#local/ecourtdate-simulator/index.ts';
import { createSimulatorWebhooks, type SimulatedDelivery } from '#local/ecourtdate-simulator/webhooks.ts';
import type { PublishedEvent } from '#local/emulators/eventbridge-stub.ts';
import type { SqsRefusal } from '#local/emulators/sqs-emulator.ts';
import type { CheckedCall } from '#local/iam/gate.ts';
import type { ContainerIo } from '#local/lambda/container.ts';
import type { RunReport } from '#local/pipeline/report.ts';
import { type PipelineHooks, runPipeline } from '#local/pipeline/run.ts';
import type { PipelineParts } from '#local/pipeline/senders.ts';
import { cdkStageConfig, localSenderEnvironment } from '#local/pipeline/stage.ts';
import { faithfulTimeScaleLimit } from '#local/pipeline/time-scale.ts';
import { LOCAL_RESOURCE_NAMES, LOCAL_WEBHOOK_SECRET } from '#local/resource-names.ts';
import { startWorld } from '#local/world.ts';
import { ENV, loadSenderConfig, type SenderConfig } from '#shared/config.ts';
import type { FetchLike } from '#shared/ecourtdate/http.ts';
import { LEDGER_TABLE_KEY, LEDGER_TABLE_TTL_ATTRIBUTE } from '#shared/ledger/schema.ts';
import type { Settlement } from '#shared/sender/runtime.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/attributes.ts';
import { loadWebhookConfig } from '#shared/webhook/config.ts';
import {
  AwsFaults,
  type Outage,
  type SlowWindow,
  type SpoiledWrite,
  type TimeoutFault,
} from '#test/chaos/faults.ts';
import { InstanceKiller, type KillEvent } from '#test/chaos/kill.ts';
import { ROOT } from '#test/chaos/options.ts';
import {
  FAULTS,
  type Fault,
  jobIdOf,
  MAINTENANCE_SECONDS,
  type PlannedJob,
  type PlannedOutage,
  type PlannedTimeouts,
} from '#test/chaos/plan.ts';

export const ONEOFFS = '/v1/messages/oneoffs';
export const CHAOS_CLIENT = { id: 'chaos-client', secret: 'chaos-secret-0123456789abcdef0123' };
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
  /** Outages of the senders' DynamoDB, SQS and EventBridge, counted from when the jobs are put on the queue. */
  readonly outages?: readonly PlannedOutage[];
  /**
   * eCourtDate posts its signed status webhooks for every message it creates (docs/webhooks.md); after the run,
   * some of them are replayed a dedupe window later by the receiver's clock.
   */
  readonly webhooks?: boolean;
  /**
   * After the jobs settle, the dead-letter queue is redriven once, as an operator would after checking the
   * unknown outcomes in Console > Logs, and the run goes on until the send queue is empty again.
   */
  readonly redrive?: boolean;
  /** Until `until` (epoch ms), every POST of the messages endpoint meets `action` instead of its plan. */
  readonly storm?: { readonly until: number; readonly action: FaultAction };
  /**
   * Outages of eCourtDate itself (docs/chaos.md, "Outages of hours, auth outages, churn"): windows of the
   * simulator, counted from when the jobs are put on the queue, each lasting its API seconds (scaled).
   */
  readonly apiOutages?: readonly PlannedApiOutage[];
  /**
   * Container churn: an instance whose container is older than this (real ms) gets a fresh one at its next
   * invocation, as Lambda replaces execution environments (a cold start: empty caches, pacer and token).
   */
  readonly churnEveryMs?: number;
  /** Where the sender log goes. */
  readonly stateDir: string;
  /** Secrets Manager fails this many GetSecretValue calls at the start (every instance's cold start). */
  readonly coldStartSecretFailures?: number;
  /**
   * Faults that make invocations outlive the function timeout: windows of slow DynamoDB (counted from when the
   * jobs are put on the queue) and a stalled cold-start secret read (docs/chaos.md, "Function timeouts").
   */
  readonly timeouts?: PlannedTimeouts;
}

/** An outage of eCourtDate in a chaos run: its kind, from when, and how long. */
export interface PlannedApiOutage {
  readonly kind: OutageKind;
  /** Real ms after the jobs were queued; undefined: at the first request to the messages endpoint (inside it). */
  readonly fromMs?: number;
  /** In the API's seconds: the simulator divides them by the time scale. */
  readonly durationSeconds: number;
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
  /** What the simulator saw of each outage of eCourtDate (`ChaosSettings.apiOutages`); absent without any. */
  readonly apiOutages?: readonly OutageRecord[];
  /** Containers replaced by the churn (`ChaosSettings.churnEveryMs`); absent without it. */
  readonly churned?: number;
  /** Messages still on the send queue after the run (copies included). */
  readonly leftOnSendQueue: number;
  /** What the strict SQS layer refused; undefined when the pipeline did not say. */
  readonly refusals: readonly SqsRefusal[] | undefined;
  /** Calls of the functions that the stack's IAM denied (docs/test-world.md); undefined without the check. */
  readonly iamDenials: readonly CheckedCall[] | undefined;
  /**
   * Receipt handles of the messages the suite handed out again: SQS refuses a later visibility change or delete
   * with such a handle (a newer receive superseded it), whoever makes it.
   */
  readonly redeliveredHandles: ReadonlySet<string>;
  /** The sender's log, one line per entry. */
  readonly logLines: readonly string[];
  /** Ledger writes the world spoiled, and the outages with the attempts they refused. */
  readonly faults: {
    readonly spoiled: readonly SpoiledWrite[];
    readonly outages: readonly Outage[];
    readonly refused: Readonly<Record<string, number>>;
    /** The windows of slow DynamoDB, in epoch ms. */
    readonly slowWindows: readonly SlowWindow[];
    /** AWS call attempts the timeout faults slowed or stalled, by fault. */
    readonly slowed: Readonly<Record<TimeoutFault, number>>;
  };
  /** Jobs put on the queue again, upstream, right after they were dead-lettered. */
  readonly deadLetterResends: readonly string[];
  /** The redrive after the run (one per wave), when the settings asked for one. */
  readonly redrives: readonly RedriveEvidence[];
  /** Every item of the ledger table at the end (before the replays), unmarshalled. */
  readonly ledger: readonly Readonly<Record<string, unknown>>[];
  /** Everything put on the local bus: the receiver's events and the senders' `eCourtDate Job Settled`. */
  readonly events: readonly PublishedEvent[];
  /** eCourtDate's webhook deliveries (empty without webhooks). */
  readonly webhookDeliveries: readonly SimulatedDelivery[];
  /** The replays after the dedupe window (one set per wave), when the run had webhooks. */
  readonly replays: readonly ReplayEvidence[];
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

/** The redrive after the run: what went back to the send queue, and what came of it. */
export interface RedriveEvidence {
  /** Epoch ms the first dead letter went back. */
  readonly startedAt: number;
  /** The jobs of the run (of its wave): everything before `startedAt` is theirs before the redrive. */
  readonly jobs: readonly string[];
  /** The dead letters sent back, with their attributes, as StartMessageMoveTask moves them. */
  readonly redriven: readonly DeadLetter[];
  /**
   * `unknown_outcome` dead letters of jobs whose message eCourtDate holds: the operator found them in Console >
   * Logs and deleted them instead of redriving them (docs/contract.md).
   */
  readonly deletedAsSent: readonly DeadLetter[];
  /** The SQS message ids the redriven dead letters got on the send queue. */
  readonly messageIds: readonly string[];
  /** The dead-letter queue after the second run. */
  readonly deadLetters: readonly DeadLetter[];
  /** Real seconds the second run took until the send queue was empty. */
  readonly seconds: number;
}

/** Old deliveries posted again after the dedupe window, by the receiver's clock. */
export interface ReplayEvidence {
  /** Epoch ms (real) the first replay was posted. */
  readonly startedAt: number;
  /** How far the receiver's clock was moved ahead, ms: the dedupe window and an hour. */
  readonly clockAheadMs: number;
  /** Records DynamoDB's TTL had removed by then (dedupe records, pending updates). */
  readonly expiredItems: number;
  readonly posts: readonly { readonly uuid: string; readonly status: number }[];
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

  let parts: PipelineParts | undefined;
  // eCourtDate reports each message a few (scaled) seconds after creating it, as in `npm start`.
  const webhooks = settings.webhooks
    ? createSimulatorWebhooks({
        url: () => parts?.webhooks.url,
        secret: LOCAL_WEBHOOK_SECRET,
        stepMs: Math.max(50, 2000 / settings.timeScale),
        failedRecipients: settings.jobs.filter((job) => job.carrier === 'failed').map((job) => job.to),
        replyRecipients: settings.jobs.filter((job) => job.carrier === 'replied').map((job) => job.to),
      })
    : undefined;
  // The run's world (local/world.ts), started here so that its simulator and secrets can be scripted; the
  // pipeline runs in it as in the world it would start (`PipelineHooks.world`), against its simulator's URL.
  const localWorld = await startWorld({
    stage: cdkStageConfig(cwd),
    timeScale: settings.timeScale,
    concurrency: settings.concurrency,
    apiClient: CHAOS_CLIENT,
    webhooks: true,
    simulator: {
      knownAgencies: ['county-a'],
      ...(webhooks ? { onMessageCreated: webhooks.onMessageCreated } : {}),
    },
  });
  const { secrets } = localWorld;
  const sim = localWorld.simulator as Simulator;
  // Only the senders' secret fails: the webhook receiver reads its own from the same stand-in.
  const apiSecret = { secretId: localWorld.apiCredentialsSecretId };
  if (settings.coldStartSecretFailures) {
    secrets.failNext(settings.coldStartSecretFailures, 'InternalServiceError', apiSecret);
  }

  const killer = new InstanceKiller({ jobIdOfRecord: (body) => recordJobId(body) });
  const faults = new AwsFaults({ jobs: byId });
  const deadLetterResends: string[] = [];
  // The receiver's clock runs ahead by this much once the replays start (a week later, by its reckoning).
  let receiverAheadMs = 0;
  // Epoch ms the dead letters went back to the send queue, once they have.
  let redriveStartedAt: number | undefined;
  const posts: PostEvent[] = [];
  const copies: string[] = [];
  let redeliveries = 0;
  const redeliveredHandles = new Set<string>();
  let secretOutages = 0;
  let tokenOutages = 0;
  let queue: { sqs: SQSClient; url: string; refusals?: () => readonly SqsRefusal[] } | undefined;
  const timers = new Set<NodeJS.Timeout>();

  // An upstream system sends the job again, a moment later.
  const resendLater = (job: PlannedJob) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      queue?.sqs
        .send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: job.line }))
        .catch(() => undefined);
    }, COPY_AFTER_MS);
    timers.add(timer);
  };
  // Right after a job is dead-lettered: the relay dead-letters that copy too, so the queue holds two.
  const resendAfterDeadLetter = (settlement: Settlement) => {
    const job = settlement.jobId === undefined ? undefined : byId.get(settlement.jobId);
    if (settlement.applied !== 'dead_lettered' || !job?.resentAfterDeadLetter) return;
    if (deadLetterResends.includes(job.id)) return;
    deadLetterResends.push(job.id);
    resendLater(job);
  };
  const copyDuringBackoff = (request: FaultRequestView) => {
    const id = jobIdOf(request.body);
    const job = id === undefined ? undefined : byId.get(id);
    if (!job?.copied || copies.includes(job.id)) return;
    copies.push(job.id);
    resendLater(job);
  };
  const sideEffects: Partial<Record<Fault, () => void>> = {
    'secret-outage': () => {
      secretOutages += 1;
      // Every try of the SDK's standard retry strategy (3) is throttled: the re-read fails.
      secrets.failNext(3, 'ThrottlingException', apiSecret);
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
  // Inside the container's gate: a request of an ended container never gets here, and its answer never leaves.
  const wrapFetch =
    (fetchImpl: FetchLike, instance: string, container: ContainerIo): FetchLike =>
    async (input, init) => {
      const url = new URL(String(input));
      if (url.pathname !== ONEOFFS) return fetchImpl(input, init);
      const jobId = jobIdOf(safeJson(typeof init?.body === 'string' ? init.body : undefined)) ?? '';
      const n = (requestsOf.get(jobId) ?? 0) + 1;
      requestsOf.set(jobId, n);
      // The operator redrives once the cause is fixed: after the redrive, every request meets plain success.
      const fault = redriveStartedAt === undefined ? (byId.get(jobId)?.plan[n - 1] ?? 'ok') : 'ok';
      const post: PostEvent = { jobId, n, fault, instance, at: Date.now(), answered: false };
      posts.push(post);
      if (fault === 'kill-before-send') {
        killer.kill(instance, 'kill-before-send', jobId);
        return new Promise<Response>(() => undefined);
      }
      const headers = new Headers(init?.headers);
      headers.set(FAULT_HEADER, fault);
      const response = await fetchImpl(input, { ...init, headers });
      // Ended meanwhile (the function timeout): the gate drops the answer, so the relay never learns it.
      if (container.ended) return new Promise<Response>(() => undefined);
      if (response.headers.get(KILL_HEADER) === '1') {
        killer.kill(instance, 'kill-after-send', jobId);
        return new Promise<Response>(() => undefined);
      }
      post.answered = true;
      post.status = response.status;
      return response;
    };

  let monkey: NodeJS.Timeout | undefined;
  // Container churn: each instance's current container and when it started.
  const containers = new Map<string, { readonly io: ContainerIo; readonly bornAt: number }>();
  let churned = 0;
  const churn = (instance: string) => {
    const current = containers.get(instance);
    if (settings.churnEveryMs === undefined || current === undefined || current.io.ended) return;
    if (Date.now() - current.bornAt < settings.churnEveryMs) return;
    // The instance is idle (the mapping hands it a batch): its next handler call is a cold start.
    current.io.end();
    churned += 1;
  };
  const hooks: PipelineHooks = {
    wrapFetch,
    onInstance: (instance, clients, container) => {
      containers.set(instance, { io: container, bornAt: Date.now() });
      killer.attach(instance, container);
      faults.instrument(clients, instance, container);
    },
    onPoller: (_instance, sqs) => faults.instrumentPoller(sqs),
    onInvoke: (instance, messages, receivedAt) => {
      churn(instance);
      killer.invoked(
        instance,
        messages.map((message) => message.Body),
        receivedAt,
      );
    },
    onInvocationTimeout: (instance) =>
      killer.timedOut(instance, (since) => faults.timeoutCause(instance, since)),
    onSettled(_instance, handed) {
      for (const settlement of handed) resendAfterDeadLetter(settlement);
    },
    webhookReceiver: { now: () => Date.now() + receiverAheadMs },
    senderEnv: { [ENV.httpTimeoutMs]: String(settings.httpTimeoutMs) },
    world: localWorld,
    functionTimeoutMs: settings.functionTimeoutMs,
    onStarted(sendQueue, pipeline) {
      queue = sendQueue;
      parts = pipeline;
      // The jobs are on the queue: the outages count from now.
      faults.schedule(Date.now(), settings.outages ?? []);
      for (const outage of settings.apiOutages ?? []) {
        sim.scheduleOutage({
          name: `api-${outage.kind}`,
          kind: outage.kind,
          start: outage.fromMs === undefined ? { atRequest: { path: ONEOFFS } } : Date.now() + outage.fromMs,
          durationSeconds: outage.durationSeconds,
        });
      }
      if (settings.timeouts) faults.scheduleTimeouts(Date.now(), settings.timeouts);
      // SQS delivers at least once: some messages are handed out again while an instance holds them (working
      // on them, or hiding them for a backoff).
      // Once per job: a fresh copy the relay makes of a redelivered record is not redelivered again (so copies do
      // not multiply through the re-queues of an outage).
      const done = new Set<string>();
      monkey = setInterval(async () => {
        const state = await sendQueue.inspect().catch(() => undefined);
        for (const entry of state?.inflight ?? []) {
          const id = recordJobId(entry.message.body);
          if (!id || !byId.get(id)?.redelivered || done.has(id)) continue;
          done.add(id);
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
    webhooks?.stop();
    await localWorld.close();
    throw error;
  }
  const seconds = (Date.now() - started) / 1000;
  clearInterval(monkey);
  let deadLetters: DeadLetter[] = [];
  let leftOnSendQueue = -1;
  let world: ChaosEvidence['world'];
  let redrive: RedriveEvidence | undefined;
  let ledger: Record<string, unknown>[] = [];
  let replays: ReplayEvidence | undefined;
  let refusals: readonly SqsRefusal[] | undefined;
  let iamDenials: readonly CheckedCall[] | undefined;
  const sqs = new SQSClient({
    endpoint: run.endpoints.sqsEndpoint,
    region: run.endpoints.region,
    useQueueUrlAsEndpoint: false,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const dynamodb = new DynamoDBClient({
    endpoint: run.endpoints.dynamodbEndpoint,
    region: run.endpoints.region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const table = { client: dynamodb, name: run.endpoints.ledgerTableName };
  try {
    leftOnSendQueue = await drain(sqs, run.endpoints.sendQueueUrl, 20_000);
    const letters = await readAll(sqs, run.endpoints.deadLetterQueueUrl);
    deadLetters = letters.map((received) => received.letter);
    if (settings.redrive) {
      redriveStartedAt = Date.now();
      const sent = (id: string) => sim.messages.some((message) => jobIdOf(message.body) === id);
      const redriven = await redriveAndRun(sqs, run.endpoints, letters, sent, settings);
      ({ leftOnSendQueue, ...redrive } = redriven);
    }
    await webhooks?.idle();
    ledger = await scanTable(table);
    if (webhooks && parts) {
      const window = loadWebhookConfig(parts.webhooks.env).dedupeTtlSeconds * 1000;
      // A week later by the receiver's clock (the dedupe window and an hour): DynamoDB's TTL has removed what
      // expired by then, and a captured delivery is posted again.
      receiverAheadMs = window + 3_600_000;
      const expiredItems = await expireItems(table, Date.now() + receiverAheadMs);
      replays = {
        ...(await replay(parts.webhooks.url, webhooks.deliveries)),
        clockAheadMs: receiverAheadMs,
        expiredItems,
      };
    }
    world = await worldOf(sqs, run.endpoints.sendQueueUrl, settings, cwd);
    refusals = queue?.refusals?.();
    iamDenials = localWorld.iam?.gate.denials();
  } finally {
    for (const timer of timers) clearTimeout(timer);
    webhooks?.stop();
    sqs.destroy();
    dynamodb.destroy();
    await run.stop();
    await localWorld.close();
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
    ...(settings.apiOutages === undefined ? {} : { apiOutages: sim.outages() }),
    ...(settings.churnEveryMs === undefined ? {} : { churned }),
    leftOnSendQueue,
    refusals,
    iamDenials,
    redeliveredHandles,
    logLines: log.split('\n').filter((line) => line !== ''),
    world,
    faults: {
      spoiled: faults.spoiled,
      outages: faults.outages,
      refused: faults.refused,
      slowWindows: faults.slowWindows,
      slowed: faults.slowed,
    },
    deadLetterResends,
    redrives: redrive ? [redrive] : [],
    ledger,
    events: [...(parts?.webhooks.events.events ?? [])],
    webhookDeliveries: webhooks?.deliveries ?? [],
    replays: replays ? [replays] : [],
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
  const iamDenials = runs.every((run) => run.iamDenials !== undefined)
    ? all((run) => run.iamDenials ?? [])
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
    iamDenials,
    redeliveredHandles: new Set(all((run) => [...run.redeliveredHandles])),
    logLines: all((run) => run.logLines),
    world: first.world,
    faults: {
      spoiled: all((run) => run.faults.spoiled),
      outages: all((run) => run.faults.outages),
      refused: sumRecords(runs.map((run) => run.faults.refused)),
      slowWindows: all((run) => run.faults.slowWindows),
      slowed: sumRecords(runs.map((run) => run.faults.slowed)) as Record<TimeoutFault, number>,
    },
    deadLetterResends: all((run) => run.deadLetterResends),
    redrives: all((run) => run.redrives),
    ledger: all((run) => run.ledger),
    events: all((run) => run.events),
    webhookDeliveries: all((run) => run.webhookDeliveries),
    replays: all((run) => run.replays),
  };
}

function sumRecords(records: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const record of records) {
    for (const [key, n] of Object.entries(record)) total[key] = (total[key] ?? 0) + n;
  }
  return total;
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

/** A dead letter as received: what the checks read, and the message itself (to move or delete it). */
interface ReceivedLetter {
  readonly letter: DeadLetter;
  readonly message: Message;
}

/** Every message on a queue with its attributes, each received once and hidden for the rest of the run. */
async function readAll(sqs: SQSClient, queueUrl: string): Promise<ReceivedLetter[]> {
  const all: ReceivedLetter[] = [];
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
      all.push({ letter: { body: message.Body ?? '', attributes }, message });
    }
  }
  return all;
}

/**
 * Redrives the dead-letter queue once, as an operator would, and lets the pipeline run until the send queue is
 * empty again: the `unknown_outcome` dead letters of jobs whose message eCourtDate holds (`sent`, what Console >
 * Logs would show) are deleted; every other dead letter goes back to the send queue with its body and message
 * attributes, as StartMessageMoveTask (and `relay dlq redrive`) moves them, and is deleted from the dead-letter
 * queue. Returns what went where, the dead-letter queue afterwards and what is left on the send queue.
 */
async function redriveAndRun(
  sqs: SQSClient,
  endpoints: { readonly sendQueueUrl: string; readonly deadLetterQueueUrl: string },
  letters: readonly ReceivedLetter[],
  sent: (jobId: string) => boolean,
  settings: ChaosSettings,
): Promise<RedriveEvidence & { readonly leftOnSendQueue: number }> {
  const startedAt = Date.now();
  const redriven: DeadLetter[] = [];
  const deletedAsSent: DeadLetter[] = [];
  const messageIds: string[] = [];
  for (const { letter, message } of letters) {
    const jobId = letter.attributes[DLQ_ATTRIBUTE.jobId] ?? recordJobId(letter.body);
    const unknown = letter.attributes[DLQ_ATTRIBUTE.reason] === 'unknown_outcome';
    if (unknown && jobId !== undefined && sent(jobId)) {
      deletedAsSent.push(letter);
    } else {
      const attributes = Object.entries(message.MessageAttributes ?? {}).map(
        ([name, value]): [string, MessageAttributeValue] => [
          name,
          { DataType: value.DataType ?? 'String', StringValue: value.StringValue },
        ],
      );
      const out = await sqs.send(
        new SendMessageCommand({
          QueueUrl: endpoints.sendQueueUrl,
          MessageBody: message.Body ?? '',
          MessageAttributes: Object.fromEntries(attributes),
        }),
      );
      redriven.push(letter);
      if (out.MessageId) messageIds.push(out.MessageId);
    }
    await sqs.send(
      new DeleteMessageCommand({
        QueueUrl: endpoints.deadLetterQueueUrl,
        ReceiptHandle: message.ReceiptHandle,
      }),
    );
  }
  const leftOnSendQueue = await drain(sqs, endpoints.sendQueueUrl, settings.runTimeoutSeconds * 1000);
  const after = await readAll(sqs, endpoints.deadLetterQueueUrl);
  return {
    startedAt,
    jobs: settings.jobs.map((job) => job.id),
    redriven,
    deletedAsSent,
    messageIds,
    deadLetters: after.map((received) => received.letter),
    seconds: (Date.now() - startedAt) / 1000,
    leftOnSendQueue,
  };
}

/** The ledger table the world reads behind the relay's back. */
interface LedgerTable {
  readonly client: DynamoDBClient;
  readonly name: string;
}

/** Every item of the table, unmarshalled (a Scan: the relay itself never scans). */
async function scanTable(table: LedgerTable): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const out = await table.client.send(
      new ScanCommand({ TableName: table.name, ConsistentRead: true, ExclusiveStartKey: start }),
    );
    for (const item of out.Items ?? []) items.push(unmarshall(item));
    start = out.LastEvaluatedKey;
  } while (start !== undefined);
  return items;
}

/**
 * Does what DynamoDB's TTL does by `at` (epoch ms): deletes every item whose `expiration` has passed. The
 * emulator keeps expired items for ever. Returns how many it deleted.
 */
async function expireItems(table: LedgerTable, at: number): Promise<number> {
  let deleted = 0;
  for (const item of await scanTable(table)) {
    const expiration = item[LEDGER_TABLE_TTL_ATTRIBUTE];
    if (typeof expiration !== 'number' || expiration * 1000 >= at) continue;
    await table.client.send(
      new DeleteItemCommand({
        TableName: table.name,
        Key: { [LEDGER_TABLE_KEY]: { S: String(item[LEDGER_TABLE_KEY]) } },
      }),
    );
    deleted += 1;
  }
  return deleted;
}

/**
 * Posts again, byte for byte and correctly signed, some of eCourtDate's deliveries that the receiver took (one in
 * twenty, at least 10, at most 200): captured deliveries replayed.
 */
async function replay(
  url: string,
  deliveries: readonly SimulatedDelivery[],
): Promise<Omit<ReplayEvidence, 'clockAheadMs' | 'expiredItems'>> {
  const taken = deliveries.filter(
    (delivery) => !delivery.forged && delivery.attempts.some((status) => status >= 200 && status < 300),
  );
  const count = Math.min(200, Math.max(10, Math.ceil(taken.length / 20)), taken.length);
  const step = taken.length / Math.max(count, 1);
  const chosen = Array.from({ length: count }, (_, i) => taken[Math.floor(i * step)]).filter(
    (delivery) => delivery !== undefined,
  );
  const startedAt = Date.now();
  const posts: { uuid: string; status: number }[] = [];
  for (const delivery of chosen) {
    const signature = createHmac('sha256', LOCAL_WEBHOOK_SECRET).update(delivery.body).digest('hex');
    const status = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-ecd-signature': signature },
      body: delivery.body,
      signal: AbortSignal.timeout(5_000),
    })
      .then(async (res) => {
        await res.arrayBuffer();
        return res.status;
      })
      .catch(() => 0);
    posts.push({ uuid: delivery.uuid, status });
  }
  return { startedAt, posts };
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
        secretId: LOCAL_RESOURCE_NAMES.apiCredentialsSecretId,
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
