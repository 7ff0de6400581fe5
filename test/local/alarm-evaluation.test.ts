import { describe, expect, it } from 'vitest';
import {
  type AlarmState,
  alarmValue,
  evaluateAlarm,
  metricKey,
  type PeriodValues,
} from '#local/cloudwatch/alarm-evaluation.ts';
import {
  ALARM_ID,
  type AlarmDefinition,
  alarmDefinitions,
  DEFAULT_ALARM_THRESHOLDS,
  LEDGER_OPERATIONS,
  type MissingDataTreatment,
} from '#shared/alarm-definitions.ts';
import { METRIC } from '#shared/metric-names.ts';

/** A one-metric alarm, "value >= 1 is breaching", for the missing-data tables. */
function thresholdAlarm(
  treatMissingData: MissingDataTreatment,
  evaluationPeriods: number,
  datapointsToAlarm: number,
): AlarmDefinition {
  return {
    id: 'Test',
    description: 'test',
    metrics: [{ id: 'm', source: 'relay', metricName: 'Test', statistic: 'Sum' }],
    periodSeconds: 300,
    evaluationPeriods,
    datapointsToAlarm,
    comparison: 'GreaterThanOrEqualToThreshold',
    threshold: 1,
    treatMissingData,
  };
}

/** AWS's notation, oldest first: `0` not breaching, `X` breaching, `-` missing. */
function periods(notation: string): PeriodValues[] {
  return notation.split(' ').map((point) => ({ Test: point === '-' ? undefined : point === 'X' ? 1 : 0 }));
}

function definition(id: string, thresholds = DEFAULT_ALARM_THRESHOLDS): AlarmDefinition {
  const found = alarmDefinitions(thresholds).find((d) => d.id === id);
  if (!found) throw new Error(`no alarm ${id}`);
  return found;
}

describe('evaluateAlarm follows the CloudWatch missing-data tables', () => {
  // AWS CloudWatch user guide, "How alarm state is evaluated when data is missing": evaluation range 5,
  // columns MISSING, IGNORE, BREACHING, NOT BREACHING. "retain" = the previous state is kept.
  const treatments: MissingDataTreatment[] = ['missing', 'ignore', 'breaching', 'notBreaching'];
  type Row = [
    string,
    [AlarmState | 'retain', AlarmState | 'retain', AlarmState | 'retain', AlarmState | 'retain'],
  ];
  const threeOfThree: Row[] = [
    ['0 - X - X', ['OK', 'OK', 'OK', 'OK']],
    ['0 - - - -', ['OK', 'OK', 'OK', 'OK']],
    ['- - - - -', ['INSUFFICIENT_DATA', 'retain', 'ALARM', 'OK']],
    ['0 X X - X', ['ALARM', 'ALARM', 'ALARM', 'ALARM']],
    ['- - X - -', ['ALARM', 'retain', 'ALARM', 'OK']],
  ];
  const twoOfThree: Row[] = [
    ['0 - X - X', ['ALARM', 'ALARM', 'ALARM', 'ALARM']],
    ['0 0 X 0 X', ['ALARM', 'ALARM', 'ALARM', 'ALARM']],
    ['0 - X - -', ['OK', 'OK', 'ALARM', 'OK']],
    ['- - - - 0', ['OK', 'OK', 'ALARM', 'OK']],
    ['- - - X -', ['ALARM', 'retain', 'ALARM', 'OK']],
  ];

  for (const [label, n, m, rows] of [
    ['3 of 3', 3, 3, threeOfThree],
    ['2 of 3', 3, 2, twoOfThree],
  ] as const) {
    for (const [notation, expected] of rows) {
      treatments.forEach((treatment, column) => {
        const want = expected[column];
        it(`${label}, ${notation}, ${treatment}: ${want}`, () => {
          // A previous state no rule would produce on its own shows that "retain" really retains.
          const previous: AlarmState = 'ALARM';
          const state = evaluateAlarm(thresholdAlarm(treatment, n, m), periods(notation), previous).state;
          expect(state).toBe(want === 'retain' ? previous : want);
        });
      });
    }
  }

  it('treats periods before the first value as missing', () => {
    expect(evaluateAlarm(thresholdAlarm('missing', 3, 3), periods('X')).state).toBe('OK');
    expect(evaluateAlarm(thresholdAlarm('breaching', 3, 3), periods('X')).state).toBe('ALARM');
  });

  it('keeps INSUFFICIENT_DATA with ignore when nothing was ever reported', () => {
    expect(evaluateAlarm(thresholdAlarm('ignore', 1, 1), []).state).toBe('INSUFFICIENT_DATA');
  });

  it('reports the value per period and how many datapoints breached', () => {
    const result = evaluateAlarm(thresholdAlarm('notBreaching', 3, 3), periods('0 X X X'));
    expect(result.values).toEqual([0, 1, 1, 1]);
    expect(result).toMatchObject({ state: 'ALARM', breaching: 3 });
  });
});

describe('the relay alarm definitions, evaluated as CloudWatch would', () => {
  it('fires the 403 alarm on a single 403 in a 5-minute period', () => {
    const forbidden = definition(ALARM_ID.forbidden);
    expect(evaluateAlarm(forbidden, [{ [METRIC.forbidden]: 0 }]).state).toBe('OK');
    expect(evaluateAlarm(forbidden, [{ [METRIC.forbidden]: 1 }]).state).toBe('ALARM');
  });

  it('clears the 403 alarm once the 403 period has left the evaluation range, as CloudWatch does', () => {
    // CloudWatch keeps re-evaluating the last real datapoint while it is inside the evaluation range.
    const forbidden = definition(ALARM_ID.forbidden);
    expect(evaluateAlarm(forbidden, [{ [METRIC.forbidden]: 1 }, {}, {}]).state).toBe('ALARM');
    expect(evaluateAlarm(forbidden, [{ [METRIC.forbidden]: 1 }, {}, {}, {}]).state).toBe('OK');
  });

  it('honours a configured 403 threshold', () => {
    const forbidden = definition(ALARM_ID.forbidden, { ...DEFAULT_ALARM_THRESHOLDS, forbiddenThreshold: 3 });
    expect(evaluateAlarm(forbidden, [{ [METRIC.forbidden]: 2 }]).state).toBe('OK');
    expect(evaluateAlarm(forbidden, [{ [METRIC.forbidden]: 3 }]).state).toBe('ALARM');
  });

  describe('5xx spike', () => {
    const serverErrors = definition(ALARM_ID.serverErrors);
    const period = (calls: number, errors5xx?: number, transport?: number): PeriodValues => ({
      [METRIC.apiCalls]: calls,
      [METRIC.responses5xx]: errors5xx,
      [METRIC.transportErrors]: transport,
    });

    it('fires after three consecutive periods at 20 % or more of calls failing with 5xx or in transport', () => {
      const spike = [period(10, 2), period(10, 1, 1), period(10, undefined, 3)];
      const result = evaluateAlarm(serverErrors, spike);
      expect(result.values).toEqual([20, 20, 30]);
      expect(result.state).toBe('ALARM');
    });

    it('does not fire when one of the three periods is below the share', () => {
      expect(evaluateAlarm(serverErrors, [period(10, 5), period(10, 1), period(10, 5)]).state).toBe('OK');
    });

    it('counts a period with fewer calls than serverErrorMinCalls as healthy', () => {
      const result = evaluateAlarm(serverErrors, [period(4, 4), period(4, 4), period(4, 4)]);
      expect(result.values).toEqual([0, 0, 0]);
      expect(result.state).toBe('OK');
    });

    it('has no datapoint in a period without any metric (as CloudWatch), which counts as healthy', () => {
      const result = evaluateAlarm(serverErrors, [{}, {}, {}]);
      expect(result.values).toEqual([undefined, undefined, undefined]);
      expect(result.state).toBe('OK');
    });

    it('uses the configured share, minimum calls and number of periods', () => {
      const custom = definition(ALARM_ID.serverErrors, {
        ...DEFAULT_ALARM_THRESHOLDS,
        serverErrorRatePercent: 50,
        serverErrorMinCalls: 2,
        serverErrorPeriods: 2,
      });
      expect(custom).toMatchObject({ evaluationPeriods: 2, datapointsToAlarm: 2, threshold: 50 });
      expect(evaluateAlarm(custom, [period(2, 1), period(2, 1)]).state).toBe('ALARM');
      expect(evaluateAlarm(custom, [period(2, 1), period(3, 1)]).state).toBe('OK');
    });
  });

  it('keeps the dead-letter alarm in ALARM when SQS stops reporting an idle queue', () => {
    const dlq = definition(ALARM_ID.deadLetterQueue);
    const key = metricKey(dlq.metrics[0] ?? { source: 'deadLetterQueue', metricName: '' });
    expect(key).toBe('deadLetterQueue.ApproximateNumberOfMessagesVisible');
    expect(evaluateAlarm(dlq, [{ [key]: 3 }]).state).toBe('ALARM');
    expect(evaluateAlarm(dlq, [{ [key]: 3 }, {}, {}, {}], 'ALARM').state).toBe('ALARM');
    expect(evaluateAlarm(dlq, [{ [key]: 3 }, {}, {}, {}, { [key]: 0 }], 'ALARM').state).toBe('OK');
  });

  it('fires the oldest-message alarm at an hour', () => {
    const oldest = definition(ALARM_ID.oldestMessage);
    const key = 'sendQueue.ApproximateAgeOfOldestMessage';
    expect(evaluateAlarm(oldest, [{ [key]: 3599 }]).state).toBe('OK');
    expect(evaluateAlarm(oldest, [{ [key]: 3600 }]).state).toBe('ALARM');
  });

  it('treats an idle sender (no Errors datapoints) as healthy', () => {
    expect(evaluateAlarm(definition(ALARM_ID.senderErrors), [{}, {}]).state).toBe('OK');
    expect(evaluateAlarm(definition(ALARM_ID.senderErrors), [{ 'senderFunction.Errors': 1 }]).state).toBe(
      'ALARM',
    );
  });

  describe('ledger table', () => {
    const systemErrors = (operation: string) => `ledgerTable.SystemErrors{Operation=${operation}}`;
    const throttled = (operation: string) => `ledgerTable.ThrottledRequests{Operation=${operation}}`;

    it('keys DynamoDB metrics by table metric and operation', () => {
      expect(
        definition(ALARM_ID.ledgerSystemErrors).metrics.map((metric) => [metric.id, metricKey(metric)]),
      ).toEqual(LEDGER_OPERATIONS.map((operation) => [`systemErrors${operation}`, systemErrors(operation)]));
      expect(metricKey({ source: 'ledgerTable', metricName: 'X', dimensions: { b: '2', a: '1' } })).toBe(
        'ledgerTable.X{a=1,b=2}',
      );
    });

    it('fires on a single system error of any one operation, the others reporting nothing', () => {
      const alarm = definition(ALARM_ID.ledgerSystemErrors);
      expect(evaluateAlarm(alarm, [{ [systemErrors('UpdateItem')]: 1 }]).state).toBe('ALARM');
      expect(
        evaluateAlarm(alarm, [{ [systemErrors('GetItem')]: 0, [systemErrors('PutItem')]: 0 }]).state,
      ).toBe('OK');
    });

    it('sums throttles over the operations and treats a quiet table as healthy', () => {
      const alarm = definition(ALARM_ID.ledgerThrottles, {
        ...DEFAULT_ALARM_THRESHOLDS,
        ledgerThrottleThreshold: 3,
      });
      const result = evaluateAlarm(alarm, [{}, { [throttled('GetItem')]: 1, [throttled('PutItem')]: 2 }]);
      expect(result.values).toEqual([undefined, 3]);
      expect(result.state).toBe('ALARM');
      expect(evaluateAlarm(alarm, [{}, {}, {}]).state).toBe('OK');
    });
  });
});

describe('every alarm definition can be evaluated locally', () => {
  it.each(alarmDefinitions().map((d) => [d.id, d] as const))(
    '%s: the local evaluator computes its value (its expression parses)',
    (_, d) => {
      expect(() => alarmValue(d, {})).not.toThrow();
    },
  );
});
