import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createEventBridgeClient } from '#shared/clients/aws.ts';
import { awsCallWorstCaseMs } from '#shared/clients/aws-call-limits.ts';
import { SENDS_PER_JOB_WORST_CASE, type SenderConfig } from '#shared/config.ts';
import { EcourtdateClient } from '#shared/ecourtdate/client.ts';
import { createApiFetch } from '#shared/ecourtdate/connection.ts';
import { CredentialsSource } from '#shared/ecourtdate/credentials.ts';
import type { FetchLike } from '#shared/ecourtdate/http.ts';
import { Pacer } from '#shared/ecourtdate/pacer.ts';
import { TokenCache } from '#shared/ecourtdate/token-cache.ts';
import { DeliveryLedger } from '#shared/ledger/delivery.ts';
import { JobLedger } from '#shared/ledger/ledger.ts';
import { createObservability, type Observability, traceClients } from '#shared/observability.ts';
import { backoffDelaySeconds } from '#shared/policy.ts';
import { recordTokenAnswer } from '#shared/sender/metrics.ts';
import { RetryLaterError, type SenderRuntime, settleRecord } from '#shared/sender/record.ts';
import { JobSettledPublisher } from '#shared/sender/settled-event.ts';
import { hideFor } from '#shared/sqs/settle.ts';

export interface SenderDependencies {
  readonly config: SenderConfig;
  readonly sqs: SQSClient;
  readonly secrets: SecretsManagerClient;
  readonly dynamodb: DynamoDBClient;
  /** For `eCourtDate Job Settled` events; built from the configuration when absent and needed. */
  readonly events?: EventBridgeClient;
  readonly fetch?: FetchLike;
  readonly observability?: Observability;
  readonly now?: () => number;
  readonly random?: () => number;
}

export type SenderHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

// Time kept back from the invocation's deadline beyond the worst-case chain below.
const SETTLE_MARGIN_MS = 5_000;
// AWS calls a record can make once its pacing slot is granted: a secret re-read, the ledger settle, one SQS call.
const AWS_CALLS_AFTER_PACING = 3;

/**
 * Builds the sender Lambda handler with the state of one container: credentials cache, token cache and
 * rate pacer. `functions/sender.ts` calls it once at module scope; the local pipeline calls it once per
 * simulated instance. Records of a batch are settled concurrently; each one succeeds or fails on its own
 * (partial batch response), and a batch where every record is retried is not an invocation error.
 */
export function createSenderHandler(deps: SenderDependencies): SenderHandler {
  const { config } = deps;
  const now = deps.now ?? Date.now;
  // Never a kept-alive socket idle longer than servers keep them: after a thaw it would fail (README, "Sender settings").
  const fetchImpl = deps.fetch ?? createApiFetch();
  const { logger, metrics, tracing } = deps.observability ?? createObservability();
  // SQS, Secrets Manager and DynamoDB calls become X-Ray subsegments when the stage traces them; fetch to
  // eCourtDate is traced by the Tracer itself.
  const traced = traceClients(tracing, [deps.sqs, deps.secrets, deps.dynamodb]);
  // A scaled run's minute is shorter, so is the pacing interval: the budget is per (scaled) minute.
  const pacer = new Pacer(config.requestsPerMinute, { now, windowMs: 60_000 / config.timeScale });
  const credentials = new CredentialsSource({
    client: deps.secrets,
    secretId: config.secretId,
    ttlMs: config.secretTtlSeconds * 1000,
    now,
  });
  const tokens = new TokenCache({
    baseUrl: config.baseUrl,
    credentials,
    pacer,
    fetch: fetchImpl,
    timeoutMs: config.httpTimeoutMs,
    renewBeforeMs: config.tokenRenewBeforeSeconds * 1000,
    now,
    onAnswer: (status) => recordTokenAnswer(metrics, status),
  });
  const client = new EcourtdateClient({
    baseUrl: config.baseUrl,
    tokens,
    pacer,
    fetch: fetchImpl,
    timeoutMs: config.httpTimeoutMs,
    now,
  });
  const table = {
    client: deps.dynamodb,
    tableName: config.ledgerTableName,
    ttlSeconds: config.ledgerTtlSeconds,
  };
  const runtime: SenderRuntime = {
    config,
    sqs: deps.sqs,
    client,
    pacer,
    ledger: new JobLedger(table),
    delivery: config.webhooksEnabled ? new DeliveryLedger(table) : undefined,
    settledEvents:
      config.jobSettledBus === undefined
        ? undefined
        : new JobSettledPublisher({
            busName: config.jobSettledBus,
            client: async () => deps.events ?? (await createEventBridgeClient(config)),
          }),
    logger,
    metrics,
    now,
    random: deps.random ?? Math.random,
  };
  const processor = new BatchProcessor(EventType.SQS);
  // The worst case after pacing: every send of the 401 path with its token request at the HTTP timeout, then
  // the secret re-read, the ledger settle and the SQS call at the AWS SDK's limits.
  const chainMs =
    config.httpTimeoutMs * SENDS_PER_JOB_WORST_CASE * 2 +
    AWS_CALLS_AFTER_PACING * awsCallWorstCaseMs() +
    SETTLE_MARGIN_MS;

  const recordHandler = async (record: SQSRecord, context?: Context) => {
    const remaining = context?.getRemainingTimeInMillis?.();
    const budget = {
      // The lease of every attempt this invocation claims: a copy seen after it finds the attempt lost.
      deadlineAt: now() + (remaining ?? chainMs),
      maxWaitMs: remaining === undefined ? undefined : Math.max(remaining - chainMs, 0),
    };
    try {
      return await settleRecord(record, runtime, budget);
    } catch (error) {
      if (error instanceof RetryLaterError) throw error;
      // A failure the policy did not decide (a DynamoDB or SQS outage, a bug): the record fails and comes back
      // after the first backoff step rather than the queue's long visibility timeout, so a resend after an
      // unknown outcome still falls inside eCourtDate's duplicate window. Logged by name only: messages may
      // quote request data.
      const delaySeconds = backoffDelaySeconds(1, config, runtime.random);
      logger.error('record failed unexpectedly; it will be retried', {
        message_id: record.messageId,
        error_name: error instanceof Error ? error.name : typeof error,
        retry_in_seconds: delaySeconds,
      });
      await hideFor(deps.sqs, config.sendQueueUrl, record.receiptHandle, delaySeconds).catch(() => undefined);
      throw error;
    }
  };

  const base = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    return processPartialResponse(event, recordHandler, processor, {
      context,
      throwOnFullBatchFailure: false,
    });
  };

  const handler = middy(base)
    // Never the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says: it holds message text and recipients.
    .use(injectLambdaContext(logger, { logEvent: false }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    .use(traced);
  return handler;
}
