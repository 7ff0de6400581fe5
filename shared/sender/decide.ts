import type { SenderConfig } from '#shared/config.ts';
import type { BreakerReason } from '#shared/ecourtdate/breaker.ts';
import type { SendAttempt } from '#shared/ecourtdate/client.ts';
import { fingerprintLabel, jobFingerprint, type SendJob } from '#shared/job.ts';
import { type LedgerEntry, priorOf } from '#shared/ledger/ledger.ts';
import type { DeadLetterReason, Outcome, RetryCause } from '#shared/outcome.ts';
import {
  type AttemptClass,
  type AttemptResult,
  backoffDelaySeconds,
  classifyAttempt,
  decide,
  deferred,
  rateLimitBlockMs,
  scaled,
  suspectRateLimitHint,
  unknownOutcomeKept,
} from '#shared/policy.ts';
import type { Observed, RecordContext } from '#shared/sender/stages.ts';
import type { CarriedAnswer } from '#shared/sqs/attributes.ts';

/**
 * Unanswered claim tokens a chain of copies carries (its latest claim's and the earlier ones): one per refused
 * claim, so 32 cover half an hour of DynamoDB refusing one job's claims at the first backoff step (a minute).
 */
export const CLAIM_TOKENS_CARRIED = 32;

/** Per-record facts for the log line, the dead-letter attributes and the settlement. */
export interface RecordFacts {
  readonly jobId: string | undefined;
  readonly job?: SendJob | undefined;
  /** Requests that reached (or may have reached) the messages endpoint, as the ledger counts them. */
  readonly attempts: number;
  /** Epoch ms of the first attempt of this generation (the job's first receipt without a ledger entry). */
  readonly firstAttemptAt: number;
  /** This invocation's attempt, when a request went out (its statuses are counted in the metrics). */
  readonly sent?: Extract<SendAttempt, { kind: 'attempted' }> | undefined;
  /** HTTP status, `timeout`, `connection`, `secret`, or `lost` (an attempt that never reported). */
  readonly lastStatus?: number | string | undefined;
  readonly detail?: string | undefined;
  /** The redacted excerpt of eCourtDate's answer when it was not read in this invocation (carried, or kept). */
  readonly excerpt?: string | undefined;
}

/** The ledger write a decision makes: closes the claimed (or carried) attempt of `entry`. */
export interface LedgerSettle {
  readonly entry: LedgerEntry;
  /** How the attempt counts; undefined when nothing was attempted. */
  readonly attempt?: AttemptClass | undefined;
  /** eCourtDate's answer, carried on a copy should the write fail; undefined when nothing was sent. */
  readonly result?: AttemptResult | undefined;
  /**
   * The token of the attempt `result` answers, carried with it should the write fail. Absent: `entry`'s open
   * attempt. A carried answer names its own attempt: one counted lost meanwhile is no longer the entry's.
   */
  readonly attemptToken?: string | undefined;
}

/** What a copy of the record carries (see `requeueCopy` in shared/sqs/settle.ts). */
export interface CopySpec {
  /** The answer to carry; `null`: the record's was used and is not carried on; absent: the record's, if any. */
  readonly carry?: CarriedAnswer | null | undefined;
  /**
   * The ledger's `event_token` this record holds: the copy takes it over (`JobLedger.claimEvent`) and publishes
   * the job's `eCourtDate Job Settled` event unmarked, if no twin of it did first.
   */
  readonly settledEventPending?: string | undefined;
  readonly keepRedriveToken?: boolean | undefined;
}

/**
 * The one decision about a record, made by pure code (`decideRecord`) before anything is done about it;
 * `applyDecision` carries it out. `action` is what happens to the SQS message: acknowledged, sent to the
 * dead-letter queue (then acknowledged), hidden for `delaySeconds` (a batch item failure), or re-queued as a fresh
 * copy delayed `delaySeconds` (then acknowledged). `settle` is the ledger write that goes first.
 */
export interface Decision {
  readonly action: 'acknowledge' | 'dead_letter' | 'hide' | 'requeue';
  readonly outcome: Outcome;
  readonly facts: RecordFacts;
  readonly settle?: LedgerSettle | undefined;
  /** For `hide` and `requeue`: seconds until the job is offered again. */
  readonly delaySeconds?: number | undefined;
  readonly copy?: CopySpec | undefined;
  /** The job had settled before: acknowledged without a send. */
  readonly alreadySettled?: boolean | undefined;
  /**
   * The `eCourtDate Job Settled` event is published marked `replayed` (it may have gone out before), unless
   * this record takes over `eventClaim` first.
   */
  readonly replayed?: boolean | undefined;
  /**
   * For a job settled before: the ledger's `event_token` this record holds (`settled_event_pending`), and the
   * entry as the gate read it. If the applier takes the token over, this record publishes the event's first,
   * unmarked publication.
   */
  readonly eventClaim?: { readonly held: string; readonly entry: LedgerEntry } | undefined;
  /** For a dead letter the ledger recorded before: its redrive token, put on the dead-letter message again. */
  readonly deadLetterToken?: string | undefined;
  /** Stop this instance's requests for this long, ms (a 429). */
  readonly blockMs?: number | undefined;
  /** A 429's wait hint that was capped as beyond belief, seconds. */
  readonly suspectHintSeconds?: number | undefined;
}

/** The policy and the clock a decision needs. */
export interface DecideContext {
  readonly config: SenderConfig;
  /** Epoch ms. */
  readonly now: number;
  /** Jitter source in [0, 1). */
  readonly random: () => number;
}

/**
 * The one decision about a record (docs/contract.md, "What each response does"): from what its stages observed to
 * what is done with it. Pure: no I/O, no clock but `ctx.now`, no randomness but `ctx.random`.
 *
 * @example
 * decideRecord(context, { stage: 'invalid', jobId: 'x', detail: 'id: expected ...' }, ctx).action; // 'dead_letter'
 */
export function decideRecord(context: RecordContext, observed: Observed, ctx: DecideContext): Decision {
  const base = baseFacts(context, observed);
  switch (observed.stage) {
    case 'invalid':
      return deadLetter({ ...base, detail: observed.detail }, 'invalid_job');
    case 'deferred': {
      // The delay the observation found inside the deadline: nothing was written to the ledger, so a dead letter
      // decided here (a later clock, another jitter) would be one no copy of the job could ever find.
      const cause = observed.held === undefined ? 'deferred' : heldCause(observed.held);
      const outcome = { type: 'retry', delaySeconds: observed.delaySeconds, cause } as const;
      // Nothing was claimed: a copy keeps the redrive token, which no generation has used yet.
      return retryOrDeadLetter(context, base, outcome, ctx, { keepRedriveToken: true });
    }
    case 'gated':
      return decideGated(context, observed, base, ctx);
    case 'held': {
      const facts = { ...factsOf(base, observed.entry), detail: observed.verdict.detail };
      const settled = { ...facts, lastStatus: observed.lost ? 'lost' : facts.lastStatus };
      return withSettle(context, ctx, settled, observed.verdict.outcome, { entry: observed.entry });
    }
    case 'attempted':
      return decideAttempt(context, observed, base, ctx);
    case 'carried':
      return decideCarried(context, observed, base, ctx);
    case 'failed': {
      // A claim whose write failed may still have been applied: the copy carries its token, and finds that attempt
      // its own instead of lost.
      const carry =
        observed.claimToken === undefined ? undefined : carryingClaim(context.carried, observed.claimToken);
      const detail = `failed unexpectedly (${observed.errorName})`;
      return dependencyFailure({ ...base, detail }, ctx, {
        keepRedriveToken: observed.entry === undefined,
        carry,
      });
    }
  }
}

/**
 * What a copy carries after a claim whose write failed (`claimToken`), given what the record carried: the claim's
 * token, with the chain's earlier unanswered claims in `also` (any of them may be the one DynamoDB applied). A
 * record carrying an answer keeps it, and names the claim in `also`: the gate let it claim only because that answer
 * no longer matched an open attempt (used, or its attempt counted lost), so the claim is the chain's own, and a
 * copy that finds it open must not count it lost (docs/ledger.md). At most `CLAIM_TOKENS_CARRIED` tokens. Pure.
 */
export function carryingClaim(carried: CarriedAnswer | undefined, claimToken: string): CarriedAnswer {
  if (carried === undefined) return { token: claimToken };
  if (carried.result !== undefined) {
    return { ...carried, also: [claimToken, ...(carried.also ?? [])].slice(0, CLAIM_TOKENS_CARRIED - 1) };
  }
  return {
    token: claimToken,
    also: [carried.token, ...(carried.also ?? [])].slice(0, CLAIM_TOKENS_CARRIED - 1),
  };
}

function decideGated(
  context: RecordContext,
  observed: Extract<Observed, { stage: 'gated' }>,
  base: RecordFacts,
  ctx: DecideContext,
): Decision {
  const { claim } = observed;
  const { config } = ctx;
  switch (claim.kind) {
    case 'busy':
      return retry(context, base, scaled(5, config), 'in_flight', ctx);
    case 'in_flight':
      // Another copy holds the job's attempt: look again soon (it usually settles within a request), never later
      // than its lease's end, when it has settled or is lost (docs/ledger.md, "One attempt at a time per job").
      return retry(context, factsOf(base, claim.entry), inFlightRecheckSeconds(claim, ctx), 'in_flight', ctx);
    case 'not_due':
      return retry(context, factsOf(base, claim.entry), untilSeconds(claim.until, ctx), 'not_due', ctx);
    case 'settled':
      return alreadySettled(context, claim.entry, base);
    case 'conflict':
      // This body was never tried: its facts are its own (nothing sent), not those of the job the id belongs to.
      return deadLetter(
        { ...base, detail: idConflictDetail(base.job as SendJob, claim.entry, ctx.now) },
        'id_conflict',
      );
    case 'dead_letter_again':
      return deadLetterAgain(context, claim.entry, base);
  }
}

/**
 * The `detail` of a body refused `id_conflict` (docs/contract.md, "When a message changes"): which version was
 * refused and when (its fingerprint, and the time the ledger noted, else `now`, epoch ms), which version holds the
 * id and where it stands, and how to send the refused one. Never quotes the message or the recipient.
 * @example idConflictDetail(job, entry, now) === 'this version (body q3Jd9x2LrT0a) was refused at
 *   2027-12-01T14:00:00.000Z, not sent: the id cms-1 is held by a version with a different body (body Zx81..., delivered);
 *   send this version under a new id (e.g. cms-1-v2); a redrive only conflicts again'
 */
export function idConflictDetail(job: SendJob, held: LedgerEntry, now: number): string {
  const fingerprint = jobFingerprint(job);
  const at = held.refused_body_hash === fingerprint && held.refused_at !== undefined ? held.refused_at : now;
  return (
    `this version (body ${fingerprintLabel(fingerprint)}) was refused at ${new Date(at).toISOString()}, not sent: ` +
    `the id ${job.id} is held by a version with a different body (body ${fingerprintLabel(held.body_hash)}, ` +
    `${held.status}); give each version of a message its own id: send this version under a new id ` +
    `(e.g. ${versionedIdExample(job.id)}); a redrive only conflicts again`
  );
}

/** The example of a new id in an `id_conflict` detail: the id with `-v2`, within the id's 128 characters. */
function versionedIdExample(id: string): string {
  return `${id.slice(0, 125)}-v2`;
}

/** The retry cause of a job the circuit breaker held, by the breaker's reason (docs/pacing.md). */
export function heldCause(reason: BreakerReason): Extract<RetryCause, 'held_unavailable' | 'held_auth'> {
  return reason === 'auth' ? 'held_auth' : 'held_unavailable';
}

/** The shortest look again at a job whose attempt another copy holds, seconds before time scaling. */
export const IN_FLIGHT_RECHECK_SECONDS = 5;

/**
 * How long a copy that found the job's attempt held by another copy (`in_flight`, lease until `claim.until`,
 * epoch ms) is hidden, whole seconds: as long as the attempt has been open so far (`attempt_started_at`), at least
 * `IN_FLIGHT_RECHECK_SECONDS` (scaled), and never past the lease's end plus that much. An attempt is one request
 * and a settle, so most copies find the job settled at the first look; one that stays open is looked at after
 * doubling waits, a handful of receives per lease, which the fresh copies of `retryDecision` keep from SQS's
 * `maxReceiveCount` (docs/ledger.md, "One attempt at a time per job"). Pure.
 */
export function inFlightRecheckSeconds(
  claim: { readonly entry: LedgerEntry; readonly until: number },
  ctx: DecideContext,
): number {
  const step = scaled(IN_FLIGHT_RECHECK_SECONDS, ctx.config);
  const leaseEnd = untilSeconds(claim.until, ctx) + step;
  const startedAt = claim.entry.attempt_started_at ?? claim.entry.updated_at;
  const openSeconds = Math.ceil(Math.max(ctx.now - startedAt, 0) / 1000);
  return Math.min(leaseEnd, Math.max(step, openSeconds));
}

/** A copy of a job that settled before: acknowledged without a send, its event published again. */
function alreadySettled(context: RecordContext, entry: LedgerEntry, base: RecordFacts): Decision {
  const outcome: Outcome =
    entry.status === 'delivered' ? { type: 'delivered', uuid: entry.uuid } : { type: 'duplicate' };
  return {
    action: 'acknowledge',
    outcome,
    facts: factsOf(base, entry),
    alreadySettled: true,
    ...firstPublication(context, entry),
  };
}

/**
 * Whether a copy of a settled job may publish its `eCourtDate Job Settled` event first: only the copy holding the
 * ledger's `event_token` (the one its settling record left the event to), and only once it has taken the token
 * over, which one twin of it does. Every other copy publishes a replay.
 */
function firstPublication(
  context: RecordContext,
  entry: LedgerEntry,
): Pick<Decision, 'replayed' | 'eventClaim'> {
  const held = entry.event_token;
  const holds = held !== undefined && heldEventTokens(context).includes(held);
  return { replayed: true, eventClaim: holds ? { held, entry } : undefined };
}

/**
 * The event tokens a copy holds (`settled_event_pending`): one, or two after a take-over whose answer was lost
 * (the token it held, and the one it tried to write: the ledger holds one of them).
 */
export function heldEventTokens(context: Pick<RecordContext, 'settledEventPending'>): string[] {
  return context.settledEventPending?.split(',').filter((token) => token !== '') ?? [];
}

/**
 * A copy of a dead-lettered job that is not the one redrive of its dead letter: this message's acknowledgement was
 * lost, or it is another copy (a second copy of the dead letter, an upstream resend, a dead letter redriven twice).
 * It goes to the dead-letter queue too, never to eCourtDate, with the job's reason, the first dead letter's why
 * and excerpt (the field a 400 named, the Logs advice) and its redrive token.
 */
function deadLetterAgain(context: RecordContext, entry: LedgerEntry, base: RecordFacts): Decision {
  const reason = (entry.dead_letter_reason ?? 'retries_exhausted') as DeadLetterReason;
  const why =
    entry.dead_letter_message_id === context.record.messageId
      ? 'dead-lettered again (the first acknowledgement was lost)'
      : 'a copy of a job already dead-lettered; not sent: only one redrive of its dead letter sends it again';
  const detail = entry.dead_letter_detail ? `${entry.dead_letter_detail} (${why})` : why;
  const facts = { ...factsOf(base, entry), detail, excerpt: entry.dead_letter_excerpt };
  return {
    ...deadLetter(facts, reason),
    deadLetterToken: entry.dead_letter_token,
    ...firstPublication(context, entry),
  };
}

function decideAttempt(
  context: RecordContext,
  observed: Extract<Observed, { stage: 'attempted' }>,
  base: RecordFacts,
  ctx: DecideContext,
): Decision {
  const { entry, sent, job } = observed;
  const facts = factsOf(base, entry);
  const judged = timing(job, entry.first_attempt_at, ctx);
  if (sent.kind === 'deferred') {
    // Nothing was sent; a deferral past the deadline still keeps an earlier unknown outcome's reason.
    const outcome = unknownOutcomeKept(
      deferred({ ...judged, retryInMs: sent.retryInMs }),
      entry.unknown_at !== undefined,
    );
    const detail =
      outcome.type === 'dead_letter' ? whyDeadLettered(outcome, entry.last_status ?? 'none', job) : undefined;
    return withSettle(context, ctx, { ...facts, detail }, outcome, { entry });
  }
  const decision = decideAnswer(context, facts, entry, sent.result, ctx);
  const why = decision.outcome.type === 'dead_letter' ? decision.facts.detail : undefined;
  const rateLimit =
    sent.result.kind === 'response' && sent.result.status === 429
      ? { hint: sent.result.retryAfterSeconds }
      : undefined;
  return {
    ...decision,
    facts: { ...decision.facts, sent, detail: sent.detail ?? why },
    ...(rateLimit ? { blockMs: rateLimitBlockMs(rateLimit.hint, ctx.config) } : {}),
    ...(rateLimit?.hint !== undefined && suspectRateLimitHint(rateLimit.hint, ctx.config)
      ? { suspectHintSeconds: rateLimit.hint }
      : {}),
  };
}

function decideCarried(
  context: RecordContext,
  observed: Extract<Observed, { stage: 'carried' }>,
  base: RecordFacts,
  ctx: DecideContext,
): Decision {
  const { entry, carried } = observed;
  const facts = { ...factsOf(base, entry), detail: carried.detail, excerpt: carried.excerpt };
  // The gate matched the carried token to the open attempt only for a copy that carries an answer.
  const result = carried.result as AttemptResult;
  const decision = decideAnswer(context, { ...facts, lastStatus: carried.last_status }, entry, result, ctx);
  const settle = decision.settle && {
    ...decision.settle,
    // An attempt counted lost was counted as a send then: its delivery is not counted again.
    attempt: observed.lostAttempt ? undefined : decision.settle.attempt,
    // Should this write fail too, the next copy carries the answer for the same attempt: the entry read here may
    // hold a later claim's (the one that counted this attempt lost), which no lost token names (docs/ledger.md).
    attemptToken: carried.token,
  };
  const detail = carried.detail ?? decision.facts.detail;
  // The copy carrying the answer publishes its job's first event, unless the job was settled meanwhile.
  const replayed = observed.lostAttempt && entry.status === 'delivered';
  // Once its settle is written the answer is used: a copy of the record (a retry) carries it no further.
  const copy = decision.copy && { ...decision.copy, carry: null };
  return { ...decision, settle, replayed, copy, facts: { ...decision.facts, detail } };
}

/** The decision on eCourtDate's answer to the claimed attempt of `entry`. */
function decideAnswer(
  context: RecordContext,
  facts: RecordFacts,
  entry: LedgerEntry,
  result: AttemptResult,
  ctx: DecideContext,
): Decision {
  const job = facts.job as SendJob;
  const outcome = decide({
    ...timing(job, entry.first_attempt_at, ctx),
    result,
    prior: priorOf(entry),
    unknownSince: entry.unknown_at,
  });
  const lastStatus =
    result.kind === 'response' ? result.status : result.kind === 'transport' ? result.error : 'secret';
  const detail = outcome.type === 'dead_letter' ? whyDeadLettered(outcome, lastStatus, job) : undefined;
  return withSettle(context, ctx, { ...facts, lastStatus, detail }, outcome, {
    entry,
    attempt: classifyAttempt(result),
    result,
  });
}

/** A decided outcome with the ledger write that closes the attempt first. */
function withSettle(
  context: RecordContext,
  ctx: DecideContext,
  facts: RecordFacts,
  outcome: Outcome,
  settle: LedgerSettle,
): Decision {
  // The claim consumed any redrive token: copies of this record must not carry it (they are plain copies now).
  const decision = retryOrDeadLetter(context, facts, outcome, ctx, {});
  return { ...decision, settle };
}

function retryOrDeadLetter(
  context: RecordContext,
  facts: RecordFacts,
  outcome: Outcome,
  ctx: DecideContext,
  copy: CopySpec,
): Decision {
  switch (outcome.type) {
    case 'delivered':
    case 'duplicate':
      return { action: 'acknowledge', outcome, facts };
    case 'dead_letter':
      return { action: 'dead_letter', outcome, facts };
    case 'retry':
      return retryDecision(context, facts, outcome, ctx, copy);
  }
}

function retry(
  context: RecordContext,
  facts: RecordFacts,
  delaySeconds: number,
  cause: RetryCause,
  ctx: DecideContext,
) {
  return retryDecision(
    context,
    facts,
    { type: 'retry', delaySeconds: Math.max(delaySeconds, 1), cause },
    ctx,
    {},
  );
}

/**
 * A retry: hidden for its delay, or, once the record has been received half the queue's `maxReceiveCount` times,
 * re-queued as a fresh copy, so that a long wait (a 429 storm, an outage) never lets SQS dead-letter a healthy
 * job without a reason (docs/sqs-limits.md, "Fresh copies").
 */
function retryDecision(
  context: RecordContext,
  facts: RecordFacts,
  outcome: Extract<Outcome, { type: 'retry' }>,
  ctx: DecideContext,
  copy: CopySpec,
): Decision {
  const requeue = context.receiveCount >= requeueAfterReceives(ctx.config);
  return { action: requeue ? 'requeue' : 'hide', outcome, facts, delaySeconds: outcome.delaySeconds, copy };
}

/**
 * A failure no rule decides (a dependency refused, a bug): the record is re-queued as a fresh copy after the first
 * backoff step, so that SQS's receive count never grows with an outage (docs/contract.md).
 */
function dependencyFailure(facts: RecordFacts, ctx: DecideContext, copy: CopySpec): Decision {
  const delaySeconds = backoffDelaySeconds(1, ctx.config, ctx.random);
  return {
    action: 'requeue',
    outcome: { type: 'retry', delaySeconds, cause: 'dependency_failure' },
    facts,
    delaySeconds,
    copy,
  };
}

/**
 * What a decision becomes when its ledger write failed (DynamoDB refused it): a fresh copy that carries the open
 * attempt and eCourtDate's answer, so that a known answer (a 201 and its uuid) is never turned into an unknown
 * one. The copy also holds `eventToken`, the event token the failed write tried to put in the entry: should the
 * write have been applied after all, the copy publishes the job's first event. When another writer took the
 * entry over meanwhile (`conflict`: it counted this attempt lost after its lease), a delivery is still carried
 * (the lost attempt's 2xx settles the job with its uuid); any other answer is handed over: the record is
 * acknowledged as a retry (`handed_over`), and the job goes on with that writer. Pure.
 */
export function afterLedgerFailure(
  decision: Decision,
  failure: 'conflict' | { readonly errorName: string },
  ctx: DecideContext,
  eventToken?: string,
): Decision {
  const settle = decision.settle;
  const result = settle?.result;
  const delivery = result?.kind === 'response' && result.status >= 200 && result.status < 300;
  if (settle === undefined || (failure === 'conflict' && !delivery)) {
    const detail =
      'another copy of the job took its ledger entry over (this attempt outlived its lease); the job goes on there and this record is acknowledged';
    return {
      action: 'acknowledge',
      outcome: { type: 'retry', delaySeconds: 0, cause: 'handed_over' },
      facts: { ...decision.facts, detail },
    };
  }
  const why =
    failure === 'conflict'
      ? 'another copy took the ledger entry over after the lease'
      : `the ledger write failed (${failure.errorName})`;
  const carry: CarriedAnswer = {
    token: settle.attemptToken ?? settle.entry.attempt_token ?? '',
    result: settle.result,
    last_status: decision.facts.lastStatus,
    detail: decision.facts.detail,
    excerpt: decision.facts.sent?.excerpt || decision.facts.excerpt || undefined,
  };
  const detail = `${why}; the attempt's answer is carried on a fresh copy`;
  const publishes = decision.outcome.type !== 'retry' && decision.replayed !== true;
  return dependencyFailure({ ...decision.facts, detail }, ctx, {
    carry,
    settledEventPending: publishes ? eventToken : undefined,
  });
}

/**
 * What a decision becomes when the job settled in the ledger but a step after it failed (the uuid index write,
 * the event token's take-over, or the `eCourtDate Job Settled` event): a fresh copy, which finds the job settled
 * and does that step again. `eventToken` is the ledger's event token this record holds (it settled the job, or
 * took the token over), undefined when its event was to be a replay: the copy publishes as this record would
 * have. Pure.
 */
export function afterSettledStepFailure(
  decision: Decision,
  errorName: string,
  ctx: DecideContext,
  eventToken: string | undefined,
): Decision {
  const detail = `settled, but a step after it failed (${errorName}); a fresh copy does it again`;
  return dependencyFailure({ ...decision.facts, detail }, ctx, { settledEventPending: eventToken });
}

/** What a decision becomes when SQS refused its action: re-queue (for a dead letter), else hide, else leave. */
export function afterQueueFailure(decision: Decision, ctx: DecideContext): Decision | undefined {
  const delaySeconds = decision.delaySeconds ?? backoffDelaySeconds(1, ctx.config, ctx.random);
  if (decision.action === 'dead_letter') return { ...decision, action: 'requeue', delaySeconds, copy: {} };
  if (decision.action === 'requeue') return { ...decision, action: 'hide', delaySeconds };
  return undefined;
}

/**
 * After how many receives a retried record is re-queued as a fresh copy rather than hidden again: half the
 * queue's `maxReceiveCount`, so that SQS's own redrive only ever catches a real crash loop.
 */
export function requeueAfterReceives(config: Pick<SenderConfig, 'maxReceiveCount'>): number {
  return Math.max(2, Math.floor(config.maxReceiveCount / 2));
}

/**
 * Why a job decided on an answer was dead-lettered, in a sentence for the `detail` attribute, the log and the
 * local report (docs/contract.md, "What each response does"). Never quotes the message or the response.
 */
export function whyDeadLettered(
  outcome: Extract<Outcome, { type: 'dead_letter' }>,
  lastStatus: number | string,
  job: SendJob,
): string {
  const answer = typeof lastStatus === 'number' ? `HTTP ${lastStatus}` : lastStatus;
  const check = 'check Console > Logs, then redrive if it was not sent';
  switch (outcome.reason) {
    case 'unknown_outcome':
      if (outcome.endedBy !== undefined) {
        return `${endedHow(outcome.endedBy, answer)} after an attempt that may have created the message: ${check}`;
      }
      return job.message.skip_duplicate === true
        ? `the request may have created the message (${answer}) and skip_duplicate is set, so it is not resent: ${check}`
        : `the request may have created the message (${answer}) and a resend could not land inside eCourtDate's duplicate window: ${check}`;
    case 'retries_exhausted':
      return `eCourtDate kept failing (last ${answer}) and nothing was created; the attempt budget is spent: redrive once the API recovers`;
    case 'bad_request':
      return 'eCourtDate rejected the message (HTTP 400): response_excerpt names the field; fix the job and send it again';
    case 'forbidden':
      return 'HTTP 403: the agency is inactive or the API client lacks permission (see the Forbidden403 runbook)';
    case 'not_found':
      return 'HTTP 404: wrong base URL, or no Default Agency / unknown agency_reference ("Agency Not Found")';
    case 'client_error':
      return `eCourtDate refused the request (${answer}); retrying the same request would not help`;
    case 'expired':
      return `the job's deadline passed before it could be delivered (last ${answer})`;
    default:
      return `dead-lettered ${outcome.reason} after ${answer}`;
  }
}

/** What ended a job that an unknown outcome keeps `unknown_outcome`, in words (not another reason's name). */
function endedHow(endedBy: DeadLetterReason, answer: string): string {
  switch (endedBy) {
    case 'retries_exhausted':
      return `the attempts ran out (last ${answer})`;
    case 'expired':
      return `the job's deadline passed (last ${answer})`;
    default:
      return `eCourtDate then refused it (${answer}, ${endedBy})`;
  }
}

function deadLetter(facts: RecordFacts, reason: DeadLetterReason): Decision {
  return { action: 'dead_letter', outcome: { type: 'dead_letter', reason }, facts };
}

function baseFacts(context: RecordContext, observed: Observed): RecordFacts {
  const job = 'job' in observed ? observed.job : undefined;
  const jobId = job?.id ?? (observed.stage === 'invalid' ? observed.jobId : undefined);
  return { jobId, job, attempts: 0, firstAttemptAt: context.firstReceivedAt };
}

function factsOf(facts: RecordFacts, entry: LedgerEntry): RecordFacts {
  return {
    ...facts,
    attempts: entry.sends,
    firstAttemptAt: entry.first_attempt_at,
    lastStatus: entry.last_status,
  };
}

/** The timing inputs of the policy for a job. */
function timing(job: SendJob, firstReceivedAt: number, ctx: DecideContext) {
  return { job, firstReceivedAt, now: ctx.now, policy: ctx.config, random: ctx.random };
}

/** Whole seconds from now until `until` (epoch ms), at least 1. */
function untilSeconds(until: number, ctx: DecideContext): number {
  return Math.max(1, Math.ceil((until - ctx.now) / 1000));
}
