import { type AlarmDefinition, type AlarmMetric, ANY_OF_THREE } from '#shared/alarm-definitions.ts';
import { WEBHOOK_METRIC } from '#shared/webhook/metrics.ts';

/**
 * The webhook receiver's on-call alarms as plain data, in the shape of the relay's own (`shared/alarm-definitions.ts`)
 * but over the receiver's resources: `relay` is the EMF metrics (namespace and `service` dimension shared with the
 * sender), `webhookFunction` the receiver Lambda's AWS/Lambda metrics. Runbook: docs/webhooks.md, "Alarms and
 * runbook", one entry per id. No CDK import here.
 */

export type WebhookAlarmSource = 'relay' | 'webhookFunction';

export interface WebhookAlarmMetric extends Omit<AlarmMetric, 'source'> {
  readonly source: WebhookAlarmSource;
}

export interface WebhookAlarmDefinition extends Omit<AlarmDefinition, 'metrics'> {
  readonly metrics: readonly WebhookAlarmMetric[];
}

/** The ids of the receiver's alarms: part of the alarm names and the runbook headings. Never rename. */
export const WEBHOOK_ALARM_ID = {
  signatureFailures: 'WebhookSignatureFailures',
  receiverErrors: 'WebhookReceiverErrors',
  throttles: 'WebhookThrottles',
  publishFailures: 'WebhookPublishFailures',
} as const;

const FIVE_MINUTES = 300;
const ONE_PERIOD = { periodSeconds: FIVE_MINUTES, evaluationPeriods: 1, datapointsToAlarm: 1 } as const;

/**
 * Builds the receiver's alarm definitions.
 *
 * @param signatureFailureThreshold signature failures in 5 minutes that page on-call
 */
export function webhookAlarmDefinitions(signatureFailureThreshold: number): WebhookAlarmDefinition[] {
  return [
    {
      id: WEBHOOK_ALARM_ID.signatureFailures,
      description:
        `${signatureFailureThreshold}+ webhook deliveries in 5 minutes had a missing or wrong X-ECD-Signature: the ` +
        'secret in Secrets Manager differs from the one in the eCourtDate Console, or someone is probing the URL.',
      metrics: [
        { id: 'signature', source: 'relay', metricName: WEBHOOK_METRIC.signatureFailures, statistic: 'Sum' },
      ],
      ...ONE_PERIOD,
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: signatureFailureThreshold,
      // The receiver emits no datapoint in a period without failures: no data is healthy.
      treatMissingData: 'notBreaching',
    },
    {
      id: WEBHOOK_ALARM_ID.receiverErrors,
      description:
        'The webhook receiver failed: the Lambda crashed or timed out, or could not read its secret or use the ' +
        'ledger table (also: could not record what it had published). eCourtDate retries what got no 2xx, so ' +
        'nothing is lost while this is fixed.',
      metrics: [
        { id: 'errors', source: 'webhookFunction', metricName: 'Errors', statistic: 'Sum' },
        { id: 'internal', source: 'relay', metricName: WEBHOOK_METRIC.internalErrors, statistic: 'Sum' },
        { id: 'progress', source: 'relay', metricName: WEBHOOK_METRIC.progressUnsaved, statistic: 'Sum' },
      ],
      // Each metric has no datapoint in a period without its kind of failure: metric math counts it as 0.
      expression: 'errors + internal + progress',
      expressionLabel: 'receiver errors',
      periodSeconds: FIVE_MINUTES,
      ...ANY_OF_THREE,
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      treatMissingData: 'notBreaching',
    },
    {
      id: WEBHOOK_ALARM_ID.throttles,
      description:
        'The webhook receiver Lambda was throttled (account or function concurrency exhausted): deliveries got 5xx ' +
        'and wait for eCourtDate to retry.',
      metrics: [{ id: 'throttles', source: 'webhookFunction', metricName: 'Throttles', statistic: 'Sum' }],
      ...ONE_PERIOD,
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      treatMissingData: 'notBreaching',
    },
    {
      id: WEBHOOK_ALARM_ID.publishFailures,
      description:
        'PutEvents to the event bus failed or refused entries: deliveries were answered 503 and wait for eCourtDate ' +
        'to retry; upstream systems do not see them until then.',
      metrics: [
        { id: 'publish', source: 'relay', metricName: WEBHOOK_METRIC.publishFailures, statistic: 'Sum' },
      ],
      ...ONE_PERIOD,
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      treatMissingData: 'notBreaching',
    },
  ];
}
