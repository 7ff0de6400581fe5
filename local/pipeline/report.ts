import type { AlarmOutcome } from '#local/pipeline/alarms.ts';
import { formatTable } from '#local/pipeline/table.ts';
import type { JobOutcome, JobState } from '#local/pipeline/tracker.ts';
import type { AlarmState } from '#local/pipeline/alarm-evaluation.ts';

/** The run's result as `--report FILE` writes it (the shape is a contract: see the README). */
export interface RunReport {
  readonly summary: {
    readonly jobs: number;
    readonly delivered: number;
    readonly duplicate: number;
    readonly dead_lettered: number;
    readonly unsettled: number;
  };
  readonly jobs: readonly {
    readonly id: string;
    readonly outcome: JobOutcome;
    readonly reason: string | null;
    readonly attempts: number;
    readonly last_status: number | string | null;
    readonly uuid: string | null;
  }[];
  /** Requests the sender made: `send` to the messages endpoints, `token` to `/oauth/token`. */
  readonly api_calls: { readonly token: number; readonly send: number };
  readonly alarms: readonly { readonly name: string; readonly state: AlarmState }[];
}

export interface ApiCallCounts {
  token: number;
  send: number;
}

/** Builds the report from the tracked jobs (in file order), the API call counts and the alarm states. */
export function buildReport(
  jobs: readonly JobState[],
  apiCalls: ApiCallCounts,
  alarms: readonly AlarmOutcome[],
): RunReport {
  const count = (outcome: JobOutcome) => jobs.filter((job) => job.outcome === outcome).length;
  return {
    summary: {
      jobs: jobs.length,
      delivered: count('delivered'),
      duplicate: count('duplicate'),
      dead_lettered: count('dead_lettered'),
      unsettled: count('unsettled'),
    },
    jobs: jobs.map((job) => ({
      id: job.id,
      outcome: job.outcome,
      reason: job.reason,
      attempts: job.attempts,
      last_status: job.lastStatus,
      uuid: job.uuid,
    })),
    api_calls: { token: apiCalls.token, send: apiCalls.send },
    alarms: alarms.map((alarm) => ({ name: alarm.name, state: alarm.state })),
  };
}

export interface SummaryContext {
  readonly jobs: readonly JobState[];
  readonly report: RunReport;
  readonly alarms: readonly AlarmOutcome[];
  /** The alarms' period (5 minutes), before scaling. */
  readonly alarmPeriodSeconds: number;
  readonly elapsedMs: number;
  readonly timeScale: number;
  /** "the built-in eCourtDate simulator" or the URL. */
  readonly target: string;
  readonly logFile: string;
  readonly timedOut: boolean;
}

/** The summary printed at the end of a run: outcomes and reasons, every job, API calls, alarms. */
export function renderSummary(context: SummaryContext): string {
  const { report, jobs, alarms, timeScale } = context;
  const { summary } = report;
  const lines: string[] = [];
  const seconds = (context.elapsedMs / 1000).toFixed(1);
  const scale =
    timeScale === 1 ? 'real time' : `time scale ${timeScale}: every delay and window ${timeScale}x shorter`;
  lines.push(`${summary.jobs} jobs against ${context.target} in ${seconds} s (${scale})`);
  if (context.timedOut) {
    lines.push(`Stopped by the timeout with ${summary.unsettled} job(s) not settled.`);
  }
  lines.push('');

  const reasons = new Map<string, number>();
  for (const job of jobs) {
    if (job.outcome !== 'dead_lettered') continue;
    const reason = job.reason ?? 'moved by SQS redrive';
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  const reasonText = [...reasons].map(([reason, n]) => `${reason} ${n}`).join(', ');
  lines.push(
    formatTable(
      ['outcome', 'jobs', ''],
      [
        ['delivered', String(summary.delivered), ''],
        ['duplicate', String(summary.duplicate), ''],
        ['dead-lettered', String(summary.dead_lettered), reasonText],
        ['unsettled', String(summary.unsettled), ''],
      ],
    ),
  );
  lines.push('');

  lines.push(
    formatTable(
      ['job', 'outcome', 'reason', 'attempts', 'last status'],
      jobs.map((job) => [
        job.id,
        job.outcome,
        job.reason ?? (job.movedBySqsRedrive ? '(SQS redrive: maxReceiveCount)' : '-'),
        String(job.attempts),
        job.lastStatus === null ? '-' : String(job.lastStatus),
      ]),
    ),
  );
  lines.push('');

  const calls = report.api_calls;
  lines.push(`API calls: ${calls.send} to the messages endpoint, ${calls.token} token requests`);
  lines.push('');

  const periodSeconds = context.alarmPeriodSeconds / timeScale;
  lines.push(
    `Alarms of the stack, evaluated locally with the same definitions (${formatSeconds(context.alarmPeriodSeconds)} periods = ${formatSeconds(periodSeconds)} here):`,
  );
  lines.push(
    formatTable(
      ['alarm', 'state', ''],
      alarms.map((alarm) => [
        alarm.name,
        alarm.state,
        alarm.note ??
          (alarm.alarmedDuringRun && alarm.state !== 'ALARM' ? 'was in ALARM during the run' : ''),
      ]),
    ),
  );
  lines.push('');
  lines.push(`Sender logs and EMF metrics (what Lambda would print): ${context.logFile}`);
  return lines.join('\n');
}

function formatSeconds(seconds: number): string {
  return Number.isInteger(seconds) ? `${seconds} s` : `${seconds.toFixed(2)} s`;
}
