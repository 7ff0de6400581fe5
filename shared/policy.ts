import { MAX_HIDE_SECONDS, type SenderConfig } from '#shared/config.ts';
import type { TransportKind } from '#shared/ecourtdate/status.ts';
import type { SendJob } from '#shared/job.ts';
import type { DeadLetterReason, Outcome, RetryCause } from '#shared/outcome.ts';

/**
 * The relay's rules, pure: no I/O, no clock, no randomness but the injected one. Every rule here comes from
 * docs/contract.md ("What each response does") and is tested row by row in test/unit/policy.test.ts.
 *
 * A record's stages (shared/sender/stages.ts) and its decision (shared/sender/decide.ts) ask three questions of this module:
 * 1. `beforeSend`: the job's ledger entry is claimed; may it be sent now?
 * 2. `decide`: what does this attempt's result mean?
 * 3. `classifyAttempt`: how does the attempt count towards the job's budgets?
 */

/**
 * What one attempt produced. `stage` says where it ended: `secret` (the client secret could not be read),
 * `token` (the token endpoint did not issue a token), or `send` (the messages endpoint answered, or may have
 * received the request). Only `send` results can have created a message.
 */
export type AttemptResult =
  | {
      readonly kind: 'response';
      readonly stage: 'token' | 'send';
      readonly status: number;
      /** The created message's uuid, when the response carried one. */
      readonly uuid?: string | undefined;
      /**
       * Seconds the response asked us to wait (`Retry-After` or a rate-limit reset header), uncapped; `decide`
       * caps it by the row's rule.
       */
      readonly retryAfterSeconds?: number | undefined;
    }
  | {
      readonly kind: 'transport';
      readonly stage: 'token' | 'send';
      readonly error: TransportKind;
      /**
       * Whether the request may have reached the server: false when it failed before a byte was written (the
       * name did not resolve, the connection was refused, the TLS handshake failed). Absent means it may have.
       */
      readonly mayHaveBeenSent?: boolean | undefined;
    }
  | {
      /** The client secret could not be read or parsed: nothing was sent. */
      readonly kind: 'secret';
      readonly stage: 'secret';
    };

export type RetryPolicy = Pick<
  SenderConfig,
  | 'backoffSeconds'
  | 'backoffJitter'
  | 'maxAttempts'
  | 'serverErrorMaxAttempts'
  | 'serverErrorRetrySeconds'
  | 'rateLimitWaitSeconds'
  | 'rateLimitHintMaxSeconds'
  | 'maxAgeSeconds'
  | 'duplicateWindowSeconds'
  | 'httpTimeoutMs'
  | 'timeScale'
>;

/**
 * What is known of the earlier attempts at a job (not counting the one being judged). The job ledger keeps
 * these exactly, per generation of the job.
 */
export interface PriorAttempts {
  /**
   * Attempts that reached the messages endpoint and failed in a way worth retrying (5xx, 408, timeout,
   * connection error, or an attempt whose instance stopped): the backoff budget, `maxAttempts`.
   */
  readonly retryable: number;
  /** Plain 500 answers ("retry once"). */
  readonly serverErrors500: number;
  /** 429 answers: they set the wait, never the attempt budget. */
  readonly rateLimited: number;
  /**
   * Attempts that failed before a request could reach the messages endpoint (secret, token endpoint) or were
   * refused with a persistent 401: they set the backoff step, never the 5xx budget; only the deadline ends them.
   */
  readonly notSent: number;
  /** Whether an earlier attempt's outcome was unknown (it may have created the message). */
  readonly unknownOutcome: boolean;
}

/** No earlier attempt. */
export const FIRST_ATTEMPT: PriorAttempts = {
  retryable: 0,
  serverErrors500: 0,
  rateLimited: 0,
  notSent: 0,
  unknownOutcome: false,
};

/** How one attempt counts towards the budgets in `PriorAttempts`. */
export interface AttemptClass {
  /** A request reached the messages endpoint (or may have: a transport failure counts). */
  readonly sent: boolean;
  readonly retryable: boolean;
  readonly serverError500: boolean;
  readonly rateLimited: boolean;
  readonly notSent: boolean;
  /** It may have created the message without the relay learning so. */
  readonly unknownOutcome: boolean;
}

/** Whether an HTTP status on the messages endpoint leaves the outcome unknown: every 5xx (docs/contract.md). */
export function isUnknownOutcomeStatus(status: number): boolean {
  return status >= 500 && status < 600;
}

/**
 * Classifies an attempt's result for the ledger's counts, consistently with `decide`: any 5xx, a 408 and a
 * transport failure on the messages endpoint spend the backoff budget (a 500 also the "retry once" budget), and
 * all but the 408 and a request that never left (DNS, refused, TLS) leave the outcome unknown; a 429 is only a wait; a failure before the request left (secret,
 * token endpoint) and a persistent 401 count as `notSent`.
 */
export function classifyAttempt(result: AttemptResult): AttemptClass {
  const none = {
    sent: false,
    retryable: false,
    serverError500: false,
    rateLimited: false,
    notSent: false,
    unknownOutcome: false,
  };
  if (result.kind === 'secret') return { ...none, notSent: true };
  if (result.stage === 'token') {
    if (result.kind === 'response' && result.status === 429) return { ...none, rateLimited: true };
    return { ...none, notSent: true };
  }
  if (result.kind === 'transport') {
    // A request that never left (DNS, refused, TLS) is a failure before the send, like the token's.
    if (result.mayHaveBeenSent === false) return { ...none, notSent: true };
    return { ...none, sent: true, retryable: true, unknownOutcome: true };
  }
  const { status } = result;
  return {
    ...none,
    sent: true,
    retryable: isUnknownOutcomeStatus(status) || status === 408,
    serverError500: status === 500,
    rateLimited: status === 429,
    notSent: status === 401,
    unknownOutcome: isUnknownOutcomeStatus(status),
  };
}

export interface DecideInput {
  readonly result: AttemptResult;
  /** What is known of the attempts before this one. */
  readonly prior: PriorAttempts;
  readonly job: SendJob;
  /** Epoch ms when the relay first received the job (this generation). */
  readonly firstReceivedAt: number;
  /** Epoch ms, now. */
  readonly now: number;
  readonly policy: RetryPolicy;
  /** Source of jitter in [0, 1); injectable for tests. */
  readonly random?: () => number;
  /**
   * Epoch ms of this generation's earliest attempt whose outcome is unknown, before this one (the ledger's
   * `unknown_at`); undefined when none. A resend after an unknown outcome must fall inside its duplicate window.
   */
  readonly unknownSince?: number | undefined;
}

/**
 * The epoch ms after which a job is not tried any more: its `expires_at`, or `maxAgeSeconds` after it was
 * first received, whichever comes first.
 */
export function jobDeadline(job: SendJob, firstReceivedAt: number, policy: RetryPolicy): number {
  const byAge = firstReceivedAt + (policy.maxAgeSeconds * 1000) / policy.timeScale;
  return job.expiresAt === undefined ? byAge : Math.min(job.expiresAt, byAge);
}

/** Before sending: a job past its deadline is dead-lettered `expired` and never sent. */
export function expiredBeforeSend(
  job: SendJob,
  firstReceivedAt: number,
  now: number,
  policy: RetryPolicy,
): boolean {
  return now >= jobDeadline(job, firstReceivedAt, policy);
}

/**
 * Whether a resend now still falls inside eCourtDate's duplicate window around an attempt whose outcome is
 * unknown (so a message it created answers 409), keeping a margin for the resend's own requests (the 401 path
 * at its timeout) and for clocks. Times are epoch ms.
 */
export function insideDuplicateWindow(unknownAt: number, now: number, policy: RetryPolicy): boolean {
  return now < resendDeadline(unknownAt, policy);
}

/**
 * The epoch ms from which no resend may leave after an attempt whose outcome is unknown (at `unknownAt`, epoch
 * ms): eCourtDate's duplicate window less the margin of `insideDuplicateWindow`. The sender checks it when it
 * claims the job and again right before each request leaves, since a wait for a pacing slot or a token can come
 * between the two (docs/contract.md, "What each response does").
 */
export function resendDeadline(unknownAt: number, policy: RetryPolicy): number {
  const windowMs = (policy.duplicateWindowSeconds * 1000) / policy.timeScale;
  const marginMs = Math.min(policy.httpTimeoutMs * 3 + 60_000 / policy.timeScale, windowMs / 4);
  return unknownAt + windowMs - marginMs;
}

/** What the ledger knows of a claimed job, as `beforeSend` needs it. */
export interface ClaimedJob {
  readonly prior: PriorAttempts;
  /** Epoch ms of the first attempt of this generation: the maximum age counts from here. */
  readonly firstAttemptAt: number;
  /** Epoch ms of this generation's earliest attempt whose outcome is unknown; undefined when none. */
  readonly unknownAt?: number | undefined;
  /** The previous attempt never reported (its instance stopped): the claim just counted it as unknown. */
  readonly lost: boolean;
}

/** `beforeSend`'s answer: send now, or settle the job without a request. */
export type SendVerdict =
  | { readonly type: 'send' }
  | { readonly type: 'settle'; readonly outcome: Outcome; readonly detail: string };

/**
 * The rules of when a claimed job may be sent (docs/contract.md): never after its deadline; after an unknown
 * outcome only while eCourtDate's duplicate check can still catch a resend (never with `skip_duplicate`, and
 * only inside the duplicate window); and an attempt that never reported still spends the backoff budget: a claim
 * finding the budget spent (`prior.retryable` at `maxAttempts`, which only attempts counted lost can reach before a
 * result) sends nothing, whether it counted the lost attempt itself or a claim of its own chain did (`lost` false).
 *
 * @example
 * beforeSend({ claimed: { prior: FIRST_ATTEMPT, firstAttemptAt: now, lost: false }, job, now, policy }); // { type: 'send' }
 */
export function beforeSend(input: {
  readonly claimed: ClaimedJob;
  readonly job: SendJob;
  readonly now: number;
  readonly policy: RetryPolicy;
}): SendVerdict {
  const verdict = sendVerdict(input);
  if (verdict.type === 'send') return verdict;
  const outcome = unknownOutcomeKept(verdict.outcome, input.claimed.unknownAt !== undefined);
  if (outcome === verdict.outcome) return verdict;
  const detail = `${verdict.detail}; an earlier attempt's outcome is unknown (it may have created the message): check Console > Logs, then redrive if it was not sent`;
  return { type: 'settle', outcome, detail };
}

function sendVerdict(input: {
  readonly claimed: ClaimedJob;
  readonly job: SendJob;
  readonly now: number;
  readonly policy: RetryPolicy;
}): SendVerdict {
  const { claimed, job, now, policy } = input;
  if (expiredBeforeSend(job, claimed.firstAttemptAt, now, policy)) {
    return settle('expired', 'deadline passed before this attempt; not sent');
  }
  if (claimed.unknownAt !== undefined) {
    const blocked =
      job.message.skip_duplicate === true
        ? 'skip_duplicate is set'
        : insideDuplicateWindow(claimed.unknownAt, now, policy)
          ? undefined
          : "eCourtDate's duplicate window has passed";
    if (blocked) {
      return settle(
        'unknown_outcome',
        `an earlier attempt's outcome is unknown and ${blocked}, so a resend could reach the person twice: ` +
          'check Console > Logs, then redrive if it was not sent',
      );
    }
  }
  if (claimed.prior.retryable >= policy.maxAttempts) {
    return settle('retries_exhausted', 'an attempt never reported and the attempt budget is spent');
  }
  return { type: 'send' };
}

function settle(reason: DeadLetterReason, detail: string): SendVerdict {
  return { type: 'settle', outcome: { type: 'dead_letter', reason }, detail };
}

/**
 * Turns one attempt's result into the relay's outcome, exactly as docs/contract.md's table "What each response
 * does" says.
 *
 * @example
 * decide({ result: { kind: 'response', stage: 'send', status: 503 }, prior: FIRST_ATTEMPT, job, firstReceivedAt, now, policy })
 * // => { type: 'retry', delaySeconds: 60..66, cause: 'unknown_outcome' }
 */
export function decide(input: DecideInput): Outcome {
  const unknown = input.unknownSince !== undefined || classifyAttempt(input.result).unknownOutcome;
  return unknownOutcomeKept(decideAnswer(input), unknown);
}

/**
 * An unknown outcome is never relabelled as a plain failure (docs/contract.md): a job of a generation in which any
 * attempt's outcome is unknown, and no 409 resolved it, is dead-lettered `unknown_outcome` whatever ended it (its
 * attempt budget, its deadline, a 4xx), with `endedBy` saying what did, so that nobody redrives it without first
 * checking eCourtDate's Console > Logs. Pure; any other outcome comes back unchanged.
 *
 * @example
 * unknownOutcomeKept({ type: 'dead_letter', reason: 'retries_exhausted' }, true)
 * // => { type: 'dead_letter', reason: 'unknown_outcome', endedBy: 'retries_exhausted' }
 */
export function unknownOutcomeKept(outcome: Outcome, unknownInGeneration: boolean): Outcome {
  if (outcome.type !== 'dead_letter' || !unknownInGeneration || outcome.reason === 'unknown_outcome') {
    return outcome;
  }
  return { type: 'dead_letter', reason: 'unknown_outcome', endedBy: outcome.reason };
}

function decideAnswer(input: DecideInput): Outcome {
  const { result } = input;
  if (result.kind === 'secret') return notSentBackoff(input, 'credentials');
  if (result.stage === 'token') return decideToken(input, result);
  if (result.kind === 'transport') {
    // A request that never left (DNS, refused, TLS) created nothing: it backs off like a failure before the send,
    // even with skip_duplicate, without spending the 5xx budget.
    return result.mayHaveBeenSent === false
      ? notSentBackoff(input, 'server_error')
      : unknownOutcome(input, undefined);
  }
  const { status } = result;
  if (status >= 200 && status < 300) return { type: 'delivered', uuid: result.uuid };
  switch (status) {
    case 400:
      return deadLetter('bad_request');
    case 401:
      // The client has already renewed the token and re-read the secret before this reaches the policy.
      return notSentBackoff(input, 'unauthorized');
    case 403:
      return deadLetter('forbidden');
    case 404:
      return deadLetter('not_found');
    case 408:
      // Request Timeout: the server processed nothing, so the outcome is known. Back off as for a 503.
      return backoff(input, 'server_error', undefined);
    case 409:
      // Only an earlier attempt with an unknown outcome can have created it; otherwise it is someone else's.
      return input.prior.unknownOutcome ? { type: 'delivered' } : { type: 'duplicate' };
    case 429:
      return rateLimited(input, result.retryAfterSeconds);
    case 500:
      if (input.job.message.skip_duplicate === true) return deadLetter('unknown_outcome');
      return input.prior.serverErrors500 + 1 < input.policy.serverErrorMaxAttempts &&
        input.prior.retryable + 1 < input.policy.maxAttempts
        ? retry(input, input.policy.serverErrorRetrySeconds, 'unknown_outcome')
        : deadLetter('retries_exhausted');
  }
  if (isUnknownOutcomeStatus(status)) {
    // A 503 may name a maintenance window: honour it, up to the job's deadline.
    return unknownOutcome(input, status === 503 ? result.retryAfterSeconds : undefined);
  }
  // 405, other 4xx, and anything that is neither success nor error (a redirect from a wrong base URL).
  return deadLetter('client_error');
}

/** A token endpoint's answer: nothing was sent, so every outcome is known. */
function decideToken(
  input: DecideInput,
  result: Extract<AttemptResult, { stage: 'token' | 'send' }>,
): Outcome {
  if (result.kind === 'transport') return notSentBackoff(input, 'server_error');
  switch (result.status) {
    case 400:
    case 401:
      // Malformed or revoked credentials: the job itself is fine.
      return notSentBackoff(input, 'unauthorized');
    case 403:
      return deadLetter('forbidden');
    case 404:
      return deadLetter('not_found');
    case 429:
      return rateLimited(input, result.retryAfterSeconds);
  }
  // A 2xx without a usable token, a 5xx, a 408, anything else: an API fault on a request that sent nothing.
  return notSentBackoff(input, 'server_error');
}

/**
 * A record that was not sent because this instance is waiting out a 429 (or its pacing slot was too far
 * away): it comes back when the wait is over, spread over a few seconds so the queue does not stampede.
 */
export function deferred(
  input: Omit<DecideInput, 'result' | 'prior'> & { readonly retryInMs: number },
): Outcome {
  const random = input.random ?? Math.random;
  const seconds = Math.ceil(input.retryInMs / 1000) + Math.floor(random() * 5);
  return withinDeadline(input, Math.max(seconds, 1), 'deferred');
}

/**
 * The delay before retrying attempt `attempt`: the backoff step (the last step repeats) plus up to
 * `backoffJitter` of it at random, divided by the time scale, in whole seconds.
 */
export function backoffDelaySeconds(
  attempt: number,
  policy: Pick<RetryPolicy, 'backoffSeconds' | 'backoffJitter' | 'timeScale'>,
  random: () => number = Math.random,
): number {
  const base = backoffStep(attempt, policy.backoffSeconds) ?? 60;
  return scaled(base + random() * base * policy.backoffJitter, policy);
}

/**
 * The backoff step of attempt `attempt` (1-based), in the steps' own unit, before jitter: the last step repeats;
 * undefined when there are no steps (docs/contract.md, "What each response does").
 */
export function backoffStep(attempt: number, steps: readonly number[]): number | undefined {
  return steps[Math.min(Math.max(attempt, 1), steps.length) - 1];
}

/**
 * How long the instance stops sending after a 429, ms: the hint (or the minimum wait), never more than
 * `rateLimitHintMaxSeconds`, so that no single header blocks an instance for hours.
 */
export function rateLimitBlockMs(hintSeconds: number | undefined, policy: RetryPolicy): number {
  const seconds = Math.min(
    Math.max(policy.rateLimitWaitSeconds, hintSeconds ?? 0),
    policy.rateLimitHintMaxSeconds,
  );
  return scaledMs(seconds, policy);
}

/** Whether a 429's wait hint is beyond belief (eCourtDate's window is one minute) and was capped. */
export function suspectRateLimitHint(hintSeconds: number | undefined, policy: RetryPolicy): boolean {
  return hintSeconds !== undefined && hintSeconds > policy.rateLimitHintMaxSeconds;
}

/**
 * Seconds, scaled down for local runs, rounded up so that a scaled wait is never zero. Not capped: a wait
 * longer than SQS can hide a record is kept by the ledger's next-attempt time (see `hideSeconds`).
 */
export function scaled(seconds: number, policy: Pick<RetryPolicy, 'timeScale'>): number {
  if (seconds <= 0) return 0;
  return Math.ceil(seconds / policy.timeScale);
}

/** Milliseconds of a scaled wait given in seconds. */
export function scaledMs(seconds: number, policy: Pick<RetryPolicy, 'timeScale'>): number {
  return (Math.max(seconds, 0) * 1000) / policy.timeScale;
}

/** How long SQS can hide a record for a wait of `delaySeconds`: the wait, at most `MAX_HIDE_SECONDS`. */
export function hideSeconds(delaySeconds: number): number {
  return Math.min(Math.max(Math.ceil(delaySeconds), 0), MAX_HIDE_SECONDS);
}

function unknownOutcome(input: DecideInput, retryAfterSeconds: number | undefined): Outcome {
  // Without eCourtDate's duplicate check a resend could reach the person twice: a human checks Console > Logs.
  if (input.job.message.skip_duplicate === true) return deadLetter('unknown_outcome');
  const outcome = backoff(input, 'unknown_outcome', retryAfterSeconds);
  // A resend that could only come after the duplicate window (a long Retry-After) could not be proven by a 409:
  // dead-letter now for a person to check, rather than wait only to be dead-lettered then.
  const since = Math.min(input.unknownSince ?? input.now, input.now);
  if (
    outcome.type === 'retry' &&
    !insideDuplicateWindow(since, input.now + outcome.delaySeconds * 1000, input.policy)
  ) {
    return deadLetter('unknown_outcome');
  }
  return outcome;
}

function backoff(input: DecideInput, cause: RetryCause, retryAfterSeconds: number | undefined): Outcome {
  const attempt = input.prior.retryable + 1;
  if (attempt >= input.policy.maxAttempts) return deadLetter('retries_exhausted');
  const step = backoffDelaySeconds(attempt, input.policy, input.random);
  return withinDeadline(input, Math.max(step, scaled(retryAfterSeconds ?? 0, input.policy)), cause);
}

function notSentBackoff(input: DecideInput, cause: RetryCause): Outcome {
  // Nothing reached the messages endpoint: the 5xx budget is untouched, only the deadline ends these waits.
  const step = backoffDelaySeconds(input.prior.notSent + 1, input.policy, input.random);
  return withinDeadline(input, step, cause);
}

function rateLimited(input: DecideInput, hintSeconds: number | undefined): Outcome {
  // eCourtDate: wait at least a minute, then back off 1, 2, 4 minutes; honour a longer hint from the response
  // up to `rateLimitHintMaxSeconds`. 429s never exhaust the attempt budget: only the job's deadline ends them.
  const { policy } = input;
  const hint = Math.min(hintSeconds ?? 0, policy.rateLimitHintMaxSeconds);
  const floor = Math.max(policy.rateLimitWaitSeconds, hint);
  const wait = input.prior.rateLimited + 1;
  const delay = Math.max(scaled(floor, policy), backoffDelaySeconds(wait, policy, input.random));
  return withinDeadline(input, delay, 'rate_limited');
}

function retry(input: DecideInput, seconds: number, cause: RetryCause): Outcome {
  return withinDeadline(input, scaled(seconds, input.policy), cause);
}

function withinDeadline(
  input: Pick<DecideInput, 'job' | 'firstReceivedAt' | 'now' | 'policy'>,
  delaySeconds: number,
  cause: RetryCause,
): Outcome {
  // A retry that could only happen after the deadline is pointless: a reminder after the hearing is worthless.
  // Never sooner than a second: a zero step would loop straight back, against a rate limit too.
  const delay = Math.max(delaySeconds, 1);
  const deadline = jobDeadline(input.job, input.firstReceivedAt, input.policy);
  if (input.now + delay * 1000 >= deadline) return deadLetter('expired');
  return { type: 'retry', delaySeconds: delay, cause };
}

function deadLetter(reason: DeadLetterReason): Outcome {
  return { type: 'dead_letter', reason };
}
