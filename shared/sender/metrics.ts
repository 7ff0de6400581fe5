import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { deadLetterMetric, heldMetric, METRIC, statusMetric } from '#shared/metric-names.ts';
import type { Outcome } from '#shared/outcome.ts';

/** Counts one answer from eCourtDate (messages or token endpoint): by status code, by class, and the alarmed ones. */
export function recordApiAnswer(metrics: Metrics, status: number | 'timeout' | 'connection'): void {
  count(metrics, METRIC.apiCalls);
  if (typeof status !== 'number') {
    count(metrics, METRIC.transportErrors);
    return;
  }
  count(metrics, statusMetric(status));
  if (status >= 400 && status < 500) count(metrics, METRIC.responses4xx);
  if (status >= 500) count(metrics, METRIC.responses5xx);
  if (status === 403) count(metrics, METRIC.forbidden);
  if (status === 429) count(metrics, METRIC.rateLimited);
}

/** Counts a token request and its answer. */
export function recordTokenAnswer(metrics: Metrics, status: number | 'timeout' | 'connection'): void {
  count(metrics, METRIC.tokenRequests);
  recordApiAnswer(metrics, status);
}

/** Counts a job that came again after it had settled, acknowledged without a send. */
export function recordAlreadySettled(metrics: Metrics): void {
  count(metrics, METRIC.alreadySettled);
}

/** Counts what became of a job on this attempt. */
export function recordOutcome(metrics: Metrics, outcome: Outcome, authFailed: boolean): void {
  if (authFailed) count(metrics, METRIC.authFailures);
  switch (outcome.type) {
    case 'delivered':
      count(metrics, METRIC.delivered);
      return;
    case 'duplicate':
      count(metrics, METRIC.duplicates);
      return;
    case 'retry':
      if (outcome.cause === 'held_unavailable' || outcome.cause === 'held_auth') {
        count(metrics, METRIC.jobsHeld);
        count(metrics, heldMetric(outcome.cause === 'held_auth' ? 'auth' : 'unavailable'));
        return;
      }
      count(metrics, outcome.cause === 'deferred' ? METRIC.deferred : METRIC.retried);
      return;
    case 'dead_letter':
      count(metrics, METRIC.deadLettered);
      count(metrics, deadLetterMetric(outcome.reason));
      return;
  }
}

function count(metrics: Metrics, name: string): void {
  metrics.addMetric(name, MetricUnit.Count, 1);
}
