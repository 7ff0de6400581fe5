import { evaluateExpression } from '#local/cloudwatch/metric-math.ts';
import type { AlarmComparison, AlarmDefinition, AlarmMetric } from '#shared/alarm-definitions.ts';

/**
 * CloudWatch's alarm-state evaluation, for the local run: the stack's alarm definitions (shared/alarm-definitions.ts)
 * evaluated over per-period metric values the way CloudWatch evaluates the deployed alarms. Only `npm start`
 * needs this (local/cloudwatch/alarms.ts feeds it); the stack hands the definitions to CloudWatch.
 */

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

/**
 * The key of a metric in the per-period values `evaluateAlarm` reads: the EMF metric name for the relay's own
 * metrics (`Responses403`), `<source>.<metricName>` for AWS metrics (`deadLetterQueue.ApproximateNumberOfMessagesVisible`),
 * followed by any extra dimensions in braces (`ledgerTable.SystemErrors{Operation=GetItem}`).
 * Values are the metric's statistic over one period (the Sum of a count, the Maximum of a queue depth).
 */
export function metricKey(metric: Pick<AlarmMetric, 'source' | 'metricName' | 'dimensions'>): string {
  const name = metric.source === 'relay' ? metric.metricName : `${metric.source}.${metric.metricName}`;
  const dimensions = Object.entries(metric.dimensions ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${value}`);
  return dimensions.length === 0 ? name : `${name}{${dimensions.join(',')}}`;
}

/** One period's values, keyed by `metricKey`; a missing key or `undefined` is a missing datapoint. */
export type PeriodValues = Readonly<Record<string, number | undefined>>;

export interface AlarmEvaluation {
  readonly state: AlarmState;
  /** The alarm's value per period, oldest first (`undefined`: no datapoint). */
  readonly values: readonly (number | undefined)[];
  /** Datapoints counted as breaching in the deciding evaluation, missing ones filled as breaching included. */
  readonly breaching: number;
}

/**
 * Evaluates an alarm over consecutive periods the way CloudWatch does, including its missing-data rules
 * (AWS CloudWatch user guide, "How alarm state is evaluated when data is missing"):
 * - CloudWatch looks at an evaluation range of a few more periods than `evaluationPeriods` (modelled here as
 *   `evaluationPeriods + 2`, the range AWS documents for 5-minute alarms with 3 evaluation periods);
 * - with at least `evaluationPeriods` real datapoints in the range, the most recent ones decide and the
 *   missing-data treatment is not used;
 * - with fewer, the shortfall is filled per `treatMissingData`: `breaching` fills count as breaching,
 *   `notBreaching` fills as not; with `missing` and `ignore`, a range with no real datapoint gives
 *   INSUFFICIENT_DATA or keeps `previousState`;
 * - "premature alarm" rule: when every real datapoint is breaching and the oldest is at least
 *   `datapointsToAlarm` periods old, `missing` goes to ALARM and `ignore` keeps `previousState`.
 *
 * @param periods per-period metric values, oldest first, keyed by `metricKey`
 * @param previousState the alarm's state before this evaluation (new alarms start in INSUFFICIENT_DATA)
 * @example
 * const [forbidden] = alarmDefinitions();
 * evaluateAlarm(forbidden, [{ Responses403: 0 }, { Responses403: 2 }]).state; // 'ALARM'
 */
export function evaluateAlarm(
  definition: AlarmDefinition,
  periods: readonly PeriodValues[],
  previousState: AlarmState = 'INSUFFICIENT_DATA',
): AlarmEvaluation {
  const values = periods.map((period) => alarmValue(definition, period));
  const n = definition.evaluationPeriods;
  const m = definition.datapointsToAlarm;
  const range = values.slice(-(n + 2));
  const isBreaching = (value: number) => compare(value, definition.comparison, definition.threshold);
  // Real datapoints in the range, newest first, with their age in periods (the newest period is age 1).
  const real: { value: number; age: number }[] = [];
  for (let age = 1; age <= range.length; age++) {
    const value = range[range.length - age];
    if (value !== undefined) real.push({ value, age });
  }
  const result = (state: AlarmState, breaching: number): AlarmEvaluation => ({ state, values, breaching });

  if (real.length >= n) {
    const breaching = real.slice(0, n).filter((d) => isBreaching(d.value)).length;
    return result(breaching >= m ? 'ALARM' : 'OK', breaching);
  }
  const realBreaching = real.filter((d) => isBreaching(d.value)).length;
  const fills = n - real.length;
  switch (definition.treatMissingData) {
    case 'breaching':
      return result(realBreaching + fills >= m ? 'ALARM' : 'OK', realBreaching + fills);
    case 'notBreaching':
      return result(realBreaching >= m ? 'ALARM' : 'OK', realBreaching);
    case 'missing':
    case 'ignore': {
      const keep = definition.treatMissingData === 'ignore' ? previousState : undefined;
      if (real.length === 0) return result(keep ?? 'INSUFFICIENT_DATA', 0);
      const oldest = real[real.length - 1];
      const premature = realBreaching === real.length && oldest !== undefined && oldest.age >= m;
      if (premature) return result(keep ?? 'ALARM', realBreaching);
      return result(realBreaching >= m ? 'ALARM' : 'OK', realBreaching);
    }
  }
}

/** The alarm's value for one period: its metric's value, or its expression over the metrics' values. */
export function alarmValue(definition: AlarmDefinition, period: PeriodValues): number | undefined {
  if (definition.expression === undefined) {
    const [metric] = definition.metrics;
    return metric === undefined ? undefined : finite(period[metricKey(metric)]);
  }
  const variables: Record<string, number | undefined> = {};
  for (const metric of definition.metrics) variables[metric.id] = finite(period[metricKey(metric)]);
  return evaluateExpression(definition.expression, variables);
}

function finite(value: number | undefined): number | undefined {
  return value !== undefined && Number.isFinite(value) ? value : undefined;
}

function compare(value: number, comparison: AlarmComparison, threshold: number): boolean {
  switch (comparison) {
    case 'GreaterThanOrEqualToThreshold':
      return value >= threshold;
    case 'GreaterThanThreshold':
      return value > threshold;
    case 'LessThanThreshold':
      return value < threshold;
    case 'LessThanOrEqualToThreshold':
      return value <= threshold;
  }
}
