import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { DeliveryLedger } from '#shared/ledger/delivery.ts';
import { deployedStage } from '#shared/metric-names.ts';
import { createObservability, type Observability, traceClients } from '#shared/observability.ts';
import type { WebhookConfig } from '#shared/webhook/config.ts';
import { WebhookDedupe } from '#shared/webhook/dedupe.ts';
import { WEBHOOK_METRIC } from '#shared/webhook/metrics.ts';
import { KNOWN_STATUSES } from '#shared/webhook/payload.ts';
import { EventPublisher } from '#shared/webhook/publish.ts';
import { type Notes, WebhookReceiver } from '#shared/webhook/receiver.ts';
import { respond } from '#shared/webhook/responses.ts';
import {
  ECOURTDATE_SECRET_MAX_CHARS,
  exceedsEcourtdateMax,
  WebhookSecretSource,
} from '#shared/webhook/secret.ts';
import { failure, type Verdict } from '#shared/webhook/verdicts.ts';

export { SECRET_REFRESH_MIN_INTERVAL_MS } from '#shared/webhook/receiver.ts';

export interface WebhookDependencies {
  readonly config: WebhookConfig;
  readonly secrets: SecretsManagerClient;
  readonly dynamodb: DynamoDBClient;
  readonly eventBridge: EventBridgeClient;
  readonly observability?: Observability;
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
}

export type WebhookHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

/**
 * Builds the webhook receiver's Lambda handler (API Gateway HTTP API, payload format 2.0) with the state of one
 * container: the cached secret and the SDK clients given. `functions/webhook.ts` calls it once at module scope;
 * the local run and the tests call it per simulated instance.
 *
 * A request goes through `WebhookReceiver` (screen → verify → parse → date → claim → record the job's status →
 * publish → complete) to a verdict, which this handler applies in one place: the answer (status code, body,
 * headers, from `VERDICTS`; docs/webhooks.md, "What the receiver does with a request"), the metrics and the log
 * line. Every answer carries the security headers; nothing throws out of the handler (the unforeseen is a 500).
 */
export function createWebhookHandler(deps: WebhookDependencies): WebhookHandler {
  const { config } = deps;
  const now = deps.now ?? Date.now;
  const { logger, metrics, tracing } = deps.observability ?? createObservability();
  // Secrets Manager, DynamoDB and EventBridge calls become X-Ray subsegments when the stage traces them.
  const traced = traceClients(tracing, [deps.secrets, deps.dynamodb, deps.eventBridge]);
  let warnedLongSecret = false;
  const secrets = new WebhookSecretSource({
    client: deps.secrets,
    secretId: config.secretId,
    ttlMs: config.secretTtlSeconds * 1000,
    now,
    // Once per container, at the first read after a cold start (docs/webhooks.md, "The secret").
    onRead: (read) => {
      if (warnedLongSecret || !exceedsEcourtdateMax(read)) return;
      warnedLongSecret = true;
      logger.warn('webhook secret is longer than eCourtDate accepts', {
        secret_id: config.secretId,
        max_chars: ECOURTDATE_SECRET_MAX_CHARS,
      });
    },
  });
  const table = { client: deps.dynamodb, tableName: config.ledgerTableName, now };
  const receiver = new WebhookReceiver({
    config,
    secrets,
    dedupe: new WebhookDedupe({
      ...table,
      ttlSeconds: config.dedupeTtlSeconds,
      leaseMs: config.leaseSeconds * 1000,
    }),
    deliveries: new DeliveryLedger({ ...table, ttlSeconds: config.dedupeTtlSeconds }),
    publisher: new EventPublisher({
      client: deps.eventBridge,
      eventBusName: config.eventBusName,
      stage: deployedStage(),
    }),
    now,
  });

  const base = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const notes: Notes = {};
    let decided: Verdict;
    try {
      decided = await receiver.receive(event, notes);
    } catch (error) {
      decided = failure('internal_error', error);
    }
    return applyVerdict(decided, notes, { logger, metrics });
  };

  return (
    // No early timeout, as for the sender: middy would answer just before the deadline and leave the environment
    // running on, its ledger write or PutEvents resuming in a later invocation, after its delivery lease
    // (docs/webhooks.md). At the function timeout Lambda stops the environment instead.
    middy(base, { timeoutEarlyInMillis: 0 })
      // Never the event: it holds the payload (POWERTOOLS_LOGGER_LOG_EVENT must not turn that on).
      .use(injectLambdaContext(logger, { logEvent: false }))
      .use(logMetrics(metrics))
      .use(traced) as unknown as WebhookHandler
  );
}

/**
 * The one place a verdict takes effect: its metrics, its log line and the HTTP answer. The log line carries the
 * uuid, the kind, the outcome, the status code, the job id and the relay's own word for the status; never the
 * payload, a recipient, eCourtDate's free text or the secret.
 */
function applyVerdict(
  decided: Verdict,
  notes: Notes,
  { logger, metrics }: Pick<Observability, 'logger' | 'metrics'>,
): APIGatewayProxyStructuredResultV2 {
  const { spec, webhook } = decided;
  metrics.addMetric(WEBHOOK_METRIC.received, MetricUnit.Count, 1);
  for (const name of [spec.metric, ...decided.metrics]) metrics.addMetric(name, MetricUnit.Count, 1);
  if (decided.published) metrics.addMetric(WEBHOOK_METRIC.published, MetricUnit.Count, decided.published);
  // A warning on a right answer (or a failed secret read that a cached secret covered) raises an info line.
  const raised = decided.level === 'warn' || notes.secret_read_error !== undefined;
  const level = spec.level === 'info' && raised ? 'warn' : spec.level;
  logger[level]('webhook', {
    webhook_uuid: webhook?.uuid,
    kind: webhook?.kind,
    outcome: decided.outcome,
    status_code: spec.status,
    ...(decided.jobId ? { job_id: decided.jobId } : {}),
    ...(webhook?.status
      ? { delivery_status: KNOWN_STATUSES.has(webhook.status) ? webhook.status : 'other' }
      : {}),
    ...decided.detail,
    ...notes,
  });
  return respond(spec.status, spec.body, { ...spec.headers, ...decided.headers });
}
