import { describe, expect, it } from 'vitest';
import { AlarmMonitor } from '#local/cloudwatch/alarms.ts';
import { ALARM_ID, alarmDefinitions } from '#shared/alarm-definitions.ts';
import { METRIC } from '#shared/metric-names.ts';

// Time scale 60: a 5-minute period lasts 5 s of the run.
const PERIOD_MS = 5_000;

function monitor() {
  return new AlarmMonitor({
    definitions: alarmDefinitions(),
    startedAt: 0,
    timeScale: 60,
    unavailableSources: { eventsDeadLetterQueue: 'no EventBridge in a local run' },
  });
}

function stateOf(m: AlarmMonitor, id: string, now: number) {
  const alarm = m.evaluate(now).find((a) => a.name === id);
  if (alarm === undefined) throw new Error(`no alarm ${id}`);
  return alarm;
}

describe('local alarm evaluation with the stack definitions', () => {
  it('an alarm that reads a metric the local run cannot see is never reported OK: INSUFFICIENT_DATA, saying why', () => {
    const m = new AlarmMonitor({
      definitions: alarmDefinitions(),
      startedAt: 0,
      timeScale: 60,
      unavailableSources: { ledgerTable: 'the DynamoDB emulator publishes no metrics' },
    });

    expect(stateOf(m, ALARM_ID.ledgerSystemErrors, 20_000)).toEqual({
      name: ALARM_ID.ledgerSystemErrors,
      state: 'INSUFFICIENT_DATA',
      alarmedDuringRun: false,
      note: 'the DynamoDB emulator publishes no metrics; no breach in what it can see',
    });
  });

  it('one 403 in the current period puts Forbidden403 in ALARM', () => {
    const m = monitor();
    m.count(METRIC.forbidden, 1, 1_000);

    expect(stateOf(m, ALARM_ID.forbidden, 2_000)).toMatchObject({ state: 'ALARM', alarmedDuringRun: true });
  });

  it('scales the periods: three quiet periods later the 403 alarm is OK again, and says it fired', () => {
    const m = monitor();
    m.count(METRIC.forbidden, 1, 1_000);

    expect(stateOf(m, ALARM_ID.forbidden, 4 * PERIOD_MS + 1)).toMatchObject({
      state: 'OK',
      alarmedDuringRun: true,
    });
  });

  it('5xx share: alarms after three consecutive periods at 20% or more of at least 5 calls, not on fewer calls', () => {
    const busy = monitor();
    const quiet = monitor();
    for (let period = 0; period < 3; period++) {
      const at = period * PERIOD_MS + 100;
      busy.count(METRIC.apiCalls, 10, at);
      busy.count(METRIC.responses5xx, 2, at);
      quiet.count(METRIC.apiCalls, 4, at);
      quiet.count(METRIC.responses5xx, 4, at);
    }

    expect(stateOf(busy, ALARM_ID.serverErrors, 3 * PERIOD_MS - 1).state).toBe('ALARM');
    expect(stateOf(quiet, ALARM_ID.serverErrors, 3 * PERIOD_MS - 1).state).toBe('OK');
  });

  it('the dead-letter queue depth is a gauge: a period keeps its maximum', () => {
    const m = monitor();
    m.gauge('deadLetterQueue', 'ApproximateNumberOfMessagesVisible', 0, 100);
    m.gauge('deadLetterQueue', 'ApproximateNumberOfMessagesVisible', 3, 200);
    m.gauge('deadLetterQueue', 'ApproximateNumberOfMessagesVisible', 0, 300);

    expect(stateOf(m, ALARM_ID.deadLetterQueue, 400).state).toBe('ALARM');
  });

  it('an alarm on something a local run does not have stays without data, with a note', () => {
    expect(stateOf(monitor(), ALARM_ID.eventsDeadLetterQueue, 1_000)).toEqual({
      name: ALARM_ID.eventsDeadLetterQueue,
      state: 'INSUFFICIENT_DATA',
      alarmedDuringRun: false,
      note: 'no EventBridge in a local run',
    });
  });
});
