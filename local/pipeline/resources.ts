import { join } from 'node:path';
import type { Simulator } from '#local/ecourtdate-simulator/index.ts';
import { createSimulatorWebhooks, type SimulatorWebhooks } from '#local/ecourtdate-simulator/webhooks.ts';
import type { DynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import type { SecretsManagerStub } from '#local/emulators/secrets-manager-stub.ts';
import type { EmulatedQueue, SqsEmulator } from '#local/emulators/sqs-emulator.ts';
import type { Closers } from '#local/pipeline/closers.ts';
import { openLogFile, sinkObservability } from '#local/pipeline/observability.ts';
import { type RunPlan, StartError } from '#local/pipeline/plan.ts';
import {
  SCENARIO_AGENCIES,
  SCENARIO_CLIENT,
  scheduleOutages,
  scriptScenario,
} from '#local/pipeline/scenario.ts';
import type { PipelineHooks } from '#local/pipeline/senders.ts';
import { type LocalWebhooks, startLocalWebhooks } from '#local/pipeline/webhook-local.ts';
import { LOCAL_WEBHOOK_SECRET } from '#local/resource-names.ts';
import { startWorld, type World } from '#local/world.ts';

/** The webhook receiver's log in the state directory, beside the sender's. */
export const WEBHOOK_LOG_FILE = 'webhook.log';

/** The stack's resources, on this machine: what the senders are pointed at. */
export interface LocalResources {
  /** The local world (local/world.ts): every resource below, its names and the sender's environment. */
  readonly world: World;
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
 * Step 1 of a run: starts the local world (`startWorld`, registered with `closers`) for the run's stage, time scale
 * and instance count: the SQS emulator with the send queue and its dead-letter queue configured as the stack
 * configures them (visibility timeout scaled, `maxReceiveCount`, retention), the DynamoDB emulator with the
 * ledger table, the eCourtDate simulator scripted for the sample jobs (unless `--ecourtdate-url`), the Secrets
 * Manager stand-in holding the API client's credentials and the webhook signing key, and the EventBridge
 * stand-in; then the webhook receiver, to which the simulator posts signed webhooks for the messages it creates
 * (docs/webhooks.md). With `hooks.world`, that world is used instead and left running. Throws `StartError` when
 * it does not fit the plan.
 */
export async function startLocalResources(
  plan: RunPlan,
  closers: Closers,
  hooks: Pick<PipelineHooks, 'webhookReceiver' | 'world'> = {},
): Promise<LocalResources> {
  const overrides = hooks.webhookReceiver ?? {};
  const { options } = plan;
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
  const world =
    hooks.world ??
    (await startWorld({
      stage: plan.stage,
      timeScale: options.timeScale,
      concurrency: plan.concurrency,
      apiClient: plan.credentials,
      webhooks: true,
      ...(options.ecourtdateUrl === undefined
        ? {
            simulator: {
              clients: { [SCENARIO_CLIENT.id]: SCENARIO_CLIENT.secret },
              knownAgencies: [...SCENARIO_AGENCIES],
              onMessageCreated: simulatorWebhooks?.onMessageCreated,
            },
          }
        : { ecourtdateUrl: options.ecourtdateUrl.href }),
    }));
  if (hooks.world === undefined) closers.push(() => world.close());
  else checkGivenWorld(plan, world);
  if (simulatorWebhooks) closers.push(async () => simulatorWebhooks.stop());
  if (world.simulator) scriptScenario(world.simulator);
  if (world.simulator && options.ecourtdateUrl === undefined)
    scheduleOutages(world.simulator, options, Date.now());
  // The receiver's log lines and EMF metrics go to their own file, as the sender's do, not to the terminal.
  const webhookLog = openLogFile(join(plan.stateDir, WEBHOOK_LOG_FILE));
  closers.push(() => webhookLog.close());
  const webhookSink = { write: (line: string) => webhookLog.write(line), log: () => {}, metric: () => {} };
  const receiver = await startLocalWebhooks({
    world,
    observability: () => sinkObservability(webhookSink),
    ...(overrides.now === undefined ? {} : { now: overrides.now }),
  });
  closers.push(() => receiver.close());
  webhooks = receiver;
  return {
    world,
    emulator: world.sqs,
    sendQueue: world.sendQueue,
    deadLetterQueue: world.deadLetterQueue,
    dynamodb: world.dynamodb,
    // With --ecourtdate-url the API is not the run's own, even when a given world's simulator serves it.
    sim: options.ecourtdateUrl === undefined ? world.simulator : undefined,
    secrets: world.secrets,
    baseUrl: world.baseUrl,
    webhooks: receiver,
    simulatorWebhooks,
  };
}

/** A world given to the run must be the one the run would start: webhooks on, its stage, scale and instances. */
function checkGivenWorld(plan: RunPlan, world: World): void {
  const unlike: string[] = [];
  if (world.receiverEnv === undefined) unlike.push('webhooks');
  if (JSON.stringify(world.stage) !== JSON.stringify(plan.stage)) unlike.push('stage');
  if (world.timeScale !== plan.options.timeScale) unlike.push('time scale');
  if (world.concurrency !== plan.concurrency) unlike.push('instance count');
  if (unlike.length > 0) {
    throw new StartError(`the given world does not fit the run: ${unlike.join(', ')} differ`);
  }
}
