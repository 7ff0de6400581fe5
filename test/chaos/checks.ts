import { DEFAULTS } from '#shared/config.ts';
import { type DeliveryEvent, UUID_KEY_PREFIX } from '#shared/ledger/delivery.ts';
import { NOT_DUE_TOLERANCE_MS } from '#shared/ledger/gate.ts';
import { JOB_KEY_PREFIX, LEDGER_TABLE_KEY } from '#shared/ledger/schema.ts';
import { DEAD_LETTER_REASONS } from '#shared/outcome.ts';
import { insideDuplicateWindow } from '#shared/policy.ts';
import { LOG_MESSAGE, type Settlement } from '#shared/sender/runtime.ts';
import { JOB_SETTLED, type JobSettledDetail } from '#shared/sender/settled-event.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/attributes.ts';
import {
  FAULT_NAMES,
  FAULTS,
  type Fault,
  jobIdOf,
  MAINTENANCE_SECONDS,
  type PlannedJob,
  TEXT_MARKER,
} from '#test/chaos/plan.ts';
import {
  CHAOS_CLIENT,
  type ChaosEvidence,
  type DeadLetter,
  ONEOFFS,
  type PostEvent,
  recordJobId,
} from '#test/chaos/world.ts';

/**
 * The promises a chaos run must keep, each as a pure function of the run's evidence that lists what broke it
 * (empty when kept). The rules are the response table of docs/contract.md ("What each response does") and the
 * guarantees of docs/ledger.md.
 */

/** A request as the checks see it: the simulator's record with the job and fault it belongs to. */
interface JobRequest {
  readonly at: number;
  readonly status: number | string;
  readonly fault: Fault | 'storm';
}

/** Indexes of the evidence shared by the checks. */
export class Facts {
  readonly byId: ReadonlyMap<string, PlannedJob>;
  readonly requestsOf = new Map<string, JobRequest[]>();
  readonly postsOf = new Map<string, PostEvent[]>();
  readonly messagesOf = new Map<string, number>();
  readonly touched = new Set<string>();
  /** Epoch ms of the kills that touched each job. */
  readonly killedAt = new Map<string, number[]>();
  /**
   * The sender's retries of each job, as its log says them: when, why, the status it met, and how long the record
   * was to stay hidden (s; absent when the line does not say).
   */
  readonly retriesOf = new Map<
    string,
    { at: number; cause: string; status: unknown; retryInSeconds: number | undefined }[]
  >();
  readonly scale: number;
  /** Epoch ms each job's dead letters went back to the send queue (its wave's redrive); absent without one. */
  readonly redriveAt = new Map<string, number>();
  /** Each job's ledger entry at the end (before the replays), by job id. */
  readonly entries = new Map<string, LedgerItem>();
  /** Every ledger item at the end, by key (`job#`, `uuid#`, `webhook#`). */
  readonly items = new Map<string, LedgerItem>();
  /** The uuids of each job's messages in eCourtDate. */
  readonly messageUuidsOf = new Map<string, string[]>();
  /** Every record the senders handled, by job id, from their log. */
  readonly recordsOf = new Map<string, RecordLine[]>();
  /**
   * Jobs whose attempt's answer was lost to a double fault: its settle could not be written (DynamoDB), and the
   * fresh copy that was to carry it could not be sent either (SQS), so the record was left on the queue without
   * it. The ledger then finds the attempt lost, as if its instance had died.
   */
  readonly answerDropped = new Set<string>();
  /**
   * Jobs whose attempt's answer rode on fresh copies that DynamoDB kept refusing until the attempt's lease had
   * ended, so that another copy of the job counted the attempt lost before the answer reached the ledger (the limit
   * docs/contract.md states: a resend inside the window is answered 409, else the job is dead-lettered
   * `unknown_outcome`; the carried 201 then settles it delivered with its uuid, over that).
   */
  readonly carriedPastLease = new Set<string>();
  /**
   * Jobs whose settled record could not take a step after the settle (the uuid index, the Job Settled event) and
   * whose fresh copy SQS refused too: the record came back without the mark that its event had not gone out, so
   * the event's first publication is marked replayed.
   */
  readonly pendingDropped = new Set<string>();

  readonly evidence: ChaosEvidence;

  constructor(evidence: ChaosEvidence) {
    this.evidence = evidence;
    this.byId = new Map(evidence.settings.jobs.map((job) => [job.id, job]));
    this.scale = evidence.settings.timeScale;
    for (const redrive of evidence.redrives) {
      for (const id of redrive.jobs) this.redriveAt.set(id, redrive.startedAt);
    }
    for (const item of evidence.ledger) {
      const key = String(item[LEDGER_TABLE_KEY]);
      this.items.set(key, item);
      if (key.startsWith(JOB_KEY_PREFIX)) this.entries.set(key.slice(JOB_KEY_PREFIX.length), item);
    }
    for (const request of evidence.requests) {
      const id = request.path === ONEOFFS ? jobIdOf(request.body) : undefined;
      if (id === undefined) continue;
      const fault = (request.faultApplied ?? 'ok') as Fault | 'storm';
      push(this.requestsOf, id, { at: request.at, status: request.status, fault });
    }
    for (const post of evidence.posts) push(this.postsOf, post.jobId, post);
    for (const message of evidence.messages) {
      const id = jobIdOf(message.body);
      if (id) {
        this.messagesOf.set(id, (this.messagesOf.get(id) ?? 0) + 1);
        push(this.messageUuidsOf, id, message.uuid);
      }
    }
    for (const kill of evidence.kills) {
      for (const id of kill.touched) {
        this.touched.add(id);
        push(this.killedAt, id, kill.at);
      }
    }
    // The copies SQS refused to take: the record fell back to being hidden, or left, as it was.
    const copyRefused = new Set(refusedCopies(evidence.logLines));
    for (const record of recordLines(evidence.logLines)) {
      push(this.recordsOf, record.jobId, record);
      if (!copyRefused.has(record.messageId) || record.applied === 'requeued') continue;
      if (CARRYING.test(record.detail)) this.answerDropped.add(record.jobId);
      if (AFTER_SETTLE.test(record.detail)) this.pendingDropped.add(record.jobId);
    }
    for (const [id, records] of this.recordsOf) {
      const history = (this.entries.get(id)?.history ?? []) as readonly { status: string }[];
      if (
        records.some((record) => CARRYING.test(record.detail)) &&
        history.some((e) => e.status === 'lost')
      ) {
        this.carriedPastLease.add(id);
      }
    }
    // A retry is logged as such, or as a re-queue when the record was handed to a fresh copy.
    const retryLines = [LOG_MESSAGE.retried, LOG_MESSAGE.requeued].map((message) => `"message":"${message}"`);
    for (const line of evidence.logLines) {
      if (!retryLines.some((marker) => line.includes(marker))) continue;
      const entry = JSON.parse(line) as {
        job_id?: string;
        timestamp?: string;
        cause?: string;
        status?: unknown;
        retry_in_seconds?: unknown;
      };
      if (entry.job_id === undefined) continue;
      push(this.retriesOf, entry.job_id, {
        at: Date.parse(entry.timestamp ?? ''),
        cause: entry.cause ?? '',
        status: entry.status,
        retryInSeconds: typeof entry.retry_in_seconds === 'number' ? entry.retry_in_seconds : undefined,
      });
    }
  }

  /** Epoch ms of the job's first attempt whose outcome the relay could not know (a kill included). */
  firstUnknownAt(id: string): number | undefined {
    const times = [...this.unknownPosts(id).map((post) => post.at), ...(this.killedAt.get(id) ?? [])];
    return times.length === 0 ? undefined : Math.min(...times);
  }

  /**
   * Whether a 429 (its own, or its instance's wait) or the circuit breaker held the job back after an outcome it
   * could not know. A 429's wait is rounded up to whole SQS seconds and the sender adds a 0-4 s spread to a hold
   * (real time: local/pipeline/time-scale.ts), so at the suite's time scale it can carry the resend past the scaled
   * duplicate window, which no deployed relay would meet. A breaker's hold lasts until a probe gets through
   * (docs/pacing.md, "The circuit breaker"): a job that met the failures that opened it keeps the unknown-outcome
   * rules, and a hold past the window ends it `unknown_outcome` by design. Either way the job may then be
   * dead-lettered `unknown_outcome`.
   */
  heldBackAfterUnknown(id: string): boolean {
    const since = this.firstUnknownAt(id);
    return (
      since !== undefined &&
      (this.retriesOf.get(id) ?? []).some(
        (retry) =>
          retry.at > since &&
          ['deferred', 'rate_limited', 'held_unavailable', 'held_auth'].includes(retry.cause),
      )
    );
  }

  /**
   * Whether an outage held the job up after an outcome it could not know: a record of it left on the queue (SQS
   * refused its hide), or re-queued because a dependency failed, after its first unknown outcome; or the queue
   * handed it back later than the relay asked (`handedBackLate`). Such a wait (the queue's visibility timeout, or
   * the backlog an outage leaves, which one machine drains far slower than the scaled clock runs) can carry the
   * resend past the duplicate window: the job may then end `unknown_outcome`.
   */
  slowedByOutage(id: string): boolean {
    const since = this.firstUnknownAt(id);
    return (
      since !== undefined &&
      ((this.recordsOf.get(id) ?? []).some(
        (record) => record.at > since && (record.applied === 'left' || record.cause === 'dependency_failure'),
      ) ||
        this.handedBackLate(id, since))
    );
  }

  /**
   * Whether, after the job's first unknown outcome (epoch ms `since`), a retry of it asked the queue for it back
   * at a time a resend could still land inside the duplicate window by the sender's own rule, and no copy of it
   * was received until more than `BACKLOG_LATE_MS` after that time: the backlog of the world (instances busy
   * with the records an outage re-queued, or slowed by slow DynamoDB), not the relay's wait. The window counts
   * from the receive of the batch the attempt was claimed in, as early as the sender's own count can start.
   */
  handedBackLate(id: string, since: number): boolean {
    const { policy } = this.evidence.world;
    const receives = this.evidence.receiveTimes.get(id) ?? [];
    const claimedFrom = receives.filter((at) => at <= since).at(-1) ?? since;
    return (this.retriesOf.get(id) ?? []).some((retry) => {
      if (retry.at < since || retry.retryInSeconds === undefined) return false;
      const due = retry.at + retry.retryInSeconds * 1000;
      if (!insideDuplicateWindow(claimedFrom, due, policy)) return false;
      const next = receives.find((at) => at > retry.at);
      return next !== undefined && next - due > BACKLOG_LATE_MS;
    });
  }

  /**
   * Whether a copy of the job was dead-lettered `unknown_outcome` (its attempt counted lost) while the attempt's
   * 201 rode on another copy, which then settled the job delivered: the dead letter is superseded.
   */
  superseded(id: string): boolean {
    const entry = this.entries.get(id);
    // The 201 came in the run, not after the redrive (a dead letter redriven and then delivered is no such case).
    const created = (this.postsOf.get(id) ?? []).find((post) => post.answered && post.status === 201);
    return (
      entry?.status === 'delivered' &&
      entry.uuid !== undefined &&
      created !== undefined &&
      this.beforeRedrive(id, created.at) &&
      this.reportOf(id).some((report) => report.reason === 'unknown_outcome')
    );
  }

  /** The faults a job really met, in order (kills before sending included). */
  met(id: string): Fault[] {
    return (this.postsOf.get(id) ?? []).map((post) => post.fault);
  }

  /** Requests whose outcome the relay could not know: a 5xx, no answer, or an instance that died first. */
  unknownPosts(id: string): PostEvent[] {
    return (this.postsOf.get(id) ?? []).filter(unknownOutcome);
  }

  /**
   * Whether a kill of the instance holding the job was recovered too late for the scaled world to be faithful:
   * the batch came back after the visibility timeout, but the job's record then waited in the queue (every
   * instance busy, one of them dead) until a resend could no longer land inside the duplicate window by the
   * sender's own rule, where Lambda, scaling out, would have picked it up at once.
   */
  recoveredTooLate(id: string): boolean {
    const { policy } = this.evidence.world;
    const receives = this.evidence.receiveTimes.get(id) ?? [];
    const kills = this.evidence.kills.filter((kill) => kill.touched.includes(id));
    // The window counts from the job's earliest unknown outcome: a killed batch's claim, or an earlier request.
    const since = Math.min(
      ...kills.map((kill) => kill.batchReceivedAt ?? kill.at),
      ...this.unknownPosts(id).map((post) => post.at),
    );
    // When the job was handled after the kill: its first log line after it (a receive whose invocation died too
    // leaves none), else its next receive.
    const handledAfter = (kill: number) =>
      (this.recordsOf.get(id) ?? []).find((record) => record.at > kill)?.at ??
      receives.find((at) => at > kill);
    return kills.some((kill) => {
      const next = handledAfter(kill.at);
      return next === undefined || !insideDuplicateWindow(since, next, policy);
    });
  }

  /** What spent a retry budget: each such fault met, and each kill of the instance holding the job. */
  budgetSpent(id: string): number {
    // A planned fault that spends it, or a request that met an unknown outcome anyway (an 'ok' request that timed
    // out on a busy machine); one that a dead instance never answered counts as the kill below.
    const killed = this.killedAt.get(id) ?? [];
    const spent = (this.postsOf.get(id) ?? []).filter(
      (post) =>
        FAULTS[post.fault].spendsBudget ||
        (unknownOutcome(post) && (post.answered || !killed.some((at) => at >= post.at))),
    ).length;
    const retries = this.retriesOf.get(id) ?? [];
    // Failures before a request left that other jobs' outages caused too: a secret read, a token request (a
    // 'server_error' retry with no 408 of the job's own behind it).
    const secret = retries.filter((retry) => retry.cause === 'credentials').length;
    const own408 = (this.postsOf.get(id) ?? []).filter((post) => post.status === 408).length;
    const token = Math.max(0, retries.filter((retry) => retry.cause === 'server_error').length - own408);
    return spent + (this.killedAt.get(id)?.length ?? 0) + secret + token;
  }

  /** Jobs that cannot be required to deliver: invalid, unknown agency, expiring, or past the 24 h. */
  mayFailAnyway(job: PlannedJob): boolean {
    return (
      !job.valid ||
      job.unknownAgency ||
      job.expiresAt !== undefined ||
      this.evidence.seconds * 1000 > this.evidence.world.maxAgeMs
    );
  }

  reportOf(id: string) {
    return this.evidence.report.jobs.filter((entry) => entry.id === id);
  }

  ms(apiSeconds: number): number {
    return (apiSeconds * 1000) / this.scale;
  }

  /** Whether `at` (epoch ms) came before the job's dead letters were redriven (always, without a redrive). */
  beforeRedrive(id: string, at: number): boolean {
    return at < (this.redriveAt.get(id) ?? Number.POSITIVE_INFINITY);
  }

  /**
   * The dead letters on the queue at the end: the second run's, and the ones the operator deleted as sent
   * instead of redriving them; without a redrive, the run's.
   */
  finalDeadLetters(): DeadLetter[] {
    const { redrives, deadLetters } = this.evidence;
    if (redrives.length === 0) return [...deadLetters];
    return redrives.flatMap((redrive) => [...redrive.deadLetters, ...redrive.deletedAsSent]);
  }

  /** Every dead letter of the run: before the redrive, and after it. */
  allDeadLetters(): DeadLetter[] {
    return [
      ...this.evidence.deadLetters,
      ...this.evidence.redrives.flatMap((redrive) => redrive.deadLetters),
    ];
  }
}

/** A ledger item as the world read it (unmarshalled). */
export type LedgerItem = Readonly<Record<string, unknown>>;

/**
 * What became of one record, as the sender's log line for it says. The log has a line for every record handled,
 * also in a batch whose invocation never returned (an instance killed mid-batch), which never hands its
 * settlements over.
 */
export interface RecordLine {
  readonly at: number;
  readonly jobId: string;
  readonly messageId: string;
  readonly applied: Settlement['applied'];
  readonly cause: string | undefined;
  readonly status: unknown;
  readonly detail: string;
  /** SQS's receive count of the message, when the line gives it. */
  readonly receiveCount: number | undefined;
}

const APPLIED_BY_MESSAGE: Readonly<Record<string, Settlement['applied']>> = {
  [LOG_MESSAGE.settled]: 'acknowledged',
  [LOG_MESSAGE.alreadySettled]: 'acknowledged',
  [LOG_MESSAGE.handedOver]: 'acknowledged',
  [LOG_MESSAGE.deadLettered]: 'dead_lettered',
  [LOG_MESSAGE.retried]: 'hidden',
  [LOG_MESSAGE.requeued]: 'requeued',
  [LOG_MESSAGE.left]: 'left',
};

/** Message ids whose fresh copy SQS refused (the sender's "SQS refused the action" lines for a re-queue). */
function refusedCopies(logLines: readonly string[]): string[] {
  const ids: string[] = [];
  for (const line of logLines) {
    if (!line.includes('"SQS refused the action') || !line.includes('"action":"requeue"')) continue;
    const entry = JSON.parse(line) as { message_id?: unknown };
    if (typeof entry.message_id === 'string') ids.push(entry.message_id);
  }
  return ids;
}

/** The sender's log lines about records, parsed. */
function recordLines(logLines: readonly string[]): RecordLine[] {
  const records: RecordLine[] = [];
  for (const line of logLines) {
    if (!line.includes('"job_id"')) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const applied = APPLIED_BY_MESSAGE[String(entry.message)];
    if (applied === undefined || typeof entry.job_id !== 'string') continue;
    records.push({
      at: Date.parse(String(entry.timestamp)),
      jobId: entry.job_id,
      messageId: String(entry.message_id ?? ''),
      applied,
      cause: typeof entry.cause === 'string' ? entry.cause : undefined,
      status: entry.status,
      detail: typeof entry.detail === 'string' ? entry.detail : '',
      receiveCount: typeof entry.receive_count === 'number' ? entry.receive_count : undefined,
    });
  }
  return records;
}

/** The relay could not know what became of this request: no answer (a timeout, a drop, a kill) or a 5xx. */
function unknownOutcome(post: PostEvent): boolean {
  return !post.answered || (post.status ?? 0) >= 500;
}

/**
 * How much later than its retry asked a job may come back from the queue before the wait counts as the world's
 * backlog, real ms: SQS hides a record for whole seconds, and an idle instance polls again within a second.
 */
const BACKLOG_LATE_MS = 2_000;

/** A record re-queued (or left) carrying its attempt's answer because the settle could not be written. */
const CARRYING = /answer is carried on a fresh copy/;
/** A record re-queued (or left) because a step after the settle failed: the uuid index, the Job Settled event. */
const AFTER_SETTLE = /a step after it failed/;

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** No job is left unsettled: every message put on the queue ended delivered, a duplicate or dead-lettered. */
export function lost(facts: Facts): string[] {
  const { report, settled } = facts.evidence;
  const open = report.jobs.filter((entry) => entry.outcome === 'unsettled').map((entry) => `${entry.id}`);
  return settled || open.length > 0 ? open : ['the run timed out'];
}

/** eCourtDate never holds two messages for one job. */
export function sentTwice(facts: Facts): string[] {
  return [...facts.messagesOf].filter(([, n]) => n > 1).map(([id, n]) => `${id}: ${n} messages`);
}

/** Every delivered job has exactly one message in eCourtDate. */
export function deliveredWithoutOneMessage(facts: Facts): string[] {
  return facts.evidence.report.jobs
    .filter((entry) => entry.outcome === 'delivered' && facts.messagesOf.get(entry.id ?? '') !== 1)
    .map((entry) => `${entry.id}: ${facts.messagesOf.get(entry.id ?? '') ?? 0} messages`);
}

/** A 409 is `duplicate` only when no attempt of the job had an unknown outcome; no chaos job is someone else's. */
export function reportedDuplicate(facts: Facts): string[] {
  return facts.evidence.report.jobs
    .filter((entry) => entry.outcome === 'duplicate')
    .map((entry) => `${entry.id}: duplicate after ${facts.met(entry.id ?? '').join(',') || 'nothing'}`);
}

/** Every dead letter carries the relay's reason; nothing reached the dead-letter queue by SQS's redrive. */
export function deadLettersWithoutReason(facts: Facts): string[] {
  const reasons = new Set<string>(DEAD_LETTER_REASONS);
  const bare = facts
    .allDeadLetters()
    .filter((letter) => !reasons.has(letter.attributes.reason ?? ''))
    .map(
      (letter) => `${recordJobId(letter.body) ?? '(no id)'}: reason ${letter.attributes.reason ?? 'missing'}`,
    );
  const redriven = facts.evidence.report.jobs
    .filter((entry) => entry.outcome === 'dead_lettered' && entry.reason === null)
    .map((entry) => `${entry.id}: moved by SQS's redrive`);
  return [...bare, ...redriven];
}

/** Every dead-letter reason is the one the response table gives for what the job met. */
export function wrongReasons(facts: Facts): string[] {
  const wrong: string[] = [];
  const { evidence } = facts;
  for (const entry of evidence.report.jobs) {
    if (entry.outcome !== 'dead_lettered') continue;
    const id = entry.id ?? '';
    const job = facts.byId.get(id);
    const met = new Set(facts.met(id));
    // The job met a fault the table dead-letters with this reason, and that fault's status was the last one.
    const deadEnd = (reason: string) =>
      [...met].some(
        (fault) =>
          FAULTS[fault].deadEnd?.reason === reason && entry.last_status === FAULTS[fault].deadEnd?.status,
      );
    const ok = ((): boolean => {
      switch (entry.reason) {
        case 'invalid_job':
          return job === undefined || !job.valid;
        case 'expired':
          return job?.expiresAt !== undefined || evidence.seconds * 1000 > evidence.world.maxAgeMs;
        case 'bad_request':
        case 'forbidden':
        case 'client_error':
          return deadEnd(entry.reason);
        case 'not_found':
          return deadEnd('not_found') || (job?.unknownAgency === true && entry.last_status === 404);
        case 'retries_exhausted':
          return facts.budgetSpent(id) >= 2;
        case 'unknown_outcome':
          return (
            facts.unknownPosts(id).length > 0 ||
            facts.touched.has(id) ||
            facts.answerDropped.has(id) ||
            facts.carriedPastLease.has(id)
          );
        default:
          return false;
      }
    })();
    if (!ok) {
      const touched = facts.touched.has(id) ? ' (its instance died)' : '';
      wrong.push(
        `${id}: ${entry.reason} (last ${entry.last_status}) after ${[...facts.met(id)].join(',') || 'nothing'}${touched}`,
      );
    }
  }
  return wrong;
}

/**
 * A job the table lets recover is delivered: without `skip_duplicate`, every job that met at most one fault
 * spending a retry budget (a 5xx once, created-then-5xx, a timeout, a 408, a 429 of any form, a secret or token
 * outage, an instance killed before or after the send); with `skip_duplicate`, every job that met no unknown
 * outcome, while one that met one is dead-lettered `unknown_outcome`.
 */
export function recoverableNotDelivered(facts: Facts): string[] {
  const wrong: string[] = [];
  for (const job of facts.evidence.settings.jobs) {
    if (facts.mayFailAnyway(job)) continue;
    const met = facts.met(job.id);
    if (met.some((fault) => FAULTS[fault].deadEnd)) continue;
    const entries = facts.reportOf(job.id);
    const outcomes = entries.map((entry) =>
      entry.reason ? `${entry.outcome}:${entry.reason}` : entry.outcome,
    );
    const allowed = ((): readonly string[] | undefined => {
      if (job.skipDuplicate && facts.unknownPosts(job.id).length > 0)
        return ['dead_lettered:unknown_outcome'];
      // Two budget-spending faults may exhaust a budget (a second 500): nothing is required then.
      if (facts.budgetSpent(job.id) > 1) return undefined;
      if (
        (job.skipDuplicate && facts.touched.has(job.id)) ||
        facts.heldBackAfterUnknown(job.id) ||
        facts.recoveredTooLate(job.id) ||
        facts.slowedByOutage(job.id) ||
        facts.answerDropped.has(job.id) ||
        facts.carriedPastLease.has(job.id) ||
        facts.superseded(job.id)
      ) {
        return ['delivered', 'dead_lettered:unknown_outcome'];
      }
      return ['delivered'];
    })();
    if (allowed && outcomes.some((outcome) => !allowed.includes(outcome))) {
      const touched = facts.touched.has(job.id) ? ' (its instance died)' : '';
      wrong.push(
        `${job.id}${job.skipDuplicate ? ' (skip_duplicate)' : ''}: ${outcomes.join(', ')} after ${met.join(',') || 'nothing'}${touched}`,
      );
    }
  }
  return wrong;
}

/** A `skip_duplicate` job is never sent again after an attempt whose outcome was unknown. */
export function skipDuplicateResent(facts: Facts): string[] {
  const wrong: string[] = [];
  for (const job of facts.evidence.settings.jobs) {
    if (!job.skipDuplicate) continue;
    // An operator's redrive may send it again: that is what a redrive is for.
    const posts = (facts.postsOf.get(job.id) ?? []).filter((post) => facts.beforeRedrive(job.id, post.at));
    const first = posts.findIndex(unknownOutcome);
    if (first >= 0 && first < posts.length - 1) {
      wrong.push(`${job.id}: sent ${posts.length - first - 1} more time(s) after ${posts[first]?.fault}`);
    }
  }
  return wrong;
}

/**
 * No job is sent again before the wait its last answer calls for (60 s after a 408, 429 or 5xx; a 503's
 * Retry-After), however many copies of it SQS or the upstream hands out meanwhile.
 */
export function sentTooSoon(facts: Facts): string[] {
  const wrong: string[] = [];
  for (const [id, requests] of facts.requestsOf) {
    for (let i = 1; i < requests.length; i++) {
      const before = requests[i - 1];
      const after = requests[i];
      if (!before || !after) continue;
      // A redrive starts a new generation: an operator's decision, not a resend the last answer governs.
      if (facts.beforeRedrive(id, before.at) !== facts.beforeRedrive(id, after.at)) continue;
      const floor = floorSeconds(before);
      if (floor === undefined) continue;
      const gap = after.at - before.at;
      // The ledger's own tolerance for a copy shown a moment early (scaled like every other delay), and 5 ms of
      // timer and clock tolerance.
      if (gap < facts.ms(floor) - NOT_DUE_TOLERANCE_MS / facts.scale - 5) {
        wrong.push(
          `${id}: sent ${gap} ms after ${before.fault} (${before.status}); at least ${facts.ms(floor)} ms`,
        );
      }
    }
  }
  return wrong;
}

/**
 * The least wait, in the API's seconds, that the table calls for after an answer: 60 s after a 408, a 429, a 5xx
 * or no answer; a maintenance 503's Retry-After. By the status the simulator really answered: a request planned
 * to meet a fault may meet something else first (an unknown agency's 404).
 */
function floorSeconds(request: JobRequest): number | undefined {
  const { status, fault } = request;
  if (status === 'dropped' || status === 'pending') return 60;
  if (typeof status !== 'number') return undefined;
  if (status === 503 && fault !== 'storm' && FAULTS[fault].floorSeconds === MAINTENANCE_SECONDS) {
    return MAINTENANCE_SECONDS;
  }
  return status === 408 || status === 429 || status >= 500 ? 60 : undefined;
}

/**
 * A 429's wait hint never holds a job or an instance for long (an epoch-ms reset is not read as 12 h): no record
 * the sender hides because of a 429 (its own, or its instance's wait) is hidden for longer than the table's
 * longest 429 wait (RATE_LIMIT_HINT_MAX_SECONDS, or 8 minutes when 429s repeat, with 10 % jitter), scaled,
 * plus the whole second SQS rounds up to and the 0-4 s spread of a hold.
 */
export function heldTooLong(facts: Facts, capSeconds = DEFAULTS.rateLimitHintMaxSeconds): string[] {
  const limit = Math.ceil(Math.max(capSeconds, 480 * 1.1) / facts.scale) + 1 + 4;
  const wrong: string[] = [];
  const retryLines = [LOG_MESSAGE.retried, LOG_MESSAGE.requeued].map((message) => `"message":"${message}"`);
  for (const line of facts.evidence.logLines) {
    if (!retryLines.some((marker) => line.includes(marker))) continue;
    const entry = JSON.parse(line) as { job_id?: string; cause?: string; retry_in_seconds?: number };
    if (entry.cause !== 'rate_limited' && entry.cause !== 'deferred') continue;
    if ((entry.retry_in_seconds ?? 0) > limit) {
      wrong.push(`${entry.job_id}: hidden ${entry.retry_in_seconds} s (${entry.cause}); at most ${limit} s`);
    }
  }
  return wrong;
}

/**
 * A job dead-lettered `unknown_outcome` is never sent again: not by another copy of it (an upstream resend, an
 * SQS duplicate), since only an operator's redrive clears an unknown outcome (docs/ledger.md, "Reliability: the job
 * ledger"). Requests are timed on arrival at the simulator: a request that left before its attempt's lease ended
 * (the lost attempt the dead letter is about) may arrive up to `transitMs` after the dead letter on a loaded
 * machine, where the lease's scaled margin is only tens of real milliseconds (as `sentAfterExpiry` allows).
 */
export function sentAfterUnknownOutcome(facts: Facts, transitMs = 250): string[] {
  const wrong: string[] = [];
  for (const letter of facts.allDeadLetters()) {
    if (letter.attributes.reason !== 'unknown_outcome') continue;
    const id = letter.attributes.job_id ?? recordJobId(letter.body) ?? '';
    const at = Date.parse(letter.attributes.dead_lettered_at ?? '');
    // Until the operator's redrive, when the dead letter was there before it.
    const until = facts.beforeRedrive(id, at)
      ? (facts.redriveAt.get(id) ?? Number.POSITIVE_INFINITY)
      : Number.POSITIVE_INFINITY;
    const later = (facts.requestsOf.get(id) ?? []).filter(
      (request) => request.at > at + transitMs && request.at < until,
    );
    if (later.length > 0) {
      wrong.push(
        `${id}: dead-lettered unknown_outcome, then sent ${later.length} more time(s), first ${(later[0]?.at ?? at) - at} ms later (answered ${later.map((r) => r.status).join(',')})`,
      );
    }
  }
  return wrong;
}

/** Nothing is sent after the job's `expires_at` (the request may arrive a transit time after the check). */
export function sentAfterExpiry(facts: Facts, transitMs = 250): string[] {
  const late: string[] = [];
  for (const [id, requests] of facts.requestsOf) {
    const expiresAt = facts.byId.get(id)?.expiresAt;
    if (expiresAt === undefined) continue;
    for (const request of requests) {
      if (request.at >= expiresAt + transitMs)
        late.push(`${id}: sent ${request.at - expiresAt} ms after expiry`);
    }
  }
  return late;
}

/**
 * The strict SQS layer refused nothing: every SQS call of the run was one real SQS accepts. The one exception is
 * SQS's own at-least-once delivery: a visibility change or delete with the receipt handle of a message the suite
 * handed out again (a newer receive superseded it), which real SQS refuses too and the relay must live with.
 */
export function sqsRefusals(facts: Facts): string[] {
  const { refusals, redeliveredHandles } = facts.evidence;
  if (refusals === undefined) return ['the pipeline did not hand over the strict SQS layer refusals'];
  return refusals
    .filter((r) => ![...redeliveredHandles].some((handle) => r.message.includes(handle)))
    .map((r) => `${r.action}${r.entryId ? ` entry ${r.entryId}` : ''}: ${r.code} ${r.message}`);
}

/** Every AWS call the sender and the webhook receiver made was one their roles allow (docs/test-world.md). */
export function iamDenials(facts: Facts): string[] {
  const denied = facts.evidence.iamDenials;
  if (denied === undefined) return ["the run did not check the stack's IAM"];
  return [...new Set(denied.map((d) => `${d.roleName}: ${d.action} on ${d.resource}`))];
}

/** Every copy and redelivery settled too: nothing is left on the send queue. */
export function leftOnSendQueue(facts: Facts): string[] {
  const left = facts.evidence.leftOnSendQueue;
  return left === 0 ? [] : [`${left} message(s) still on the send queue`];
}

/**
 * No personal data or secret in the sender's log or in a dead letter's attributes, in any form: a recipient as
 * written, JSON-escaped, with Unicode hyphens or fullwidth digits; the message text, decomposed or escaped; the
 * client secret; a bearer token.
 */
export function personalData(facts: Facts): string[] {
  const recipients = new Set(facts.evidence.settings.jobs.map((job) => nationalNumber(job.to)));
  const found: string[] = [];
  const inspect = (where: string, text: string) => {
    for (const problem of leaks(text, recipients)) found.push(`${where}: ${problem}`);
  };
  facts.evidence.logLines.forEach((line, index) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = line;
    }
    for (const text of strings(parsed)) inspect(`sender.log line ${index + 1}`, text);
  });
  for (const letter of facts.allDeadLetters()) {
    const id = recordJobId(letter.body) ?? '(no id)';
    for (const [name, value] of Object.entries(letter.attributes))
      inspect(`dead letter ${id} ${name}`, value);
  }
  return [...new Set(found)];
}

const PHONE_LIKE = /\+?\d(?:[\s().-]{0,2}\d){6,}/g;
const TOKEN_LIKE = /eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}/;
const TEXT_MARKERS = [TEXT_MARKER.toLowerCase(), 'court on dec 3'];

function nationalNumber(phone: string): string {
  return phone.replace(/\D/g, '').slice(-10);
}

/** What of the run's personal data or secrets `text` shows, once decoded every way an echo may hide it. */
function leaks(text: string, recipients: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  for (const form of decodings(text)) {
    for (const match of form.match(PHONE_LIKE) ?? []) {
      if (recipients.has(nationalNumber(match))) problems.push('a full recipient number');
    }
    const lower = form.toLowerCase();
    if (TEXT_MARKERS.some((marker) => lower.includes(marker))) problems.push('message text');
    if (form.includes(CHAOS_CLIENT.secret)) problems.push('the client secret');
    if (TOKEN_LIKE.test(form)) problems.push('a bearer token');
  }
  return problems;
}

/** `text` as written, with JSON escapes decoded (twice, for double escaping), NFKC-normalised, dashes unified. */
function decodings(text: string): string[] {
  const decodeEscapes = (s: string) =>
    s.replace(/\\u([0-9a-fA-F]{4})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  const normal = (s: string) =>
    s
      .normalize('NFKC')
      .replace(/[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]/g, '-')
      .replaceAll('\\/', '/');
  return [
    ...new Set([text, normal(text), normal(decodeEscapes(text)), normal(decodeEscapes(decodeEscapes(text)))]),
  ];
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(strings);
  return [];
}

/** Fault kinds (and events) that never happened: a default run must show every one. */
export function missingFaults(facts: Facts): string[] {
  const met = new Set(facts.evidence.posts.map((post) => post.fault));
  const missing: string[] = FAULT_NAMES.filter((fault) => fault !== 'ok' && !met.has(fault));
  const { evidence } = facts;
  const events: [string, number][] = [
    ['instance killed', evidence.kills.filter((k) => k.cause !== 'invocation-timeout').length],
    ['SQS redelivery', evidence.redeliveries],
    ['copy during a backoff', evidence.copies.length],
    ['upstream resend', evidence.lines.length - evidence.settings.jobs.length],
    ['secret outage', evidence.secretOutages],
    ['token outage', evidence.tokenOutages],
    ...newFaultEvents(facts),
  ];
  return [...missing, ...events.filter(([, n]) => n === 0).map(([name]) => name)];
}

const FINAL_STATUSES = new Set(['delivered', 'duplicate', 'dead_lettered']);

/** The job id a dead letter names. */
function letterJobId(letter: DeadLetter): string | undefined {
  return letter.attributes[DLQ_ATTRIBUTE.jobId] ?? recordJobId(letter.body);
}

/**
 * No job is lost in the ledger: every job it knows ends delivered, a duplicate or dead-lettered with no attempt
 * open; a dead-lettered one has its dead letter on the queue (or deleted by the operator as sent) with the
 * ledger's reason and redrive token; a job the run reported delivered is delivered in the ledger.
 */
export function unsettledInLedger(facts: Facts): string[] {
  const wrong: string[] = [];
  const letters = facts.finalDeadLetters();
  for (const [id, entry] of facts.entries) {
    if (!FINAL_STATUSES.has(String(entry.status)) || entry.attempt_open === true) {
      wrong.push(
        `${id}: ${String(entry.status)}${entry.attempt_open ? ' with an attempt open' : ''} in the ledger`,
      );
      continue;
    }
    if (entry.status === 'dead_lettered') {
      const token = entry.dead_letter_token;
      const kept = letters.some(
        (letter) =>
          letterJobId(letter) === id &&
          letter.attributes[DLQ_ATTRIBUTE.reason] === entry.dead_letter_reason &&
          (token === undefined || letter.attributes[DLQ_ATTRIBUTE.deadLetterId] === token),
      );
      if (!kept) {
        wrong.push(
          `${id}: dead-lettered ${String(entry.dead_letter_reason)} in the ledger, but no such dead letter`,
        );
      }
    }
  }
  for (const entry of facts.evidence.report.jobs) {
    const ledger = facts.entries.get(entry.id ?? '');
    if (entry.outcome === 'delivered' && ledger?.status !== 'delivered') {
      wrong.push(`${entry.id}: reported delivered, ${String(ledger?.status ?? 'no entry')} in the ledger`);
    }
  }
  return wrong;
}

/**
 * A ledger write whose answer DynamoDB lost after applying it recognises itself (its write token): the job never
 * meets its own claim as someone else's (an attempt in flight, then lost), unless an instance of its really died.
 */
export function lostAnswersMisread(facts: Facts): string[] {
  const wrong: string[] = [];
  for (const spoiled of facts.evidence.faults.spoiled) {
    if (spoiled.kind !== 'claim' && spoiled.kind !== 'settle') continue;
    const history = (facts.entries.get(spoiled.jobId)?.history ?? []) as readonly {
      at: number;
      status: string;
    }[];
    const lost = history.filter((event) => event.status === 'lost' && event.at >= spoiled.at);
    const excused = facts.touched.has(spoiled.jobId) || facts.answerDropped.has(spoiled.jobId);
    if (lost.length > 0 && !excused) {
      wrong.push(
        `${spoiled.jobId}: its ${spoiled.kind} was applied and its answer lost; the ledger then saw an attempt lost`,
      );
    }
  }
  return wrong;
}

/**
 * A 201 stays a 201: a job whose request eCourtDate answered 201 ends delivered with that message's uuid in the
 * ledger (and wherever the report says delivered), however its settle failed (throttled, DynamoDB down), and is
 * never sent again. Left out: a job whose instance died after the 201 (that 201 was never read), and one whose
 * answer a double fault lost (`answerDropped`); one whose carried answer came after another copy counted the
 * attempt lost (`carriedPastLease`) may have been resent, and only a 409 may have answered that.
 */
export function createdNotKept(facts: Facts): string[] {
  const wrong: string[] = [];
  for (const [id, posts] of facts.postsOf) {
    const created = posts.find((post) => post.answered && post.status === 201);
    // A 201 whose settle and whose copy both failed is lost with the invocation, as with a dead instance.
    if (created === undefined || facts.answerDropped.has(id)) continue;
    if (facts.evidence.kills.some((kill) => kill.touched.includes(id) && kill.at >= created.at)) continue;
    const later = posts.filter((post) => post.at > created.at);
    // A copy that counted the attempt lost before its carried answer came may resend it: eCourtDate's 409 then.
    const resendAllowed = facts.carriedPastLease.has(id) && later.every((post) => post.status === 409);
    if (later.length > 0 && !resendAllowed) {
      wrong.push(
        `${id}: sent ${later.length} more time(s) after its 201 (${later.map((p) => p.status ?? 'no answer').join(',')})`,
      );
    }
    const uuids = facts.messageUuidsOf.get(id) ?? [];
    const entry = facts.entries.get(id);
    if (entry?.status !== 'delivered' || !uuids.includes(String(entry.uuid))) {
      wrong.push(
        `${id}: answered 201, but the ledger holds ${String(entry?.status)} with uuid ${String(entry?.uuid)}`,
      );
    }
    // The report follows the job's messages, one of which may have been dead-lettered before a copy carrying the
    // 201 settled the job: a message it reports delivered names that uuid.
    for (const reported of facts.reportOf(id)) {
      if (reported.outcome === 'delivered' && !uuids.includes(reported.uuid ?? '')) {
        wrong.push(`${id}: answered 201, reported delivered with uuid ${reported.uuid}`);
      }
    }
  }
  return wrong;
}

/**
 * Every job's `eCourtDate Job Settled` event goes out (EventBridge down or not), saying what the job came to (its
 * reason; a delivered job's uuid), and `replayed` is right: each settlement (the run's; the redrive's new
 * generation) has exactly one event not marked replayed, its first publication, and every other event of it is
 * marked replayed. Publications cannot be ordered (a copy may publish its replay before the settling record's
 * event, held up by EventBridge, goes out), so only the count is checked. At most one unmarked event holds
 * however many times SQS handed a message out: only the settling record, or the one copy that took its event
 * token over in the ledger, publishes unmarked (the suite refuses PutEvents calls; it loses no PutEvents answer,
 * the documented limit that can publish one twice). Where an instance died between the settle and the event, or SQS refused the copy that was to publish it (a
 * double fault), the next copy finds the job settled and publishes it marked replayed.
 * Jobs too broken to parse are left out: the relay keeps no record of them, so each copy settles on its own.
 */
export function jobSettledEventsWrong(facts: Facts): string[] {
  const wrong: string[] = [];
  const byJob = new Map<string, JobSettledDetail[]>();
  const atOf = new Map<JobSettledDetail, number>();
  for (const event of facts.evidence.events) {
    if (event.detailType !== JOB_SETTLED.detailType) continue;
    const detail = event.detail as JobSettledDetail;
    atOf.set(detail, event.receivedAt);
    if (detail.job_id !== null) push(byJob, detail.job_id, detail);
  }
  // The reason each job was dead-lettered with in the run, for the jobs whose dead letters were redriven.
  const redrivenAs = new Map<string, string | undefined>();
  for (const letter of facts.evidence.redrives.flatMap((redrive) => redrive.redriven)) {
    redrivenAs.set(letterJobId(letter) ?? '', letter.attributes[DLQ_ATTRIBUTE.reason]);
  }
  for (const job of facts.evidence.settings.jobs) {
    if (!job.valid) continue;
    const events = byJob.get(job.id) ?? [];
    const entry = facts.entries.get(job.id);
    const final = entry && {
      outcome: String(entry.status),
      reason: entry.dead_letter_reason as string | undefined,
    };
    const inRun = (detail: JobSettledDetail) => facts.beforeRedrive(job.id, atOf.get(detail) ?? 0);
    const redriven = redrivenAs.has(job.id);
    const phases = [
      {
        name: 'the run',
        events: events.filter(inRun),
        // A redriven job ended the run dead-lettered; any other ended as the ledger says.
        expected: redriven ? { outcome: 'dead_lettered', reason: redrivenAs.get(job.id) } : final,
      },
      {
        name: 'the redrive',
        events: events.filter((detail) => !inRun(detail)),
        expected: redriven ? final : undefined,
      },
    ];
    for (const phase of phases) {
      wrong.push(...phaseEventsWrong(facts, job.id, phase, entry));
    }
  }
  return wrong;
}

/**
 * The Job Settled events of one job in one phase against what it ended as (`expected`). A dead letter
 * `unknown_outcome` that a copy carrying the attempt's 201 then settled delivered (the attempt was counted lost
 * meanwhile) is a settlement of its own, superseded: its event and the delivered one each go out unmarked once.
 */
function phaseEventsWrong(
  facts: Facts,
  id: string,
  phase: {
    readonly name: string;
    readonly events: readonly JobSettledDetail[];
    readonly expected: { readonly outcome: string; readonly reason: string | undefined } | undefined;
  },
  entry: LedgerItem | undefined,
): string[] {
  const wrong: string[] = [];
  const unmarked = phase.events.filter((detail) => detail.replayed !== true);
  if (phase.expected === undefined) {
    if (unmarked.length > 0)
      wrong.push(`${id}: an unmarked Job Settled event in ${phase.name}, for no settlement`);
    return wrong;
  }
  const { outcome, reason } = phase.expected;
  const ended = `${outcome}${reason ? `:${reason}` : ''}`;
  if (phase.events.length === 0) wrong.push(`${id}: no Job Settled event in ${phase.name} (${ended})`);
  const settlements = new Map<string, JobSettledDetail[]>();
  for (const detail of phase.events) {
    const what = `${detail.outcome}${detail.reason ? `:${detail.reason}` : ''}`;
    const superseded = outcome === 'delivered' && what === 'dead_lettered:unknown_outcome';
    if (what !== ended && !superseded) {
      wrong.push(`${id}: Job Settled ${what} in ${phase.name}, but it ended ${ended}`);
    }
    if (detail.outcome === 'delivered' && detail.uuid !== undefined && detail.uuid !== entry?.uuid) {
      wrong.push(`${id}: Job Settled names uuid ${detail.uuid}, the ledger ${String(entry?.uuid)}`);
    }
    push(settlements, what, detail);
  }
  // An instance that died between the settle and the event, or a copy SQS refused (the event's, or the one that
  // was to carry the answer), leaves the event to a later copy, which finds the job settled and marks it replayed:
  // the ledger does not record whether it went out.
  const unknowable = facts.touched.has(id) || facts.pendingDropped.has(id) || facts.answerDropped.has(id);
  for (const [what, details] of settlements) {
    const first = details.filter((detail) => detail.replayed !== true).length;
    if (first === 0 && !unknowable) {
      wrong.push(`${id}: every Job Settled event in ${phase.name} (${what}) is marked replayed`);
    }
    if (first > 1) {
      wrong.push(`${id}: ${first} Job Settled events in ${phase.name} (${what}) not marked replayed`);
    }
  }
  return wrong;
}

/**
 * A redrive starts at most one new generation per dead letter, however many copies of it the dead-letter queue
 * holds (each carries the same redrive token), and every redriven message is handled.
 */
export function redriveWrong(facts: Facts): string[] {
  const wrong: string[] = [];
  const handled = new Set([...facts.recordsOf.values()].flat().map((record) => record.messageId));
  for (const redrive of facts.evidence.redrives) {
    const tokens = new Map<string, Set<string>>();
    for (const letter of redrive.redriven) {
      const id = letterJobId(letter);
      const token = letter.attributes[DLQ_ATTRIBUTE.deadLetterId];
      if (id === undefined || token === undefined) continue;
      const set = tokens.get(id) ?? new Set<string>();
      set.add(token);
      tokens.set(id, set);
    }
    for (const [id, set] of tokens) {
      const generation = Number(facts.entries.get(id)?.generation ?? 1);
      if (generation - 1 > set.size) {
        wrong.push(`${id}: generation ${generation} after redriving ${set.size} dead letter(s)`);
      }
    }
    for (const messageId of redrive.messageIds) {
      if (!handled.has(messageId)) wrong.push(`redriven message ${messageId} was never handled`);
    }
  }
  return wrong;
}

/**
 * No status is lost: every status update eCourtDate's webhooks reported for a job's message reaches the job's
 * `delivery_history`; when the relay never learnt the message's uuid (a 409 after an unknown outcome, a dead
 * letter, an instance that died with the 201), it is kept pending on the message's index item `uuid#<uuid>`
 * (docs/webhooks.md, "Before the index"). Forged copies are not statuses; a delivery eCourtDate gave up on
 * (every try refused) is lost too.
 */
export function statusesLost(facts: Facts): string[] {
  const wrong: string[] = [];
  const jobOf = new Map(facts.evidence.messages.map((message) => [message.uuid, jobIdOf(message.body)]));
  for (const delivery of facts.evidence.webhookDeliveries) {
    if (delivery.forged) continue;
    const id = jobOf.get(delivery.messageUuid) ?? '(no job)';
    const status = delivery.kind === 'reply' ? 'replied' : delivery.status;
    const what = `${id}: ${status} (webhook ${delivery.uuid}) of message ${delivery.messageUuid}`;
    if (!delivery.attempts.some((answer) => answer >= 200 && answer < 300)) {
      wrong.push(`${what}: refused on every try (${delivery.attempts.join(',')})`);
      continue;
    }
    const has = (list: unknown) =>
      Array.isArray(list) &&
      (list as DeliveryEvent[]).some(
        (event) => event.webhook_uuid === delivery.uuid && event.status === status,
      );
    const entry = facts.entries.get(id);
    if (entry?.uuid === delivery.messageUuid) {
      if (!has(entry.delivery_history)) wrong.push(`${what}: not in the job's delivery_history`);
    } else if (!has(facts.items.get(UUID_KEY_PREFIX + delivery.messageUuid)?.pending_statuses)) {
      wrong.push(`${what}: the job does not know the message, and it is not pending on its index item`);
    }
  }
  return wrong;
}

/** No replay is published: a captured delivery posted again after the dedupe window puts nothing on the bus. */
export function replaysPublished(facts: Facts): string[] {
  const wrong: string[] = [];
  for (const replays of facts.evidence.replays) {
    const uuids = new Set(replays.posts.map((post) => post.uuid));
    for (const event of facts.evidence.events) {
      const uuid = (event.detail as { webhook_uuid?: unknown }).webhook_uuid;
      if (event.receivedAt >= replays.startedAt && typeof uuid === 'string' && uuids.has(uuid)) {
        wrong.push(`webhook ${uuid}: ${event.detailType} published again by its replay`);
      }
    }
  }
  return wrong;
}

/** Message Status events without a job for messages whose job the ledger indexes: statuses before the index. */
export function statusesBeforeIndex(facts: Facts): number {
  const indexed = new Set<unknown>(
    [...facts.entries.values()].map((entry) => entry.uuid).filter((uuid) => uuid !== undefined),
  );
  return facts.evidence.events.filter((event) => {
    const detail = event.detail as { job_id?: unknown; message_uuid?: unknown };
    return (
      event.detailType === 'eCourtDate Message Status' &&
      detail.job_id === undefined &&
      indexed.has(detail.message_uuid)
    );
  }).length;
}

/** Jobs of which the dead-letter queue held two copies or more (before any redrive). */
export function deadLetterCopies(facts: Facts): number {
  const counts = new Map<string, number>();
  for (const letter of facts.evidence.deadLetters) {
    const id = letterJobId(letter);
    if (id !== undefined) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return [...counts.values()].filter((n) => n > 1).length;
}

/** The faults around the ledger, the queues, the bus and the webhooks, and how often each happened. */
export function newFaultEvents(facts: Facts): [string, number][] {
  const { evidence } = facts;
  const spoiled = (kind: string) => evidence.faults.spoiled.filter((write) => write.kind === kind).length;
  const carried = [...facts.recordsOf.values()]
    .flat()
    .filter(
      (record) => record.applied === 'requeued' && record.status === 201 && CARRYING.test(record.detail),
    ).length;
  const redriven = evidence.redrives.reduce((n, redrive) => n + redrive.redriven.length, 0);
  const replays = evidence.replays.reduce(
    (n, replay) => n + replay.posts.filter((post) => post.status !== 0).length,
    0,
  );
  const expired = evidence.replays.reduce((n, replay) => n + replay.expiredItems, 0);
  return [
    ['claim answer lost', spoiled('claim')],
    ['settle answer lost', spoiled('settle')],
    ['settle throttled after a 201', spoiled('settle-throttled')],
    ['201 carried on a fresh copy', carried],
    ['uuid index write throttled', spoiled('index-throttled')],
    ['status before the uuid index', statusesBeforeIndex(facts)],
    ['DynamoDB outage', evidence.faults.refused.dynamodb ?? 0],
    ['SQS outage', evidence.faults.refused.sqs ?? 0],
    ['EventBridge outage', evidence.faults.refused.eventbridge ?? 0],
    [
      'Job Settled event',
      evidence.events.filter((event) => event.detailType === JOB_SETTLED.detailType).length,
    ],
    ['upstream resend of a dead letter', evidence.deadLetterResends.length],
    ['two dead-letter copies of a job', deadLetterCopies(facts)],
    ['dead letter redriven', redriven],
    ['webhook delivery', evidence.webhookDeliveries.length],
    ['record expired by TTL', expired],
    ['replay after the dedupe window', replays],
  ];
}

/**
 * No job is dead-lettered for an outage of eCourtDate that ended before the job's deadline (docs/chaos.md,
 * "Outages of hours, auth outages, churn"): every job dead-lettered in a run with API outages whose deadline
 * (`expires_at`, or the maximum age from the run's start) came after the last outage ended. A job with a request
 * that met a hang or drop outage (no answer) may have reached eCourtDate: its `unknown_outcome` keeps the
 * contract's rule; a 503 or 401 of an outage is an answer, and the job should have been held.
 */
export function deadLettersForAnEndedOutage(facts: Facts): string[] {
  const { evidence } = facts;
  const outages = evidence.apiOutages ?? [];
  const ends = outages.flatMap((outage) => (outage.endsAt === undefined ? [] : [outage.endsAt]));
  if (ends.length === 0) return [];
  const lastEnd = Math.max(...ends);
  const runStart = Math.min(...evidence.requests.map((request) => request.at));
  const unknown = new Set(
    // A request that met the outage with a 5xx or no answer may have created the message: that job keeps the
    // unknown-outcome rules (docs/contract.md). A 401 created nothing: its job should have been held.
    outages
      .filter((outage) => outage.kind !== 'auth')
      .flatMap((outage) => outage.messageRequests.map((request) => jobIdOf(request.body))),
  );
  const planned = new Map(evidence.settings.jobs.map((job) => [job.id, job]));
  return evidence.report.jobs
    .filter((entry) => entry.outcome === 'dead_lettered' && entry.id !== null)
    .filter((entry) => !(entry.reason === 'unknown_outcome' && unknown.has(entry.id ?? '')))
    .filter((entry) => {
      const deadline = Math.min(
        planned.get(entry.id ?? '')?.expiresAt ?? Number.POSITIVE_INFINITY,
        runStart + evidence.world.maxAgeMs,
      );
      return deadline > lastEnd;
    })
    .map(
      (entry) =>
        `${entry.id}: dead-lettered ${entry.reason ?? '(no reason)'} after an outage that ended first`,
    );
}
