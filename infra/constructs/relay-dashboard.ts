import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { type AlarmResources, cloudWatchMetric, relayAlarmMetric } from '#infra/constructs/relay-alarms.ts';
import type { AlarmDefinition } from '#shared/alarm-definitions.ts';
import { METRIC, METRICS_NAMESPACE, METRICS_SERVICE } from '#shared/metric-names.ts';
import { WEBHOOK_METRIC } from '#shared/webhook/metrics.ts';

/**
 * The SEARCH of the sender's `Status<code>` metrics. SEARCH matches `MetricName=Status` as a word anywhere in the
 * name, so every other relay metric with "Status" in its name (the webhook receiver's) is excluded by name.
 */
export function statusCodeSearch(periodSeconds: number, stage: string): string {
  const others = [...Object.values(METRIC), ...Object.values(WEBHOOK_METRIC)].filter(
    (name) => /Status/.test(name) && !/^Status\d+$/.test(name),
  );
  const not = others.map((name) => ` NOT MetricName="${name}"`).join('');
  return `SEARCH('${relaySchema(stage)} MetricName=Status${not}', 'Sum', ${periodSeconds})`;
}

/** The SEARCH schema and selection of the relay's own metrics in one stage (`service` and `stage` dimensions). */
function relaySchema(stage: string): string {
  return `{${METRICS_NAMESPACE},service,stage} service="${METRICS_SERVICE}" stage="${stage}"`;
}

export interface RelayDashboardProps {
  readonly dashboardName: string;
  readonly resources: AlarmResources;
  /** Shown in an alarm status widget at the top. */
  readonly alarms: readonly cloudwatch.IAlarm[];
  /** The alarms' definitions: the ledger graph draws what the ledger table's alarms watch. */
  readonly definitions: readonly AlarmDefinition[];
  /** A line of context at the top (stage, API base URL). */
  readonly summary: string;
  /** The event source mapping's maximum concurrency, drawn on the concurrency graph. */
  readonly maxConcurrency: number;
}

const PERIOD = Duration.minutes(5);
const WIDTH = 8;
const HEIGHT = 6;

/**
 * One page for on-call: alarm states, eCourtDate responses by status code, outcomes, the send queue's depth
 * and age, the dead-letter queues, the sender's duration, errors and concurrency, the job ledger table, the
 * circuit breaker, and the fair queue's agencies.
 */
export class RelayDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: RelayDashboardProps) {
    super(scope, id);
    const { resources } = props;
    const relay = (metricName: string, label: string) =>
      cloudWatchMetric({ source: 'relay', metricName, statistic: 'Sum' }, resources, PERIOD).with({ label });
    const graph = (
      title: string,
      left: cloudwatch.IMetric[],
      extra: Partial<cloudwatch.GraphWidgetProps> = {},
    ) => new cloudwatch.GraphWidget({ title, left, width: WIDTH, height: HEIGHT, ...extra });
    const fn = resources.senderFunction;
    const table = resources.ledgerTable;
    const ledgerAlarmMetrics = props.definitions
      .filter((definition) => definition.metrics.every((metric) => metric.source === 'ledgerTable'))
      .map((definition) => relayAlarmMetric(definition, resources));

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new cloudwatch.TextWidget({
            markdown: `# eCourtDate relay\n${props.summary}. Runbook: docs/runbook.md.`,
            width: 24,
            height: 2,
          }),
        ],
        [
          new cloudwatch.AlarmStatusWidget({
            title: 'Alarms',
            alarms: [...props.alarms],
            width: 24,
            height: 3,
          }),
        ],
        [
          graph(
            'eCourtDate responses by status code',
            [
              // Every Status<code> metric the sender has emitted, without listing codes in advance.
              new cloudwatch.MathExpression({
                expression: statusCodeSearch(PERIOD.toSeconds(), resources.stage),
                label: '',
                period: PERIOD,
              }),
            ],
            { stacked: true },
          ),
          graph('Outcomes', [
            relay(METRIC.delivered, 'delivered'),
            relay(METRIC.duplicates, 'duplicate'),
            relay(METRIC.retried, 'retried'),
            relay(METRIC.deferred, 'deferred (429 wait)'),
            relay(METRIC.deadLettered, 'dead-lettered'),
            relay(METRIC.alreadySettled, 'already settled (not sent again)'),
          ]),
          graph('eCourtDate calls and failures', [
            relay(METRIC.apiCalls, 'API calls'),
            relay(METRIC.tokenRequests, 'token requests'),
            relay(METRIC.responses4xx, '4xx'),
            relay(METRIC.forbidden, '403'),
            relay(METRIC.rateLimited, '429'),
            relay(METRIC.responses5xx, '5xx'),
            relay(METRIC.transportErrors, 'timeouts and connection errors'),
            relay(METRIC.authFailures, 'auth failures after refresh'),
          ]),
        ],
        [
          graph(
            'Send queue: depth and age',
            [
              resources.sendQueue.metricApproximateNumberOfMessagesVisible({
                period: PERIOD,
                statistic: 'Maximum',
                label: 'waiting',
              }),
              resources.sendQueue.metricApproximateNumberOfMessagesNotVisible({
                period: PERIOD,
                statistic: 'Maximum',
                label: 'in flight or backing off',
              }),
            ],
            {
              right: [
                resources.sendQueue.metricApproximateAgeOfOldestMessage({
                  period: PERIOD,
                  statistic: 'Maximum',
                  label: 'oldest job (s)',
                }),
              ],
            },
          ),
          graph('Dead-letter queues', [
            resources.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
              period: PERIOD,
              statistic: 'Maximum',
              label: 'send jobs dead-lettered',
            }),
            resources.eventsDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
              period: PERIOD,
              statistic: 'Maximum',
              label: 'EventBridge deliveries failed',
            }),
          ]),
          graph(
            'Dead-lettered by reason',
            [
              new cloudwatch.MathExpression({
                // DeadLettered_<reason>, without the DeadLettered total.
                expression: `SEARCH('${relaySchema(resources.stage)} MetricName=DeadLettered NOT MetricName="${METRIC.deadLettered}"', 'Sum', ${PERIOD.toSeconds()})`,
                label: '',
                period: PERIOD,
              }),
            ],
            { stacked: true },
          ),
        ],
        [
          graph('Sender duration (ms)', [
            fn.metricDuration({ period: PERIOD, statistic: 'Average', label: 'average' }),
            fn.metricDuration({ period: PERIOD, statistic: 'p99', label: 'p99' }),
            fn.metricDuration({ period: PERIOD, statistic: 'Maximum', label: 'maximum' }),
          ]),
          graph('Sender errors and throttles', [
            fn.metricInvocations({ period: PERIOD, statistic: 'Sum', label: 'invocations' }),
            fn.metricErrors({ period: PERIOD, statistic: 'Sum', label: 'errors' }),
            fn.metricThrottles({ period: PERIOD, statistic: 'Sum', label: 'throttles' }),
          ]),
          graph(
            'Sender concurrency',
            [
              fn.metric('ConcurrentExecutions', {
                period: PERIOD,
                statistic: 'Maximum',
                label: 'concurrent executions',
              }),
            ],
            { leftAnnotations: [{ value: props.maxConcurrency, label: 'maximum concurrency' }] },
          ),
        ],
        [
          graph(
            'Job ledger (DynamoDB)',
            [
              table.metricConsumedReadCapacityUnits({ period: PERIOD, label: 'read units consumed' }),
              table.metricConsumedWriteCapacityUnits({ period: PERIOD, label: 'write units consumed' }),
            ],
            // The same sums over the sender's operations that the ledger alarms watch.
            { right: ledgerAlarmMetrics },
          ),
          // The circuit breaker (docs/pacing.md, "The circuit breaker"): open (1) or closed (0) as the instances
          // saw it, the jobs it held and its probes.
          graph(
            'Circuit breaker',
            [
              cloudWatchMetric(
                { source: 'relay', metricName: METRIC.breakerOpen, statistic: 'Maximum' },
                resources,
                Duration.minutes(1),
              ).with({ label: 'open (1) or closed (0)' }),
            ],
            {
              right: [
                relay(METRIC.jobsHeld, 'jobs held'),
                relay(METRIC.breakerProbes, 'probes (GET /v1/settings)'),
              ],
              leftYAxis: { min: 0, max: 1 },
            },
          ),
          // The fair queue (docs/pacing.md, "Fairness"): noisy agencies, and how the quiet ones fare beside them.
          graph(
            'Send queue: fairness by agency',
            [
              resources.sendQueue.metric('ApproximateNumberOfNoisyGroups', {
                period: PERIOD,
                statistic: 'Maximum',
                label: 'noisy agencies',
              }),
              resources.sendQueue.metric('ApproximateNumberOfMessagesVisibleInQuietGroups', {
                period: PERIOD,
                statistic: 'Maximum',
                label: 'waiting, quiet agencies',
              }),
            ],
            {
              right: [
                resources.sendQueue.metric('ApproximateAgeOfOldestMessageInQuietGroups', {
                  period: PERIOD,
                  statistic: 'Maximum',
                  label: 'oldest job of a quiet agency (s)',
                }),
              ],
            },
          ),
        ],
      ],
    });
  }
}
