import {
  type AlarmState,
  evaluateAlarm,
  metricKey,
  type PeriodValues,
} from '#local/cloudwatch/alarm-evaluation.ts';
import type { AlarmDefinition, AlarmMetricSource } from '#shared/alarm-definitions.ts';

/** An alarm's state at the end of a local run, and how it got there. */
export interface AlarmOutcome {
  /** The definition id, e.g. `Forbidden403` (the stack names the alarm `<stack>-<id>`). */
  readonly name: string;
  readonly state: AlarmState;
  /** Whether it was in ALARM at the end of any period of the run. */
  readonly alarmedDuringRun: boolean;
  /** Why the state cannot mean much locally, when that is so (no EventBridge, no Lambda throttling). */
  readonly note?: string;
}

type Statistic = 'Sum' | 'Maximum';

interface Sample {
  readonly key: string;
  readonly value: number;
  readonly at: number;
  readonly statistic: Statistic;
}

export interface AlarmMonitorOptions {
  readonly definitions: readonly AlarmDefinition[];
  /** Epoch ms the run started: period 0 begins here. */
  readonly startedAt: number;
  /** A period of `periodSeconds` lasts `periodSeconds / timeScale` real seconds. */
  readonly timeScale: number;
  /** Sources with no local counterpart: their alarms get a note (and no data). */
  readonly unavailableSources?: Readonly<Partial<Record<AlarmMetricSource, string>>>;
}

/**
 * Collects the metrics a local run produces and evaluates the stack's alarm definitions over them with the
 * `evaluateAlarm`, period by period, as CloudWatch would: the sender's EMF counts (summed per period),
 * the queues' depth and age (maximum per period, sampled), and the simulated function's errors and throttles.
 * Periods are scaled like every other window of the run (5 minutes = 5 s at time scale 60); so are ages.
 */
export class AlarmMonitor {
  readonly #options: AlarmMonitorOptions;
  readonly #samples: Sample[] = [];

  constructor(options: AlarmMonitorOptions) {
    this.#options = options;
  }

  /** One `addMetric` of the sender: an EMF count (the `relay` source). */
  count(metricName: string, value: number, at: number = Date.now()): void {
    this.#samples.push({ key: metricName, value, at, statistic: 'Sum' });
  }

  /** An AWS metric of one of the stack's resources, e.g. `('senderFunction', 'Errors', 1)`. */
  sum(source: Exclude<AlarmMetricSource, 'relay'>, metricName: string, value: number, at = Date.now()): void {
    this.#samples.push({ key: metricKey({ source, metricName }), value, at, statistic: 'Sum' });
  }

  /** A gauge read at `at`, e.g. the dead-letter queue's visible messages; a period keeps its maximum. */
  gauge(
    source: Exclude<AlarmMetricSource, 'relay'>,
    metricName: string,
    value: number,
    at = Date.now(),
  ): void {
    this.#samples.push({ key: metricKey({ source, metricName }), value, at, statistic: 'Maximum' });
  }

  /**
   * Every alarm's state at `now`: evaluated at the end of each period so far (the last one possibly partial),
   * each evaluation starting from the state the previous one left, as an alarm does.
   */
  evaluate(now: number = Date.now()): AlarmOutcome[] {
    const { definitions, unavailableSources = {} } = this.#options;
    return definitions.map((definition) => {
      const periods = this.#periods(definition.periodSeconds, now);
      let state: AlarmState = 'INSUFFICIENT_DATA';
      let alarmedDuringRun = false;
      for (let end = 1; end <= periods.length; end++) {
        state = evaluateAlarm(definition, periods.slice(0, end), state).state;
        if (state === 'ALARM') alarmedDuringRun = true;
      }
      const note = definition.metrics
        .map((metric) => unavailableSources[metric.source])
        .find((text) => text !== undefined);
      // A metric the local run cannot see could have breached: an alarm that reads one is never reported OK.
      // ALARM from what it can see stays ALARM.
      const partial = note !== undefined && state === 'OK';
      return {
        name: definition.id,
        state: partial ? 'INSUFFICIENT_DATA' : state,
        alarmedDuringRun,
        ...(note ? { note: partial ? `${note}; no breach in what it can see` : note } : {}),
      };
    });
  }

  #periods(periodSeconds: number, now: number): PeriodValues[] {
    const periodMs = (periodSeconds * 1000) / this.#options.timeScale;
    const count = Math.max(1, Math.floor((now - this.#options.startedAt) / periodMs) + 1);
    const periods: Record<string, number>[] = Array.from({ length: count }, () => ({}));
    for (const sample of this.#samples) {
      const index = Math.floor((sample.at - this.#options.startedAt) / periodMs);
      const period = periods[Math.min(Math.max(index, 0), count - 1)];
      if (period === undefined) continue;
      const previous = period[sample.key];
      period[sample.key] =
        previous === undefined
          ? sample.value
          : sample.statistic === 'Sum'
            ? previous + sample.value
            : Math.max(previous, sample.value);
    }
    return periods;
  }
}
