import { ENV } from '#shared/config.ts';
import { ECOURTDATE_LIMIT_PER_MINUTE } from '#shared/ecourtdate/pacer.ts';
import { budgetWindowCeiling, OPERATOR_REQUESTS_PER_MINUTE } from '#shared/ecourtdate/shared-budget.ts';

/**
 * What the relay stack promises beyond its resources: the sender's environment, the send queue's visibility
 * timeout and the names of its outputs. The stack builds from these, and so do the local pipeline (which runs
 * the same sender against emulators) and the operator CLI (which reads the outputs). No CDK import here, or
 * below: the CLI and `npm start` load this module and must start fast.
 */

/** The names of the stack outputs. docs/deploy.md ("Stack outputs") and the operator CLI read them by name: keep them stable. */
export const OUTPUT = {
  sendQueueUrl: 'SendQueueUrl',
  sendQueueArn: 'SendQueueArn',
  deadLetterQueueUrl: 'DeadLetterQueueUrl',
  deadLetterQueueArn: 'DeadLetterQueueArn',
  eventsDeadLetterQueueUrl: 'EventsDeadLetterQueueUrl',
  onCallTopicArn: 'OnCallTopicArn',
  secretName: 'SecretName',
  secretArn: 'SecretArn',
  dashboardName: 'DashboardName',
  eventBusName: 'EventBusName',
  eventSource: 'EventSource',
  eventDetailType: 'EventDetailType',
  senderFunctionName: 'SenderFunctionName',
  ledgerTableName: 'LedgerTableName',
  ecourtdateBaseUrl: 'EcourtdateBaseUrl',
} as const;

/**
 * The send queue's visibility timeout in function timeouts (AWS guidance for SQS event sources): a batch still
 * running, or retried by Lambda after a throttle, is not handed to a second instance. The sender's own retry
 * delays are set per message with ChangeMessageVisibility and do not depend on it. After a crash the batch comes
 * back only after it, so `loadStageConfig` refuses a stage where that lands outside the duplicate window
 * (`crashRecoverySeconds` in config.ts).
 */
export const VISIBILITY_TIMEOUT_FUNCTION_TIMEOUTS = 6;

/** The send queue's visibility timeout for a stage, in seconds. */
export function sendQueueVisibilityTimeoutSeconds(stage: {
  readonly functionTimeoutSeconds: number;
}): number {
  return VISIBILITY_TIMEOUT_FUNCTION_TIMEOUTS * stage.functionTimeoutSeconds;
}

/**
 * The static split of the budget, requests per minute per instance: `floor(requestsPerMinute / maxConcurrency)`.
 * The sender no longer paces to it (it leases from the stage's one budget, docs/pacing.md); the benchmark
 * compares the shared budget with it.
 */
export function perInstanceRequestsPerMinute(
  config: Pick<SenderStageSettings, 'requestsPerMinute' | 'maxConcurrency'>,
): number {
  return Math.floor(config.requestsPerMinute / config.maxConcurrency);
}

/**
 * Requests per minute each sender instance may spend while the budget's `api-client` item does not answer: its
 * share of the reserve less the CLI's own pace, `floor((1000 - ceil(63·requestsPerMinute/60) - 4) /
 * maxConcurrency)`, so that the budget's leases (at most `budgetWindowCeiling(requestsPerMinute)` in any 60 s
 * window), every instance's fallback and the CLI (`OPERATOR_REQUESTS_PER_MINUTE`) together never pass eCourtDate's
 * limit (docs/pacing.md, "When the item does not answer"). 0: the instance sends nothing until the item answers
 * again.
 */
export function fallbackRequestsPerMinute(
  config: Pick<SenderStageSettings, 'requestsPerMinute' | 'maxConcurrency'>,
): number {
  return Math.max(
    0,
    Math.floor(
      (ECOURTDATE_LIMIT_PER_MINUTE -
        budgetWindowCeiling(config.requestsPerMinute) -
        OPERATOR_REQUESTS_PER_MINUTE) /
        config.maxConcurrency,
    ),
  );
}

/** The resources the sender is told of: CloudFormation references in the stack, emulator URLs locally. */
export interface SenderResources {
  readonly secretId: string;
  readonly sendQueueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly ledgerTableName: string;
  /** A webhook receiver reads the ledger's message-uuid index (docs/webhooks.md). @default false */
  readonly webhooksEnabled?: boolean;
  /** The bus to put `eCourtDate Job Settled` events on; absent when the stage does not publish them. */
  readonly jobSettledBusName?: string | undefined;
}

/**
 * The stage settings that reach the sender (a stage's `StageConfig` has them all: infra/config.ts; this module
 * names them itself, so that it imports nothing of the CDK app's). Units as in docs/deploy.md, "Stage settings".
 */
export interface SenderStageSettings {
  readonly baseUrl: string;
  /** The stage's budget of eCourtDate requests a minute, shared by every instance and the operator CLI. */
  readonly requestsPerMinute: number;
  readonly maxConcurrency: number;
  /** Seconds. */
  readonly backoffSeconds: readonly number[];
  readonly maxAttempts: number;
  /** Seconds. */
  readonly duplicateWindowSeconds: number;
  readonly httpTimeoutMs: number;
  readonly ledgerTtlDays: number;
  readonly maxReceiveCount: number;
  /** Seconds. */
  readonly rateLimitHintMaxSeconds: number;
}

/**
 * The sender's environment (the variables `shared/config.ts` reads) for a stage and the resources it uses.
 * Settings the stage does not fix are left to the sender's defaults.
 *
 * @example
 * // The local pipeline: its own API, instance count and emulator resources, the stage's settings.
 * senderEnvironment({ ...stage, baseUrl: simulator.url, maxConcurrency: 3 }, localResources);
 */
export function senderEnvironment(
  stage: SenderStageSettings,
  resources: SenderResources,
): Record<string, string> {
  return {
    [ENV.baseUrl]: stage.baseUrl,
    [ENV.secretId]: resources.secretId,
    [ENV.sendQueueUrl]: resources.sendQueueUrl,
    [ENV.deadLetterQueueUrl]: resources.deadLetterQueueUrl,
    [ENV.ledgerTableName]: resources.ledgerTableName,
    // The stage's one budget, leased by every instance from the ledger table's api-client item; the reserve's
    // split only while that item does not answer (docs/pacing.md).
    [ENV.requestsPerMinute]: String(stage.requestsPerMinute),
    [ENV.fallbackRequestsPerMinute]: String(fallbackRequestsPerMinute(stage)),
    [ENV.backoffSeconds]: stage.backoffSeconds.join(','),
    [ENV.maxAttempts]: String(stage.maxAttempts),
    // Checked against the backoff schedule by loadStageConfig: every resend fits inside the window.
    [ENV.duplicateWindowSeconds]: String(stage.duplicateWindowSeconds),
    [ENV.httpTimeoutMs]: String(stage.httpTimeoutMs),
    [ENV.ledgerTtlDays]: String(stage.ledgerTtlDays),
    // The send queue's own redrive limit: the sender re-queues a job that waits long as a fresh copy before it.
    [ENV.maxReceiveCount]: String(stage.maxReceiveCount),
    [ENV.rateLimitHintMaxSeconds]: String(stage.rateLimitHintMaxSeconds),
    [ENV.webhooksEnabled]: String(resources.webhooksEnabled ?? false),
    ...(resources.jobSettledBusName === undefined
      ? {}
      : { [ENV.publishJobSettled]: 'true', [ENV.eventBusName]: resources.jobSettledBusName }),
  };
}
