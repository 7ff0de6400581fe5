import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type {
  AlarmComparison,
  AlarmDefinition,
  AlarmMetric,
  AlarmMetricSource,
  MissingDataTreatment,
} from '#shared/alarm-definitions.ts';
import { ConfigError } from '#shared/errors.ts';
import { METRICS_NAMESPACE, relayDimensions } from '#shared/metric-names.ts';

/** The stack's resources behind the `source` of an alarm metric. */
export interface AlarmResources {
  /** The stage: the relay's own metrics are selected by `service` and `stage` (`relayDimensions`). */
  readonly stage: string;
  readonly sendQueue: IQueue;
  readonly deadLetterQueue: IQueue;
  readonly eventsDeadLetterQueue: IQueue;
  readonly senderFunction: IFunction;
  readonly ledgerTable: ITable;
}

export interface RelayAlarmsProps {
  /** The alarms to create, from `alarmDefinitions(thresholds)`. */
  readonly definitions: readonly AlarmDefinition[];
  readonly resources: AlarmResources;
  /** Notified when an alarm fires and again when it recovers. */
  readonly topic: ITopic;
  /** Alarm names are `<prefix>-<definition id>`. */
  readonly alarmNamePrefix: string;
  /** Where the docs are served (the stage's `runbookBaseUrl`); undefined: links are paths in the repository. */
  readonly runbookBaseUrl?: string | undefined;
}

/**
 * The link to an alarm's runbook entry: `<base>/<page>#<alarm id in lower case>` (the entry's heading anchor), or
 * the page's path in the repository without a base.
 * @example runbookLink('docs/runbook.md', 'Forbidden403', 'https://github.com/court/relay/blob/main')
 *   === 'https://github.com/court/relay/blob/main/docs/runbook.md#forbidden403'
 */
export function runbookLink(page: string, alarmId: string, baseUrl: string | undefined): string {
  return `${baseUrl === undefined ? '' : `${baseUrl}/`}${page}#${alarmId.toLowerCase()}`;
}

/** CloudWatch's comparison operator for each comparison of the shared alarm definitions. */
const COMPARISON: Record<AlarmComparison, cloudwatch.ComparisonOperator> = {
  GreaterThanOrEqualToThreshold: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
  GreaterThanThreshold: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
  LessThanThreshold: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
  LessThanOrEqualToThreshold: cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
};

/** CloudWatch's missing-data treatment for each one of the shared alarm definitions. */
const MISSING_DATA: Record<MissingDataTreatment, cloudwatch.TreatMissingData> = {
  notBreaching: cloudwatch.TreatMissingData.NOT_BREACHING,
  breaching: cloudwatch.TreatMissingData.BREACHING,
  ignore: cloudwatch.TreatMissingData.IGNORE,
  missing: cloudwatch.TreatMissingData.MISSING,
};

/**
 * The relay's CloudWatch alarms, one per shared alarm definition, each notifying the on-call topic on ALARM
 * and on OK.
 */
export class RelayAlarms extends Construct {
  /** The alarms by definition id. */
  readonly alarms: ReadonlyMap<string, cloudwatch.Alarm>;

  constructor(scope: Construct, id: string, props: RelayAlarmsProps) {
    super(scope, id);
    const action = new SnsAction(props.topic);
    const alarms = new Map<string, cloudwatch.Alarm>();
    for (const definition of props.definitions) {
      alarms.set(
        definition.id,
        onCallAlarm(this, definition, {
          alarmNamePrefix: props.alarmNamePrefix,
          runbook: runbookLink('docs/runbook.md', definition.id, props.runbookBaseUrl),
          metric: relayAlarmMetric(definition, props.resources),
          action,
        }),
      );
    }
    this.alarms = alarms;
  }
}

/**
 * One CloudWatch alarm from a shared alarm definition, named `<prefix>-<id>`, its description pointing at the
 * runbook entry, notifying `action` on ALARM and on OK. The relay's and the webhook receiver's alarms.
 */
export function onCallAlarm(
  scope: Construct,
  definition: Omit<AlarmDefinition, 'metrics' | 'expression'>,
  options: {
    readonly alarmNamePrefix: string;
    /** The link to the alarm's runbook entry (`runbookLink`). */
    readonly runbook: string;
    readonly metric: cloudwatch.IMetric;
    readonly action: cloudwatch.IAlarmAction;
  },
): cloudwatch.Alarm {
  const alarm = new cloudwatch.Alarm(scope, definition.id, {
    alarmName: `${options.alarmNamePrefix}-${definition.id}`,
    alarmDescription: `${definition.description} Runbook: ${options.runbook}`,
    metric: options.metric,
    evaluationPeriods: definition.evaluationPeriods,
    datapointsToAlarm: definition.datapointsToAlarm,
    threshold: definition.threshold,
    comparisonOperator: COMPARISON[definition.comparison],
    treatMissingData: MISSING_DATA[definition.treatMissingData],
  });
  alarm.addAlarmAction(options.action);
  alarm.addOkAction(options.action);
  return alarm;
}

/**
 * The CloudWatch metric, or metric math, an alarm definition watches: its one metric, or its metrics combined by
 * its expression, each resolved by `resolve` with the definition's period. The relay's alarms and the webhook
 * receiver's build theirs here, each with its own resolver. Throws a ConfigError for several metrics and no
 * expression.
 */
export function alarmMetric<M extends { readonly id: string }>(
  definition: Pick<AlarmDefinition, 'id' | 'periodSeconds' | 'expression' | 'expressionLabel'> & {
    readonly metrics: readonly M[];
  },
  resolve: (metric: M, period: Duration) => cloudwatch.Metric,
): cloudwatch.IMetric {
  const period = Duration.seconds(definition.periodSeconds);
  const [first] = definition.metrics;
  if (definition.expression === undefined && first !== undefined && definition.metrics.length === 1) {
    return resolve(first, period);
  }
  if (definition.expression === undefined) {
    throw new ConfigError(`alarm ${definition.id}`, 'several metrics need an expression to combine them');
  }
  return new cloudwatch.MathExpression({
    expression: definition.expression,
    label: definition.expressionLabel ?? definition.id,
    period,
    usingMetrics: Object.fromEntries(
      definition.metrics.map((metric) => [metric.id, resolve(metric, period)]),
    ),
  });
}

/** The CloudWatch metric, or metric math, one of the relay's alarm definitions watches (`alarmMetric`). */
export function relayAlarmMetric(definition: AlarmDefinition, resources: AlarmResources): cloudwatch.IMetric {
  return alarmMetric(definition, (metric, period) => cloudWatchMetric(metric, resources, period));
}

/** One metric of an alarm definition, resolved to the stack's resource, with its extra dimensions if any. */
export function cloudWatchMetric(
  metric: Pick<AlarmMetric, 'source' | 'metricName' | 'statistic' | 'dimensions'>,
  resources: AlarmResources,
  period: Duration,
): cloudwatch.Metric {
  const options = { statistic: metric.statistic, period };
  const bySource: Record<AlarmMetricSource, () => cloudwatch.Metric> = {
    relay: () =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: metric.metricName,
        dimensionsMap: relayDimensions(resources.stage),
        ...options,
      }),
    sendQueue: () => resources.sendQueue.metric(metric.metricName, options),
    deadLetterQueue: () => resources.deadLetterQueue.metric(metric.metricName, options),
    eventsDeadLetterQueue: () => resources.eventsDeadLetterQueue.metric(metric.metricName, options),
    senderFunction: () => resources.senderFunction.metric(metric.metricName, options),
    ledgerTable: () => resources.ledgerTable.metric(metric.metricName, options),
  };
  const resolved = bySource[metric.source]();
  if (metric.dimensions === undefined) return resolved;
  return resolved.with({ dimensionsMap: { ...resolved.dimensions, ...metric.dimensions } });
}
