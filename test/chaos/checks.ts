import { DEFAULTS } from '#shared/config.ts';
import { NOT_DUE_TOLERANCE_MS } from '#shared/ledger/gate.ts';
import { DEAD_LETTER_REASONS } from '#shared/outcome.ts';
import { insideDuplicateWindow } from '#shared/policy.ts';
import { LOG_MESSAGE } from '#shared/sender/runtime.ts';
import {
  FAULT_NAMES,
  FAULTS,
  type Fault,
  jobIdOf,
  MAINTENANCE_SECONDS,
  type PlannedJob,
  TEXT_MARKER,
} from '#test/chaos/plan.ts';
import { CHAOS_CLIENT, type ChaosEvidence, ONEOFFS, type PostEvent, recordJobId } from '#test/chaos/world.ts';

/**
 * The promises a chaos run must keep, each as a pure function of the run's evidence that lists what broke it
 * (empty when kept). The rules are the response table of docs/contract.md ("What each response does") and the
 * guarantees of README.md ("Reliability: the job ledger").
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
  /** The sender's retries of each job, as its log says them: when, why, and the status it met. */
  readonly retriesOf = new Map<string, { at: number; cause: string; status: unknown }[]>();
  readonly scale: number;

  readonly evidence: ChaosEvidence;

  constructor(evidence: ChaosEvidence) {
    this.evidence = evidence;
    this.byId = new Map(evidence.settings.jobs.map((job) => [job.id, job]));
    this.scale = evidence.settings.timeScale;
    for (const request of evidence.requests) {
      const id = request.path === ONEOFFS ? jobIdOf(request.body) : undefined;
      if (id === undefined) continue;
      const fault = (request.faultApplied ?? 'ok') as Fault | 'storm';
      push(this.requestsOf, id, { at: request.at, status: request.status, fault });
    }
    for (const post of evidence.posts) push(this.postsOf, post.jobId, post);
    for (const message of evidence.messages) {
      const id = jobIdOf(message.body);
      if (id) this.messagesOf.set(id, (this.messagesOf.get(id) ?? 0) + 1);
    }
    for (const kill of evidence.kills) {
      for (const id of kill.touched) {
        this.touched.add(id);
        push(this.killedAt, id, kill.at);
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
      };
      if (entry.job_id === undefined) continue;
      push(this.retriesOf, entry.job_id, {
        at: Date.parse(entry.timestamp ?? ''),
        cause: entry.cause ?? '',
        status: entry.status,
      });
    }
  }

  /** Epoch ms of the job's first attempt whose outcome the relay could not know (a kill included). */
  firstUnknownAt(id: string): number | undefined {
    const times = [...this.unknownPosts(id).map((post) => post.at), ...(this.killedAt.get(id) ?? [])];
    return times.length === 0 ? undefined : Math.min(...times);
  }

  /**
   * Whether a 429 (its own, or its instance's wait) held the job back after an outcome it could not know. Such a
   * wait is rounded up to whole SQS seconds and the sender adds a 0-4 s spread to a hold (real time:
   * local/pipeline/time-scale.ts), so at the suite's time scale it can carry the resend past the scaled duplicate
   * window, which no deployed relay would meet: the job may then be dead-lettered `unknown_outcome` where the
   * deployed relay delivers it.
   */
  heldBackAfterUnknown(id: string): boolean {
    const since = this.firstUnknownAt(id);
    return (
      since !== undefined &&
      (this.retriesOf.get(id) ?? []).some(
        (retry) => retry.at > since && (retry.cause === 'deferred' || retry.cause === 'rate_limited'),
      )
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
    const posts = this.unknownPosts(id).map((post) => post.at);
    return this.evidence.kills.some((kill) => {
      if (!kill.touched.includes(id) || kill.batchReceivedAt === undefined) return false;
      // The window counts from the job's earliest unknown outcome: this kill's claim, or an earlier request.
      const since = Math.min(kill.batchReceivedAt, ...posts);
      const next = receives.find((at) => at > kill.at);
      return next === undefined || !insideDuplicateWindow(since, next, policy);
    });
  }

  /** What spent a retry budget: each such fault met, and each kill of the instance holding the job. */
  budgetSpent(id: string): number {
    const spent = this.met(id).filter((fault) => FAULTS[fault].spendsBudget).length;
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
}

/** The relay could not know what became of this request: no answer (a timeout, a drop, a kill) or a 5xx. */
function unknownOutcome(post: PostEvent): boolean {
  return !post.answered || (post.status ?? 0) >= 500;
}

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
  const bare = facts.evidence.deadLetters
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
          return facts.unknownPosts(id).length > 0 || facts.touched.has(id);
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
        facts.recoveredTooLate(job.id)
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
    const posts = facts.postsOf.get(job.id) ?? [];
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
 * SQS duplicate), since only an operator's redrive clears an unknown outcome (README.md, "Reliability: the job
 * ledger").
 */
export function sentAfterUnknownOutcome(facts: Facts): string[] {
  const wrong: string[] = [];
  for (const letter of facts.evidence.deadLetters) {
    if (letter.attributes.reason !== 'unknown_outcome') continue;
    const id = letter.attributes.job_id ?? recordJobId(letter.body) ?? '';
    const at = Date.parse(letter.attributes.dead_lettered_at ?? '');
    const later = (facts.requestsOf.get(id) ?? []).filter((request) => request.at > at);
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
  for (const letter of facts.evidence.deadLetters) {
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
  ];
  return [...missing, ...events.filter(([, n]) => n === 0).map(([name]) => name)];
}
