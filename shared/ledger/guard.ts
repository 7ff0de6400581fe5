import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';

/** What the guard stores for a settled job and hands back when the job comes again. */
export interface SettledResult {
  readonly type: 'delivered' | 'duplicate';
  readonly uuid?: string | undefined;
  /** Set on a replay: the job had settled before and nothing was sent now. */
  readonly replayed?: boolean;
}

export interface GuardPayload {
  readonly job_id: string;
  readonly body_hash: string;
}

/**
 * The delivered / in-progress guard, on Powertools Idempotency: one run at a time per job id across all
 * instances (a second one gets `IdempotencyAlreadyInProgressError`, expiring with the invocation that
 * holds it), a settled job's result replayed without a send, and a different body under a settled id
 * refused with `IdempotencyValidationError`. Only settled jobs are stored: a run that retries or
 * dead-letters throws, which removes its record, so a redrive is sent again.
 */
export class SettledGuard {
  readonly config: IdempotencyConfig;
  readonly #store: DynamoDBPersistenceLayer;

  constructor(options: { client: DynamoDBClient; tableName: string; ttlSeconds: number }) {
    this.#store = new DynamoDBPersistenceLayer({
      tableName: options.tableName,
      awsSdkV3Client: options.client,
    });
    this.config = new IdempotencyConfig({
      eventKeyJmesPath: 'job_id',
      payloadValidationJmesPath: 'body_hash',
      expiresAfterSeconds: options.ttlSeconds,
      // Marks a replayed result, so the caller can tell an acknowledgement without a send from a delivery.
      responseHook: (response) => ({ ...(response as Record<string, never>), replayed: true }),
    });
  }

  /** Ties in-progress records to this invocation's deadline, so that a crashed run frees the job. */
  registerContext(context: Context): void {
    this.config.registerLambdaContext(context);
  }

  /** Runs `settle` for the job unless it is running elsewhere or has settled before. */
  run(payload: GuardPayload, settle: () => Promise<SettledResult>): Promise<SettledResult> {
    const guarded = makeIdempotent(async (_payload: GuardPayload) => settle(), {
      persistenceStore: this.#store,
      config: this.config,
    });
    return guarded(payload);
  }
}
