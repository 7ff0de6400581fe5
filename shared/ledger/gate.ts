import { DEFAULTS } from '#shared/config.ts';
import { backoffStep, type PriorAttempts } from '#shared/policy.ts';

/** Where a job stands in the ledger. */
export type LedgerStatus = 'in_progress' | 'retrying' | 'delivered' | 'duplicate' | 'dead_lettered';

/** One line of a job's short history, newest last. */
export interface LedgerEvent {
  /** Epoch ms. */
  readonly at: number;
  readonly generation: number;
  /** HTTP status, `timeout`, `connection`, `secret`, `lost` (the instance stopped mid-attempt) or `none`. */
  readonly status: string;
  /**
   * What the event came to: the attempt's outcome (`delivered`, `duplicate`, `retry`, `dead_lettered`), a lost
   * attempt found by a later copy (`unknown`), or a redrive that started a new generation (`redriven`).
   */
  readonly outcome: LedgerEventOutcome;
  /** With `dead_lettered`: the dead-letter reason (docs/contract.md). */
  readonly reason?: string;
  /** With `retry`: why (the retry cause, e.g. `unknown_outcome`, `rate_limited`). */
  readonly retry_cause?: string;
  /** With `retry`: seconds until the next attempt is due. */
  readonly retry_in_seconds?: number;
  readonly detail?: string;
}

/** The outcomes a history event records (`LedgerEvent.outcome`). */
export type LedgerEventOutcome =
  | 'delivered'
  | 'duplicate'
  | 'retry'
  | 'dead_lettered'
  | 'unknown'
  | 'redriven';

/**
 * A history event's outcome in a sentence, as `relay job ID` prints it: `retry in 60 s (rate_limited)`,
 * `dead_lettered (forbidden)`, or the outcome itself.
 */
export function describeLedgerEvent(
  event: Pick<LedgerEvent, 'outcome' | 'reason' | 'retry_cause' | 'retry_in_seconds'>,
): string {
  if (event.outcome === 'retry' && event.retry_in_seconds !== undefined)
    return `retry in ${event.retry_in_seconds} s${event.retry_cause ? ` (${event.retry_cause})` : ''}`;
  if (event.outcome === 'dead_lettered' && event.reason) return `dead_lettered (${event.reason})`;
  return event.outcome;
}

/**
 * The ledger's record of one job (DynamoDB item `job#<id>`), the one place that knows what became of it.
 * Counts are per generation: a redrive from the dead-letter queue starts a new generation with a fresh budget.
 * `unknown_outcome` is kept across generations, because a message created by any earlier attempt still
 * answers 409. All times are epoch ms except `expiration` (epoch seconds, the TTL).
 */
export interface LedgerEntry {
  readonly id: string;
  readonly job_id: string;
  readonly status: LedgerStatus;
  readonly body_hash: string;
  readonly generation: number;
  /** Bumped by every write; every write is conditional on the version it read. */
  readonly version: number;
  /** The first attempt of this generation: the maximum age counts from here. */
  readonly first_attempt_at: number;
  /** Requests that reached (or may have reached) the messages endpoint. */
  readonly sends: number;
  readonly retryable: number;
  readonly server_500: number;
  readonly rate_limited: number;
  /** Attempts that failed before a request left (secret, token endpoint) or with a persistent 401. */
  readonly not_sent: number;
  readonly unknown_outcome: boolean;
  /** An attempt is claimed and has not reported yet. */
  readonly attempt_open: boolean;
  /** When the open (or last) attempt was claimed. */
  readonly attempt_started_at?: number;
  /**
   * Until when the open attempt's invocation may still be running. Before it, another copy of the job is in
   * flight elsewhere and waits; after it, the attempt is lost (its instance stopped, perhaps after sending).
   */
  readonly lease_until?: number;
  /** The earliest time of the job's next attempt: a copy arriving before it is hidden until then, unsent. */
  readonly next_attempt_at?: number;
  /**
   * This generation's latest attempt whose outcome is unknown. Resending is only safe while eCourtDate's
   * duplicate window around it is open; an operator's redrive clears it.
   */
  readonly unknown_at?: number;
  readonly last_status?: string;
  readonly uuid?: string;
  readonly dead_letter_reason?: string;
  /** The send-queue message id that was dead-lettered; the same id coming back means the ack was lost. */
  readonly dead_letter_message_id?: string;
  /**
   * The dead letter's redrive token: a random id the relay wrote here and on the dead-letter message
   * (`dead_letter_id`). A redriven message carrying it starts one new generation, which clears it, so one dead
   * letter is redriven at most once, whatever number of copies carry it (docs/ledger.md, "Redrives").
   */
  readonly dead_letter_token?: string;
  /**
   * The token of the open (or last) attempt, random per claim: a copy of the record that carries this attempt's
   * answer (a settle that could not be written) is matched to it by this token.
   */
  readonly attempt_token?: string;
  /**
   * A random id written by every write of the entry: a conditional write whose first answer was lost, and whose
   * retry then failed its condition, recognises its own write by it.
   */
  readonly write_token?: string;
  /**
   * The tokens of the job's attempts that a later claim counted as lost, of every generation (newest last, at most
   * `LOST_TOKENS_MAX`): a copy carrying a delivery (2xx) for one of them still settles the job delivered, with
   * its uuid, whatever happened since (a dead letter, its redrive, a delivery a 409 proved).
   */
  readonly lost_attempt_tokens?: readonly string[];
  /**
   * For a settled job: who publishes its `eCourtDate Job Settled` event first. The settle writes a random token
   * that its writer holds; a copy the writer leaves the event to carries it (`settled_event_pending`) and takes it
   * over with `JobLedger.claimEvent` before it publishes, so only one holder ever publishes unmarked, however many
   * twins of the copy SQS hands out. Every other publication is marked `replayed`. A claim clears it.
   */
  readonly event_token?: string;
  /**
   * Bodies refused `id_conflict` under this id (docs/contract.md, "When a message changes"): how many records
   * carried one, and the latest one's body fingerprint (`jobFingerprint`) and time (epoch ms). Written by
   * `JobLedger.claim` without touching `version`, so no claim or settle of the job that holds the id is disturbed;
   * `refused_count` is these fields' own version, and every other write keeps them as it finds them.
   */
  readonly refused_count?: number;
  readonly refused_body_hash?: string;
  readonly refused_at?: number;
  /** A random id written by each refusal's write, by which a write whose answer was lost recognises itself. */
  readonly refused_token?: string;
  /** For a dead-lettered job: why, in a sentence, and the redacted response excerpt, for its copies' dead letters. */
  readonly dead_letter_detail?: string;
  readonly dead_letter_excerpt?: string;
  readonly history: readonly LedgerEvent[];
  /** TTL, epoch seconds. */
  readonly expiration: number;
  readonly updated_at: number;
}

/** What the claim needs to know of the record in hand. */
export interface ClaimInput {
  readonly jobId: string;
  readonly bodyHash: string;
  /** The SQS message id of the record. */
  readonly messageId: string;
  /** Epoch ms. */
  readonly now: number;
  /** Epoch ms until which this invocation may run: the claim's lease. */
  readonly leaseUntil: number;
  /**
   * Epoch ms of the job's first receipt (carried across fresh copies), when known: a first entry's maximum age
   * counts from it, not from its first claim, since a job can wait unclaimed (deferred during a 429) first.
   */
  readonly firstReceivedAt?: number | undefined;
  /** The claim's attempt token and write token: random, new for every claim (`JobLedger.claim` makes one). */
  readonly token?: string | undefined;
  /**
   * The redrive token the record carries (its `dead_letter_id` attribute): an operator's redrive of the dead
   * letter that holds it. Only the token the ledger holds starts a new generation.
   */
  readonly redriveToken?: string | undefined;
  /**
   * The open attempt a copy of the record carries (made when the attempt's settle could not be written): its
   * attempt token, and whether the copy carries eCourtDate's answer (`answered`) or the attempt sent nothing.
   */
  readonly carried?:
    | {
        readonly token: string;
        readonly answered: boolean;
        readonly delivered?: boolean | undefined;
        /** Earlier claim tokens of the copy's chain, carried without an answer. */
        readonly also?: readonly string[] | undefined;
      }
    | undefined;
  /** How early a copy may come and still be due, ms. @default NOT_DUE_TOLERANCE_MS (scaled down in local runs) */
  readonly dueToleranceMs?: number | undefined;
  /**
   * The backoff steps in ms (scaled in local runs; attempt n waits step n, the last repeating). A lost attempt is
   * an unanswered request: a copy resends it no sooner than its step after the lost attempt started, as after a
   * timeout (docs/ledger.md). @default the stage's default steps, 60, 120, 240, 480 s
   */
  readonly backoffStepsMs?: readonly number[] | undefined;
}

/** The default backoff steps, ms (docs/contract.md). */
const DEFAULT_BACKOFF_STEPS_MS = DEFAULTS.backoffSeconds.map((seconds) => seconds * 1000);

/**
 * The gate's verdict on a job whose entry exists. Only `claim` writes the job's state (the entry given,
 * conditional on the version read); `conflict` only notes the refused body beside it; every other verdict settles
 * the record without a request and without a ledger write.
 */
export type GateVerdict =
  /** Go ahead: write `entry` to claim the attempt. `lost` says the previous attempt never reported. */
  | { readonly kind: 'claim'; readonly entry: LedgerEntry; readonly lost: boolean }
  /**
   * Same id, different body: never sent. `JobLedger.claim` records the refusal on the entry (`refused_*`), the
   * one write of this verdict, made without touching `version`.
   */
  | { readonly kind: 'conflict'; readonly entry: LedgerEntry }
  /** Already delivered or a duplicate: acknowledge without sending. */
  | { readonly kind: 'settled'; readonly entry: LedgerEntry }
  /**
   * The job is dead-lettered and this is not an operator's redrive: this very message, whose acknowledgement was
   * lost, or another copy of the job (SQS's second copy, an upstream resend). Dead-letter it again, do not send:
   * only a person's redrive starts a new generation.
   */
  | { readonly kind: 'dead_letter_again'; readonly entry: LedgerEntry }
  /**
   * The record carries the answer of the attempt still open in the ledger (its settle could not be written):
   * settle that attempt with the carried answer, without a claim and without a send.
   */
  | {
      readonly kind: 'carried';
      readonly entry: LedgerEntry;
      /** The carried attempt was counted lost meanwhile (its answer is a delivery, which still settles the job). */
      readonly lostAttempt?: boolean;
    }
  /** Another instance holds the job until `until` (epoch ms): hide this copy until then. */
  | { readonly kind: 'in_flight'; readonly entry: LedgerEntry; readonly until: number }
  /** The job's next attempt is not due before `until` (epoch ms): hide this copy until then. */
  | { readonly kind: 'not_due'; readonly entry: LedgerEntry; readonly until: number };

/**
 * Lost attempts' tokens kept per job (see `lost_attempt_tokens`): more than the default attempt budget (5), so
 * that a job's lost attempts never push out its first before the budget dead-letters it. With a larger
 * `maxAttempts`, or lost attempts over several generations, the oldest go first: a 201 carried for one of those
 * no longer settles the job, whose dead letter then stands for a person to check (docs/ledger.md).
 */
export const LOST_TOKENS_MAX = 8;

/** History kept per job: enough for `relay job ID`, small enough that an entry stays within one write unit. */
export const LEDGER_HISTORY_MAX = 12;

/**
 * A copy may arrive this much before the job's next-attempt time and still be sent: SQS shows a hidden record
 * again when its visibility timeout ends, which the sender set a moment after computing that time.
 */
export const NOT_DUE_TOLERANCE_MS = 1_000;

/** The entry a job's first claim creates. */
export function firstEntry(input: ClaimInput, expiration: number, keyPrefix: string): LedgerEntry {
  return {
    id: keyPrefix + input.jobId,
    job_id: input.jobId,
    status: 'in_progress',
    body_hash: input.bodyHash,
    generation: 1,
    version: 1,
    first_attempt_at: Math.min(input.firstReceivedAt ?? input.now, input.now),
    sends: 0,
    retryable: 0,
    server_500: 0,
    rate_limited: 0,
    not_sent: 0,
    unknown_outcome: false,
    attempt_open: true,
    attempt_started_at: input.now,
    lease_until: input.leaseUntil,
    attempt_token: input.token,
    write_token: input.token,
    history: [],
    expiration,
    updated_at: input.now,
  };
}

/**
 * Whether the record is the one redrive the job's dead letter allows: it carries the redrive token the ledger
 * holds for that dead letter, and it is not the very message that was dead-lettered (whose acknowledgement was
 * lost). Pure.
 */
export function isRedriveOf(
  existing: LedgerEntry,
  input: Pick<ClaimInput, 'redriveToken' | 'messageId'>,
): boolean {
  return (
    existing.status === 'dead_lettered' &&
    existing.dead_letter_token !== undefined &&
    input.redriveToken === existing.dead_letter_token &&
    existing.dead_letter_message_id !== input.messageId
  );
}

/**
 * Decides what a record may do with a job whose entry exists (docs/ledger.md). Pure. A dead-lettered
 * job starts a new generation, with a fresh budget and its unknown outcome cleared, only on an operator's
 * redrive of the dead letter the ledger recorded (`isRedriveOf`): that is a person's decision to send again, and
 * the generation it starts consumes the dead letter's token. Any other copy (SQS's second copy, an upstream
 * resend, a second copy of the dead letter, a copy the sender made) is dead-lettered again without a send, so
 * no copy undoes a dead letter's wait or reason. A record carrying the answer of the open attempt settles it.
 */
export function gate(existing: LedgerEntry, input: ClaimInput, expiration: number): GateVerdict {
  const { now } = input;
  if (existing.body_hash !== input.bodyHash) return { kind: 'conflict', entry: existing };
  // A delivery answered to an attempt counted lost meanwhile (its settle failed, and a copy claimed after the
  // lease): a 201 stays a 201, even over what the lost count led to (a dead letter of this generation, or a
  // delivery proven by a 409, which carries no uuid).
  const { carried } = input;
  const knownDelivery = existing.status === 'delivered' && existing.uuid !== undefined;
  if (carried?.delivered && !knownDelivery && existing.lost_attempt_tokens?.includes(carried.token)) {
    return { kind: 'carried', entry: existing, lostAttempt: true };
  }
  if (existing.status === 'delivered' || existing.status === 'duplicate') {
    return { kind: 'settled', entry: existing };
  }
  if (existing.status === 'dead_lettered' && !isRedriveOf(existing, input)) {
    return { kind: 'dead_letter_again', entry: existing };
  }
  // The open attempt is the one whose answer this record carries: the answer settles it.
  const openToken = existing.attempt_open ? existing.attempt_token : undefined;
  if (openToken !== undefined && carried?.answered && openToken === carried.token) {
    return { kind: 'carried', entry: existing };
  }
  // The open attempt is a claim of this record's chain whose write failed (DynamoDB may have applied it): it sent
  // nothing, so it is neither in flight elsewhere nor lost. A copy carrying an answer names such claims in `also`
  // too: its answer was used (or its attempt counted lost) before any of them could be written.
  const ownClaims =
    carried === undefined
      ? []
      : carried.answered
        ? (carried.also ?? [])
        : [carried.token, ...(carried.also ?? [])];
  const ownOpenAttempt = openToken !== undefined && ownClaims.includes(openToken);
  if (existing.attempt_open && !ownOpenAttempt && now < (existing.lease_until ?? 0)) {
    return { kind: 'in_flight', entry: existing, until: existing.lease_until ?? now };
  }

  let next: LedgerEntry;
  let lost = false;
  if (existing.status === 'dead_lettered') {
    const generation = existing.generation + 1;
    next = {
      ...existing,
      generation,
      first_attempt_at: now,
      sends: 0,
      retryable: 0,
      server_500: 0,
      rate_limited: 0,
      not_sent: 0,
      next_attempt_at: undefined,
      unknown_at: undefined,
      dead_letter_reason: undefined,
      dead_letter_message_id: undefined,
      dead_letter_token: undefined,
      dead_letter_detail: undefined,
      dead_letter_excerpt: undefined,
      // Kept: a 201 of an earlier generation may still be travelling on a copy (docs/ledger.md).
      history: appendHistory(existing.history, {
        at: now,
        generation,
        status: 'none',
        outcome: 'redriven',
      }),
    };
  } else if (existing.attempt_open && !ownOpenAttempt) {
    // The last attempt was claimed and never reported: its instance stopped, perhaps after sending. Like any
    // unanswered request it is resent only after its backoff step, counted from when it started: a lease (the
    // invocation's deadline) can end sooner than that.
    const startedAt = existing.attempt_started_at ?? existing.updated_at;
    const due = startedAt + lostAttemptWaitMs(existing, input);
    if (now < due - (input.dueToleranceMs ?? NOT_DUE_TOLERANCE_MS)) {
      return { kind: 'not_due', entry: existing, until: due };
    }
    lost = true;
    next = {
      ...existing,
      // It may have reached the messages endpoint: it counts as a send, like a timeout.
      sends: existing.sends + 1,
      retryable: existing.retryable + 1,
      unknown_outcome: true,
      unknown_at: existing.unknown_at ?? existing.attempt_started_at ?? existing.updated_at,
      last_status: 'lost',
      lost_attempt_tokens:
        existing.attempt_token === undefined
          ? existing.lost_attempt_tokens
          : [...(existing.lost_attempt_tokens ?? []), existing.attempt_token].slice(-LOST_TOKENS_MAX),
      history: appendHistory(existing.history, {
        at: now,
        generation: existing.generation,
        status: 'lost',
        outcome: 'unknown',
        detail: 'the previous attempt never reported (instance stopped)',
      }),
    };
  } else {
    const due = existing.next_attempt_at;
    if (due !== undefined && now < due - (input.dueToleranceMs ?? NOT_DUE_TOLERANCE_MS)) {
      return { kind: 'not_due', entry: existing, until: due };
    }
    next = existing;
  }
  return {
    kind: 'claim',
    lost,
    entry: {
      ...next,
      status: 'in_progress',
      attempt_open: true,
      attempt_started_at: now,
      lease_until: input.leaseUntil,
      attempt_token: input.token,
      write_token: input.token,
      event_token: undefined,
      version: existing.version + 1,
      expiration,
      updated_at: now,
    },
  };
}

/** How long after a lost attempt started a copy may resend it, ms: the backoff step of that attempt. */
function lostAttemptWaitMs(existing: LedgerEntry, input: ClaimInput): number {
  return backoffStep(existing.retryable + 1, input.backoffStepsMs ?? DEFAULT_BACKOFF_STEPS_MS) ?? 60_000;
}

/** The counts of earlier attempts that the policy judges by. */
export function priorOf(entry: LedgerEntry): PriorAttempts {
  return {
    retryable: entry.retryable,
    serverErrors500: entry.server_500,
    rateLimited: entry.rate_limited,
    notSent: entry.not_sent ?? 0,
    unknownOutcome: entry.unknown_outcome,
  };
}

/** Appends an event, keeping the newest `LEDGER_HISTORY_MAX`. */
export function appendHistory(history: readonly LedgerEvent[], event: LedgerEvent): LedgerEvent[] {
  return [...history, event].slice(-LEDGER_HISTORY_MAX);
}
