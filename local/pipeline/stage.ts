import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadStageConfig, perInstanceRequestsPerMinute, type StageConfig } from '#infra/config.ts';
import { ENV, MAX_VISIBILITY_TIMEOUT_SECONDS } from '#shared/config.ts';

/**
 * The send queue's visibility timeout in function timeouts. Same factor as `infra/stacks/relay-stack.ts`
 * (AWS guidance for SQS event sources: six times the function timeout).
 */
export const VISIBILITY_TIMEOUT_FUNCTION_TIMEOUTS = 6;

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
  const visibility = VISIBILITY_TIMEOUT_FUNCTION_TIMEOUTS * stage.functionTimeoutSeconds;
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

/** Requests a minute each of `concurrency` instances may spend: the stage's budget shared, as the stack does. */
export function instanceRequestsPerMinute(
  stage: Pick<StageConfig, 'requestsPerMinute'>,
  concurrency: number,
) {
  return Math.max(
    1,
    perInstanceRequestsPerMinute({ requestsPerMinute: stage.requestsPerMinute, maxConcurrency: concurrency }),
  );
}

/**
 * The sender environment the stack sets from the stage configuration (infra/stacks/relay-stack.ts), with the
 * rate budget shared by `concurrency` instances. The resource names (queues, secret, table) come on top.
 */
export function senderEnvironment(stage: StageConfig, concurrency: number): Record<string, string> {
  return {
    [ENV.baseUrl]: stage.baseUrl,
    [ENV.requestsPerMinute]: String(instanceRequestsPerMinute(stage, concurrency)),
    [ENV.backoffSeconds]: stage.backoffSeconds.join(','),
    [ENV.maxAttempts]: String(stage.maxAttempts),
    [ENV.duplicateWindowSeconds]: String(stage.duplicateWindowSeconds),
    [ENV.httpTimeoutMs]: String(stage.httpTimeoutMs),
    [ENV.ledgerTtlDays]: String(stage.ledgerTtlDays),
  };
}
