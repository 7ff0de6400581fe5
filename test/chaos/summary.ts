import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { formatTable } from '#cli/table.ts';

/** The figures of a chaos run, as `reports/chaos*.local.json` holds them and the README quotes them. */
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
  readonly faults_injected: Readonly<Record<string, number>>;
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
  return `${formatTable([`chaos: ${figures.scenario}`, ''], rows)}\nfaults: ${faults}\n`;
}
