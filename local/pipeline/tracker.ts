import type { JobLine } from '#local/pipeline/jobs-file.ts';
import type { SenderEvent } from '#local/pipeline/observability.ts';
import { parseLastStatus } from '#shared/ecourtdate/status.ts';
import { invalidIdLabel, jobFingerprint, parseJob, type SendJob } from '#shared/job.ts';
import type { LedgerEntry } from '#shared/ledger/ledger.ts';
import { idConflictDetail } from '#shared/sender/decide.ts';

export type JobOutcome = 'delivered' | 'duplicate' | 'dead_lettered' | 'unsettled';

/** One job of the run, as the report shows it. */
export interface JobState {
  /** 1-based line of the jobs file. */
  readonly line: number;
  /** The job's `id`; undefined for a line without a readable one (not JSON, or a malformed id). */
  readonly id: string | undefined;
  /** The line's text, as put on the send queue: which version of a job it is (`jobFingerprint`). */
  readonly body: string;
  /**
   * The first line holding the same job (the same `id` and body, however spelled): this line is one more message
   * of that job, which the ledger sends once. Undefined for a job's first line, and for any line that is not a
   * valid job.
   */
  readonly copyOfLine?: number | undefined;
  /** For a line without a readable id: `(invalid id "...")` or `(no id)` (`invalidIdLabel`). */
  readonly invalidIdLabel?: string | undefined;
  /** The SQS message id of the job on the send queue; a re-queued copy takes over the new one. */
  messageId: string;
  readonly enqueuedAt: number;
  outcome: JobOutcome;
  /** The dead-letter reason (docs/contract.md, "What each response does"); null unless dead-lettered by the relay. */
  reason: string | null;
  /** Requests the relay sent to the messages endpoint for this job, as the sender counted them; 0 before any. */
  attempts: number;
  /** Last HTTP status, `timeout`/`connection`/`lost`, or null when nothing was sent. */
  lastStatus: number | string | null;
  uuid: string | null;
  /** Why the job ended as it did (or is retried): the sender's `detail`, e.g. the field an invalid job breaks. */
  detail: string | null;
  /** The short, redacted excerpt of eCourtDate's last answer, when the sender kept one (400, 404, ...). */
  responseExcerpt: string | null;
  /** Set when SQS moved the record to the dead-letter queue itself (maxReceiveCount), without the relay. */
  movedBySqsRedrive: boolean;
  /** Times the sender scheduled a retry (backoff, rate limit, deferral, a re-queued copy). */
  retries: number;
  settledAt?: number;
  /** The latest event the sender logged for this record, kept until the record is deleted. */
  lastEvent?: SenderEvent;
  /** The sender re-queued this job as a fresh copy whose message id it did not log: adopt the next copy seen. */
  awaitingCopy?: boolean;
}

/** The name of a job in summaries: its `id`, or what its id is and its line for a job without a valid one. */
export function jobName(job: Pick<JobState, 'id' | 'line' | 'invalidIdLabel'>): string {
  return job.id ?? `${job.invalidIdLabel ?? '(no id)'} line ${job.line}`;
}

/**
 * The jobs of a run, each with its outcome: one per job, not per line (a line holding the same job as an earlier
 * line is one more message of that job, `copyOfLine`). A job is settled once every line of it is; until then it is
 * `unsettled`, and then its outcome is its first line's (the ledger settles a job once, and a copy of it finds it
 * so). In the lines' order.
 */
export function jobsOf(
  lines: readonly JobState[],
): { readonly job: JobState; readonly outcome: JobOutcome; readonly reason: string | null }[] {
  const copies = new Map<number, JobState[]>();
  for (const line of lines) {
    if (line.copyOfLine === undefined) continue;
    copies.set(line.copyOfLine, [...(copies.get(line.copyOfLine) ?? []), line]);
  }
  return lines
    .filter((line) => line.copyOfLine === undefined)
    .map((job) => {
      const unsettled = [job, ...(copies.get(job.line) ?? [])].some((line) => line.outcome === 'unsettled');
      return unsettled
        ? { job, outcome: 'unsettled' as const, reason: null }
        : { job, outcome: job.outcome, reason: job.reason };
    });
}

export interface TrackerCounts {
  readonly total: number;
  readonly settled: number;
  readonly delivered: number;
  readonly duplicate: number;
  readonly deadLettered: number;
  /** Handled at least once and waiting for a retry. */
  readonly retrying: number;
  /** Not handled yet. */
  readonly waiting: number;
}

/**
 * Follows every job of a run to its settlement. A job is settled when its record is deleted from the send
 * queue after an invocation (then the sender's log line for that record says delivered, duplicate or
 * dead-lettered), or when SQS itself moved it to the dead-letter queue (redrive at maxReceiveCount). A job the
 * sender re-queued as a fresh copy is followed to the copy.
 */
export class JobTracker {
  readonly #jobs: JobState[] = [];
  readonly #byMessageId = new Map<string, JobState>();
  /** The first line of each job, by its id and fingerprint (`copyOfLine`). */
  readonly #firstLines = new Map<string, number>();
  /**
   * Events (and deletions) of records this run does not know yet. A re-queued copy can be received, handled and
   * deleted by another instance before the invocation that made it has reported (it reports once its whole
   * batch is done): the copy's event waits here until the job is followed to it.
   */
  readonly #unclaimed = new Map<string, { event: SenderEvent; deleted: boolean }>();
  readonly #now: () => number;
  /** Called once per job when it settles. */
  onSettled: ((job: JobState) => void) | undefined;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Registers a job that was put on the send queue as message `messageId`. */
  add(line: JobLine, messageId: string, enqueuedAt: number = this.#now()): JobState {
    const sameJob = sameJobKey(line.body);
    const copyOfLine = sameJob === undefined ? undefined : this.#firstLines.get(sameJob);
    if (sameJob !== undefined && copyOfLine === undefined) this.#firstLines.set(sameJob, line.line);
    const job: JobState = {
      line: line.line,
      id: line.id,
      body: line.body,
      copyOfLine,
      invalidIdLabel: line.id === undefined ? invalidIdLabel(line.body) : undefined,
      messageId,
      enqueuedAt,
      outcome: 'unsettled',
      reason: null,
      attempts: 0,
      lastStatus: null,
      uuid: null,
      detail: null,
      responseExcerpt: null,
      movedBySqsRedrive: false,
      retries: 0,
    };
    this.#jobs.push(job);
    this.#byMessageId.set(messageId, job);
    return job;
  }

  get jobs(): readonly JobState[] {
    return this.#jobs;
  }

  /** The sender logged an outcome for a record. Returns false when the record is not one of this run's jobs. */
  onSenderEvent(event: SenderEvent): boolean {
    const job = this.#byMessageId.get(event.messageId) ?? this.#adoptCopy(event);
    if (job === undefined) {
      this.#unclaimed.set(event.messageId, { event, deleted: false });
      return false;
    }
    // A 201's uuid names the job's message whatever copy reports it and in whatever order: a 409 settles a job
    // delivered without one, and a copy that counted the attempt lost may report before the carried 201 does.
    if (isDelivery(event) && (job.outcome !== 'dead_lettered' || deliveredOverLostCount(job, event))) {
      job.uuid = event.uuid ?? null;
    }
    if (job.outcome !== 'unsettled') {
      if (!deliveredOverLostCount(job, event)) return true;
      // The record's own delete settles it delivered (onDeleted); the dead letter a copy left is stale.
      job.outcome = 'unsettled';
      job.detail = STALE_UNKNOWN_OUTCOME;
    }
    job.lastEvent = event;
    if (event.attempt !== undefined) job.attempts = Math.max(job.attempts, event.attempt);
    if (event.status !== undefined) job.lastStatus = event.status;
    if (event.detail !== undefined) job.detail = event.detail;
    if (event.responseExcerpt !== undefined) job.responseExcerpt = event.responseExcerpt;
    if (event.kind === 'retried' || event.kind === 'requeued') job.retries += 1;
    if (event.kind === 'requeued') {
      if (event.requeuedAs === undefined) job.awaitingCopy = true;
      else this.#follow(job, event.requeuedAs);
    }
    return true;
  }

  /** An invocation finished and these records were deleted from the send queue. */
  onDeleted(messageIds: readonly string[]): void {
    for (const messageId of messageIds) {
      const job = this.#byMessageId.get(messageId);
      const unclaimed = this.#unclaimed.get(messageId);
      if (job === undefined && unclaimed !== undefined) unclaimed.deleted = true;
      const event = job?.lastEvent;
      if (job === undefined || job.outcome !== 'unsettled' || event === undefined) continue;
      if (event.messageId !== messageId) continue;
      if (event.kind === 'dead_lettered' && event.reason === 'unknown_outcome' && job.uuid !== null) {
        // A copy carrying the attempt's 201 already reported it: that dead letter is stale.
        job.detail = STALE_UNKNOWN_OUTCOME;
        this.#settle(job, 'delivered', null);
      } else if (event.kind === 'dead_lettered') {
        this.#settle(job, 'dead_lettered', event.reason ?? null);
      } else if (event.kind === 'settled') {
        job.uuid = event.uuid ?? job.uuid;
        this.#settle(job, event.outcome === 'duplicate' ? 'duplicate' : 'delivered', null);
      }
    }
  }

  /** These message ids are on the dead-letter queue: any of ours still open got there by SQS's redrive. */
  onDeadLetterQueue(messageIds: Iterable<string>): void {
    for (const messageId of messageIds) {
      const job = this.#byMessageId.get(messageId);
      if (job === undefined || job.outcome !== 'unsettled' || job.messageId !== messageId) continue;
      job.movedBySqsRedrive = true;
      this.#settle(job, 'dead_lettered', null);
    }
  }

  /**
   * These dead letters (their `job_id` and `reason` attributes) are on the dead-letter queue. A job still open whose
   * record the sender last dead-lettered with that reason is settled by it: the invocation that did so may have
   * ended at its function timeout before reporting the record's delete, and a job without a ledger entry (an
   * invalid body) has nothing else to settle it by. Whatever SQS does with that record next, the sender can only
   * dead-letter it again.
   */
  onDeadLetters(
    letters: Iterable<{ readonly jobId?: string | undefined; readonly reason?: string | undefined }>,
  ): void {
    const lettered = new Set<string>();
    for (const letter of letters) {
      if (letter.jobId !== undefined && letter.reason !== undefined)
        lettered.add(`${letter.jobId}\n${letter.reason}`);
    }
    for (const job of this.#jobs) {
      const event = job.lastEvent;
      if (job.outcome !== 'unsettled' || event?.kind !== 'dead_lettered' || event.jobId === undefined)
        continue;
      if (lettered.has(`${event.jobId}\n${event.reason ?? ''}`))
        this.#settle(job, 'dead_lettered', event.reason ?? null);
    }
  }

  /** Epoch ms the oldest job still on the send queue was enqueued; undefined when none is. */
  oldestUnsettledAt(): number | undefined {
    let oldest: number | undefined;
    for (const job of this.#jobs) {
      if (job.outcome === 'unsettled' && (oldest === undefined || job.enqueuedAt < oldest)) {
        oldest = job.enqueuedAt;
      }
    }
    return oldest;
  }

  /** The run's jobs by outcome, each job counted once however many lines hold it (`jobsOf`). */
  counts(): TrackerCounts {
    let delivered = 0;
    let duplicate = 0;
    let deadLettered = 0;
    let retrying = 0;
    let waiting = 0;
    const jobs = jobsOf(this.#jobs);
    for (const { job, outcome } of jobs) {
      if (outcome === 'delivered') delivered += 1;
      else if (outcome === 'duplicate') duplicate += 1;
      else if (outcome === 'dead_lettered') deadLettered += 1;
      else if (job.lastEvent === undefined) waiting += 1;
      else retrying += 1;
    }
    const settled = delivered + duplicate + deadLettered;
    return { total: jobs.length, settled, delivered, duplicate, deadLettered, retrying, waiting };
  }

  allSettled(): boolean {
    return this.#jobs.every((job) => job.outcome !== 'unsettled');
  }

  /**
   * A record of a job this run does not know by message id: the re-queued copy of one awaiting it, or else a copy
   * of an unsettled job whose report never came (an instance ended at the function timeout made it, and nothing
   * it did after the deadline reaches anyone, its settlement included).
   */
  #adoptCopy(event: SenderEvent): JobState | undefined {
    if (event.jobId === undefined) return undefined;
    const unsettled = (candidate: JobState) =>
      candidate.id === event.jobId && candidate.outcome === 'unsettled';
    const job =
      this.#jobs.find((candidate) => candidate.awaitingCopy && unsettled(candidate)) ??
      this.#jobs.find(unsettled);
    if (job !== undefined) this.#follow(job, event.messageId);
    return job;
  }

  #follow(job: JobState, messageId: string): void {
    job.messageId = messageId;
    job.awaitingCopy = false;
    this.#byMessageId.set(messageId, job);
    // The copy may have been handled (and deleted) already, by an invocation that reported first.
    const unclaimed = this.#unclaimed.get(messageId);
    if (unclaimed === undefined) return;
    this.#unclaimed.delete(messageId);
    this.onSenderEvent(unclaimed.event);
    if (unclaimed.deleted) this.onDeleted([messageId]);
  }

  /** Ids of the jobs not settled yet (a job whose line had no readable id has none). */
  unsettledIds(): string[] {
    return [
      ...new Set(
        this.#jobs.flatMap((job) => (job.outcome === 'unsettled' && job.id !== undefined ? [job.id] : [])),
      ),
    ];
  }

  /**
   * Settles the unsettled jobs of `entry`'s id as the job ledger says they settled: for a job whose last report
   * never came (its instance was ended at the function timeout after it settled the job) once none of the run's
   * messages is left to report it. A ledger entry still open settles nothing.
   */
  settleFromLedger(entry: LedgerEntry): void {
    const outcome: JobOutcome | undefined =
      entry.status === 'delivered' || entry.status === 'duplicate' || entry.status === 'dead_lettered'
        ? entry.status
        : undefined;
    for (const job of this.#jobs) {
      if (job.id !== entry.job_id || job.outcome !== 'unsettled') continue;
      // A line with another body under the id is not the job the entry records (docs/contract.md, "When a message
      // changes"): refused id_conflict if the entry noted its body, else left for its own report.
      const parsed = parsedJob(job.body);
      if (parsed !== undefined && parsed.fingerprint !== entry.body_hash) {
        if (entry.refused_body_hash === parsed.fingerprint) {
          job.detail = idConflictDetail(parsed.job, entry, entry.refused_at ?? this.#now());
          this.#settle(job, 'dead_lettered', 'id_conflict');
        }
        continue;
      }
      if (outcome === undefined) continue;
      job.attempts = Math.max(job.attempts, entry.sends);
      job.lastStatus = parseLastStatus(entry.last_status) ?? job.lastStatus;
      job.uuid = entry.uuid ?? job.uuid;
      job.detail = entry.dead_letter_detail ?? job.detail;
      this.#settle(job, outcome, entry.dead_letter_reason ?? null);
    }
  }

  #settle(job: JobState, outcome: JobOutcome, reason: string | null): void {
    job.outcome = outcome;
    job.reason = reason;
    job.settledAt = this.#now();
    this.onSettled?.(job);
  }
}

/** What a job delivered over an unknown-outcome dead letter of one of its copies says (`deliveredOverLostCount`). */
export const STALE_UNKNOWN_OUTCOME =
  "delivered: the attempt's 201 reached the ledger after a copy of the job had counted that attempt lost and was " +
  'dead-lettered unknown_outcome; that dead letter is stale (relay job shows the job delivered): delete it, never redrive it';

/**
 * Whether `event` is a delivery that settles a job its tracker already saw dead-lettered `unknown_outcome`: the
 * attempt's answer, carried on a fresh copy while DynamoDB refused its settle, reached the ledger after another copy
 * had counted the attempt lost (its lease ended) and dead-lettered the job. The ledger keeps the 201 over what the
 * lost count led to (docs/contract.md), so the report does too.
 */
function deliveredOverLostCount(job: JobState, event: SenderEvent): boolean {
  return job.outcome === 'dead_lettered' && job.reason === 'unknown_outcome' && isDelivery(event);
}

/** A record settled delivered with eCourtDate's uuid: a 201 (a 409 names no message). */
function isDelivery(event: SenderEvent): boolean {
  return event.kind === 'settled' && event.outcome === 'delivered' && event.uuid !== undefined;
}

/** A valid job's body, parsed, with its fingerprint; undefined for a body the relay refuses (no ledger entry). */
function parsedJob(body: string): { readonly job: SendJob; readonly fingerprint: string } | undefined {
  try {
    const job = parseJob(body);
    return { job, fingerprint: jobFingerprint(job) };
  } catch {
    return undefined;
  }
}

/** What makes two lines one job: its id and fingerprint; undefined for a line that is not a valid job. */
function sameJobKey(body: string): string | undefined {
  const parsed = parsedJob(body);
  return parsed === undefined ? undefined : `${parsed.job.id}\n${parsed.fingerprint}`;
}
