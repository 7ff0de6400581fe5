import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { loadStageConfig, type StageConfig } from '#infra/config.ts';
import type { OutageSpec, Simulator } from '#local/ecourtdate-simulator/index.ts';
import { busiestWindow } from '#local/ecourtdate-simulator/rate-limit.ts';
import { type SenderSink, sinkObservability } from '#local/pipeline/observability.ts';
import { startWorld } from '#local/world.ts';
import { createAwsClients } from '#shared/clients/aws.ts';
import { loadSenderConfig } from '#shared/config.ts';
import { ECOURTDATE_LIMIT_PER_MINUTE, Pacer } from '#shared/ecourtdate/pacer.ts';
import { API_CLIENT_ITEM_ID } from '#shared/ecourtdate/shared-budget.ts';
import { createSenderHandler, type SenderHandler } from '#shared/sender/handler.ts';
import { LOG_MESSAGE } from '#shared/sender/runtime.ts';

const LOCAL = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
} as const;
const CLIENT = { id: 'pacing-drill', secret: 'pacing-drill-secret-0123456789' } as const;

export { ECOURTDATE_LIMIT_PER_MINUTE };

export interface PacingDrillOptions {
  /** Sender instances polling the queue (maxConcurrency), sharing the stage's budget. */
  readonly instances: number;
  /**
   * Uneven load: every instance but the first holds each batch for half a (scaled) second before handling it, so
   * the first takes most jobs. @default false
   */
  readonly uneven?: boolean;
  /**
   * Churn: every this many real ms, one instance's container is replaced by a fresh one (empty caches, no slots
   * held), in turn; the old one finishes its invocation. @default no churn
   */
  readonly churnEveryMs?: number;
  /** Divides the minute of the sender and the simulator alike; a window lasts 60 / timeScale real seconds. */
  readonly timeScale: number;
  /** Windows measured from the first request. @default 2 */
  readonly windows?: number;
  /** The stage whose budget, batch size and timeouts are used. @default staging's defaults */
  readonly stage?: StageConfig;
  /** Receives every log line and metric of the senders. @default discarded */
  readonly sink?: SenderSink;
  /**
   * Today's static split instead of the shared budget: each container paces this share, requests a (scaled)
   * minute, with a `Pacer` of its own (a fresh container starts with an empty log), as before the api-client
   * item (docs/pacing.md). @default the shared budget
   */
  readonly staticSharePerMinute?: number;
  /**
   * An outage of the simulator (`scheduleOutage`), to time the circuit breaker (docs/pacing.md, "The circuit
   * breaker"): its window opens `afterMs` real ms after the first request and lasts `durationSeconds` of
   * eCourtDate's own seconds (divided by `timeScale`). The drill then ends at the first job delivered after the
   * window closed (or `maxWaitAfterMs` real ms after it), not after `windows`. @default none
   */
  readonly outage?: Pick<OutageSpec, 'kind' | 'durationSeconds' | 'retryAfter'> & {
    readonly afterMs: number;
    readonly maxWaitAfterMs: number;
  };
  /** Jobs put on the queue before the drill starts. @default more than `windows` windows can take */
  readonly jobs?: number;
}

/** When the circuit breaker acted around the drill's outage: epoch ms (the simulator's clock), undefined if never. */
export interface BreakerTimes {
  /** The window opened, and closed. */
  readonly outageStartedAt: number | undefined;
  readonly outageEndsAt: number | undefined;
  /** The first request of the window that got a failure (a 5xx, or no answer: dropped or held). */
  readonly firstFailedAt: number | undefined;
  /** The first sender that logged the breaker opened (its write to the api-client item done). */
  readonly openedAt: number | undefined;
  /** The first sender that logged the breaker closed (a probe answered). */
  readonly closedAt: number | undefined;
  /** The first message request after the window closed that eCourtDate answered 201. */
  readonly firstDeliveredAfterAt: number | undefined;
  /** Message requests that arrived inside the window before `openedAt` (every one if it never opened). */
  readonly messagesBeforeOpen: number;
  /** Requests inside the window, by kind: probes are `GET /v1/settings`. */
  readonly probesDuring: number;
  readonly messagesDuring: number;
  readonly requestsDuring: number;
}

export interface PacingDrillResult {
  readonly instances: number;
  /** The relay's budget (`requestsPerMinute`), shared by the instances, requests a minute. */
  readonly budgetPerMinute: number;
  /** One (scaled) minute, real ms. */
  readonly windowMs: number;
  readonly windows: number;
  /** Requests (token and send) that reached the simulator within `windows` windows of the first one. */
  readonly requestsInSpan: number;
  /** `requestsInSpan / (windows x budgetPerMinute)`: how much of the budget the relay used under a backlog. */
  readonly sustainedShare: number;
  /** The most requests the simulator saw in any one window, over the whole run. */
  readonly busiestWindow: number;
  /** 429 answers from the simulator, over the whole run. */
  readonly rateLimited: number;
  readonly tokenRequests: number;
  /** Requests (token and send) the simulator saw over the whole run. */
  readonly ecourtdateRequests: number;
  /**
   * UpdateItem requests to the DynamoDB emulator over the whole run: the budget's leases of the api-client item
   * (the sender makes no other UpdateItem with webhooks off), lost conditions included.
   */
  readonly budgetRequests: number;
  /** Containers replaced by fresh ones (churn). */
  readonly replacedContainers: number;
  /**
   * Every request the senders made to the api-client item (`id = api-client`: leases, the breaker's reads and
   * writes, a 429's `blocked_until`), over the whole run.
   */
  readonly apiClientItemRequests: number;
  /** `staticSharePerMinute` when the run used today's static split; undefined with the shared budget. */
  readonly staticSharePerMinute: number | undefined;
  /** With an `outage`: when the breaker acted. */
  readonly breaker?: BreakerTimes;
}

const discard: SenderSink = { write() {}, metric() {} };

/**
 * Runs `instances` real sender handlers, as the stack deploys them (sharing the stage's `requestsPerMinute`
 * through the ledger table's api-client item, docs/pacing.md), optionally under uneven load or container churn,
 * against the eCourtDate simulator enforcing 1,000 requests per API client in any (scaled)
 * minute with a sliding window, with a backlog larger than the measured windows can take. Counts what the
 * simulator saw. Takes `windows` scaled minutes of real time, plus the set-up and the invocations still running
 * when the span ends, which the mapping's stop lets finish (about half a second in all at time scale 12).
 *
 * @example
 * const result = await runPacingDrill({ instances: 4, timeScale: 4 }); // two 15 s windows
 */
export async function runPacingDrill(options: PacingDrillOptions): Promise<PacingDrillResult> {
  const stage = options.stage ?? loadStageConfig({ stage: 'staging' });
  const windows = options.windows ?? 2;
  const windowMs = 60_000 / options.timeScale;
  const sink = options.sink ?? discard;
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const world = await startWorld({
      stage,
      timeScale: options.timeScale,
      concurrency: options.instances,
      apiClient: CLIENT,
      simulator: { rateLimitPerMinute: ECOURTDATE_LIMIT_PER_MINUTE, rateLimitWindow: 'sliding' },
      // Unscaled: no batch comes back within the drill's few (scaled) minutes.
      sendQueueAttributes: { VisibilityTimeout: '360' },
    });
    closers.push(() => world.close());
    const sim = world.simulator as Simulator;
    const queue = world.sendQueue;
    const config = loadSenderConfig(world.senderEnv);
    const itemRequests = { count: 0 };
    const breakerLog: { openedAt?: number; closedAt?: number } = {};
    const watched: SenderSink = {
      write(line) {
        if (breakerLog.openedAt === undefined && line.includes(LOG_MESSAGE.breakerOpened)) {
          breakerLog.openedAt = Date.now();
        }
        if (breakerLog.closedAt === undefined && line.includes(LOG_MESSAGE.breakerClosed)) {
          breakerLog.closedAt = Date.now();
        }
        sink.write(line);
      },
      metric: (name, value) => sink.metric(name, value),
    };
    const container = () => {
      const clients = createAwsClients(config, LOCAL);
      countApiClientItemRequests(clients.dynamodb, itemRequests);
      closers.push(async () => {
        for (const client of Object.values(clients)) client.destroy();
      });
      const pacer =
        options.staticSharePerMinute === undefined
          ? undefined
          : new Pacer(options.staticSharePerMinute, { windowMs });
      return {
        handler: createSenderHandler({
          config,
          ...clients,
          observability: sinkObservability(options.outage === undefined ? sink : watched),
          ...(pacer === undefined ? {} : { pacer }),
        }),
        clients,
      };
    };
    const current: SenderHandler[] = [];
    const instances = Array.from({ length: options.instances }, (_, i) => {
      const first = container();
      current[i] = first.handler;
      const slow = options.uneven === true && i > 0;
      const handler: SenderHandler = async (event, context) => {
        if (slow) await sleep(windowMs / 120);
        return (current[i] as SenderHandler)(event, context);
      };
      return { name: `sender-${i + 1}`, handler, sqs: first.clients.sqs };
    });
    let replacedContainers = 0;
    const churn =
      options.churnEveryMs === undefined
        ? undefined
        : setInterval(() => {
            current[replacedContainers % options.instances] = container().handler;
            replacedContainers += 1;
          }, options.churnEveryMs);
    closers.push(async () => clearInterval(churn));

    // More than the measured windows can take, so every instance has work until the end of the span.
    const jobs = options.jobs ?? Math.ceil(windows * stage.requestsPerMinute * 1.25) + 10 * options.instances;
    await enqueueJobs(world.sqs.sqs, queue.url, jobs);

    const mapping = world.startEventSourceMapping({
      instances,
      // A batch ready for each instance as it frees up, as with Lambda's pollers (at least five for a queue): the
      // drill measures the pacer, not a lone poller's round trips.
      pollers: 2 * instances.length,
      batchSize: stage.batchSize,
      functionTimeoutMs: stage.functionTimeoutSeconds * 1000,
    });
    try {
      while (sim.requests.length === 0) await sleep(5);
      const first = (sim.requests[0] as { at: number }).at;
      if (options.outage === undefined) {
        await sleep(first + windows * windowMs - Date.now() + 50);
      } else {
        const { afterMs, maxWaitAfterMs, ...spec } = options.outage;
        sim.scheduleOutage({ ...spec, name: 'drill outage', start: first + afterMs });
        const endsAt = first + afterMs + (spec.durationSeconds * 1000) / options.timeScale;
        const deliveredAfterEnd = () =>
          sim.requests.some((r) => r.at >= endsAt && r.path === MESSAGES_PATH && r.status === 201);
        while (Date.now() < endsAt + maxWaitAfterMs && !deliveredAfterEnd()) await sleep(10);
      }
    } finally {
      await mapping.stop();
      clearInterval(churn);
    }

    const identified = sim.requests.filter((r) => r.clientId === CLIENT.id);
    const first = identified[0]?.at ?? 0;
    const requestsInSpan = identified.filter((r) => r.at < first + windows * windowMs).length;
    return {
      instances: options.instances,
      budgetPerMinute: config.requestsPerMinute,
      windowMs,
      windows,
      requestsInSpan,
      sustainedShare: requestsInSpan / (windows * stage.requestsPerMinute),
      busiestWindow: busiestWindow(
        identified.map((r) => r.at),
        windowMs,
      ),
      rateLimited: identified.filter((r) => r.status === 429).length,
      tokenRequests: identified.filter((r) => r.path === '/oauth/token').length,
      ecourtdateRequests: identified.length,
      budgetRequests: world.dynamodb.requestCounts().UpdateItem ?? 0,
      replacedContainers,
      apiClientItemRequests: itemRequests.count,
      staticSharePerMinute: options.staticSharePerMinute,
      ...(options.outage === undefined ? {} : { breaker: breakerTimes(sim, breakerLog) }),
    };
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }
}

const MESSAGES_PATH = '/v1/messages/oneoffs';

/** The breaker's times around the drill's one outage, from the simulator's records and the senders' log. */
function breakerTimes(sim: Simulator, log: { openedAt?: number; closedAt?: number }): BreakerTimes {
  const record = sim.outages()[0];
  const startedAt = record?.startedAt;
  const endsAt = record?.endsAt;
  const inside =
    startedAt === undefined || endsAt === undefined
      ? []
      : sim.requests.filter((r) => r.at >= startedAt && r.at < endsAt);
  const failed = inside.find((r) => typeof r.status !== 'number' || r.status >= 500);
  const messages = inside.filter((r) => r.path === MESSAGES_PATH);
  return {
    outageStartedAt: startedAt,
    outageEndsAt: endsAt,
    firstFailedAt: failed?.at,
    openedAt: log.openedAt,
    closedAt: log.closedAt,
    firstDeliveredAfterAt:
      endsAt === undefined
        ? undefined
        : sim.requests.find((r) => r.at >= endsAt && r.path === MESSAGES_PATH && r.status === 201)?.at,
    messagesBeforeOpen: messages.filter((r) => log.openedAt === undefined || r.at < log.openedAt).length,
    probesDuring: inside.filter((r) => r.method === 'GET' && r.path === '/v1/settings').length,
    messagesDuring: messages.length,
    requestsDuring: inside.length,
  };
}

/** Counts, into `counter`, every request of `client` whose key is the api-client item (docs/ledger.md). */
function countApiClientItemRequests(
  client: ReturnType<typeof createAwsClients>['dynamodb'],
  counter: { count: number },
): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const input = (args as { input?: { Key?: { id?: unknown } } }).input;
      const id = input?.Key?.id;
      // Marshalled ({ S: 'api-client' }) or, before the document client marshals it, plain.
      const key = typeof id === 'string' ? id : (id as { S?: unknown } | undefined)?.S;
      if (key === API_CLIENT_ITEM_ID) counter.count += 1;
      return next(args);
    },
    { step: 'initialize', name: 'pacingDrillApiClientItem' },
  );
}

async function enqueueJobs(sqs: SQSClient, queueUrl: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 10) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Array.from({ length: Math.min(10, count - i) }, (_, k) => ({
          Id: String(k),
          MessageBody: JSON.stringify({
            id: `pacing-${i + k}`,
            message: { to: '+15550100000', content: `Pacing drill reminder ${i + k}`, channel: 'text' },
          }),
        })),
      }),
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
