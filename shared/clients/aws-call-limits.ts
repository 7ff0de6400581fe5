/**
 * The bounds of every AWS SDK call the sender makes, and the longest such a call can take. No SDK import here:
 * the CDK app derives the function timeout from these figures (`infra/config.ts`) without loading the clients.
 */

/**
 * How long one AWS SDK call of the sender (DynamoDB, SQS, Secrets Manager) may take, so that none can hang past
 * the function timeout. The SDK's own defaults have no connection or request timeout, a socket idle timeout of
 * minutes at best, 4 attempts for DynamoDB, and `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE` in the environment change
 * them. `createAwsClients` (`shared/clients/aws.ts`) applies these to every client, and the function timeout the
 * stack derives counts each call at its worst (`awsCallWorstCaseMs`; docs/deploy.md, "Stage settings").
 */
export interface AwsCallLimits {
  /** Opening the connection (TCP and TLS) may take this long, ms. */
  readonly connectionTimeoutMs: number;
  /** One attempt, from sending the request to the response headers, connection included, ms. */
  readonly requestTimeoutMs: number;
  /** The socket may stay idle this long at any point, the response body included, ms. */
  readonly socketTimeoutMs: number;
  /** Attempts per call, the first included, in the SDK's standard retry mode. */
  readonly maxAttempts: number;
}

/**
 * The deployed limits. Inside the region these calls answer in milliseconds; 2 s per attempt leaves room for a
 * slow moment and a TLS handshake, and a call that still fails is the record's failure, retried by the sender.
 */
export const AWS_CALL_LIMITS: AwsCallLimits = {
  connectionTimeoutMs: 1_000,
  requestTimeoutMs: 2_000,
  socketTimeoutMs: 2_000,
  maxAttempts: 3,
};

/**
 * The longest the SDK's standard retry mode waits before retry number `retry` (0 for the first), ms: a random
 * share of 2^retry x 1 s (the throttling base, the longest), capped at 20 s, plus up to 5 s more when the
 * service sends a Retry-After hint (@smithy/core, StandardRetryStrategy).
 */
function retryDelayWorstCaseMs(retry: number): number {
  return Math.min(2 ** retry * 1_000, 20_000) + 5_000;
}

/**
 * The longest one AWS SDK call can take under `limits`, ms: every attempt waits out its request timeout and then
 * a stalled body for the socket timeout, with the longest retry delay between attempts.
 *
 * @example
 * awsCallWorstCaseMs(AWS_CALL_LIMITS); // 3 x (2 s + 2 s) + (1 s + 5 s) + (2 s + 5 s) = 25 s
 */
export function awsCallWorstCaseMs(limits: AwsCallLimits = AWS_CALL_LIMITS): number {
  let total = limits.maxAttempts * (limits.requestTimeoutMs + limits.socketTimeoutMs);
  for (let retry = 0; retry < limits.maxAttempts - 1; retry++) total += retryDelayWorstCaseMs(retry);
  return total;
}
