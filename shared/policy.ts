import { MAX_VISIBILITY_TIMEOUT_SECONDS, type SenderConfig } from '#shared/config.ts';
import type { SendJob } from '#shared/job.ts';
import type { DeadLetterReason, Outcome, RetryCause } from '#shared/outcome.ts';

/**
 * What one attempt produced. `stage` says whether the failure came from the token endpoint (nothing was sent,
 * so the outcome is known) or from the messages endpoint.
 */
export type AttemptResult =
  | {
      readonly kind: 'response';
      readonly stage: 'token' | 'send';
      readonly status: number;
      /** The created message's uuid, when the response carried one. */
      readonly uuid?: string | undefined;
      /** Seconds to wait, from `Retry-After` or a rate-limit reset header, when the response had one. */
      readonly retryAfterSeconds?: number | undefined;
    }
  | {
      readonly kind: 'transport';
      readonly stage: 'token' | 'send';
      readonly error: 'timeout' | 'connection';
    };

export type RetryPolicy = Pick<
  SenderConfig,
  | 'backoffSeconds'
  | 'backoffJitter'
  | 'maxAttempts'
  | 'serverErrorMaxAttempts'
  | 'serverErrorRetrySeconds'
  | 'rateLimitWaitSeconds'
  | 'maxAgeSeconds'
  | 'timeScale'
>;

/**
 * What is known of the earlier attempts at a job (not counting the one being judged). The job ledger keeps
 * these exactly, per generation of the job.
 */
export interface PriorAttempts {
  /** Attempts that ended in a 5xx, a timeout or connection error, or a persistent 401: the backoff budget. */
  readonly retryable: number;
  /** Plain 500 answers ("retry once"). */
  readonly serverErrors500: number;
  /** 429 answers: they set the wait, never the attempt budget. */
  readonly rateLimited: number;
  /** Whether an earlier attempt's outcome was unknown (it may have created the message). */
  readonly unknownOutcome: boolean;
}

/** No earlier attempt. */
export const FIRST_ATTEMPT: PriorAttempts = {
  retryable: 0,
  serverErrors500: 0,
  rateLimited: 0,
  unknownOutcome: false,
};

/** How one attempt counts towards the budgets in `PriorAttempts`. */
export interface AttemptClass {
  /** A request reached the messages endpoint (or may have: timeouts count). */
  readonly sent: boolean;
  readonly retryable: boolean;
  readonly serverError500: boolean;
  readonly rateLimited: boolean;
  /** It may have created the message without the relay learning so. */
  readonly unknownOutcome: boolean;
}

/**
 * Classifies an attempt's result for the ledger's counts, consistently with `decide`: 5xx, transport errors
 * and 401s spend the backoff budget (a 500 also the "retry once" budget); a 429 is only a wait; a 504 or a
 * transport failure on the messages endpoint leaves the outcome unknown.
 */
export function classifyAttempt(result: AttemptResult): AttemptClass {
  const sent = result.stage === 'send';
  if (result.kind === 'transport') {
    return { sent, retryable: true, serverError500: false, rateLimited: false, unknownOutcome: sent };
  }
  const { status } = result;
  return {
    sent,
    // At the token endpoint a 400 is bad credentials and a 2xx without a token an API fault: both back off.
    retryable:
      status >= 500 ||
      status === 401 ||
      (result.stage === 'token' && (status === 400 || (status >= 200 && status < 300))),
    serverError500: status === 500,
    rateLimited: status === 429,
    unknownOutcome: sent && status === 504,
  };
}

export interface DecideInput {
  readonly result: AttemptResult;
  /** What is known of the attempts before this one. */
  readonly prior: PriorAttempts;
  readonly job: SendJob;
  /** Epoch ms when the relay first received the job. */
  readonly firstReceivedAt: number;
  /** Epoch ms, now. */
  readonly now: number;
  readonly policy: RetryPolicy;
  /** Source of jitter in [0, 1); injectable for tests. */
  readonly random?: () => number;
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
 * Turns one attempt's result into the relay's outcome, exactly as design.md's table "What each response
 * does" says. Pure: no I/O, no clock, no randomness but the injected one.
 *
 * @example
 * decide({ result: { kind: 'response', stage: 'send', status: 503 }, prior: FIRST_ATTEMPT, job, firstReceivedAt, now, policy })
 * // => { type: 'retry', delaySeconds: 60..66, cause: 'server_error' }
 */
export function decide(input: DecideInput): Outcome {
  const { result } = input;
  if (result.kind === 'transport') {
    // A token request that timed out sent nothing, so its outcome is known: plain backoff.
    return result.stage === 'send' ? unknownOutcome(input) : backoff(input, 'server_error');
  }
  const { status } = result;
  if (status >= 200 && status < 300) {
    // A token answer without a usable token is an API fault: nothing was sent, so it is never a delivery.
    return result.stage === 'send'
      ? { type: 'delivered', uuid: result.uuid }
      : backoff(input, 'server_error');
  }
  switch (status) {
    case 400:
      // At the token endpoint a 400 means the credentials are malformed: the job itself is fine.
      return result.stage === 'token' ? backoff(input, 'unauthorized') : deadLetter('bad_request');
    case 401:
      // The client has already renewed the token and re-read the secret before this reaches the policy.
      return backoff(input, 'unauthorized');
    case 403:
      return deadLetter('forbidden');
    case 404:
      return deadLetter('not_found');
    case 409:
      // Only an earlier attempt with an unknown outcome can have created it; otherwise it is someone else's.
      return input.prior.unknownOutcome ? { type: 'delivered' } : { type: 'duplicate' };
    case 429:
      return rateLimited(input, result.retryAfterSeconds);
    case 500:
      return input.prior.serverErrors500 + 1 < input.policy.serverErrorMaxAttempts &&
        input.prior.retryable + 1 < input.policy.maxAttempts
        ? retry(input, input.policy.serverErrorRetrySeconds, 'server_error')
        : deadLetter('retries_exhausted');
    case 504:
      return result.stage === 'send' ? unknownOutcome(input) : backoff(input, 'server_error');
  }
  if (status >= 500 && status < 600) return backoff(input, 'server_error');
  // 405, other 4xx, and anything that is neither success nor error (a redirect from a wrong base URL).
  return deadLetter('client_error');
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
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const steps = policy.backoffSeconds;
  const base = steps[Math.min(Math.max(attempt, 1), steps.length) - 1] ?? 60;
  return scaled(base + random() * base * policy.backoffJitter, policy);
}

/** Seconds, scaled down for local runs, rounded up so that a scaled wait is never zero, capped for SQS. */
export function scaled(seconds: number, policy: Pick<RetryPolicy, 'timeScale'>): number {
  if (seconds <= 0) return 0;
  return Math.min(MAX_VISIBILITY_TIMEOUT_SECONDS, Math.ceil(seconds / policy.timeScale));
}

function unknownOutcome(input: DecideInput): Outcome {
  // Without eCourtDate's duplicate check a resend could reach the person twice: a human checks Console > Logs.
  if (input.job.message.skip_duplicate === true) return deadLetter('unknown_outcome');
  return backoff(input, 'unknown_outcome');
}

function backoff(input: DecideInput, cause: RetryCause): Outcome {
  const attempt = input.prior.retryable + 1;
  if (attempt >= input.policy.maxAttempts) return deadLetter('retries_exhausted');
  return withinDeadline(input, backoffDelaySeconds(attempt, input.policy, input.random), cause);
}

function rateLimited(input: DecideInput, hintSeconds: number | undefined): Outcome {
  // eCourtDate: wait at least a minute, then back off 1, 2, 4 minutes; honour a longer hint from the response.
  // 429s never exhaust the attempt budget: only the job's deadline ends them.
  const { policy } = input;
  const floor = Math.max(policy.rateLimitWaitSeconds, hintSeconds ?? 0);
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
  const deadline = jobDeadline(input.job, input.firstReceivedAt, input.policy);
  if (input.now + delaySeconds * 1000 >= deadline) return deadLetter('expired');
  return { type: 'retry', delaySeconds, cause };
}

function deadLetter(reason: DeadLetterReason): Outcome {
  return { type: 'dead_letter', reason };
}
