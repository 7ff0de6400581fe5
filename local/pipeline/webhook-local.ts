import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EventBridgeStub } from '#local/emulators/eventbridge-stub.ts';
import { startWebhookGateway, type WebhookGateway } from '#local/lambda/webhook-gateway.ts';
import type { World } from '#local/world.ts';
import { DeliveryLedger, type JobDelivery } from '#shared/ledger/delivery.ts';
import type { Observability } from '#shared/observability.ts';
import { createWebhookClients } from '#shared/webhook/clients.ts';
import { loadWebhookConfig } from '#shared/webhook/config.ts';
import { createWebhookHandler } from '#shared/webhook/handler.ts';

export { deliveryHistoryLines, describeDelivery } from './webhook-report.ts';

export interface LocalWebhookOptions {
  /**
   * A world started with `webhooks: true` (local/world.ts): the receiver reads its webhook secret and ledger
   * table and publishes to its EventBridge stand-in, with its `receiverEnv`.
   */
  readonly world: Pick<World, 'receiverEnv' | 'events' | 'webhookSecret' | 'iam'>;
  /** Receiver containers behind the gateway. @default 2 */
  readonly instances?: number;
  /**
   * Logger, metrics and tracer of each receiver container, e.g. writing to a log file instead of the terminal.
   * @default Powertools printing to stdout, as in Lambda
   */
  readonly observability?: () => Observability;
  /** Extra receiver environment (e.g. `WEBHOOK_ALLOWED_IPS`). */
  readonly env?: Readonly<Record<string, string>>;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 0 (ephemeral) */
  readonly port?: number;
  /**
   * The receiver containers' clock, epoch ms (a test may move it, e.g. past the dedupe window to replay old
   * deliveries). @default Date.now
   */
  readonly now?: () => number;
}

export interface LocalWebhooks {
  /** The webhook URL: what the Console > Webhooks would hold, and where the simulator posts. */
  readonly url: string;
  readonly secret: string;
  /** What was put on the bus: the world's EventBridge stand-in. */
  readonly events: EventBridgeStub;
  /** The receiver's environment, as the stack would set it (emulator endpoints included). */
  readonly env: Readonly<Record<string, string>>;
  /** A job's delivery status and history, or undefined when the job has no ledger entry. */
  deliveryOf(jobId: string): Promise<JobDelivery | undefined>;
  /** The delivery status of each of `jobIds` that has one (for a run's summary and report). */
  deliveriesOf(jobIds: readonly string[]): Promise<Map<string, JobDelivery>>;
  close(): Promise<void>;
}

/** Fixed region and credentials for the emulators (no AWS profile is ever consulted) without the stack's IAM. */
const LOCAL_AWS = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };

/**
 * Runs the webhook receiver on loopback behind the same code as in Lambda (docs/webhooks.md, "Locally and in
 * tests"): the real handler (`createWebhookHandler`) in `instances` containers behind the local HTTP API
 * stand-in, with the world's environment: its secret in the local Secrets Manager, its dedupe records and the
 * jobs' delivery status in the local ledger table, and the world's EventBridge stand-in, which records what is
 * published. Throws when the world has no webhooks. `close()` stops the receiver, not the world.
 *
 * @example
 * let webhooks: LocalWebhooks | undefined;
 * const simulatorWebhooks = createSimulatorWebhooks({ url: () => webhooks?.url, secret: LOCAL_WEBHOOK_SECRET });
 * const world = await startWorld({ webhooks: true, simulator: { onMessageCreated: simulatorWebhooks.onMessageCreated } });
 * webhooks = await startLocalWebhooks({ world });
 */
export async function startLocalWebhooks(options: LocalWebhookOptions): Promise<LocalWebhooks> {
  const { receiverEnv, events, webhookSecret } = options.world;
  if (receiverEnv === undefined || events === undefined || webhookSecret === undefined) {
    throw new Error('startLocalWebhooks needs a world started with webhooks: true');
  }
  const env: Record<string, string> = { ...receiverEnv, ...options.env };
  const config = loadWebhookConfig(env);
  // The receiver signs as its role, so the world's IAM checks its calls (docs/test-world.md).
  const aws = { ...LOCAL_AWS, credentials: options.world.iam?.credentials.receiver ?? LOCAL_AWS.credentials };
  const clients = Array.from({ length: Math.max(options.instances ?? 2, 1) }, () =>
    createWebhookClients(config, aws),
  );
  const destroyClients = () => {
    for (const aws of clients) {
      aws.dynamodb.destroy();
      aws.secrets.destroy();
      aws.eventBridge.destroy();
    }
  };
  let gateway: WebhookGateway;
  try {
    gateway = await startWebhookGateway({
      handlers: clients.map((aws) =>
        createWebhookHandler({
          config,
          ...aws,
          observability: options.observability?.(),
          ...(options.now === undefined ? {} : { now: options.now }),
        }),
      ),
      host: options.host,
      port: options.port,
    });
  } catch (error) {
    destroyClients();
    throw error;
  }
  const [first] = clients;
  const delivery = new DeliveryLedger({
    client: first?.dynamodb as DynamoDBClient,
    tableName: config.ledgerTableName,
    ttlSeconds: config.dedupeTtlSeconds,
  });
  return {
    url: gateway.url,
    secret: webhookSecret,
    events,
    env,
    deliveryOf: (jobId) => delivery.getDelivery(jobId),
    async deliveriesOf(jobIds) {
      const found = new Map<string, JobDelivery>();
      for (const jobId of jobIds) {
        const entry = await delivery.getDelivery(jobId);
        if (entry?.delivery_status !== undefined) found.set(jobId, entry);
      }
      return found;
    },
    async close() {
      await gateway.close().catch(() => undefined);
      destroyClients();
    },
  };
}
