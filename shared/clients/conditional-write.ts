import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';

/** What a conditional DynamoDB write came to; `T` is the write's own answer (the SDK command's output). */
export type ConditionalWrite<T = unknown> =
  | { readonly applied: true; readonly output: T }
  /**
   * The condition did not hold. `old` is the item that failed it (when the request asked for
   * `ReturnValuesOnConditionCheckFailure: 'ALL_OLD'` and there is one), so the caller can tell its own earlier
   * write, whose answer was lost, from another writer's.
   */
  | { readonly applied: false; readonly old: Readonly<Record<string, unknown>> | undefined };

/**
 * Runs a conditional PutItem or UpdateItem, for the job ledger, the circuit breaker, the shared rate budget and the
 * webhook receiver's dedupe alike. The SDK resends a request whose answer was lost (a reset connection, a timeout);
 * when DynamoDB had applied the first, the resend fails its condition against this very write. So a lost condition
 * is an answer, not an error: the item that failed it comes back (unmarshalled) for the caller to recognise (a
 * token it wrote). Any other DynamoDB error is thrown as the SDK threw it.
 *
 * @example
 * const put = await conditionalWrite(() => doc.send(new PutCommand({ ..., ReturnValuesOnConditionCheckFailure: 'ALL_OLD' })));
 * const mine = put.applied || put.old?.claim_token === token;
 */
export async function conditionalWrite<T>(write: () => Promise<T>): Promise<ConditionalWrite<T>> {
  try {
    return { applied: true, output: await write() };
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    return { applied: false, old: error.Item ? unmarshall(error.Item) : undefined };
  }
}
