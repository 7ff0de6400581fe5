import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { LEDGER_TABLE_KEY, LEDGER_TABLE_TTL_ATTRIBUTE } from '#shared/ledger/ledger.ts';

/** Key prefix of a delivery's dedupe record in the ledger table: `webhook#<dedupe key>`. */
export const WEBHOOK_KEY_PREFIX = 'webhook#';

/** What `claim` found. */
export type Claim =
  /** This invocation holds the delivery: publish what is not in `published`, then `complete` or `release`. */
  | { readonly kind: 'claimed'; readonly token: string; readonly published: readonly string[] }
  /** The delivery was published before: answer 200, publish nothing. */
  | { readonly kind: 'done' }
  /** Another invocation holds it right now: answer non-2xx so eCourtDate comes back; it may still fail. */
  | { readonly kind: 'in_progress'; readonly retryAfterSeconds: number };

/** The dedupe record of one delivery (DynamoDB item `webhook#<key>`). Times are epoch ms except `expiration`. */
export interface DedupeRecord {
  readonly id: string;
  readonly webhook_state: 'pending' | 'done';
  readonly claim_token: string;
  /** Until when the claiming invocation may still be publishing; 0 once it gave the delivery back. */
  readonly lease_until: number;
  /** Keys of the events already on the bus (a partial `PutEvents` failure publishes some). */
  readonly published: readonly string[];
  readonly attempts: number;
  readonly first_received_at: number;
  readonly done_at?: number;
  /** TTL, epoch seconds. */
  readonly expiration: number;
}

/**
 * Exactly one event per delivery, with nothing lost (docs/webhooks.md, "Deduplication"). A delivery is claimed
 * with a conditional write before anything is published and marked done only after `PutEvents` took every entry:
 * - the first delivery of a uuid creates the record (`attribute_not_exists`): it alone publishes;
 * - a concurrent copy finds it pending under a live lease and is answered non-2xx, so eCourtDate retries it
 *   later, in case the first one fails;
 * - a publish failure gives the delivery back (lease 0, with the events that did go out), so eCourtDate's retry
 *   takes it over (conditional on the claim token it read) and publishes only the rest;
 * - a holder that died mid-way loses its lease when it runs out; the lease outlasts the function timeout, so a
 *   live holder is never taken over;
 * - once done, every copy is answered 200 and publishes nothing, until the record's TTL.
 * The one gap: an instance that stops after `PutEvents` succeeded but before the done write leaves the delivery
 * to be published again by eCourtDate's retry; the event's `webhook_uuid` lets a consumer drop that copy.
 */
export class WebhookDedupe {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #ttlSeconds: number;
  readonly #leaseMs: number;
  readonly #now: () => number;

  constructor(options: {
    client: DynamoDBClient;
    tableName: string;
    ttlSeconds: number;
    leaseMs: number;
    now?: () => number;
  }) {
    this.#doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.#table = options.tableName;
    this.#ttlSeconds = options.ttlSeconds;
    this.#leaseMs = options.leaseMs;
    this.#now = options.now ?? Date.now;
  }

  /** Claims a delivery by its dedupe key. DynamoDB errors other than a lost condition are thrown. */
  async claim(key: string): Promise<Claim> {
    const id = WEBHOOK_KEY_PREFIX + key;
    // A few rounds at most: each lost condition means another writer moved the record on.
    for (let round = 0; round < 4; round++) {
      const now = this.#now();
      const token = randomUUID();
      const record: DedupeRecord = {
        id,
        webhook_state: 'pending',
        claim_token: token,
        lease_until: now + this.#leaseMs,
        published: [],
        attempts: 1,
        first_received_at: now,
        expiration: Math.floor(now / 1000) + this.#ttlSeconds,
      };
      // DynamoDB deletes expired items lazily: one past its TTL counts as gone.
      if (
        await this.#conditional(() =>
          this.#doc.send(
            new PutCommand({
              TableName: this.#table,
              Item: record,
              ConditionExpression: 'attribute_not_exists(#id) OR #expiration < :nowSeconds',
              ExpressionAttributeNames: {
                '#id': LEDGER_TABLE_KEY,
                '#expiration': LEDGER_TABLE_TTL_ATTRIBUTE,
              },
              ExpressionAttributeValues: { ':nowSeconds': Math.floor(now / 1000) },
            }),
          ),
        )
      ) {
        return { kind: 'claimed', token, published: [] };
      }
      const existing = await this.#get(id);
      if (existing === undefined) continue;
      if (existing.webhook_state === 'done') return { kind: 'done' };
      if (existing.lease_until > now) {
        return {
          kind: 'in_progress',
          retryAfterSeconds: Math.max(1, Math.ceil((existing.lease_until - now) / 1000)),
        };
      }
      const takenOver = await this.#conditional(() =>
        this.#update({
          TableName: this.#table,
          Key: { [LEDGER_TABLE_KEY]: id },
          UpdateExpression: 'SET claim_token = :token, lease_until = :lease, attempts = attempts + :one',
          ConditionExpression: 'claim_token = :previous AND webhook_state = :pending',
          ExpressionAttributeValues: {
            ':token': token,
            ':lease': now + this.#leaseMs,
            ':one': 1,
            ':previous': existing.claim_token,
            ':pending': 'pending',
          },
        }),
      );
      if (takenOver) return { kind: 'claimed', token, published: existing.published ?? [] };
    }
    // Several writers in a row beat this one: it is certainly in progress elsewhere.
    return { kind: 'in_progress', retryAfterSeconds: Math.ceil(this.#leaseMs / 1000) };
  }

  /**
   * Marks a claimed delivery done. False when the claim was lost (the lease ran out and another invocation took
   * the delivery over): the caller has published anyway, and says so in its log.
   */
  async complete(key: string, token: string, published: readonly string[]): Promise<boolean> {
    const now = this.#now();
    return this.#conditional(() =>
      this.#update({
        TableName: this.#table,
        Key: { [LEDGER_TABLE_KEY]: WEBHOOK_KEY_PREFIX + key },
        UpdateExpression:
          'SET webhook_state = :done, published = :published, done_at = :now, lease_until = :zero',
        ConditionExpression: 'claim_token = :token',
        ExpressionAttributeValues: {
          ':done': 'done',
          ':published': [...published],
          ':now': now,
          ':zero': 0,
          ':token': token,
        },
      }),
    );
  }

  /**
   * Gives a claimed delivery back after a failure, keeping what was published, so eCourtDate's retry can take
   * it over at once. A lost claim is ignored (the record is already someone else's).
   */
  async release(key: string, token: string, published: readonly string[]): Promise<void> {
    await this.#conditional(() =>
      this.#update({
        TableName: this.#table,
        Key: { [LEDGER_TABLE_KEY]: WEBHOOK_KEY_PREFIX + key },
        UpdateExpression: 'SET lease_until = :zero, published = :published',
        ConditionExpression: 'claim_token = :token',
        ExpressionAttributeValues: { ':zero': 0, ':published': [...published], ':token': token },
      }),
    );
  }

  /** The record of a delivery, or undefined. */
  async get(key: string): Promise<DedupeRecord | undefined> {
    return this.#get(WEBHOOK_KEY_PREFIX + key);
  }

  async #get(id: string): Promise<DedupeRecord | undefined> {
    const out = await this.#doc.send(
      new GetCommand({ TableName: this.#table, Key: { [LEDGER_TABLE_KEY]: id }, ConsistentRead: true }),
    );
    return out.Item as DedupeRecord | undefined;
  }

  #update(input: ConstructorParameters<typeof UpdateCommand>[0]): Promise<unknown> {
    return this.#doc.send(new UpdateCommand(input));
  }

  /** Runs a conditional write: true when it was applied, false when its condition did not hold. */
  async #conditional(write: () => Promise<unknown>): Promise<boolean> {
    try {
      await write();
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}
