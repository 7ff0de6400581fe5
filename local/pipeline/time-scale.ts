import { insideDuplicateWindow, type RetryPolicy, scaled } from '#shared/policy.ts';

/**
 * How far a local run can be sped up and still decide every job as the deployed relay would.
 *
 * `--time-scale N` divides every delay and window of the relay by N: backoffs, the 24 h maximum age and
 * eCourtDate's 30-minute duplicate window. It cannot divide what happens in real time: a request that gets no
 * answer still waits its whole HTTP timeout, and SQS hides a record for whole seconds. After an attempt whose
 * outcome is unknown (a timeout, a 504), the relay resends only while the duplicate window, less its safety
 * margin, still holds (docs/contract.md, "What each response does"); beyond some N the shrunken window no longer
 * holds the retry chain, and jobs the deployed relay would retry are dead-lettered `unknown_outcome` instead.
 */

/**
 * Whether the retry chain after an unknown outcome fits the scaled duplicate window: the first unknown attempt
 * starts at 0; each of the `maxAttempts - 1` resends comes after the previous attempt ran (a full HTTP timeout
 * for each of the first `timeouts` attempts, nothing for an answer) and its backoff waited (the step with its
 * most jitter, scaled and rounded up to whole seconds as the sender does); every resend must pass the sender's
 * own duplicate-window rule (`insideDuplicateWindow`).
 */
export function retryChainFits(policy: RetryPolicy, timeouts: number): boolean {
  let elapsedMs = 0;
  for (let attempt = 1; attempt < policy.maxAttempts; attempt++) {
    if (attempt <= timeouts) elapsedMs += policy.httpTimeoutMs;
    const step = policy.backoffSeconds[Math.min(attempt, policy.backoffSeconds.length) - 1] ?? 0;
    elapsedMs += scaled(step * (1 + policy.backoffJitter), policy) * 1000;
    if (!insideDuplicateWindow(0, elapsedMs, policy)) return false;
  }
  return true;
}

/**
 * The largest time scale, up to `max`, at which `retryChainFits` holds for every scale from 1 up: with the
 * built-in simulator a job meets at most one timeout (its script hangs once), against a real API every attempt
 * may time out. 0 when even real time does not fit (the stage's own synth check prevents that).
 *
 * @param policy the local run's sender settings (its HTTP timeout: the demo's, or the deployed one)
 * @param timeouts attempts per job that may end in a timeout
 * @example
 * faithfulTimeScaleLimit(config, 1); // 61 with the staging defaults and the demo's 3 s HTTP timeout
 */
export function faithfulTimeScaleLimit(policy: RetryPolicy, timeouts: number, max = 100_000): number {
  let limit = 0;
  for (let scale = 1; scale <= max; scale++) {
    if (!retryChainFits({ ...policy, timeScale: scale }, timeouts)) break;
    limit = scale;
  }
  return limit;
}
