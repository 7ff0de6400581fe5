import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type EventBridgeStub, startEventBridgeStub } from '#local/emulators/eventbridge-stub.ts';
import type { SecretsManagerStub } from '#local/emulators/secrets-manager-stub.ts';
import { startWebhookGateway, type WebhookGateway } from '#local/lambda/webhook-gateway.ts';
import { DeliveryLedger, type JobDelivery } from '#shared/ledger/delivery.ts';
import type { Observability } from '#shared/observability.ts';
import { createWebhookClients } from '#shared/webhook/clients.ts';
import { loadWebhookConfig, WEBHOOK_ENV } from '#shared/webhook/config.ts';
import { createWebhookHandler } from '#shared/webhook/handler.ts';

export { deliveryHistoryLines, describeDelivery } from './webhook-report.ts';

/** The local webhook secret: 24 characters, as eCourtDate allows. Not a real credential. */
export const LOCAL_WEBHOOK_SECRET = 'relay-local-webhook-0001';
export const LOCAL_WEBHOOK_SECRET_ID = 'ecourtdate-relay/local/webhook-signing-key';
export const LOCAL_EVENT_BUS = 'ecourtdate-relay-local';

export interface LocalWebhookOptions {
  /** The local Secrets Manager stand-in; the webhook secret is put into it. */
  readonly secrets: SecretsManagerStub;
  /** The local DynamoDB endpoint and the ledger table the sender uses. */
  readonly dynamodbEndpoint: string;
  readonly ledgerTableName: string;
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
  /** What was put on the bus. */
  readonly events: EventBridgeStub;
  /** The receiver's environment, as the stack would set it (emulator endpoints included). */
  readonly env: Readonly<Record<string, string>>;
  /** A job's delivery status and history, or undefined when the job has no ledger entry. */
  deliveryOf(jobId: string): Promise<JobDelivery | undefined>;
  /** The delivery status of each of `jobIds` that has one (for a run's summary and report). */
  deliveriesOf(jobIds: readonly string[]): Promise<Map<string, JobDelivery>>;
  close(): Promise<void>;
}

/** Fixed region and credentials for the emulators: no AWS profile is ever consulted. */
const LOCAL_AWS = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };

/**
 * Runs the webhook receiver on loopback behind the same code as in Lambda (docs/webhooks.md, "Locally and in
 * tests"): the real handler (`createWebhookHandler`) in `instances` containers behind the local HTTP API
 * stand-in, its secret in the local Secrets Manager, its dedupe records and the jobs' delivery status in the
 * local ledger table, and an EventBridge stand-in that records what is published.
 *
 * @example
 * const webhooks = await startLocalWebhooks({ secrets, dynamodbEndpoint, ledgerTableName });
 * const sim = await startSimulator({
 *   onMessageCreated: createSimulatorWebhooks({ url: webhooks.url, secret: webhooks.secret }).onMessageCreated,
 * });
 */
export async function startLocalWebhooks(options: LocalWebhookOptions): Promise<LocalWebhooks> {
  options.secrets.setSecret(LOCAL_WEBHOOK_SECRET_ID, JSON.stringify({ secret: LOCAL_WEBHOOK_SECRET }));
  const events = await startEventBridgeStub({ host: options.host });
  const env: Record<string, string> = {
    [WEBHOOK_ENV.secretId]: LOCAL_WEBHOOK_SECRET_ID,
    [WEBHOOK_ENV.eventBusName]: LOCAL_EVENT_BUS,
    [WEBHOOK_ENV.ledgerTableName]: options.ledgerTableName,
    [WEBHOOK_ENV.eventBridgeEndpoint]: events.url,
    [WEBHOOK_ENV.secretsManagerEndpoint]: options.secrets.url,
    [WEBHOOK_ENV.dynamodbEndpoint]: options.dynamodbEndpoint,
    ...options.env,
  };
  const config = loadWebhookConfig(env);
  const clients = Array.from({ length: Math.max(options.instances ?? 2, 1) }, () =>
    createWebhookClients(config, LOCAL_AWS),
  );
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
    await events.close();
    throw error;
  }
  const [first] = clients;
  const delivery = new DeliveryLedger({
    client: first?.dynamodb as DynamoDBClient,
    tableName: options.ledgerTableName,
    ttlSeconds: config.dedupeTtlSeconds,
  });
  return {
    url: gateway.url,
    secret: LOCAL_WEBHOOK_SECRET,
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
      await Promise.allSettled([gateway.close(), events.close()]);
      for (const aws of clients) {
        aws.dynamodb.destroy();
        aws.secrets.destroy();
        aws.eventBridge.destroy();
      }
    },
  };
}
