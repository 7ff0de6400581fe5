import { join } from 'node:path';
import { DEAD_LETTER_RETENTION_DAYS, SEND_QUEUE_RETENTION_DAYS } from '#infra/config.ts';
import { type Simulator, startSimulator } from '#local/ecourtdate-simulator/index.ts';
import { createSimulatorWebhooks, type SimulatorWebhooks } from '#local/ecourtdate-simulator/webhooks.ts';
import { type DynamoDbEmulator, startDynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import { type SecretsManagerStub, startSecretsManagerStub } from '#local/emulators/secrets-manager-stub.ts';
import { type EmulatedQueue, type SqsEmulator, startSqsEmulator } from '#local/emulators/sqs-emulator.ts';
import type { Closers } from '#local/pipeline/closers.ts';
import { LOCAL_REGION } from '#local/pipeline/endpoints-file.ts';
import { openLogFile, sinkObservability } from '#local/pipeline/observability.ts';
import type { RunPlan } from '#local/pipeline/plan.ts';
import { SCENARIO_AGENCIES, SCENARIO_CLIENT, scriptScenario } from '#local/pipeline/scenario.ts';
import { localQueueSettings } from '#local/pipeline/stage.ts';
import {
  LOCAL_WEBHOOK_SECRET,
  type LocalWebhooks,
  startLocalWebhooks,
} from '#local/pipeline/webhook-local.ts';

export const LOCAL_SECRET_ID = 'ecourtdate-relay/local/api-credentials';
export const SEND_QUEUE_NAME = 'ecourtdate-relay-local-send';
export const DEAD_LETTER_QUEUE_NAME = 'ecourtdate-relay-local-dlq';
export const LEDGER_TABLE_NAME = 'ecourtdate-relay-local-ledger';
/** The webhook receiver's log in the state directory, beside the sender's. */
export const WEBHOOK_LOG_FILE = 'webhook.log';

/** The stack's resources, on this machine: what the senders are pointed at. */
export interface LocalResources {
  readonly emulator: SqsEmulator;
  readonly sendQueue: EmulatedQueue;
  readonly deadLetterQueue: EmulatedQueue;
  readonly dynamodb: DynamoDbEmulator;
  /** The built-in simulator; undefined with `--ecourtdate-url`. */
  readonly sim: Simulator | undefined;
  readonly secrets: SecretsManagerStub;
  /** The eCourtDate API of the run: the simulator's URL or `--ecourtdate-url`. */
  readonly baseUrl: string;
  /** The webhook receiver on loopback, behind the same code as in Lambda (docs/webhooks.md). */
  readonly webhooks: LocalWebhooks;
  /** The built-in simulator's signed webhooks for the messages it creates; undefined with `--ecourtdate-url`. */
  readonly simulatorWebhooks: SimulatorWebhooks | undefined;
}

/** Test-only settings of the local webhook receiver (the chaos suite's): see `PipelineHooks.webhookReceiver`. */
export interface WebhookReceiverOverrides {
  /** The receiver's clock, epoch ms. @default Date.now */
  readonly now?: (() => number) | undefined;
}

/**
 * Step 1 of a run: starts the local stand-ins of what the stack creates, each registered with `closers`: the
 * SQS emulator with the send queue and its dead-letter queue configured as the stack configures them (visibility
 * timeout scaled, `maxReceiveCount`, retention), the DynamoDB emulator with the ledger table, the eCourtDate
 * simulator scripted for the sample jobs (unless `--ecourtdate-url`), and the Secrets Manager stand-in holding
 * the API client's credentials; and the webhook receiver, to which the simulator posts signed webhooks for the
 * messages it creates (docs/webhooks.md).
 */
export async function startLocalResources(
  plan: RunPlan,
  closers: Closers,
  overrides: WebhookReceiverOverrides = {},
): Promise<LocalResources> {
  const { stage, options } = plan;
  const emulator = await startSqsEmulator({ region: LOCAL_REGION });
  closers.push(() => emulator.stop());
  const queues = localQueueSettings(stage, options.timeScale, {
    sendDays: SEND_QUEUE_RETENTION_DAYS,
    deadLetterDays: DEAD_LETTER_RETENTION_DAYS,
  });
  const deadLetterQueue = await emulator.createQueue(DEAD_LETTER_QUEUE_NAME, {
    MessageRetentionPeriod: String(queues.deadLetterRetentionSeconds),
  });
  const sendQueue = await emulator.createQueue(SEND_QUEUE_NAME, {
    VisibilityTimeout: String(queues.visibilityTimeoutSeconds),
    MessageRetentionPeriod: String(queues.retentionSeconds),
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: deadLetterQueue.arn,
      maxReceiveCount: String(queues.maxReceiveCount),
    }),
  });

  const dynamodb = await startDynamoDbEmulator();
  closers.push(() => dynamodb.stop());
  await dynamodb.createLedgerTable(LEDGER_TABLE_NAME);

  let sim: Simulator | undefined;
  let webhooks: LocalWebhooks | undefined;
  // eCourtDate reports a message's delivery a few seconds after creating it; scaled like every other delay.
  const simulatorWebhooks =
    options.ecourtdateUrl === undefined
      ? createSimulatorWebhooks({
          url: () => webhooks?.url,
          secret: LOCAL_WEBHOOK_SECRET,
          stepMs: Math.max(50, 2000 / options.timeScale),
        })
      : undefined;
  if (simulatorWebhooks) closers.push(async () => simulatorWebhooks.stop());
  if (options.ecourtdateUrl === undefined) {
    const started = await startSimulator({
      clients: { [SCENARIO_CLIENT.id]: SCENARIO_CLIENT.secret },
      knownAgencies: [...SCENARIO_AGENCIES],
      timeScale: options.timeScale,
      onMessageCreated: simulatorWebhooks?.onMessageCreated,
    });
    closers.push(() => started.close());
    scriptScenario(started);
    sim = started;
  }
  const secrets = await startSecretsManagerStub({
    secrets: {
      [LOCAL_SECRET_ID]: JSON.stringify({
        client_id: plan.credentials.id,
        client_secret: plan.credentials.secret,
      }),
    },
  });
  closers.push(() => secrets.close());
  // The receiver's log lines and EMF metrics go to their own file, as the sender's do, not to the terminal.
  const webhookLog = openLogFile(join(plan.stateDir, WEBHOOK_LOG_FILE));
  closers.push(() => webhookLog.close());
  const webhookSink = { write: (line: string) => webhookLog.write(line), log: () => {}, metric: () => {} };
  const receiver = await startLocalWebhooks({
    secrets,
    dynamodbEndpoint: dynamodb.endpoint,
    ledgerTableName: LEDGER_TABLE_NAME,
    observability: () => sinkObservability(webhookSink),
    ...(overrides.now === undefined ? {} : { now: overrides.now }),
  });
  closers.push(() => receiver.close());
  webhooks = receiver;
  const baseUrl = sim?.url ?? options.ecourtdateUrl?.href ?? '';
  return {
    emulator,
    sendQueue,
    deadLetterQueue,
    dynamodb,
    sim,
    secrets,
    baseUrl,
    webhooks: receiver,
    simulatorWebhooks,
  };
}
