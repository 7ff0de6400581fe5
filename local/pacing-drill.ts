import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { loadStageConfig, type StageConfig } from '#infra/config.ts';
import type { Simulator } from '#local/ecourtdate-simulator/index.ts';
import { busiestWindow } from '#local/ecourtdate-simulator/rate-limit.ts';
import { type SenderSink, sinkObservability } from '#local/pipeline/observability.ts';
import { startWorld } from '#local/world.ts';
import { createAwsClients } from '#shared/clients/aws.ts';
import { loadSenderConfig } from '#shared/config.ts';
import { ECOURTDATE_LIMIT_PER_MINUTE } from '#shared/ecourtdate/pacer.ts';
import { createSenderHandler, type SenderHandler } from '#shared/sender/handler.ts';

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
    const container = () => {
      const clients = createAwsClients(config, LOCAL);
      closers.push(async () => {
        for (const client of Object.values(clients)) client.destroy();
      });
      return {
        handler: createSenderHandler({ config, ...clients, observability: sinkObservability(sink) }),
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
    const jobs = Math.ceil(windows * stage.requestsPerMinute * 1.25) + 10 * options.instances;
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
      await sleep(first + windows * windowMs - Date.now() + 50);
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
    };
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }
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
