import { randomUUID } from 'node:crypto';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
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
import { Breaker, signalOf } from '#shared/ecourtdate/breaker.ts';
import { EcourtdateClient } from '#shared/ecourtdate/client.ts';
import { createApiFetch } from '#shared/ecourtdate/connection.ts';
import { CredentialsSource } from '#shared/ecourtdate/credentials.ts';
import type { FetchLike } from '#shared/ecourtdate/http.ts';
import type { RequestPacer } from '#shared/ecourtdate/pacer.ts';
import { DynamoBudgetStore, SharedBudgetPacer } from '#shared/ecourtdate/shared-budget.ts';
import { TokenCache } from '#shared/ecourtdate/token-cache.ts';
import { peekJobId } from '#shared/job.ts';
import { breakerViewOf, DynamoBreakerStore } from '#shared/ledger/breaker-store.ts';
import { DeliveryLedger } from '#shared/ledger/delivery.ts';
import { JobLedger } from '#shared/ledger/ledger.ts';
import { deployedStage, METRIC } from '#shared/metric-names.ts';
import { createObservability, type Observability, traceClients } from '#shared/observability.ts';
import { applyDecision } from '#shared/sender/apply.ts';
import { decideRecord } from '#shared/sender/decide.ts';
import { recordTokenAnswer } from '#shared/sender/metrics.ts';
import {
  type InvocationBudget,
  LOG_MESSAGE,
  type SenderRuntime,
  type Settlement,
} from '#shared/sender/runtime.ts';
import { JobSettledPublisher } from '#shared/sender/settled-event.ts';
import { observe, recordContext } from '#shared/sender/stages.ts';

export interface SenderDependencies {
  readonly config: SenderConfig;
  readonly sqs: SQSClient;
  readonly secrets: SecretsManagerClient;
  readonly dynamodb: DynamoDBClient;
  /** For `eCourtDate Job Settled` events; built from the configuration when absent and needed. */
  readonly events?: EventBridgeClient;
  readonly fetch?: FetchLike;
  readonly observability?: Observability;
  /**
   * The container's pacer. @default a `SharedBudgetPacer` of the stage's budget, leasing from the ledger table's
   * `api-client` item (docs/pacing.md)
   */
  readonly pacer?: RequestPacer;
  /** Epoch ms. @default Date.now */
  readonly now?: () => number;
  /** Jitter source in [0, 1). @default Math.random */
  readonly random?: () => number;
  /**
   * Called once per invocation with the settlement of every record, in the batch's order (the local pipeline
   * follows its jobs by them). A throwing hook is ignored: it never changes what SQS is told.
   */
  readonly onSettled?: (settlements: readonly Settlement[]) => void;
}

export type SenderHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

// Time kept back from the invocation's deadline beyond the worst-case chain below.
const SETTLE_MARGIN_MS = 5_000;
/**
 * The longest one call to the stage's api-client item may take, ms: a circuit breaker read or write, or a lease of
 * the shared budget with its tries (then it is abandoned: the breaker goes on with the state it last saw, the
 * budget falls back). A record's chain makes at most API_CLIENT_CALLS_IN_CHAIN of them: the breaker's two before
 * its waits, and a lease for each of the six pacing slots after the first (a fresh slot when the claim outlasted
 * the first one's grace slice, and the 401 path's token requests and resends). The chain below keeps room for
 * them, so they never take time the attempt's requests need.
 */
export const API_CLIENT_CALL_TIMEOUT_MS = 1_000;
const API_CLIENT_CALLS_IN_CHAIN = 8;
// AWS calls that can follow the first wait and must end inside the attempt's lease (the invocation): the claim (a
// put that finds the entry, then a put by its version), on the 401 path the token renewal's own secret re-read
// and the explicit one, and the settle. What comes after the settle (the uuid index, the event, SQS) needs no
// lease: the ledger already knows the answer.
const AWS_CALLS_AFTER_WAITS = 5;

/**
 * Builds the sender Lambda handler with the state of one container: credentials cache, token cache and rate
 * pacer. `functions/sender.ts` calls it once at module scope; the local pipeline calls it once per simulated
 * instance. Each record goes through its stages (`observe`), one pure decision (`decideRecord`) and one applier
 * (`applyDecision`), concurrently with the rest of its batch; the batch adapter keeps every record's settlement
 * and answers SQS with the batch item failures (values in, `batchItemFailures` out). A batch where every record is
 * retried is not an invocation error.
 */
export function createSenderHandler(deps: SenderDependencies): SenderHandler {
  const runtime = createRuntime(deps);
  const { config, now } = runtime;
  // The worst case after the waits: every send of the 401 path with its token request at the HTTP timeout, and the
  // AWS calls of AWS_CALLS_AFTER_WAITS at the SDK's limits, and the calls to the api-client item (docs/pacing.md,
  // "Waiting has a limit").
  const chainMs =
    config.httpTimeoutMs * SENDS_PER_JOB_WORST_CASE * 2 +
    AWS_CALLS_AFTER_WAITS * awsCallWorstCaseMs() +
    API_CLIENT_CALLS_IN_CHAIN * API_CLIENT_CALL_TIMEOUT_MS +
    SETTLE_MARGIN_MS;

  const settle = async (record: SQSRecord, budget: InvocationBudget): Promise<Settlement> => {
    const context = recordContext(record, now());
    const observed = await observe(context, runtime, budget);
    const decision = decideRecord(context, observed, { config, now: now(), random: runtime.random });
    return applyDecision(context, decision, runtime);
  };

  const base = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const remaining = context?.getRemainingTimeInMillis?.();
    const budget: InvocationBudget = {
      // The lease of every attempt this invocation claims: a copy seen after it finds the attempt lost.
      deadlineAt: now() + (remaining ?? chainMs),
      waitUntil: remaining === undefined ? undefined : now() + Math.max(remaining - chainMs, 0),
    };
    const settlements = await settleByJob(event.Records, (record) => settle(record, budget));
    // The breaker's state as this instance last saw it: the dashboard's "circuit breaker" graph.
    const open = runtime.breaker.view.state === 'open' ? 1 : 0;
    runtime.metrics.addMetric(METRIC.breakerOpen, MetricUnit.Count, open);
    try {
      deps.onSettled?.(settlements);
    } catch {
      // An observer's fault is not the batch's.
    }
    return {
      batchItemFailures: settlements
        .filter((s) => s.batchItemFailure)
        .map((s) => ({ itemIdentifier: s.messageId })),
    };
  };

  return (
    // No early timeout: middy would reject the invocation just before the deadline and leave the environment
    // running on, its requests answering into a later invocation (docs/chaos.md, "Function timeouts"). At the
    // function timeout Lambda stops the environment instead, and nothing started after it.
    middy(base, { timeoutEarlyInMillis: 0 })
      // Never the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says: it holds message text and recipients.
      .use(injectLambdaContext(runtime.logger, { logEvent: false }))
      .use(logMetrics(runtime.metrics, { captureColdStartMetric: true }))
      .use(runtime.traced)
  );
}

/**
 * Settles a batch's records concurrently, except copies of one job (bodies with the same `id`, an exact duplicate
 * or not): those run one after another in the batch's order, so that a twin is judged once the copy before it
 * has settled (acknowledged as already delivered, or hidden until the job's next attempt) instead of finding that
 * copy's attempt in flight and spending a receive (docs/ledger.md, "One attempt at a time per job"). A body
 * without a readable id runs on its own. Resolves to the settlements in the batch's order; rejects as `settle`
 * does.
 */
export async function settleByJob<T>(
  records: readonly SQSRecord[],
  settle: (record: SQSRecord) => Promise<T>,
): Promise<T[]> {
  const lastOfJob = new Map<string, Promise<unknown>>();
  return Promise.all(
    records.map((record) => {
      const jobId = peekJobId(record.body);
      if (jobId === undefined) return settle(record);
      const before = lastOfJob.get(jobId) ?? Promise.resolve();
      const settled = before.then(() => settle(record));
      lastOfJob.set(
        jobId,
        settled.catch(() => undefined),
      );
      return settled;
    }),
  );
}

/**
 * The container's handle on the stage's circuit breaker, kept in the ledger table (docs/pacing.md, "The circuit
 * breaker"): it logs and counts each opening, probe and closing it makes, and a store it cannot reach.
 */
function createBreaker(
  deps: SenderDependencies,
  logger: Observability['logger'],
  metrics: Observability['metrics'],
  now: () => number,
): Breaker {
  const { config } = deps;
  return new Breaker({
    store: new DynamoBreakerStore({
      client: deps.dynamodb,
      tableName: config.ledgerTableName,
      callTimeoutMs: API_CLIENT_CALL_TIMEOUT_MS,
    }),
    now,
    random: deps.random ?? Math.random,
    timeScale: config.timeScale,
    // A probe is at most a token request and two settings requests (and a secret read), each at its limit.
    probeMs: 3 * config.httpTimeoutMs + awsCallWorstCaseMs() / config.timeScale,
    onStoreError: (error) =>
      logger.warn(LOG_MESSAGE.breakerStoreFailed, {
        error_name: error instanceof Error ? error.name : 'unknown',
      }),
    onChange: (view) => {
      if (view.state === 'open') {
        logger.warn(LOG_MESSAGE.breakerOpened, {
          reason: view.reason,
          probe_at: new Date(view.probeAt).toISOString(),
        });
      } else {
        logger.info(LOG_MESSAGE.breakerClosed);
      }
    },
    onProbe: () => metrics.addMetric(METRIC.breakerProbes, MetricUnit.Count, 1),
  });
}

/** The state of one container: clients, caches, the pacer and the ledger. */
function createRuntime(
  deps: SenderDependencies,
): SenderRuntime & { readonly traced: ReturnType<typeof traceClients> } {
  const { config } = deps;
  const now = deps.now ?? Date.now;
  // Never a kept-alive socket idle longer than servers keep them: after a thaw it would fail (docs/deploy.md, "Sender settings").
  const fetchImpl = deps.fetch ?? createApiFetch();
  const { logger, metrics, tracing } = deps.observability ?? createObservability();
  // SQS, Secrets Manager and DynamoDB calls become X-Ray subsegments when the stage traces them; fetch to
  // eCourtDate is traced by the Tracer itself.
  const traced = traceClients(tracing, [deps.sqs, deps.secrets, deps.dynamodb]);
  const breaker = createBreaker(deps, logger, metrics, now);
  // The stage's one budget, leased from the ledger table's api-client item by every instance (docs/pacing.md). A
  // scaled run's minute is shorter, so are the budget's slices: one (scaled) second each.
  const pacer =
    deps.pacer ??
    new SharedBudgetPacer({
      store: new DynamoBudgetStore({
        client: deps.dynamodb,
        tableName: config.ledgerTableName,
        now,
        // Every lease answer carries the breaker's state too: a busy instance never reads it on its own.
        onItem: (item, at) => breaker.observe(breakerViewOf(item), at),
        callTimeoutMs: API_CLIENT_CALL_TIMEOUT_MS,
      }),
      budgetPerMinute: config.requestsPerMinute,
      fallbackPerMinute: config.fallbackRequestsPerMinute,
      sliceMs: 1000 / config.timeScale,
      now,
    });
  const credentials = new CredentialsSource({
    client: deps.secrets,
    secretId: config.secretId,
    ttlMs: config.secretTtlSeconds * 1000,
    now,
  });
  const http = { baseUrl: config.baseUrl, pacer, fetch: fetchImpl, timeoutMs: config.httpTimeoutMs, now };
  // A scaled run's function timeout is shorter; so is what one AWS call may take of it.
  const awsCallMs = awsCallWorstCaseMs() / config.timeScale;
  const tokens = new TokenCache({
    ...http,
    credentials,
    renewBeforeMs: config.tokenRenewBeforeSeconds * 1000,
    onAnswer: (status, retryAfterSeconds) => {
      recordTokenAnswer(metrics, status);
      breaker.record(signalOf(status, retryAfterSeconds));
    },
  });
  const table = {
    client: deps.dynamodb,
    tableName: config.ledgerTableName,
    ttlSeconds: config.ledgerTtlSeconds,
  };
  return {
    config,
    sqs: deps.sqs,
    client: new EcourtdateClient({
      ...http,
      tokens,
      breaker,
      awsCallMs,
      leaseMarginMs: SETTLE_MARGIN_MS / config.timeScale,
    }),
    pacer,
    breaker,
    ledger: new JobLedger(table),
    delivery: config.webhooksEnabled ? new DeliveryLedger(table) : undefined,
    settledEvents:
      config.jobSettledBus === undefined
        ? undefined
        : new JobSettledPublisher({
            busName: config.jobSettledBus,
            stage: deployedStage(),
            client: async () => deps.events ?? (await createEventBridgeClient(config)),
          }),
    logger,
    metrics,
    now,
    random: deps.random ?? Math.random,
    token: randomUUID,
    traced,
  };
}
