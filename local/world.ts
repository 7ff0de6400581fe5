import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { loadStageConfig, type StageConfig } from '#infra/config.ts';
import { type Simulator, type SimulatorOptions, startSimulator } from '#local/ecourtdate-simulator/index.ts';
import { type DynamoDbEmulator, startDynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import { type EventBridgeStub, startEventBridgeStub } from '#local/emulators/eventbridge-stub.ts';
import { type SecretsManagerStub, startSecretsManagerStub } from '#local/emulators/secrets-manager-stub.ts';
import {
  type EmulatedQueue,
  type SqsEmulator,
  type SqsEmulatorOptions,
  startSqsEmulator,
} from '#local/emulators/sqs-emulator.ts';
import type { PolicyEdit } from '#local/iam/local-iam.ts';
import { createLocalIam, type LocalIam } from '#local/iam/local-iam.ts';
import { type PollResult, pollOnce, type SqsHandler } from '#local/lambda/event-source.ts';
import {
  type EventSourceMapping,
  type EventSourceMappingOptions,
  startEventSourceMapping,
} from '#local/lambda/event-source-mapping.ts';
import { EMULATOR_CREDENTIALS, LOCAL_REGION } from '#local/pipeline/endpoints-file.ts';
import { localQueueSettings, localSenderEnvironment } from '#local/pipeline/stage.ts';
import { LOCAL_API_CLIENT, LOCAL_RESOURCE_NAMES, LOCAL_WEBHOOK_SECRET } from '#local/resource-names.ts';
import { WEBHOOK_ENV } from '#shared/webhook/config.ts';

export { LOCAL_API_CLIENT, LOCAL_RESOURCE_NAMES, LOCAL_WEBHOOK_SECRET } from '#local/resource-names.ts';

/**
 * The stack's IAM in the world (docs/test-world.md, "The stack's IAM"): every call a function role makes through
 * the emulators is checked against the role's policies in the synthesised template, and refused as AWS refuses
 * it. On by default; `false` turns it off (the benchmark, which measures the relay, not the check).
 */
export interface WorldIamSpec {
  /** Changes the sender role's resolved statements before use, e.g. a test removing one grant. */
  readonly senderPolicy?: PolicyEdit;
  /** Changes the webhook receiver role's resolved statements before use. */
  readonly receiverPolicy?: PolicyEdit;
  /**
   * Further access key ids that sign as a role: a function loaded from its environment, as Lambda loads it,
   * signs with the process's default credentials (`AWS_ACCESS_KEY_ID`). @default none
   */
  readonly extraAccessKeyIds?: { readonly sender?: readonly string[]; readonly receiver?: readonly string[] };
}

/** Fixed ports, e.g. for an endpoints file that outlives one run; 0 (or absent) picks a free one. */
export interface WorldPorts {
  /** The strict SQS layer. @default 0 */
  readonly sqs?: number;
  /** The DynamoDB emulator's front. @default 0 */
  readonly dynamodb?: number;
  /** The Secrets Manager stand-in. @default 0 */
  readonly secretsManager?: number;
  /** The EventBridge stand-in. @default 0 */
  readonly eventBridge?: number;
  /** The eCourtDate simulator. @default 0 */
  readonly simulator?: number;
}

/** What a world holds and how it is configured; every option has a default, so `startWorld()` is a whole world. */
export interface WorldSpec {
  /**
   * The stage whose settings shape the queues (visibility timeout, `maxReceiveCount`, retention) and the
   * sender's environment, as `cdk deploy` would set them. @default `loadStageConfig({ stage: 'staging' })`
   */
  readonly stage?: StageConfig;
  /**
   * Divides every delay and window of the run (`TIME_SCALE` of the sender, the simulator's windows, the send
   * queue's visibility timeout; docs/operating.md, "Quick start (local pipeline)"). @default 1
   */
  readonly timeScale?: number;
  /** Sender instances sharing the stage's rate budget (the stack's `maxConcurrency`). @default the stage's */
  readonly concurrency?: number;
  /**
   * The send queue's redrive `maxReceiveCount`, also given to the sender as `MAX_RECEIVE_COUNT`.
   * @default the stage's
   */
  readonly maxReceiveCount?: number;
  /**
   * Attributes of the send queue over the world's (`VisibilityTimeout` and `MessageRetentionPeriod` as the stack
   * sets them, scaled by `timeScale`; `RedrivePolicy` to the dead-letter queue). @default none
   */
  readonly sendQueueAttributes?: Readonly<Record<string, string>>;
  /** Attributes of the dead-letter queue over the world's (`MessageRetentionPeriod`). @default none */
  readonly deadLetterQueueAttributes?: Readonly<Record<string, string>>;
  /** Also creates the EventBridge rule's dead-letter queue. @default false */
  readonly eventsDeadLetterQueue?: boolean;
  /** Options of the strict SQS layer (its clock, time scale, refusal hook; docs/sqs-limits.md). @default none */
  readonly sqs?: Omit<SqsEmulatorOptions, 'port' | 'region'>;
  /**
   * The eCourtDate API client: the simulator accepts it and the API-credentials secret holds it.
   * @default LOCAL_API_CLIENT
   */
  readonly apiClient?: { readonly id: string; readonly secret: string };
  /** The API-credentials secret's value as stored, e.g. malformed JSON. @default JSON of `apiClient` */
  readonly apiSecretValue?: string;
  /**
   * Options of the eCourtDate simulator, over the world's (`clients`: `apiClient`; `timeScale`).
   * @default none
   */
  readonly simulator?: SimulatorOptions;
  /** An eCourtDate-compatible API to use instead of the simulator (none is started then). @default the simulator */
  readonly ecourtdateUrl?: string;
  /**
   * Webhooks on (docs/webhooks.md): the webhook signing-key secret is stored, the sender writes the uuid index
   * (`WEBHOOKS_ENABLED`), the EventBridge stand-in starts and `receiverEnv` is set. @default false
   */
  readonly webhooks?: boolean;
  /** The webhook signing key the secret holds. @default LOCAL_WEBHOOK_SECRET */
  readonly webhookSecret?: string;
  /** The webhook secret's value as stored, e.g. malformed JSON. @default `{"secret": webhookSecret}` */
  readonly webhookSecretValue?: string;
  /**
   * Starts the EventBridge stand-in. The sender publishes `eCourtDate Job Settled` to it when the stage says
   * `publishJobSettled`. @default `webhooks || stage.publishJobSettled`
   */
  readonly eventBridge?: boolean;
  /** Fixed ports. @default every one 0 (a free one) */
  readonly ports?: WorldPorts;
  /** The stack's IAM (see `WorldIamSpec`); `false`: every call is allowed. @default checked */
  readonly iam?: WorldIamSpec | false;
}

/** The world's resources, started on 127.0.0.1 and named by `LOCAL_RESOURCE_NAMES`. */
export interface World {
  /** The SQS emulator behind the strict layer (its `sqs` client is pointed at it). */
  readonly sqs: SqsEmulator;
  /** The send queue, configured as the stack configures it (see `WorldSpec.sendQueueAttributes`). */
  readonly sendQueue: EmulatedQueue;
  readonly deadLetterQueue: EmulatedQueue;
  /** The EventBridge rule's dead-letter queue; undefined unless `WorldSpec.eventsDeadLetterQueue`. */
  readonly eventsDeadLetterQueue: EmulatedQueue | undefined;
  /** The DynamoDB emulator holding the ledger table. */
  readonly dynamodb: DynamoDbEmulator;
  readonly ledgerTableName: string;
  /** The Secrets Manager stand-in holding the API-credentials secret (and the webhook secret, with webhooks). */
  readonly secrets: SecretsManagerStub;
  readonly apiCredentialsSecretId: string;
  /** The webhook signing-key secret's id; undefined without webhooks. */
  readonly webhookSecretId: string | undefined;
  /** The webhook signing key the secret holds; undefined without webhooks. */
  readonly webhookSecret: string | undefined;
  /** The EventBridge stand-in; undefined unless asked for (see `WorldSpec.eventBridge`). */
  readonly events: EventBridgeStub | undefined;
  readonly eventBusName: string;
  /** The eCourtDate simulator; undefined with `WorldSpec.ecourtdateUrl`. */
  readonly simulator: Simulator | undefined;
  /** The eCourtDate API the sender calls: the simulator's URL or `WorldSpec.ecourtdateUrl`. */
  readonly baseUrl: string;
  readonly stage: StageConfig;
  readonly timeScale: number;
  /** Sender instances the environment shares the rate budget among (`WorldSpec.concurrency`). */
  readonly concurrency: number;
  /**
   * The sender's environment as the stack sets it (`localSenderEnvironment`: the stage's settings, this world's
   * resources, the time scale and the emulator endpoints).
   */
  readonly senderEnv: Readonly<Record<string, string>>;
  /** The webhook receiver's environment as the stack sets it, pointed at the emulators; undefined without webhooks. */
  readonly receiverEnv: Readonly<Record<string, string>> | undefined;
  /**
   * The stack's IAM as the emulators enforce it: its gate (every call checked, `denials()`, `takeDenials()`) and
   * each role's credentials, for the functions' SDK clients; undefined with `iam: false`.
   */
  readonly iam: LocalIam | undefined;
  /**
   * One poll of the send queue as Lambda's event source mapping makes it (local/lambda/event-source.ts), signed as
   * the sender's role: receive up to `batchSize` records without waiting, invoke `handler`, delete what succeeded;
   * `onTimeout` ends the invocation's container at the function timeout. The first poll reads the queue's
   * attributes first, as Lambda does when a mapping starts.
   */
  poll(
    handler: SqsHandler,
    options: {
      readonly functionTimeoutMs: number;
      readonly batchSize?: number | undefined;
      readonly onTimeout?: (() => void) | undefined;
    },
  ): Promise<PollResult>;
  /** The event source mapping (local/lambda/event-source-mapping.ts) on the send queue. */
  startEventSourceMapping(options: Omit<EventSourceMappingOptions, 'queue'>): EventSourceMapping;
  /** Stops everything the world started, the simulator first and the SQS emulator last. Safe to repeat. */
  close(): Promise<void>;
}

/**
 * Starts the relay's world on loopback, once, for every harness, the local pipeline, the chaos suite and the
 * benchmark: the SQS emulator behind the strict layer with the send queue and its dead-letter queue (and the
 * events dead-letter queue when asked), the DynamoDB emulator with the ledger table, the Secrets Manager
 * stand-in with the API-credentials secret (and the webhook signing key, with webhooks), the EventBridge
 * stand-in when asked, and the eCourtDate simulator unless an external API is given. Names come from
 * `LOCAL_RESOURCE_NAMES`. What started is stopped again when a later piece fails; the error is rethrown.
 *
 * @example
 * const world = await startWorld({ maxReceiveCount: 50 });
 * const handler = createSenderHandler({ config: loadSenderConfig(world.senderEnv), ...clients });
 * await world.poll(handler, { functionTimeoutMs: 60_000 });
 * await world.close();
 */
export async function startWorld(spec: WorldSpec = {}): Promise<World> {
  const stage = spec.stage ?? loadStageConfig({ stage: 'staging' });
  const timeScale = spec.timeScale ?? 1;
  const maxReceiveCount = spec.maxReceiveCount ?? stage.maxReceiveCount;
  const concurrency = spec.concurrency ?? stage.maxConcurrency;
  const webhooks = spec.webhooks ?? false;
  const wantEvents = spec.eventBridge ?? (webhooks || stage.publishJobSettled);
  const ports = spec.ports ?? {};
  const names = LOCAL_RESOURCE_NAMES;
  // Stopped in reverse order of starting.
  const stops: (() => Promise<unknown>)[] = [];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    })();
    return closing;
  };

  const jobSettledBus = stage.publishJobSettled && wantEvents;
  try {
    // The stack this world stands for: webhooks, and the Job Settled events on the world's bus.
    const iam =
      spec.iam === false
        ? undefined
        : await createLocalIam({
            context: {
              ...(webhooks ? { webhooks: true } : {}),
              ...(jobSettledBus ? { publishJobSettled: true } : {}),
              ...(webhooks || jobSettledBus ? { eventBusName: names.eventBus } : {}),
            },
            resources: {
              sendQueue: names.sendQueue,
              deadLetterQueue: names.deadLetterQueue,
              ledgerTable: names.ledgerTable,
              apiSecret: names.apiCredentialsSecretId,
              webhookSecret: webhooks ? names.webhookSecretId : undefined,
            },
            extraAccessKeyIds: spec.iam?.extraAccessKeyIds,
            statements: { sender: spec.iam?.senderPolicy, receiver: spec.iam?.receiverPolicy },
          });
    const gate = iam?.gate;
    const sqs = await startSqsEmulator({ ...spec.sqs, region: LOCAL_REGION, port: ports.sqs, iam: gate });
    stops.push(() => sqs.stop());
    const queues = localQueueSettings({ ...stage, maxReceiveCount }, timeScale, {
      sendDays: stage.sendQueueRetentionDays,
      deadLetterDays: stage.deadLetterRetentionDays,
    });
    const deadLetterQueue = await sqs.createQueue(names.deadLetterQueue, {
      MessageRetentionPeriod: String(queues.deadLetterRetentionSeconds),
      ...spec.deadLetterQueueAttributes,
    });
    const sendQueue = await sqs.createQueue(names.sendQueue, {
      VisibilityTimeout: String(queues.visibilityTimeoutSeconds),
      MessageRetentionPeriod: String(queues.retentionSeconds),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: deadLetterQueue.arn,
        maxReceiveCount: String(queues.maxReceiveCount),
      }),
      ...spec.sendQueueAttributes,
    });
    const eventsDeadLetterQueue = spec.eventsDeadLetterQueue
      ? await sqs.createQueue(names.eventsDeadLetterQueue, {
          MessageRetentionPeriod: String(queues.deadLetterRetentionSeconds),
        })
      : undefined;

    const dynamodb = await startDynamoDbEmulator({ port: ports.dynamodb, iam: gate });
    stops.push(() => dynamodb.stop());
    await dynamodb.createLedgerTable(names.ledgerTable);

    const apiClient = spec.apiClient ?? LOCAL_API_CLIENT;
    const webhookSecret = webhooks ? (spec.webhookSecret ?? LOCAL_WEBHOOK_SECRET) : undefined;
    const secrets = await startSecretsManagerStub({
      port: ports.secretsManager,
      iam: gate,
      secrets: {
        [names.apiCredentialsSecretId]:
          spec.apiSecretValue ?? JSON.stringify({ client_id: apiClient.id, client_secret: apiClient.secret }),
        ...(webhookSecret === undefined
          ? {}
          : {
              [names.webhookSecretId]: spec.webhookSecretValue ?? JSON.stringify({ secret: webhookSecret }),
            }),
      },
    });
    stops.push(() => secrets.close());

    const events = wantEvents
      ? await startEventBridgeStub({ port: ports.eventBridge, iam: gate })
      : undefined;
    if (events) stops.push(() => events.close());

    const simulator =
      spec.ecourtdateUrl === undefined
        ? await startSimulator({
            clients: { [apiClient.id]: apiClient.secret },
            timeScale,
            port: ports.simulator,
            ...spec.simulator,
          })
        : undefined;
    if (simulator) stops.push(() => simulator.close());
    const baseUrl = simulator?.url ?? spec.ecourtdateUrl ?? '';

    const pollerSqs = new SQSClient({
      endpoint: sqs.endpoint,
      useQueueUrlAsEndpoint: false,
      region: LOCAL_REGION,
      credentials: iam?.credentials.sender ?? EMULATOR_CREDENTIALS,
    });
    stops.push(async () => pollerSqs.destroy());
    let mappingStarted: Promise<unknown> | undefined;
    const senderEnv = localSenderEnvironment(
      { ...stage, maxReceiveCount },
      {
        baseUrl,
        concurrency,
        timeScale,
        resources: {
          secretId: names.apiCredentialsSecretId,
          sendQueueUrl: sendQueue.url,
          deadLetterQueueUrl: deadLetterQueue.url,
          ledgerTableName: names.ledgerTable,
          webhooksEnabled: webhooks,
          jobSettledBusName: jobSettledBus ? names.eventBus : undefined,
        },
        endpoints: {
          sqs: sqs.endpoint,
          secretsManager: secrets.url,
          dynamodb: dynamodb.endpoint,
          eventBridge: jobSettledBus ? events?.url : undefined,
        },
      },
    );
    const receiverEnv = webhooks
      ? {
          [WEBHOOK_ENV.secretId]: names.webhookSecretId,
          [WEBHOOK_ENV.eventBusName]: names.eventBus,
          [WEBHOOK_ENV.ledgerTableName]: names.ledgerTable,
          ...(events === undefined ? {} : { [WEBHOOK_ENV.eventBridgeEndpoint]: events.url }),
          [WEBHOOK_ENV.secretsManagerEndpoint]: secrets.url,
          [WEBHOOK_ENV.dynamodbEndpoint]: dynamodb.endpoint,
        }
      : undefined;

    return {
      sqs,
      sendQueue,
      deadLetterQueue,
      eventsDeadLetterQueue,
      dynamodb,
      ledgerTableName: names.ledgerTable,
      secrets,
      apiCredentialsSecretId: names.apiCredentialsSecretId,
      webhookSecretId: webhooks ? names.webhookSecretId : undefined,
      webhookSecret,
      events,
      eventBusName: names.eventBus,
      simulator,
      baseUrl,
      stage,
      timeScale,
      concurrency,
      senderEnv,
      receiverEnv,
      iam,
      async poll(handler, options) {
        // Lambda reads the queue's attributes with the function's role when the mapping starts.
        mappingStarted ??= pollerSqs.send(
          new GetQueueAttributesCommand({ QueueUrl: sendQueue.url, AttributeNames: ['VisibilityTimeout'] }),
        );
        await mappingStarted;
        return pollOnce({
          // Lambda's pollers sign as the function's execution role: the world's IAM checks their calls.
          sqs: pollerSqs,
          queueUrl: sendQueue.url,
          queueArn: sendQueue.arn,
          handler,
          waitTimeSeconds: 0,
          functionTimeoutMs: options.functionTimeoutMs,
          batchSize: options.batchSize,
          onTimeout: options.onTimeout,
        });
      },
      startEventSourceMapping: (options) => startEventSourceMapping({ ...options, queue: sendQueue }),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
