import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { formatTable } from '#local/terminal/table.ts';

/** The figures of a chaos run, as `reports/chaos*.local.json` holds them and docs/ledger.md quotes them. */
export interface ChaosFigures {
  readonly scenario: string;
  readonly seed: number;
  readonly jobs: number;
  readonly messages_enqueued: number;
  readonly time_scale: number;
  readonly instances: number;
  readonly seconds: number;
  /** Pipeline runs the jobs went through, one after the other (a wave each). */
  readonly waves: number;
  readonly summary: Readonly<Record<string, number>>;
  readonly lost: number;
  readonly sent_twice: number;
  /** Messages eCourtDate created. */
  readonly messages_created: number;
  readonly dead_letters_by_reason: Readonly<Record<string, number>>;
  readonly dead_letters_without_reason: number;
  readonly sqs_refusals: number | null;
  readonly personal_data_findings: number;
  readonly api_calls: Readonly<Record<string, number>>;
  /** SQS receives of the job received most often (its copies included). */
  readonly max_receives_per_job: number;
  /** Records the relay re-queued as fresh copies (so the receive count starts again). */
  readonly requeued_copies: number;
  /**
   * Jobs a 429 held back after an outcome the relay could not know: the wait's real-time spread may carry them
   * past the scaled duplicate window, so they may end `unknown_outcome` instead of delivered.
   */
  readonly held_back_after_unknown_outcome: number;
  /**
   * Jobs an outage held up after an unknown outcome (a record left on the queue, re-queued while a dependency was
   * down, or handed back by the queue seconds after its retry asked): the wait may carry them past the scaled
   * duplicate window, so they may end `unknown_outcome`.
   */
  readonly slowed_by_outage_after_unknown_outcome: number;
  /** Requests planned to succeed that a live instance got no answer to in time: a busy machine's timeouts. */
  readonly unplanned_timeouts: number;
  /** Jobs whose answer (or unpublished event) was lost to a double fault: the settle or a step after it, and SQS. */
  readonly lost_to_double_faults: { readonly answers: number; readonly events: number };
  /** The ledger: jobs not settled at the end (lost). */
  readonly unsettled_in_ledger: number;
  /** Dead letters on the queue after the run, and what the one redrive did with them. */
  readonly dead_letters: {
    readonly before_redrive: number;
    readonly jobs_with_two_copies: number;
    readonly redriven: number;
    readonly deleted_as_sent: number;
    readonly after_redrive: number;
    readonly after_redrive_by_reason: Readonly<Record<string, number>>;
    readonly new_generations: number;
  };
  /** eCourtDate's webhooks: deliveries, statuses lost, replays after the dedupe window and how many went out. */
  readonly webhooks: {
    readonly deliveries: number;
    readonly statuses_before_the_index: number;
    readonly statuses_lost: number;
    readonly replays: number;
    readonly replays_published: number;
    readonly records_expired_before_the_replays: number;
  };
  /** `eCourtDate Job Settled` events: published, marked replayed, and jobs whose `replayed` is wrong. */
  readonly job_settled_events: {
    readonly published: number;
    readonly replayed: number;
    readonly wrong: number;
  };
  /** Outages of the senders' dependencies: how many, and the attempts each service refused. */
  readonly outages: { readonly count: number; readonly refused_attempts: Readonly<Record<string, number>> };
  /**
   * Invocations the event source mapping ended at the function timeout, by the planned fault that held them up
   * (`slow-dynamodb`, `stalled-secret-read`) or `other`; the windows of slow DynamoDB, and the AWS call attempts
   * the timeout faults slowed, by fault.
   */
  readonly timeouts: {
    readonly by_cause: Readonly<Record<string, number>>;
    readonly slow_dynamodb_windows: number;
    readonly attempts_slowed: Readonly<Record<string, number>>;
  };
  readonly faults_injected: Readonly<Record<string, number>>;
  /**
   * The outages of eCourtDate (docs/chaos.md, "Outages of hours, auth outages, churn"), each with the requests
   * the API saw inside it; absent from a run without any.
   */
  readonly api_outages?: readonly {
    readonly kind: string;
    readonly requests_during: Readonly<Record<string, number>>;
  }[];
  /** Containers the churn replaced; absent from a run without churn. */
  readonly containers_churned?: number;
  /** Dead letters for an outage of eCourtDate that ended before the job's deadline; absent without outages. */
  readonly dead_letters_for_an_ended_outage?: number;
}

export async function writeFigures(path: string, figures: ChaosFigures): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(figures, null, 2)}\n`);
}

/** The summary table `npm run chaos` prints for one run. */
export function renderFigures(figures: ChaosFigures): string {
  const reasons = Object.entries(figures.dead_letters_by_reason)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  const faults = Object.entries(figures.faults_injected)
    .filter(([, n]) => n > 0)
    .map(([fault, n]) => `${fault} ×${n}`)
    .join(', ');
  const rows: [string, string][] = [
    ['jobs', String(figures.jobs)],
    ['messages enqueued', String(figures.messages_enqueued)],
    ['seed', String(figures.seed)],
    ['time scale, instances', `${figures.time_scale}, ${figures.instances}`],
    ['time', `${figures.seconds} s${figures.waves > 1 ? ` in ${figures.waves} waves` : ''}`],
    ['instances killed', String(figures.faults_injected.instances_killed ?? 0)],
    [
      'invocation timeouts, by cause',
      `${figures.faults_injected.invocation_timeouts ?? 0}${
        Object.keys(figures.timeouts.by_cause).length > 0
          ? ` (${Object.entries(figures.timeouts.by_cause)
              .map(([cause, n]) => `${cause} ${n}`)
              .join(', ')})`
          : ''
      }`,
    ],
    ['delivered', String(figures.summary.delivered ?? 0)],
    ['duplicate', String(figures.summary.duplicate ?? 0)],
    ['dead-lettered', `${figures.summary.dead_lettered ?? 0}${reasons ? ` (${reasons})` : ''}`],
    ['lost (unsettled)', String(figures.lost)],
    ['jobs sent twice', String(figures.sent_twice)],
    ['dead letters without the relay reason', String(figures.dead_letters_without_reason)],
    [
      'strict SQS layer refusals',
      figures.sqs_refusals === null ? 'not reported' : String(figures.sqs_refusals),
    ],
    ['personal data in logs or dead letters', String(figures.personal_data_findings)],
    ['requests to eCourtDate', `${figures.api_calls.send ?? 0} sends, ${figures.api_calls.token ?? 0} token`],
    ['most SQS receives of one job', String(figures.max_receives_per_job)],
    ['records re-queued as fresh copies', String(figures.requeued_copies)],
    ['held back by a 429 after an unknown outcome', String(figures.held_back_after_unknown_outcome)],
  ];
  for (const outage of figures.api_outages ?? []) {
    const during = Object.entries(outage.requests_during)
      .map(([endpoint, n]) => `${endpoint} ${n}`)
      .join(', ');
    rows.push([`eCourtDate outage (${outage.kind}): requests during it`, during]);
  }
  if (figures.containers_churned !== undefined) {
    rows.push(['containers replaced by the churn', String(figures.containers_churned)]);
  }
  if (figures.dead_letters_for_an_ended_outage !== undefined) {
    rows.push([
      "dead letters for an outage that ended before the job's deadline",
      String(figures.dead_letters_for_an_ended_outage),
    ]);
  }
  const { dead_letters: letters, webhooks, job_settled_events: settled, outages } = figures;
  if (outages.count > 0 || letters.redriven > 0 || webhooks.deliveries > 0) {
    const reasons = Object.entries(letters.after_redrive_by_reason)
      .map(([reason, n]) => `${reason} ${n}`)
      .join(', ');
    rows.push(
      ['jobs not settled in the ledger', String(figures.unsettled_in_ledger)],
      ['dead letters, jobs with two copies', `${letters.before_redrive}, ${letters.jobs_with_two_copies}`],
      [
        'redrive: redriven, deleted as sent, new generations',
        `${letters.redriven}, ${letters.deleted_as_sent}, ${letters.new_generations}`,
      ],
      ['dead letters after the redrive', `${letters.after_redrive}${reasons ? ` (${reasons})` : ''}`],
      [
        'held up by an outage after an unknown outcome',
        String(figures.slowed_by_outage_after_unknown_outcome),
      ],
      [
        'lost to a double fault: answers, unpublished events',
        `${figures.lost_to_double_faults.answers}, ${figures.lost_to_double_faults.events}`,
      ],
      [
        'webhook deliveries, statuses before the index, lost',
        `${webhooks.deliveries}, ${webhooks.statuses_before_the_index}, ${webhooks.statuses_lost}`,
      ],
      [
        'replays after the dedupe window, published',
        `${webhooks.replays}, ${webhooks.replays_published} (${webhooks.records_expired_before_the_replays} records expired)`,
      ],
      ['Job Settled events, replayed, wrong', `${settled.published}, ${settled.replayed}, ${settled.wrong}`],
      [
        'outages, attempts refused',
        `${outages.count}, ${Object.entries(outages.refused_attempts)
          .map(([service, n]) => `${service} ${n}`)
          .join(', ')}`,
      ],
    );
  }
  return `${formatTable([`chaos: ${figures.scenario}`, ''], rows)}\nfaults: ${faults}\n`;
}
