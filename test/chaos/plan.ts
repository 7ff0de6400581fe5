/**
 * The chaos suite's faults and its seeded plan of jobs. Every row of the response table in docs/contract.md
 * ("What each response does") is a fault here, plus the fault kinds that production integrations
 * meet: 5xx answers after the message was created, 408, 503 with Retry-After, 429 with every form of wait
 * hint, hostile response bodies, secret and token outages, and instances killed before or after a send.
 */

/** What one request of a job meets. A job's plan is a few of these, then plain success. */
export type Fault =
  | 'ok'
  | 'latency'
  | 'r400'
  | 'r401'
  | 'r403'
  | 'r404'
  | 'r405'
  | 'r408'
  | 'r429'
  | 'r429-retry-after'
  | 'r429-reset-delta'
  | 'r429-reset-epoch-s'
  | 'r429-reset-epoch-ms'
  | 'r500'
  | 'r502'
  | 'r503'
  | 'r503-retry-after'
  | 'r503-retry-date'
  | 'created-500'
  | 'created-502'
  | 'created-503'
  | 'created-504'
  | 'hang'
  | 'drop'
  | 'created-drop'
  | 'hostile-control'
  | 'hostile-raw-control'
  | 'hostile-huge'
  | 'hostile-escaped-echo'
  | 'hostile-unicode-echo'
  | 'kill-after-send'
  | 'kill-before-send'
  | 'token-outage'
  | 'secret-outage';

/** How the relay must read a fault (docs/contract.md, "What each response does"). */
export interface FaultKind {
  /** Relative frequency in a plan. */
  readonly weight: number;
  /** The job is dead-lettered at once with this reason (and the answer's status). */
  readonly deadEnd?: { readonly reason: string; readonly status: number };
  /**
   * Spends a retry budget (5xx, transport, 408). Kills and failures before a request left (secret, token) count
   * from what happened (test/chaos/checks.ts, `budgetSpent`), since other jobs' outages cause them too.
   */
  readonly spendsBudget: boolean;
  /** Least wait before the job's next request, in the API's seconds (the relay scales it). */
  readonly floorSeconds?: number;
  /** A 429 wait hint (seconds) the relay must honour, but never beyond its cap. */
  readonly hintSeconds?: number;
}

const kind = (weight: number, rest: Partial<Omit<FaultKind, 'weight'>> = {}): FaultKind => ({
  weight,
  spendsBudget: false,
  ...rest,
});
const unknown5xx = (weight: number, floorSeconds = 60) => kind(weight, { spendsBudget: true, floorSeconds });
const rateLimit = (weight: number, hintSeconds?: number) =>
  kind(weight, { floorSeconds: 60, ...(hintSeconds === undefined ? {} : { hintSeconds }) });
const badRequest = (weight: number) => kind(weight, { deadEnd: { reason: 'bad_request', status: 400 } });

/** The maintenance window a 503 with Retry-After announces, in the API's seconds. */
export const MAINTENANCE_SECONDS = 300;

export const FAULTS: Readonly<Record<Fault, FaultKind>> = {
  ok: kind(40),
  latency: kind(6),
  r400: badRequest(2),
  // A single 401 is handled inline (a new token, a resend at once); only a persistent one spends the budget.
  r401: kind(4),
  r403: kind(2, { deadEnd: { reason: 'forbidden', status: 403 } }),
  r404: kind(1.5, { deadEnd: { reason: 'not_found', status: 404 } }),
  r405: kind(1.5, { deadEnd: { reason: 'client_error', status: 405 } }),
  r408: kind(2, { spendsBudget: true, floorSeconds: 60 }),
  r429: rateLimit(3),
  'r429-retry-after': rateLimit(1, 60),
  'r429-reset-delta': rateLimit(1, 60),
  'r429-reset-epoch-s': rateLimit(1, 60),
  'r429-reset-epoch-ms': rateLimit(1, 60),
  r500: unknown5xx(4),
  r502: unknown5xx(2),
  r503: unknown5xx(4),
  'r503-retry-after': unknown5xx(1.5, MAINTENANCE_SECONDS),
  'r503-retry-date': unknown5xx(1, MAINTENANCE_SECONDS),
  'created-500': unknown5xx(2),
  'created-502': unknown5xx(1),
  'created-503': unknown5xx(2),
  'created-504': unknown5xx(3),
  hang: unknown5xx(2),
  drop: unknown5xx(2),
  'created-drop': unknown5xx(2),
  'hostile-control': badRequest(1),
  'hostile-raw-control': badRequest(1),
  'hostile-huge': unknown5xx(1),
  'hostile-escaped-echo': badRequest(1),
  'hostile-unicode-echo': badRequest(1),
  'kill-after-send': kind(0.7),
  'kill-before-send': kind(0.7),
  'token-outage': kind(1),
  'secret-outage': kind(1),
};

export const FAULT_NAMES = Object.keys(FAULTS) as Fault[];

export interface PlannedJob {
  readonly id: string;
  /** The job as a line of the jobs file. */
  readonly line: string;
  readonly to: string;
  readonly valid: boolean;
  /** What its 1st, 2nd, ... request meets; requests past the end succeed. */
  readonly plan: readonly Fault[];
  readonly skipDuplicate: boolean;
  /** Epoch ms of `expires_at`, when set. */
  readonly expiresAt?: number;
  readonly unknownAgency: boolean;
  /** Enqueued twice from the start (an upstream resend). */
  readonly resent: boolean;
  /** Handed out again by SQS while an instance holds it (visibility cut to 0 once). */
  readonly redelivered: boolean;
  /** A second copy is put on the queue during its first backoff (an upstream resend, or SQS's duplicate). */
  readonly copied: boolean;
  /**
   * A ledger write of the job that DynamoDB applies and whose answer is then lost (the connection resets), so the
   * SDK sends it again and the resend fails its condition against the write itself: its first claim, or its
   * first settle.
   */
  readonly lostAnswer: 'claim' | 'settle' | undefined;
  /** Its settle after a 201 is throttled on every SDK try: the answer must ride on a fresh copy. */
  readonly settleThrottled: boolean;
  /**
   * The sender's first uuid index write for its message is throttled on every SDK try, so eCourtDate's status
   * webhooks come before the index.
   */
  readonly indexThrottled: boolean;
  /** Resent upstream right after it is dead-lettered, so the dead-letter queue holds two copies of it. */
  readonly resentAfterDeadLetter: boolean;
  /** What eCourtDate's webhooks say of its message after `sent`: delivered, failed, or delivered and a reply. */
  readonly carrier: 'delivered' | 'failed' | 'replied';
}

/** A service the senders depend on that goes down for a while in the mixed-faults run. */
export type OutageService = 'dynamodb' | 'sqs' | 'eventbridge';

/** One outage of a wave: from and to, real ms after the wave's jobs were put on the queue. */
export interface PlannedOutage {
  readonly service: OutageService;
  readonly fromMs: number;
  readonly toMs: number;
}

/** How long each outage lasts, in the API's seconds (scaled like every other wait). */
export const OUTAGE_SECONDS = 600;

/** mulberry32: a tiny seeded generator, so a plan is the same on every machine. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The job id a message body names (the content carries it), or undefined. */
export function jobIdOf(body: unknown): string | undefined {
  const content = (body as { content?: unknown } | undefined)?.content;
  return typeof content === 'string' ? /\(job (chaos-\d+)\)/.exec(content)?.[1] : undefined;
}

/** The recipient of job `index`: a distinct, well-formed NANP number in the fictional 555 range. */
export function recipientOf(index: number): string {
  return `+1555${String(index).padStart(7, '0')}`;
}

/** The words every message text carries; none of them may reach a log or a dead-letter attribute. */
export const TEXT_MARKER = 'Chaos reminder for José';

/**
 * Plans `count` jobs from `seed`: their faults, flags and bodies. `expiringMs` is where a job that expires
 * mid-run may set its `expires_at` (after `now` + 2 s).
 */
export function planJobs(count: number, seed: number, now: number, expiringMs = 6_000): PlannedJob[] {
  const rand = random(seed);
  // The faults around the ledger, the webhooks and the dead letters draw from a stream of their own, so that the
  // plan of the faults above stays what the seed made it before they were added.
  const more = random((seed ^ 0x9e3779b9) >>> 0);
  const weighted = FAULT_NAMES.map((name) => [name, FAULTS[name].weight] as const);
  const total = weighted.reduce((sum, [, w]) => sum + w, 0);
  const pick = (): Fault => {
    let r = rand() * total;
    for (const [fault, weight] of weighted) {
      r -= weight;
      if (r < 0) return fault;
    }
    return 'ok';
  };
  return Array.from({ length: count }, (_, i) => {
    const id = `chaos-${String(i).padStart(5, '0')}`;
    // A secret outage needs two 401s in a row: the relay re-reads the secret only after a fresh token failed too.
    const plan = Array.from({ length: Math.floor(rand() * 5) }, pick).flatMap((fault): Fault[] =>
      fault === 'secret-outage' ? ['r401', 'secret-outage'] : [fault],
    );
    const skipDuplicate = rand() < 0.12;
    const expiry = rand();
    // 4 % expired before they arrive, 4 % expiring a few seconds into the run (mid-retry).
    const expiresAt =
      expiry < 0.04 ? now - 60_000 : expiry < 0.08 ? now + 2_000 + rand() * expiringMs : undefined;
    const unknownAgency = rand() < 0.02;
    const valid = rand() >= 0.03;
    const to = recipientOf(i);
    const message = {
      to,
      content: `${TEXT_MARKER} (job ${id}): court on Dec 3 at 9:00 AM, Room 4B.`,
      channel: 'text',
      ...(skipDuplicate ? { skip_duplicate: true } : {}),
    };
    const job = {
      id,
      message: valid ? message : { to },
      ...(expiresAt === undefined ? {} : { expires_at: new Date(expiresAt).toISOString() }),
      ...(unknownAgency ? { agency_reference: 'county-unknown' } : {}),
    };
    return {
      id,
      line: JSON.stringify(job),
      to,
      valid,
      plan,
      skipDuplicate,
      ...(expiresAt === undefined ? {} : { expiresAt }),
      unknownAgency,
      resent: rand() < 0.05,
      redelivered: rand() < 0.05,
      copied: rand() < 0.06,
      ...moreFaults(more),
    };
  });
}

/** The ledger, webhook and dead-letter faults of one job, from their own stream. */
function moreFaults(rand: () => number) {
  const lost = rand();
  const carrier = rand();
  return {
    lostAnswer: lost < 0.03 ? ('claim' as const) : lost < 0.06 ? ('settle' as const) : undefined,
    settleThrottled: rand() < 0.02,
    indexThrottled: rand() < 0.03,
    resentAfterDeadLetter: rand() < 0.3,
    carrier:
      carrier < 0.04 ? ('failed' as const) : carrier < 0.07 ? ('replied' as const) : ('delivered' as const),
  };
}

/**
 * The outages of wave `wave`: SQS, then DynamoDB, then EventBridge, each `OUTAGE_SECONDS` (scaled), one after
 * the other from half a second to a second into the wave, a moment apart, at seeded offsets. SQS goes first: a record whose hide or delete
 * it refused comes back only after the queue's visibility timeout, which the wave then waits for.
 */
export function planOutages(seed: number, wave: number, timeScale: number): PlannedOutage[] {
  const rand = random((seed ^ Math.imul(wave + 1, 0x85ebca6b)) >>> 0);
  const lengthMs = (OUTAGE_SECONDS * 1000) / timeScale;
  const outages: PlannedOutage[] = [];
  let at = 500 + rand() * 500;
  for (const service of ['sqs', 'dynamodb', 'eventbridge'] as const) {
    outages.push({ service, fromMs: Math.round(at), toMs: Math.round(at + lengthMs) });
    at += lengthMs + 200 + rand() * 400;
  }
  return outages;
}

/** A window of a wave in which one sender instance's DynamoDB calls are slow: real ms after the jobs were queued. */
export interface PlannedSlowDynamodb {
  /** The instance, as the pipeline names it (`sender-1`, ...). */
  readonly instance: string;
  readonly fromMs: number;
  readonly toMs: number;
}

/** The timeout faults of one wave (docs/chaos.md, "Function timeouts"). */
export interface PlannedTimeouts {
  /** Windows of slow DynamoDB, one instance each. */
  readonly slowDynamodb: readonly PlannedSlowDynamodb[];
  /** The instance whose first container's cold-start `GetSecretValue` stalls until the SDK gives up. */
  readonly stalledSecretRead: string;
}

/** How long a window of slow DynamoDB lasts, in the API's seconds (scaled like every other wait). */
export const SLOW_DYNAMODB_SECONDS = 1_200;
/** Windows of slow DynamoDB per wave. */
export const SLOW_DYNAMODB_WINDOWS = 2;

/**
 * The timeout faults of wave `wave` of a run with `instances` sender instances, from a stream of their own (so
 * the other plans stay what the seed made them): `SLOW_DYNAMODB_WINDOWS` windows of `SLOW_DYNAMODB_SECONDS`
 * (scaled) on seeded instances, starting 1 to 20 s (real) into the wave, and one seeded instance whose
 * cold-start secret read stalls.
 */
export function planTimeouts(
  seed: number,
  wave: number,
  timeScale: number,
  instances: number,
): PlannedTimeouts {
  const rand = random((seed ^ Math.imul(wave + 1, 0xc2b2ae35) ^ 0x27d4eb2f) >>> 0);
  const instance = () => `sender-${1 + Math.floor(rand() * instances)}`;
  const lengthMs = (SLOW_DYNAMODB_SECONDS * 1000) / timeScale;
  const slowDynamodb = Array.from({ length: SLOW_DYNAMODB_WINDOWS }, () => {
    const fromMs = Math.round(1_000 + rand() * 19_000);
    return { instance: instance(), fromMs, toMs: fromMs + Math.round(lengthMs) };
  });
  return { slowDynamodb, stalledSecretRead: instance() };
}

/** `count` well-formed jobs that meet nothing of their own (for a scenario whose fault is the world's). */
export function plainJobs(count: number): PlannedJob[] {
  return Array.from({ length: count }, (_, i) => {
    const id = `chaos-${String(i).padStart(5, '0')}`;
    const to = recipientOf(i);
    const message = { to, content: `${TEXT_MARKER} (job ${id}): court on Dec 3 at 9:00 AM, Room 4B.` };
    return {
      id,
      line: JSON.stringify({ id, message }),
      to,
      valid: true,
      plan: [],
      skipDuplicate: false,
      unknownAgency: false,
      resent: false,
      redelivered: false,
      copied: false,
      lostAnswer: undefined,
      settleThrottled: false,
      indexThrottled: false,
      resentAfterDeadLetter: false,
      carrier: 'delivered',
    };
  });
}
