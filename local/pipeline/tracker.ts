import type { JobLine } from '#local/pipeline/jobs-file.ts';
import type { SenderEvent } from '#local/pipeline/observability.ts';

export type JobOutcome = 'delivered' | 'duplicate' | 'dead_lettered' | 'unsettled';

/** One job of the run, as the report shows it. */
export interface JobState {
  readonly line: number;
  readonly id: string;
  readonly messageId: string;
  readonly enqueuedAt: number;
  outcome: JobOutcome;
  /** The dead-letter reason from design.md; null unless dead-lettered by the relay. */
  reason: string | null;
  /** Receives of the record when it was last handled (its attempt number); 0 before the first. */
  attempts: number;
  /** Last HTTP status, `timeout`/`connection`, or null when nothing was sent. */
  lastStatus: number | string | null;
  uuid: string | null;
  /** Set when SQS moved the record to the dead-letter queue itself (maxReceiveCount), without the relay. */
  movedBySqsRedrive: boolean;
  /** Times the sender scheduled a retry (backoff, rate limit, deferral). */
  retries: number;
  settledAt?: number;
  /** The latest event the sender logged for this record, kept until the record is deleted. */
  lastEvent?: SenderEvent;
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
 * dead-lettered), or when SQS itself moved it to the dead-letter queue (redrive at maxReceiveCount).
 */
export class JobTracker {
  readonly #jobs: JobState[] = [];
  readonly #byMessageId = new Map<string, JobState>();
  readonly #now: () => number;
  /** Called once per job when it settles. */
  onSettled: ((job: JobState) => void) | undefined;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Registers a job that was put on the send queue as message `messageId`. */
  add(line: JobLine, messageId: string, enqueuedAt: number = this.#now()): JobState {
    const job: JobState = {
      line: line.line,
      id: line.id,
      messageId,
      enqueuedAt,
      outcome: 'unsettled',
      reason: null,
      attempts: 0,
      lastStatus: null,
      uuid: null,
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
    const job = this.#byMessageId.get(event.messageId);
    if (job === undefined) return false;
    if (job.outcome !== 'unsettled') return true;
    job.lastEvent = event;
    if (event.attempt !== undefined) job.attempts = Math.max(job.attempts, event.attempt);
    if (event.status !== undefined) job.lastStatus = event.status;
    if (event.kind === 'retried') job.retries += 1;
    return true;
  }

  /** An invocation finished and these records were deleted from the send queue. */
  onDeleted(messageIds: readonly string[]): void {
    for (const messageId of messageIds) {
      const job = this.#byMessageId.get(messageId);
      const event = job?.lastEvent;
      if (job === undefined || job.outcome !== 'unsettled' || event === undefined) continue;
      if (event.kind === 'dead_lettered') {
        this.#settle(job, 'dead_lettered', event.reason ?? null);
      } else if (event.kind === 'settled') {
        job.uuid = event.uuid ?? null;
        this.#settle(job, event.outcome === 'duplicate' ? 'duplicate' : 'delivered', null);
      }
    }
  }

  /** These message ids are on the dead-letter queue: any of ours still open got there by SQS's redrive. */
  onDeadLetterQueue(messageIds: Iterable<string>): void {
    for (const messageId of messageIds) {
      const job = this.#byMessageId.get(messageId);
      if (job === undefined || job.outcome !== 'unsettled') continue;
      job.movedBySqsRedrive = true;
      this.#settle(job, 'dead_lettered', null);
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

  counts(): TrackerCounts {
    let delivered = 0;
    let duplicate = 0;
    let deadLettered = 0;
    let retrying = 0;
    let waiting = 0;
    for (const job of this.#jobs) {
      if (job.outcome === 'delivered') delivered += 1;
      else if (job.outcome === 'duplicate') duplicate += 1;
      else if (job.outcome === 'dead_lettered') deadLettered += 1;
      else if (job.lastEvent === undefined) waiting += 1;
      else retrying += 1;
    }
    const settled = delivered + duplicate + deadLettered;
    return { total: this.#jobs.length, settled, delivered, duplicate, deadLettered, retrying, waiting };
  }

  allSettled(): boolean {
    return this.#jobs.every((job) => job.outcome !== 'unsettled');
  }

  #settle(job: JobState, outcome: JobOutcome, reason: string | null): void {
    job.outcome = outcome;
    job.reason = reason;
    job.settledAt = this.#now();
    this.onSettled?.(job);
  }
}
