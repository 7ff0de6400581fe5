import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadStageConfig, type StageConfig } from '#infra/config.ts';
import {
  type SenderResources,
  senderEnvironment,
  sendQueueVisibilityTimeoutSeconds,
} from '#infra/stack-contract.ts';
import { ENV, MAX_VISIBILITY_TIMEOUT_SECONDS } from '#shared/config.ts';

/**
 * The stage configuration the CDK app would deploy from this checkout: the context in `cdk.json` (stage
 * `staging` unless it says otherwise) through the same `loadStageConfig`, with `overrides` on top, so the
 * local queues, retry settings and alarm thresholds are the deployed ones. Throws `ConfigError`.
 */
export function cdkStageConfig(cwd: string, overrides: Record<string, string> = {}): StageConfig {
  return loadStageConfig({ stage: 'staging', ...cdkContext(cwd), ...overrides });
}

function cdkContext(cwd: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(join(cwd, 'cdk.json'), 'utf8');
  } catch {
    return {};
  }
  const parsed = JSON.parse(text) as { context?: Record<string, unknown> };
  return parsed.context ?? {};
}

export interface LocalQueueSettings {
  /** Attributes of the send queue for CreateQueue, less the RedrivePolicy (which needs the DLQ's ARN). */
  readonly visibilityTimeoutSeconds: number;
  readonly maxReceiveCount: number;
  readonly retentionSeconds: number;
  readonly deadLetterRetentionSeconds: number;
}

/**
 * The queues as the stack configures them, with the visibility timeout divided by the time scale like every
 * other delay of a local run (never below 1 s). Retention is not scaled: nothing in a run lives that long.
 */
export function localQueueSettings(
  stage: Pick<StageConfig, 'functionTimeoutSeconds' | 'maxReceiveCount'>,
  timeScale: number,
  retention: { sendDays: number; deadLetterDays: number },
): LocalQueueSettings {
  const visibility = sendQueueVisibilityTimeoutSeconds(stage);
  return {
    visibilityTimeoutSeconds: Math.min(
      MAX_VISIBILITY_TIMEOUT_SECONDS,
      Math.max(1, Math.round(visibility / timeScale)),
    ),
    maxReceiveCount: stage.maxReceiveCount,
    retentionSeconds: retention.sendDays * 86_400,
    deadLetterRetentionSeconds: retention.deadLetterDays * 86_400,
  };
}

export interface LocalSender {
  /** The eCourtDate API of the run: the simulator, or `--ecourtdate-url`. */
  readonly baseUrl: string;
  /** Simulated instances; the stage's rate budget is shared by them as the stack shares it by maxConcurrency. */
  readonly concurrency: number;
  readonly timeScale: number;
  readonly resources: SenderResources;
  readonly endpoints: {
    readonly sqs: string;
    readonly secretsManager: string;
    readonly dynamodb: string;
    /** For a stage that publishes `eCourtDate Job Settled`: the local EventBridge stand-in. */
    readonly eventBridge?: string | undefined;
  };
}

/**
 * The sender's environment in a local run: what the stack gives the function (`senderEnvironment`, with the
 * run's API, instance count and emulator resources), plus the time scale and the emulator endpoints.
 */
export function localSenderEnvironment(stage: StageConfig, local: LocalSender): Record<string, string> {
  return {
    ...senderEnvironment(
      { ...stage, baseUrl: local.baseUrl, maxConcurrency: local.concurrency },
      local.resources,
    ),
    [ENV.timeScale]: String(local.timeScale),
    [ENV.sqsEndpoint]: local.endpoints.sqs,
    [ENV.secretsManagerEndpoint]: local.endpoints.secretsManager,
    [ENV.dynamodbEndpoint]: local.endpoints.dynamodb,
    ...(local.endpoints.eventBridge === undefined
      ? {}
      : { [ENV.eventBridgeEndpoint]: local.endpoints.eventBridge }),
  };
}
