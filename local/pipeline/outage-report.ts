import { defaultDuplicateKey } from '#local/ecourtdate-simulator/api.ts';
import { endpointOf } from '#local/ecourtdate-simulator/faults.ts';
import type { CreatedMessage, OutageRecord, RecordedRequest } from '#local/ecourtdate-simulator/index.ts';
import type { JobLine } from '#local/pipeline/jobs-file.ts';
import type { OutageOption } from '#local/pipeline/options.ts';
import { type JobState, jobsOf } from '#local/pipeline/tracker.ts';
import { formatTable } from '#local/terminal/table.ts';
import { parseJob } from '#shared/job.ts';
import type { DeadLetterReason } from '#shared/outcome.ts';

/**
 * The goals an outage run is held to (the figures of "Outages" in docs/operating.md): the API sees probes, not a
 * flood; at most one batch's jobs meet the outage; every other job is delivered, each created once; no job whose
 * deadline outlived the outage is dead-lettered.
 */
export const OUTAGE_REQUEST_GOAL = 40;

/**
 * Dead-letter reasons that are a working API's verdict on the job itself (or the relay's, before any request): a
 * job settled so was not kept from delivery by an outage, and its dead letter is none of the outage's.
 */
const REFUSED_FOR_ITSELF: ReadonlySet<string> = new Set<DeadLetterReason>([
  'invalid_job',
  'bad_request',
  'forbidden',
  'not_found',
  'client_error',
  'id_conflict',
]);

/** Requests the API saw, by kind: `probes` are `GET /v1/settings`. */
export interface RequestCounts {
  readonly probes: number;
  readonly token: number;
  readonly messages: number;
  readonly other: number;
}

/** One of the goals, with the run's figure and whether it was met. */
export interface OutageGoal {
  readonly goal: string;
  readonly figure: number;
  /** Of how many the figure counts, where the goal is all of them (the jobs the delivery goal holds to it). */
  readonly of?: number;
  readonly met: boolean;
}

/**
 * One outage of a run, as `--report` writes it and the summary prints it (the same names): snake_case keys,
 * seconds in eCourtDate's own time (the time scale undone), null where there is nothing.
 */
export interface OutageFigures {
  readonly kind: OutageOption['kind'];
  readonly duration_seconds: number;
  /** When it began, in eCourtDate's seconds after the run started; null when it never began. */
  readonly started_at_seconds: number | null;
  /** Requests the API saw during the outage, and outside it. */
  readonly requests_during: RequestCounts;
  readonly requests_outside: RequestCounts;
  /** Jobs with a request to the messages endpoint that arrived during the outage. */
  readonly jobs_met: number;
  /**
   * Jobs that did not meet the outage but met an unknown outcome of their own outside it: a request of theirs
   * before or after it had a 5xx or no answer (such as the sample file's scripted 5xx rows). They keep the
   * unknown-outcome rules (docs/contract.md), whatever the outage did: a hold past the duplicate window, or their
   * own attempts running out, ends them `unknown_outcome`.
   */
  readonly jobs_unknown_outside: number;
  /** Jobs waiting on the queue during the outage that sent nothing during it. */
  readonly jobs_held: number;
  /** Jobs delivered (of all the run's jobs), and how many messages the simulator created for each. */
  readonly jobs_delivered: number;
  readonly jobs_created_once: number;
  readonly jobs_created_more_than_once: number;
  /** Dead letters of the run by reason. */
  readonly dead_letters: Readonly<Record<string, number>>;
  /**
   * Jobs that met or waited out the outage, were dead-lettered, and whose deadline came after it ended; but for a
   * job whose request met a hang or drop outage and was dead-lettered `unknown_outcome` (it may have been created).
   */
  readonly dead_letters_before_deadline: number;
  readonly goals: readonly OutageGoal[];
}

/** What `outageFigures` reads: the simulator's records, the run's jobs and its settings. */
export interface OutageRun {
  readonly outages: readonly OutageOption[];
  /** `Simulator.outages()`, in the same order as `outages`. */
  readonly records: readonly OutageRecord[];
  /** Every message the simulator created. */
  readonly messages: readonly CreatedMessage[];
  /** Every request the simulator saw (`Simulator.requests`): which jobs met an unknown outcome of their own. */
  readonly requests: readonly RecordedRequest[];
  /** The jobs file's lines, to tell which job a message request was for. */
  readonly lines: readonly JobLine[];
  readonly jobs: readonly JobState[];
  /** Epoch ms the run started (the jobs put on the queue). */
  readonly startedAt: number;
  readonly timeScale: number;
  /** Records per invocation: "one batch". */
  readonly batchSize: number;
  /** Sender instances of the run: each busy one may have a batch in flight when the outage begins. */
  readonly instances: number;
  /** The sender's maximum age of a job, in eCourtDate's seconds (24 h), divided by the time scale here. */
  readonly maxAgeSeconds: number;
}

/**
 * The figures of each outage of a run. A request or a created message is matched to its jobs by what eCourtDate
 * compares for duplicates: the agency and the message's recipient, channel, subject and content.
 */
export function outageFigures(run: OutageRun): OutageFigures[] {
  const jobsByKey = new Map<string, string[]>();
  const deadlineOf = new Map<string, number>();
  for (const line of run.lines) {
    try {
      const job = parseJob(line.body);
      const key = keyOf(job.agencyReference, job.message);
      jobsByKey.set(key, [...(jobsByKey.get(key) ?? []), job.id]);
      if (job.expiresAt !== undefined) deadlineOf.set(job.id, job.expiresAt);
    } catch {
      // An invalid job sends nothing.
    }
  }
  const jobsOfRequest = (request: Pick<RecordedRequest, 'query' | 'body'>): string[] =>
    isMessage(request.body) ? (jobsByKey.get(keyOf(request.query.agency_reference, request.body)) ?? []) : [];
  const created = new Map<string, number>();
  for (const message of run.messages) {
    for (const id of jobsOfRequest({ query: queryOf(message), body: message.body })) {
      created.set(id, (created.get(id) ?? 0) + 1);
    }
  }
  const distinct = jobsOf(run.jobs);
  const deadLetters: Record<string, number> = {};
  for (const { outcome, reason } of distinct) {
    if (outcome !== 'dead_lettered') continue;
    const key = reason ?? 'moved by SQS redrive';
    deadLetters[key] = (deadLetters[key] ?? 0) + 1;
  }
  const delivered = distinct.filter(({ outcome }) => outcome === 'delivered');
  const seconds = (ms: number) => Math.round((ms * run.timeScale) / 1000);

  return run.outages.map((outage, index) => {
    const record = run.records[index];
    const startedAt = record?.startedAt;
    const endsAt = record?.endsAt;
    const met = new Set((record?.messageRequests ?? []).flatMap(jobsOfRequest));
    // An unknown outcome of the job's own: a message request outside the outage whose outcome the relay could not
    // know (before it, the job was in flight when it began; after it, its own answers failed it).
    const unknownOutside = new Set(
      run.requests
        .filter(
          (request) =>
            startedAt !== undefined &&
            endsAt !== undefined &&
            (request.at < startedAt || request.at >= endsAt) &&
            endpointOf(request) === 'messages' &&
            (request.status === 'dropped' ||
              request.status === 'pending' ||
              (typeof request.status === 'number' && request.status >= 500)),
        )
        .flatMap(jobsOfRequest)
        .filter((id) => !met.has(id)),
    );
    const inFlight = (id: string | undefined) => met.has(id ?? '') || unknownOutside.has(id ?? '');
    const waiting = (job: JobState) =>
      startedAt !== undefined &&
      endsAt !== undefined &&
      job.enqueuedAt < endsAt &&
      (job.settledAt === undefined || job.settledAt > startedAt);
    const held = distinct.filter(({ job }) => job.id !== undefined && !met.has(job.id) && waiting(job));
    const deadline = (job: JobState) =>
      Math.min(
        deadlineOf.get(job.id ?? '') ?? Number.POSITIVE_INFINITY,
        job.enqueuedAt + (run.maxAgeSeconds * 1000) / run.timeScale,
      );
    const outlived = distinct.filter(
      ({ job, outcome, reason }) =>
        outcome === 'dead_lettered' &&
        !REFUSED_FOR_ITSELF.has(reason ?? '') &&
        endsAt !== undefined &&
        (met.has(job.id ?? '') || waiting(job)) &&
        deadline(job) > endsAt &&
        // A request that met the outage without an answer, or with a 5xx, may have created the message: it keeps
        // the unknown-outcome rules (docs/contract.md). A 401 created nothing: that job should have been held.
        !(
          reason === 'unknown_outcome' &&
          (unknownOutside.has(job.id ?? '') || (met.has(job.id ?? '') && outage.kind !== 'auth'))
        ),
    ).length;
    const notMet = distinct.filter(
      ({ job, outcome, reason }) =>
        job.id !== undefined &&
        !inFlight(job.id) &&
        !(outcome === 'dead_lettered' && REFUSED_FOR_ITSELF.has(reason ?? '')) &&
        // A job whose deadline came before the outage ended may rightly be dead-lettered `expired`.
        !(
          outcome === 'dead_lettered' &&
          reason === 'expired' &&
          endsAt !== undefined &&
          deadline(job) <= endsAt
        ),
    );
    const notMetOnce = notMet.filter(
      ({ job, outcome }) => outcome === 'delivered' && created.get(job.id ?? '') === 1,
    ).length;
    const during = counts(record?.inside);
    const total = during.probes + during.token + during.messages + during.other;
    return {
      kind: outage.kind,
      duration_seconds: outage.durationSeconds,
      started_at_seconds: startedAt === undefined ? null : seconds(startedAt - run.startedAt),
      requests_during: during,
      requests_outside: counts(record?.outside),
      jobs_met: met.size,
      jobs_unknown_outside: unknownOutside.size,
      jobs_held: held.length,
      jobs_delivered: delivered.length,
      jobs_created_once: delivered.filter(({ job }) => created.get(job.id ?? '') === 1).length,
      jobs_created_more_than_once: [...created.values()].filter((n) => n > 1).length,
      dead_letters: deadLetters,
      dead_letters_before_deadline: outlived,
      goals: [
        {
          goal: `at most ${OUTAGE_REQUEST_GOAL} API requests during the outage`,
          figure: total,
          met: total <= OUTAGE_REQUEST_GOAL,
        },
        {
          goal: `at most one batch's jobs per instance (${run.batchSize} × ${run.instances}) meet the outage`,
          figure: met.size,
          met: met.size <= run.batchSize * run.instances,
        },
        {
          goal: 'every job that did not meet it delivered, created once (unless its own answers or deadline failed it)',
          figure: notMetOnce,
          of: notMet.length,
          met: notMetOnce === notMet.length,
        },
        {
          goal: 'no dead letter for a job whose deadline came after the outage ended',
          figure: outlived,
          met: outlived === 0,
        },
      ],
    };
  });
}

function counts(endpoints: OutageRecord['inside'] | undefined): RequestCounts {
  return {
    probes: endpoints?.settings ?? 0,
    token: endpoints?.token ?? 0,
    messages: endpoints?.messages ?? 0,
    other: endpoints?.other ?? 0,
  };
}

function isMessage(body: unknown): body is Record<string, unknown> {
  return typeof body === 'object' && body !== null && !Array.isArray(body);
}

function queryOf(message: CreatedMessage): Record<string, string> {
  return message.agencyReference === undefined ? {} : { agency_reference: message.agencyReference };
}

function keyOf(agency: string | undefined, message: Record<string, unknown>): string {
  return JSON.stringify([agency ?? null, defaultDuplicateKey(message)]);
}

const KIND_LABEL: Record<OutageOption['kind'], string> = {
  unavailable: '503',
  hang: 'no answer',
  drop: 'connections dropped',
  auth: 'API client revoked',
};

/** The summary's lines for the outages: the same names as the report's `outages`. */
export function renderOutages(figures: readonly OutageFigures[]): string[] {
  const lines: string[] = [];
  for (const outage of figures) {
    const when =
      outage.started_at_seconds === null
        ? 'never began: no request came to the messages endpoint'
        : `began ${formatDuration(outage.started_at_seconds)} into the run`;
    lines.push(`Outage (${KIND_LABEL[outage.kind]}, ${formatDuration(outage.duration_seconds)}; ${when}):`);
    const { requests_during: during } = outage;
    const reasons = Object.entries(outage.dead_letters)
      .map(([reason, n]) => `${reason} ${n}`)
      .join(', ');
    lines.push(
      formatTable(
        ['figure', 'value'],
        [
          [
            'requests during the outage',
            `${during.probes + during.token + during.messages + during.other}: probes (GET /v1/settings) ` +
              `${during.probes}, token ${during.token}, messages ${during.messages}, other ${during.other}`,
          ],
          ['jobs that met the outage', String(outage.jobs_met)],
          ['jobs with an unknown outcome of their own outside it', String(outage.jobs_unknown_outside)],
          ['jobs held', String(outage.jobs_held)],
          ['jobs delivered', String(outage.jobs_delivered)],
          ['jobs created once', String(outage.jobs_created_once)],
          ['jobs created more than once', String(outage.jobs_created_more_than_once)],
          ['dead letters', reasons === '' ? '0' : reasons],
          ['dead letters before the deadline', String(outage.dead_letters_before_deadline)],
        ],
      ),
    );
    for (const goal of outage.goals)
      lines.push(
        `${goal.met ? 'met' : 'NOT MET'}: ${goal.goal} (${goal.figure}${goal.of === undefined ? '' : ` of ${goal.of}`})`,
      );
    if (outage.goals.some((goal) => !goal.met)) {
      lines.push(
        'Some goals were not met: each figure above says how far from the goal it is, and the jobs table says ' +
          'what became of each job (a run stopped by --timeout leaves jobs unsettled: give it more time).',
      );
    }
    lines.push('');
  }
  return lines;
}

/** `2 h`, `30 min`, `1 h 30 min`, `1 min 40 s`, `45 s` (whole seconds). */
function formatDuration(seconds: number): string {
  const whole = Math.round(seconds);
  const parts: [number, string][] = [
    [Math.floor(whole / 3600), 'h'],
    [Math.floor((whole % 3600) / 60), 'min'],
    [whole % 60, 's'],
  ];
  const shown = parts.filter(([value]) => value > 0).map(([value, unit]) => `${value} ${unit}`);
  return shown.length === 0 ? '0 s' : shown.join(' ');
}
