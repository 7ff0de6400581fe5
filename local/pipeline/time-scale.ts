import { insideDuplicateWindow, type RetryPolicy, scaled } from '#shared/policy.ts';

/**
 * How far a local run can be sped up and still decide every job as the deployed relay would.
 *
 * `--time-scale N` divides every delay and window of the relay by N: backoffs, rate-limit waits, the 24 h
 * maximum age and eCourtDate's 30-minute duplicate window. It cannot divide what happens in real time: a request
 * that gets no answer still waits its whole HTTP timeout, SQS hides a record for whole seconds (every scaled
 * delay is rounded up), and a record held back by a 429 comes back a few real seconds apart from the others.
 * After an attempt whose outcome is unknown (a timeout, a 5xx), the relay resends only while the duplicate
 * window, less its safety margin, still holds (docs/contract.md, "What each response does"); beyond some N the
 * shrunken window no longer holds the retry chain, and jobs the deployed relay would retry until
 * `retries_exhausted` (or deliver) are dead-lettered `unknown_outcome` instead.
 */

/**
 * The real-time spread the sender adds to a record held back by a 429 (shared/policy.ts, `deferred`: up to 4 s,
 * so that held-back records do not return all at once). It is not divided by the time scale.
 */
const DEFERRAL_SPREAD_SECONDS = 4;

/** What one job may meet on its way, besides the backoffs. */
export interface ChainHazards {
  /** Attempts that end in an HTTP timeout: each waits the whole timeout in real time. */
  readonly timeouts: number;
  /** Times the job is held back because its instance waits out a 429: the rate-limit wait and the spread. */
  readonly deferrals: number;
}

/**
 * Whether the retry chain after an unknown outcome fits the scaled duplicate window: the first unknown attempt
 * starts at 0; the job meets its `hazards` first (the worst place for them), then each of the
 * `maxAttempts - 1` resends comes after its backoff (the step with its most jitter, scaled and rounded up to
 * whole seconds as the sender does). Every resend must pass the sender's own duplicate-window rule
 * (`insideDuplicateWindow`).
 */
export function retryChainFits(policy: RetryPolicy, hazards: ChainHazards): boolean {
  let elapsedMs =
    Math.min(hazards.timeouts, policy.maxAttempts - 1) * policy.httpTimeoutMs +
    hazards.deferrals * (scaled(policy.rateLimitWaitSeconds, policy) + DEFERRAL_SPREAD_SECONDS) * 1000;
  for (let attempt = 1; attempt < policy.maxAttempts; attempt++) {
    const step = policy.backoffSeconds[Math.min(attempt, policy.backoffSeconds.length) - 1] ?? 0;
    elapsedMs += scaled(step * (1 + policy.backoffJitter), policy) * 1000;
    if (!insideDuplicateWindow(0, elapsedMs, policy)) return false;
  }
  return true;
}

/**
 * The largest time scale, up to `max`, at which `retryChainFits` holds for every scale from 1 up. 0 when even
 * real time does not fit (the stage's own synth check prevents that).
 *
 * @param policy the local run's sender settings (its HTTP timeout: the demo's, or the deployed one)
 * @param hazards with the built-in simulator a job meets at most one timeout (its script hangs once); against a
 *   real API every attempt may time out; either way one 429 may hold it back
 * @example
 * faithfulTimeScaleLimit(config, { timeouts: 1, deferrals: 1 }); // 38 with the sender's defaults, 3 s timeout
 */
export function faithfulTimeScaleLimit(policy: RetryPolicy, hazards: ChainHazards, max = 100_000): number {
  let limit = 0;
  for (let scale = 1; scale <= max; scale++) {
    if (!retryChainFits({ ...policy, timeScale: scale }, hazards)) break;
    limit = scale;
  }
  return limit;
}
