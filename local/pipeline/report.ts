import type { AlarmState } from '#local/cloudwatch/alarm-evaluation.ts';
import type { AlarmOutcome } from '#local/cloudwatch/alarms.ts';
import { type OutageFigures, renderOutages } from '#local/pipeline/outage-report.ts';
import { type JobOutcome, type JobState, jobName, jobsOf } from '#local/pipeline/tracker.ts';
import { describeDelivery } from '#local/pipeline/webhook-report.ts';
import { formatTable } from '#local/terminal/table.ts';
import type { JobDelivery } from '#shared/ledger/delivery.ts';

/**
 * How the watch over a run ended: every job settled, the `--timeout` passed, the user pressed Ctrl-C, or (with
 * `--ecourtdate-url`) the first request showed that the API cannot be reached from here at all.
 */
export type RunEnd = 'settled' | 'timed_out' | 'interrupted' | 'unreachable';

/**
 * The run's result as `--report FILE` writes it (the shape is a contract: see docs/operating.md). The same conventions
 * as every `--json` of the operator CLI: snake_case keys, numbers as numbers, null where there is nothing.
 */
export interface RunReport {
  readonly ended: RunEnd;
  /** Each job once, however many lines of the jobs file hold it (`copy_of_line`). */
  readonly summary: {
    readonly jobs: number;
    readonly delivered: number;
    readonly duplicate: number;
    readonly dead_lettered: number;
    readonly unsettled: number;
  };
  readonly jobs: readonly {
    /** The job's `id`; null for a line without a readable one (its `line` names it). */
    readonly id: string | null;
    /** 1-based line of the jobs file. */
    readonly line: number;
    /** The first line holding the same job (same `id` and body): this line is one more message of it; else null. */
    readonly copy_of_line: number | null;
    /** What became of this line's message. */
    readonly outcome: JobOutcome;
    readonly reason: string | null;
    /** Requests sent to the messages endpoint for the job. */
    readonly attempts: number;
    readonly last_status: number | string | null;
    readonly uuid: string | null;
    readonly detail: string | null;
    readonly response_excerpt: string | null;
    /** From eCourtDate's webhooks (docs/webhooks.md): `delivered`, `failed`, `replied`, ...; null when none came. */
    readonly delivery_status: string | null;
    /** The statuses the webhooks reported, oldest first. */
    readonly delivery_history: readonly string[];
  }[];
  /** Requests the sender made: `send` to the messages endpoints, `token` to `/oauth/token`. */
  readonly api_calls: { readonly token: number; readonly send: number };
  readonly alarms: readonly { readonly name: string; readonly state: AlarmState }[];
  /** With `--outage` or `--auth-outage` only: what each outage met (local/pipeline/outage-report.ts). */
  readonly outages?: readonly OutageFigures[];
}

export interface ApiCallCounts {
  token: number;
  send: number;
}

/**
 * Builds the report from the tracked jobs (in file order), the API call counts, the alarm states, the jobs'
 * delivery status from eCourtDate's webhooks (by job id) and, with `--outage`/`--auth-outage`, each outage's figures.
 */
export function buildReport(
  jobs: readonly JobState[],
  apiCalls: ApiCallCounts,
  alarms: readonly AlarmOutcome[],
  ended: RunEnd,
  deliveries: ReadonlyMap<string, JobDelivery> = new Map(),
  outages: readonly OutageFigures[] = [],
): RunReport {
  const distinct = jobsOf(jobs);
  const count = (outcome: JobOutcome) => distinct.filter((job) => job.outcome === outcome).length;
  return {
    ended,
    summary: {
      jobs: distinct.length,
      delivered: count('delivered'),
      duplicate: count('duplicate'),
      dead_lettered: count('dead_lettered'),
      unsettled: count('unsettled'),
    },
    jobs: jobs.map((job) => ({
      id: job.id ?? null,
      line: job.line,
      copy_of_line: job.copyOfLine ?? null,
      outcome: job.outcome,
      reason: job.reason,
      attempts: job.attempts,
      last_status: job.lastStatus,
      uuid: job.uuid,
      detail: job.detail,
      response_excerpt: job.responseExcerpt,
      delivery_status: deliveryOf(job, deliveries)?.delivery_status ?? null,
      delivery_history: (deliveryOf(job, deliveries)?.delivery_history ?? []).map((e) => e.status),
    })),
    api_calls: { token: apiCalls.token, send: apiCalls.send },
    alarms: alarms.map((alarm) => ({ name: alarm.name, state: alarm.state })),
    ...(outages.length === 0 ? {} : { outages }),
  };
}

/**
 * The webhooks' delivery status of a row: only a row that was delivered (or a duplicate) is the message its id
 * names. Another row with the same id (a body refused `id_conflict`, docs/contract.md, "When a message changes")
 * was never sent, so it has none, whatever became of the version that holds the id.
 */
function deliveryOf(job: JobState, deliveries: ReadonlyMap<string, JobDelivery>): JobDelivery | undefined {
  if (job.id === undefined || (job.outcome !== 'delivered' && job.outcome !== 'duplicate')) return undefined;
  return deliveries.get(job.id);
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
  /** The webhook receiver's log, shown with the sender's; undefined leaves it out. */
  readonly webhookLogFile?: string | undefined;
  /** The first request to eCourtDate that got no answer, in a sentence naming the cause; undefined if none. */
  readonly transportFailure?: string | undefined;
  /**
   * What to run to look into failed jobs in this context (e.g. check-credentials against the local pipeline),
   * printed after the jobs when some job was dead-lettered or did not settle; undefined leaves it out.
   */
  readonly nextStep?: string | undefined;
  /** The jobs' delivery status from eCourtDate's webhooks, by job id; undefined leaves the section out. */
  readonly deliveries?: ReadonlyMap<string, JobDelivery> | undefined;
  /**
   * The run is the demo (the sample jobs against the built-in simulator): the summary says that its dead letters
   * and alarms are deliberate, one per row of the response table. @default false
   */
  readonly demo?: boolean | undefined;
  /**
   * The terminal's width: the job table's lines are cut to it (the whole `detail` stays in the report file and
   * the log). Undefined (not a terminal): lines are whole.
   */
  readonly width?: number | undefined;
}

/** What the demo's summary says of its dead letters and alarms, so that a newcomer does not take them for faults. */
export const DEMO_NOTE =
  'This is the demo: its dead letters and the alarms it raises are deliberate. Each sample job plays one row ' +
  'of the response table (docs/contract.md): the 400, 403, 404, expired and invalid jobs end on the dead-letter ' +
  'queue with their reason, and their 403s, 401s and dead letters raise Forbidden403, AuthFailing and ' +
  'DeadLetterQueueNotEmpty, as on-call would see them. Run your own jobs with --jobs FILE.';

/** The summary printed at the end of a run: outcomes and reasons, every job with why, API calls, alarms. */
export function renderSummary(context: SummaryContext): string {
  const { report, jobs, alarms, timeScale } = context;
  const { summary } = report;
  const lines: string[] = [];
  const seconds = (context.elapsedMs / 1000).toFixed(1);
  const scale =
    timeScale === 1 ? 'real time' : `time scale ${timeScale}: every delay and window ${timeScale}x shorter`;
  lines.push(`${plural(summary.jobs, 'job')} against ${context.target} in ${seconds} s (${scale})`);
  if (report.ended === 'timed_out') {
    lines.push(`Stopped by the timeout with ${plural(summary.unsettled, 'job')} not settled.`);
  } else if (report.ended === 'interrupted') {
    lines.push(`Interrupted (Ctrl-C) with ${plural(summary.unsettled, 'job')} not settled.`);
  } else if (report.ended === 'unreachable') {
    lines.push(
      `Stopped at the first failed request, with ${plural(summary.unsettled, 'job')} not settled: the API ` +
        'cannot be reached from here, and retrying would not change that. Fix the URL or this network and run again.',
    );
  }
  if (context.transportFailure !== undefined) lines.push(context.transportFailure);
  if (context.demo) lines.push(DEMO_NOTE);
  lines.push('');

  const reasons = new Map<string, number>();
  for (const { job, outcome } of jobsOf(jobs)) {
    if (outcome !== 'dead_lettered') continue;
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
      ['job', 'outcome', 'reason', 'attempts', 'last status', 'detail'],
      jobs.map((job) => [
        jobName(job),
        job.outcome,
        job.reason ?? (job.movedBySqsRedrive ? '(SQS redrive: maxReceiveCount)' : '-'),
        String(job.attempts),
        job.lastStatus === null ? '-' : String(job.lastStatus),
        why(job),
      ]),
      { maxWidth: context.width },
    ),
  );
  const failed = summary.dead_lettered + summary.unsettled > 0;
  if (context.nextStep !== undefined && failed && report.ended !== 'unreachable')
    lines.push(context.nextStep);
  lines.push('');

  if (context.deliveries !== undefined) {
    const sent = jobs.filter(
      (job) => job.outcome === 'delivered' && job.id !== undefined && job.copyOfLine === undefined,
    );
    lines.push("Delivery status from eCourtDate's webhooks (docs/webhooks.md):");
    lines.push(
      sent.length === 0
        ? '(no job was delivered)'
        : formatTable(
            ['job', 'delivery'],
            sent.map((job) => [jobName(job), deliveryCell(job, context.deliveries)]),
          ),
    );
    if (sent.some((job) => deliveryCell(job, context.deliveries) === NO_UUID_CELL)) {
      lines.push(NO_UUID_NOTE);
    }
    lines.push('');
  }

  lines.push(...renderOutages(report.outages ?? []));

  const calls = report.api_calls;
  lines.push(
    `API calls: ${plural(calls.send, 'request')} to the messages endpoint, ${plural(calls.token, 'token request')}`,
  );
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
  if (context.webhookLogFile !== undefined) lines.push(`Webhook receiver logs: ${context.webhookLogFile}`);
  return lines.join('\n');
}

/**
 * The footnote of a delivered job without a uuid: eCourtDate answered 409 to its resend, and a 409 names no
 * message, so no webhook can be matched to the job (docs/contract.md, "What each response does").
 */
const NO_UUID_NOTE =
  '(no uuid): delivered by a 409 to a resend (the first attempt created the message, its answer was lost); ' +
  'a 409 returns no uuid, so no webhook can be matched to the job.';

const NO_UUID_CELL = '- (no uuid)';

/** A delivered job's delivery status; `- (no uuid)` when the job has no uuid to match webhooks by. */
function deliveryCell(job: JobState, deliveries: ReadonlyMap<string, JobDelivery> | undefined): string {
  const delivery = deliveries?.get(job.id ?? '');
  if (delivery?.delivery_status === undefined && job.uuid === null) return NO_UUID_CELL;
  return describeDelivery(delivery);
}

/**
 * Why a line's job ended as it did, for the summary's last column: for a line holding the same job as an earlier
 * one, that line; else the sender's detail and eCourtDate's answer, shown for dead-lettered and unsettled jobs (a
 * delivered job needs no explanation).
 */
function why(job: JobState): string {
  const copy = job.copyOfLine === undefined ? null : `the same job as line ${job.copyOfLine}`;
  if (job.outcome === 'delivered' || job.outcome === 'duplicate')
    return copy === null ? '' : `${copy}: sent once`;
  const parts = [
    copy,
    job.detail,
    job.responseExcerpt === null ? null : `eCourtDate: ${job.responseExcerpt}`,
  ];
  return parts.filter((part) => part !== null && part !== '').join('; ');
}

/** "1 job", "2 jobs". */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function formatSeconds(seconds: number): string {
  return Number.isInteger(seconds) ? `${seconds} s` : `${seconds.toFixed(2)} s`;
}
