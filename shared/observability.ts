import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Tracer } from '@aws-lambda-powertools/tracer';
import type { MiddlewareObj } from '@middy/core';
import { deployedStage, METRICS_NAMESPACE, METRICS_SERVICE } from '#shared/metric-names.ts';

/** Powertools Tracer and its handler middleware: X-Ray subsegments for the handler, AWS SDK calls and `fetch`. */
export interface Tracing {
  readonly tracer: Tracer;
  readonly middleware: MiddlewareObj;
}

export interface Observability {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /**
   * Absent when X-Ray subsegments are off: the X-Ray SDK is then never imported, so its `async_hooks` context
   * hook is never installed (docs/deploy.md, "X-Ray subsegments").
   */
  readonly tracing?: Tracing | undefined;
}

/**
 * Powertools Logger and Metrics for one container, with `tracing` when given. Namespace and service come from
 * the shared metric names so the alarms always match what is emitted; Powertools' env vars may still override
 * them.
 */
export function createObservability(tracing?: Tracing): Observability {
  const stage = deployedStage();
  return {
    logger: new Logger({ serviceName: METRICS_SERVICE }),
    metrics: new Metrics({
      namespace: METRICS_NAMESPACE,
      serviceName: METRICS_SERVICE,
      // Each stage's alarms select its own metrics (docs/runbook.md).
      ...(stage ? { defaultDimensions: { stage } } : {}),
    }),
    tracing,
  };
}

/**
 * Whether the function wants X-Ray subsegments: Powertools' own switch, `POWERTOOLS_TRACE_ENABLED`, which turns
 * tracing off only when it is `false` (any case, spaces around ignored, as Powertools reads it). The stack sets it from the stage's `traceSubsegments`
 * (docs/deploy.md, "X-Ray subsegments").
 */
export function subsegmentsWanted(env: Readonly<Record<string, string | undefined>>): boolean {
  return env.POWERTOOLS_TRACE_ENABLED?.trim().toLowerCase() !== 'false';
}

/**
 * Imports Powertools Tracer (and with it the X-Ray SDK, which installs its context hook on import) and builds
 * the Tracer and its handler middleware. A dynamic import: in the bundle the SDK is only evaluated when this
 * runs. Outside Lambda the Tracer disables itself, but the hook is installed all the same.
 */
export async function loadTracing(): Promise<Tracing> {
  const [{ Tracer }, { captureLambdaHandler }] = await Promise.all([
    import('@aws-lambda-powertools/tracer'),
    import('@aws-lambda-powertools/tracer/middleware'),
  ]);
  const tracer = new Tracer({ serviceName: METRICS_SERVICE });
  return { tracer, middleware: captureLambdaHandler(tracer) };
}

/**
 * Observability for a Lambda container: with tracing when {@link subsegmentsWanted} says so.
 *
 * @example const observability = await lambdaObservability(process.env);
 */
export async function lambdaObservability(
  env: Readonly<Record<string, string | undefined>>,
): Promise<Observability> {
  return createObservability(subsegmentsWanted(env) ? await loadTracing() : undefined);
}

/**
 * The Tracer's part of a handler: wraps the AWS SDK clients so their calls become subsegments (only when the
 * Tracer is enabled, in Lambda) and returns the middleware to `use`, or none without tracing.
 */
export function traceClients(
  tracing: Tracing | undefined,
  clients: readonly Parameters<Tracer['captureAWSv3Client']>[0][],
): MiddlewareObj[] {
  if (!tracing) return [];
  if (tracing.tracer.isTracingEnabled())
    for (const client of clients) tracing.tracer.captureAWSv3Client(client);
  return [tracing.middleware];
}
