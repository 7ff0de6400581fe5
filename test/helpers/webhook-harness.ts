import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { vi } from 'vitest';
import type { DynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import type { EventBridgeStub } from '#local/emulators/eventbridge-stub.ts';
import type { SecretsManagerStub } from '#local/emulators/secrets-manager-stub.ts';
import { describeDenials } from '#local/iam/gate.ts';
import type { LocalIam, PolicyEdit } from '#local/iam/local-iam.ts';
import { startWebhookGateway, type WebhookGateway } from '#local/lambda/webhook-gateway.ts';
import { LOCAL_RESOURCE_NAMES } from '#local/resource-names.ts';
import { startWorld, type World } from '#local/world.ts';
import { DeliveryLedger } from '#shared/ledger/delivery.ts';
import { createWebhookClients, type WebhookClients } from '#shared/webhook/clients.ts';
import { loadWebhookConfig } from '#shared/webhook/config.ts';
import { createWebhookHandler, type WebhookHandler } from '#shared/webhook/handler.ts';
import { signBody } from '#shared/webhook/signature.ts';

/** The world's webhook signing-key secret, ledger table and event bus (local/resource-names.ts). */
export const WEBHOOK_SECRET_ID = LOCAL_RESOURCE_NAMES.webhookSecretId;
/** 22 characters: within eCourtDate's 24. */
export const WEBHOOK_SECRET = 'whk9f8e7d6c5b4a3928170';
export const WEBHOOK_LEDGER_TABLE = LOCAL_RESOURCE_NAMES.ledgerTable;
export const WEBHOOK_EVENT_BUS = LOCAL_RESOURCE_NAMES.eventBus;

export interface WebhookHarness {
  /** The world the harness runs in (local/world.ts), started with webhooks. */
  readonly world: World;
  /** The webhook URL on the local gateway. */
  readonly url: string;
  readonly events: EventBridgeStub;
  readonly secrets: SecretsManagerStub;
  readonly dynamodb: DynamoDbEmulator;
  readonly env: Readonly<Record<string, string>>;
  /** The stack's IAM as the emulators enforce it: the receiver role's calls and denials. */
  readonly iam: LocalIam;
  /** The real `functions/webhook.ts` handler, loaded with this harness's environment. */
  readonly handler: WebhookHandler;
  readonly delivery: DeliveryLedger;
  /**
   * Another Lambda container with the same configuration and its own caches, or with extra variables, its own
   * clock (epoch ms), or its SDK clients changed before use (e.g. `injectDynamoFaults`).
   */
  createInstance(options?: InstanceOptions): WebhookHandler;
  /** A gateway in front of other handlers (e.g. with another configuration), closed with the harness. */
  gateway(
    handlers: readonly WebhookHandler[],
    options?: { base64?: 'auto' | 'always' },
  ): Promise<WebhookGateway>;
  /** POSTs `body` (object → JSON; string or bytes → as is), signed with the secret unless `signature` is given. */
  post(body: unknown, options?: PostOptions): Promise<Response>;
  /** A job's ledger entry as the sender leaves it after a 201, with the uuid index written. */
  seedDeliveredJob(jobId: string, messageUuid: string): Promise<void>;
  /** A job's ledger entry as the sender leaves it after a 201, before it writes the uuid index. */
  seedJob(jobId: string, messageUuid: string): Promise<void>;
  close(): Promise<void>;
}

export interface InstanceOptions {
  readonly env?: Record<string, string>;
  readonly now?: () => number;
  readonly clients?: (clients: WebhookClients) => void;
}

export interface PostOptions {
  /** `null`: no signature header. */
  readonly signature?: string | null;
  readonly headers?: Record<string, string>;
  readonly method?: string;
  readonly url?: string;
}

/** The body's bytes as they go on the wire. */
export function bodyBytes(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (body === undefined) return Buffer.alloc(0);
  return Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
}

/**
 * Starts the receiver's world on loopback (`startWorld` with webhooks, local/world.ts): dynalite with the ledger
 * table, a Secrets Manager endpoint holding the webhook secret, the EventBridge stub, the real handler loaded
 * from `functions/webhook.ts` with the world's receiver environment, and the local API Gateway in front of it
 * (`instances` containers, round-robin).
 */
export async function startWebhookHarness(
  options: {
    env?: Record<string, string>;
    instances?: number;
    secretValue?: string;
    /** Changes the receiver role's policy before use, e.g. removing one grant (local/iam/). */
    receiverPolicy?: PolicyEdit;
  } = {},
): Promise<WebhookHarness> {
  const world = await startWorld({
    webhooks: true,
    webhookSecret: WEBHOOK_SECRET,
    webhookSecretValue: options.secretValue,
    // The handler loaded from functions/webhook.ts signs with the environment's credentials, as in Lambda.
    iam: {
      receiverPolicy: options.receiverPolicy,
      extraAccessKeyIds: { receiver: process.env.AWS_ACCESS_KEY_ID ? [process.env.AWS_ACCESS_KEY_ID] : [] },
    },
  });
  const iam = world.iam as LocalIam;
  const { dynamodb, secrets } = world;
  const events = world.events as EventBridgeStub;
  const env: Record<string, string> = { ...world.receiverEnv, ...options.env };
  const handler = await loadWebhookModule(env);
  const createInstance = (instance: InstanceOptions = {}) => {
    const config = loadWebhookConfig({ ...env, ...instance.env });
    const clients = createWebhookClients(config);
    instance.clients?.(clients);
    return createWebhookHandler({ config, ...clients, now: instance.now });
  };
  const handlers = [
    handler,
    ...Array.from({ length: Math.max((options.instances ?? 1) - 1, 0) }, () => createInstance()),
  ];
  const gateways: WebhookGateway[] = [await startWebhookGateway({ handlers })];
  const [main] = gateways as [WebhookGateway];
  const delivery = new DeliveryLedger({
    client: dynamodb.client,
    tableName: WEBHOOK_LEDGER_TABLE,
    ttlSeconds: 86_400,
  });
  // The sender's own uuid index write, made as the sender makes it: signed as its role, so the world's IAM checks it.
  const senderDynamodb = new DynamoDBClient({
    endpoint: dynamodb.endpoint,
    region: 'us-east-1',
    credentials: iam.credentials.sender,
  });
  const senderDelivery = new DeliveryLedger({
    client: senderDynamodb,
    tableName: WEBHOOK_LEDGER_TABLE,
    ttlSeconds: 86_400,
  });
  const doc = DynamoDBDocumentClient.from(dynamodb.client);
  const seedJob = async (jobId: string, messageUuid: string): Promise<void> => {
    const now = Date.now();
    await doc.send(
      new PutCommand({
        TableName: WEBHOOK_LEDGER_TABLE,
        Item: {
          id: `job#${jobId}`,
          job_id: jobId,
          status: 'delivered',
          uuid: messageUuid,
          version: 2,
          history: [],
          expiration: Math.floor(now / 1000) + 86_400,
          updated_at: now,
        },
      }),
    );
  };

  return {
    world,
    url: main.url,
    events,
    secrets,
    dynamodb,
    env,
    iam,
    handler,
    delivery,
    createInstance,
    async gateway(list, gatewayOptions = {}) {
      const gateway = await startWebhookGateway({ handlers: list, base64: gatewayOptions.base64 });
      gateways.push(gateway);
      return gateway;
    },
    post(body, postOptions = {}) {
      const bytes = bodyBytes(body);
      const signature =
        postOptions.signature === undefined ? signBody(WEBHOOK_SECRET, bytes) : postOptions.signature;
      return fetch(postOptions.url ?? main.url, {
        method: postOptions.method ?? 'POST',
        headers: {
          'content-type': 'application/json',
          ...(signature === null ? {} : { 'x-ecd-signature': signature }),
          ...postOptions.headers,
        },
        body: (postOptions.method ?? 'POST') === 'GET' ? undefined : bytes,
      });
    },
    async seedDeliveredJob(jobId, messageUuid) {
      await seedJob(jobId, messageUuid);
      await senderDelivery.putUuidIndex(messageUuid, jobId);
    },
    seedJob,
    async close() {
      await Promise.allSettled(gateways.map((gateway) => gateway.close()));
      senderDynamodb.destroy();
      await world.close();
      // A call the stack's IAM denies fails the test that made it, unless the test removed the grant itself or
      // took the denial it expected (`iam.gate.takeDenials()`).
      const denied = iam.gate.denials();
      if (denied.length > 0 && !options.receiverPolicy) throw new Error(describeDenials(denied));
    },
  };
}

/**
 * Loads `functions/webhook.ts` afresh (a cold start) with `env` as its environment; the module reads its
 * configuration at import, so the environment is set for the import and restored afterwards.
 */
export async function loadWebhookModule(env: Record<string, string>): Promise<WebhookHandler> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    vi.resetModules();
    const module = (await import('../../functions/webhook.ts')) as { handler: WebhookHandler };
    return module.handler;
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

export { type DynamoFault, injectDynamoFaults } from '#test/helpers/dynamo-faults.ts';
