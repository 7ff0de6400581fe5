import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { METRICS_NAMESPACE, METRICS_SERVICE } from '#shared/metric-names.ts';

export interface Observability {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracer: Tracer;
}

/**
 * Powertools Logger, Metrics and Tracer for one container. Namespace and service come from the shared
 * metric names so the alarms always match what is emitted; Powertools' env vars may still override them.
 */
export function createObservability(): Observability {
  return {
    logger: new Logger({ serviceName: METRICS_SERVICE }),
    metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE }),
    tracer: new Tracer({ serviceName: METRICS_SERVICE }),
  };
}
