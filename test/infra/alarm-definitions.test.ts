import { describe, expect, it } from 'vitest';
import { ALARM_ID, alarmDefinitions, LEDGER_OPERATIONS } from '#shared/alarm-definitions.ts';

// The definitions as data. How they evaluate (CloudWatch's rules, reproduced for the local run) is tested in
// test/local/alarm-evaluation.test.ts, beside the evaluator.
describe('the relay alarm definitions', () => {
  it('defines every alarm once, with a 5-minute period and thresholds from the defaults', () => {
    const definitions = alarmDefinitions();
    expect(definitions.map((d) => d.id)).toEqual(Object.values(ALARM_ID));
    expect(definitions.every((d) => d.periodSeconds === 300)).toBe(true);
    expect(Object.fromEntries(definitions.map((d) => [d.id, d.threshold]))).toEqual({
      Forbidden403: 1,
      ServerErrorRate: 20,
      AuthFailing: 1,
      EcourtdateUnavailable: 1,
      DeadLetterQueueNotEmpty: 1,
      EventsDeadLetterQueueNotEmpty: 1,
      OldestMessageTooOld: 3600,
      NoisyAgency: 1,
      SenderErrors: 1,
      SenderThrottles: 1,
      LedgerSystemErrors: 1,
      LedgerThrottles: 1,
    });
  });

  it('fires EcourtdateUnavailable on any job the circuit breaker held for an outage, its value the jobs waiting in the send queue', () => {
    const definition = alarmDefinitions().find((d) => d.id === ALARM_ID.ecourtdateUnavailable);
    expect(definition?.metrics.map((m) => [m.source, m.metricName])).toEqual([
      ['relay', 'JobsHeld_unavailable'],
      ['sendQueue', 'ApproximateNumberOfMessagesVisible'],
      ['sendQueue', 'ApproximateNumberOfMessagesNotVisible'],
      ['sendQueue', 'ApproximateNumberOfMessagesDelayed'],
    ]);
    expect(definition).toMatchObject({ threshold: 1, evaluationPeriods: 3, datapointsToAlarm: 1 });
    expect(definition?.description).toMatch(/^eCourtDate unavailable: .* N jobs are held/);
  });

  it('keeps AuthFailing in alarm while the circuit breaker holds jobs for refused credentials', () => {
    const definition = alarmDefinitions().find((d) => d.id === ALARM_ID.authFailing);
    expect(definition?.expression).toBe('authFailures + heldAuth');
    expect(definition?.metrics.map((m) => m.metricName)).toEqual(['AuthFailures', 'JobsHeld_auth']);
  });

  it('fires NoisyAgency on a noisy message group of the send queue held for 15 minutes, an idle queue healthy', () => {
    const definition = alarmDefinitions().find((d) => d.id === ALARM_ID.noisyAgency);
    expect(definition).toMatchObject({
      metrics: [{ source: 'sendQueue', metricName: 'ApproximateNumberOfNoisyGroups', statistic: 'Maximum' }],
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      treatMissingData: 'notBreaching',
    });
  });

  it('watches the operations the sender is granted, nothing else', () => {
    expect(LEDGER_OPERATIONS).toEqual(['GetItem', 'PutItem', 'UpdateItem']);
    for (const id of [ALARM_ID.ledgerSystemErrors, ALARM_ID.ledgerThrottles]) {
      const definition = alarmDefinitions().find((d) => d.id === id);
      expect(definition?.metrics.map((metric) => metric.dimensions?.Operation)).toEqual([
        ...LEDGER_OPERATIONS,
      ]);
    }
  });
});
