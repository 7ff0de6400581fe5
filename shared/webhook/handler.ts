import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { withoutByteOrderMark } from '#shared/job.ts';
import { DeliveryLedger } from '#shared/ledger/delivery.ts';
import { createObservability, type Observability, traceClients } from '#shared/observability.ts';
import type { WebhookConfig } from '#shared/webhook/config.ts';
import { WebhookDedupe } from '#shared/webhook/dedupe.ts';
import { PublishError } from '#shared/webhook/errors.ts';
import { type JobMatch, PayloadText, planEvents } from '#shared/webhook/events.ts';
import { WEBHOOK_METRIC } from '#shared/webhook/metrics.ts';
import { KNOWN_STATUSES, type NormalisedWebhook, normaliseWebhook } from '#shared/webhook/payload.ts';
import { EventPublisher } from '#shared/webhook/publish.ts';
import { readWebhookRequest, screenRequest } from '#shared/webhook/request.ts';
import { respond } from '#shared/webhook/responses.ts';
import {
  ECOURTDATE_SECRET_MAX_CHARS,
  exceedsEcourtdateMax,
  WebhookSecretSource,
  type WebhookSecrets,
} from '#shared/webhook/secret.ts';
import { verifySignature } from '#shared/webhook/signature.ts';

export interface WebhookDependencies {
  readonly config: WebhookConfig;
  readonly secrets: SecretsManagerClient;
  readonly dynamodb: DynamoDBClient;
  readonly eventBridge: EventBridgeClient;
  readonly observability?: Observability;
  readonly now?: () => number;
}

export type WebhookHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

/**
 * A signature that does not verify re-reads the secret (it may have been rotated), but not more often than this:
 * forged requests must not become a stream of Secrets Manager reads.
 */
export const SECRET_REFRESH_MIN_INTERVAL_MS = 30_000;

/** What became of one request: the answer, and what the log line and metrics say about it. */
interface Verdict {
  readonly status: number;
  readonly outcome: string;
  readonly body?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly metrics: readonly string[];
  readonly webhook?: NormalisedWebhook;
  readonly jobId?: string;
  readonly published?: number;
  readonly detail?: Readonly<Record<string, string>>;
  readonly level?: 'info' | 'warn' | 'error';
}

/**
 * Builds the webhook receiver's Lambda handler (API Gateway HTTP API, payload format 2.0) with the state of one
 * container: the cached secret and the SDK clients given. `functions/webhook.ts` calls it once at module scope;
 * the local run and the tests call it per simulated instance.
 *
 * A request goes through: screen (source IP, method, content type, size) → signature over the raw bytes →
 * parse → claim its uuid → tie it to a job → publish → mark done, and is answered (docs/webhooks.md):
 * 200 accepted or duplicate; 400 signed but not JSON; 401 missing or wrong signature (no detail); 403 source IP
 * not on the allowlist; 405 not POST; 409 the same delivery is being handled right now (retry); 413 too large;
 * 415 not JSON; 500 an unexpected error; 503 the secret, the table or `PutEvents` failed (retry). Every non-2xx
 * makes eCourtDate retry. Every answer carries the security headers; nothing throws out of the handler.
 */
export function createWebhookHandler(deps: WebhookDependencies): WebhookHandler {
  const { config } = deps;
  const now = deps.now ?? Date.now;
  const { logger, metrics, tracing } = deps.observability ?? createObservability();
  // Secrets Manager, DynamoDB and EventBridge calls become X-Ray subsegments when the stage traces them.
  const traced = traceClients(tracing, [deps.secrets, deps.dynamodb, deps.eventBridge]);
  let warnedLongSecret = false;
  const secretSource = new WebhookSecretSource({
    client: deps.secrets,
    secretId: config.secretId,
    ttlMs: config.secretTtlSeconds * 1000,
    now,
    // Once per container, at the first read after a cold start (docs/webhooks.md, "The secret").
    onRead: (secrets) => {
      if (warnedLongSecret || !exceedsEcourtdateMax(secrets)) return;
      warnedLongSecret = true;
      logger.warn('webhook secret is longer than eCourtDate accepts', {
        secret_id: config.secretId,
        max_chars: ECOURTDATE_SECRET_MAX_CHARS,
      });
    },
  });
  const table = { client: deps.dynamodb, tableName: config.ledgerTableName, now };
  const dedupe = new WebhookDedupe({
    ...table,
    ttlSeconds: config.dedupeTtlSeconds,
    leaseMs: config.leaseSeconds * 1000,
  });
  const deliveries = new DeliveryLedger({ ...table, ttlSeconds: config.dedupeTtlSeconds });
  const publisher = new EventPublisher({ client: deps.eventBridge, eventBusName: config.eventBusName });

  /**
   * Whether the signature verifies under the current (or previous) secret, re-reading a stale secret once. When
   * a read fails but a secret was read before, that one decides (docs/webhooks.md, "The secret"): a forged
   * signature is a 401 whether or not Secrets Manager answers. Throws only when no secret was ever read.
   */
  const checkSignature = async (
    header: string | undefined,
    body: Buffer,
    notes: Record<string, string>,
  ): Promise<boolean> => {
    if (header === undefined) return false;
    const verify = (secrets: WebhookSecrets) =>
      verifySignature(header, body, [secrets.current, ...(secrets.previous ? [secrets.previous] : [])]);
    let secrets: WebhookSecrets;
    try {
      secrets = await secretSource.get();
    } catch (error) {
      const lastKnown = secretSource.lastKnown;
      if (lastKnown === undefined) throw error;
      notes.secret_read_error = errorName(error);
      return verify(lastKnown);
    }
    if (verify(secrets)) return true;
    let reread: WebhookSecrets;
    try {
      reread = await secretSource.get({ refreshIfOlderThanMs: SECRET_REFRESH_MIN_INTERVAL_MS });
    } catch (error) {
      notes.secret_read_error = errorName(error);
      return false;
    }
    return reread !== secrets && verify(reread);
  };

  /** The relay's job an update is about, with the status recorded on it; undefined when it is not the relay's. */
  const matchJob = async (webhook: NormalisedWebhook, receivedAt: number): Promise<JobMatch | undefined> => {
    const candidates =
      webhook.kind === 'message_status' && webhook.status !== undefined
        ? { uuids: webhook.messageUuids, status: webhook.status }
        : webhook.kind === 'inbound_message'
          ? { uuids: webhook.repliedToUuids, status: 'replied' }
          : undefined;
    if (candidates === undefined) return undefined;
    for (const messageUuid of candidates.uuids) {
      const jobId = await deliveries.findJobIdByUuid(messageUuid);
      if (jobId === undefined) continue;
      const result = await deliveries.recordDeliveryStatus(jobId, {
        status: candidates.status,
        at: webhook.occurredAt ?? receivedAt,
        received_at: receivedAt,
        webhook_uuid: webhook.uuid,
        raw_status: webhook.rawStatus !== candidates.status ? webhook.rawStatus : undefined,
        message_uuid: messageUuid,
      });
      if (result.kind === 'no_job') return undefined;
      return {
        jobId,
        messageUuid,
        status: candidates.status,
        jobStatus: result.status ?? candidates.status,
      };
    }
    return undefined;
  };

  const receive = async (event: APIGatewayProxyEventV2, notes: Record<string, string>): Promise<Verdict> => {
    const receivedAt = now();
    const request = readWebhookRequest(event);
    const rejection = screenRequest(request, config);
    if (rejection) {
      return {
        status: rejection.status,
        outcome: rejection.reason,
        body: { message: rejection.reason.replaceAll('_', ' ') },
        headers: rejection.status === 405 ? { allow: 'POST' } : {},
        metrics: [WEBHOOK_METRIC.rejected],
        // Which address was turned away is what an operator needs to fix the allowlist.
        detail: rejection.status === 403 ? { source_ip: request.sourceIp ?? 'unknown' } : undefined,
        level: 'warn',
      };
    }

    let valid: boolean;
    try {
      valid = await checkSignature(request.signature, request.body, notes);
    } catch (error) {
      return internalError('secret_unavailable', error);
    }
    if (!valid) {
      return {
        status: 401,
        outcome: request.signature === undefined ? 'signature_missing' : 'signature_invalid',
        metrics: [WEBHOOK_METRIC.signatureFailures],
        level: 'warn',
      };
    }

    // The signature is over the exact bytes, a byte order mark included; JSON itself has none.
    const text = withoutByteOrderMark(request.body.toString('utf8'));
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch {
      return {
        status: 400,
        outcome: 'malformed',
        body: { message: 'the body is not JSON' },
        metrics: [WEBHOOK_METRIC.malformed],
        level: 'warn',
      };
    }
    const webhook = normaliseWebhook(payload, request.body, receivedAt);

    let claim: Awaited<ReturnType<WebhookDedupe['claim']>>;
    try {
      claim = await dedupe.claim(webhook.dedupeKey);
    } catch (error) {
      return internalError('dedupe_unavailable', error, webhook);
    }
    if (claim.kind === 'done') {
      return {
        status: 200,
        outcome: 'duplicate',
        body: { status: 'duplicate' },
        metrics: [WEBHOOK_METRIC.duplicates],
        webhook,
      };
    }
    if (claim.kind === 'in_progress') {
      return {
        status: 409,
        outcome: 'in_progress',
        body: { message: 'this delivery is being processed; retry later' },
        headers: { 'retry-after': String(claim.retryAfterSeconds) },
        metrics: [WEBHOOK_METRIC.inProgress],
        webhook,
      };
    }

    const giveBack = (published: readonly string[]) =>
      dedupe.release(webhook.dedupeKey, claim.token, published).catch(() => undefined);
    let match: JobMatch | undefined;
    try {
      match = await matchJob(webhook, receivedAt);
    } catch (error) {
      await giveBack(claim.published);
      return internalError('ledger_unavailable', error, webhook);
    }
    let planned: ReturnType<typeof planEvents>;
    try {
      // The payload goes on the bus as its text: exact numbers, any depth (docs/webhooks.md, "Events on the bus").
      planned = planEvents(webhook, new PayloadText(text), receivedAt, match);
    } catch (error) {
      await giveBack(claim.published);
      return unexpectedError(error, webhook);
    }
    const pending = planned.filter((e) => !claim.published.includes(e.key));
    try {
      await publisher.publish(pending);
    } catch (error) {
      const published = error instanceof PublishError ? error.published : [];
      await giveBack([...claim.published, ...published]);
      return {
        status: 503,
        outcome: 'publish_failed',
        body: { message: 'could not publish; retry later' },
        metrics: [WEBHOOK_METRIC.publishFailures],
        webhook,
        jobId: match?.jobId,
        published: published.length,
        detail: {
          error_name: errorName(error),
          ...(error instanceof PublishError && error.errorCodes.length > 0
            ? { error_codes: error.errorCodes.join(',') }
            : {}),
        },
        level: 'error',
      };
    }

    const keys = [...new Set([...claim.published, ...planned.map((e) => e.key)])];
    let kept = true;
    try {
      kept = await dedupe.complete(webhook.dedupeKey, claim.token, keys);
    } catch {
      // The events are on the bus: answering 5xx now would publish them again. The record stays pending until its
      // lease runs out, after which a redelivery would publish again (docs/webhooks.md, "Deduplication").
      kept = false;
    }
    return {
      status: 200,
      outcome: 'accepted',
      body: { status: 'accepted' },
      metrics: [WEBHOOK_METRIC.accepted, ...(match ? [WEBHOOK_METRIC.jobStatusRecorded] : [])],
      webhook,
      jobId: match?.jobId,
      published: pending.length,
      ...(kept
        ? {}
        : {
            detail: { warning: 'published, but the dedupe record could not be marked done' },
            level: 'warn',
          }),
    };
  };

  const internalError = (outcome: string, error: unknown, webhook?: NormalisedWebhook): Verdict => ({
    status: 503,
    outcome,
    body: { message: 'temporarily unavailable; retry later' },
    metrics: [WEBHOOK_METRIC.internalErrors],
    webhook,
    // By name only: SDK messages can quote request data.
    detail: { error_name: errorName(error) },
    level: 'error',
  });

  /** Anything the receiver did not foresee: 500, so eCourtDate retries; logged by the error's name only. */
  const unexpectedError = (error: unknown, webhook?: NormalisedWebhook): Verdict => ({
    status: 500,
    outcome: 'internal_error',
    body: { message: 'internal error; retry later' },
    metrics: [WEBHOOK_METRIC.internalErrors],
    webhook,
    detail: { error_name: errorName(error) },
    level: 'error',
  });

  const base = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const notes: Record<string, string> = {};
    let verdict: Verdict;
    try {
      verdict = await receive(event, notes);
    } catch (error) {
      verdict = unexpectedError(error);
    }
    metrics.addMetric(WEBHOOK_METRIC.received, MetricUnit.Count, 1);
    for (const name of verdict.metrics) metrics.addMetric(name, MetricUnit.Count, 1);
    if (verdict.published) metrics.addMetric(WEBHOOK_METRIC.published, MetricUnit.Count, verdict.published);
    // The uuid, the kind and the outcome: never the payload, a recipient or the secret.
    // A secret read that failed (a cached secret decided) is worth a warning even when the answer was fine.
    const level = verdict.level ?? (notes.secret_read_error ? 'warn' : 'info');
    logger[level]('webhook', {
      webhook_uuid: verdict.webhook?.uuid,
      kind: verdict.webhook?.kind,
      outcome: verdict.outcome,
      status_code: verdict.status,
      ...(verdict.jobId ? { job_id: verdict.jobId } : {}),
      // The relay's own word only: eCourtDate's may carry anything, a phone number included.
      ...(verdict.webhook?.status
        ? { delivery_status: KNOWN_STATUSES.has(verdict.webhook.status) ? verdict.webhook.status : 'other' }
        : {}),
      ...verdict.detail,
      ...notes,
    });
    return respond(verdict.status, verdict.body, verdict.headers);
  };

  return (
    middy(base)
      // Never the event: it holds the payload (POWERTOOLS_LOGGER_LOG_EVENT must not turn that on).
      .use(injectLambdaContext(logger, { logEvent: false }))
      .use(logMetrics(metrics))
      .use(traced) as unknown as WebhookHandler
  );
}

/** An error's name, which is all a log line may say of it: SDK messages can quote request data. */
function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
