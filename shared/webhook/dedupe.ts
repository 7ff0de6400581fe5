import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type ConditionalWrite, conditionalWrite } from '#shared/clients/conditional-write.ts';
import { LEDGER_TABLE_KEY, LEDGER_TABLE_TTL_ATTRIBUTE } from '#shared/ledger/schema.ts';

/** Key prefix of a delivery's dedupe record in the ledger table: `webhook#<dedupe key>`. */
export const WEBHOOK_KEY_PREFIX = 'webhook#';

/** Rounds of `claim` before it concludes that other writers hold the delivery. */
const CLAIM_ROUNDS = 4;
/** Tries of a progress write (each with the SDK's own retries) before the answer goes without it. */
export const PROGRESS_WRITE_TRIES = 3;
/** Pause before the second try of a progress write, ms; doubled before each further one. */
const PROGRESS_RETRY_DELAY_MS = 200;

/** What `claim` found. */
export type Claim =
  /** This invocation holds the delivery: publish what is not in `published`, then `complete` or `release`. */
  | { readonly kind: 'claimed'; readonly token: string; readonly published: readonly string[] }
  /** The delivery was published before: answer 200, publish nothing. */
  | { readonly kind: 'done' }
  /** Another invocation holds it right now: answer non-2xx so eCourtDate comes back; it may still fail. */
  | { readonly kind: 'in_progress'; readonly retryAfterSeconds: number };

/**
 * How long a delivery's record is kept: until `until` (epoch seconds, the record's TTL), or for good (`forever`:
 * no TTL) for a delivery nothing dates (docs/webhooks.md, "Replays").
 */
export type Retention = { readonly until: number } | 'forever';

/** How one copy of a delivery wants its record kept (shared/webhook/freshness.ts, `judgeFreshness`). */
export interface CopyRetention {
  /** The retention of the record this copy creates, when it is the first. */
  readonly retention: Retention;
  /**
   * How long a record made by another copy of the delivery (same key, other times) must be kept for this copy's
   * own replays to meet it; `claim` extends such a record to it.
   */
  readonly cover: Retention;
}

/** What became of a progress write (`saveProgress`). */
export type ProgressWrite =
  /** The record holds what went out, under lease 0: a retry takes it over at once and publishes the rest. */
  | { readonly kind: 'saved' }
  /** The claim was someone else's by then (its lease ran out and it was taken over): nothing to record. */
  | { readonly kind: 'lost' }
  /** DynamoDB refused every try: the record still says what it said at the claim. */
  | { readonly kind: 'unsaved'; readonly errorName: string };

/** The dedupe record of one delivery (DynamoDB item `webhook#<key>`). Times are epoch ms except `expiration`. */
export interface DedupeRecord {
  readonly id: string;
  readonly webhook_state: 'pending' | 'done';
  /** Written by the claim that holds the delivery; random, so a claim recognises its own write. */
  readonly claim_token: string;
  /** Until when the claiming invocation may still be publishing; 0 once it gave the delivery back. */
  readonly lease_until: number;
  /** Keys of the events already on the bus (a partial `PutEvents` failure publishes some). */
  readonly published: readonly string[];
  readonly attempts: number;
  readonly first_received_at: number;
  readonly done_at?: number;
  /** TTL, epoch seconds; absent for a record kept for good. */
  readonly expiration?: number;
}

/**
 * Exactly one event per delivery, with nothing lost (docs/webhooks.md, "Deduplication"). A delivery is claimed
 * with a conditional write before anything is published and marked done only after `PutEvents` took every entry:
 * - the first delivery of a key creates the record (`attribute_not_exists`): it alone publishes;
 * - a concurrent copy finds it pending under a live lease and is answered non-2xx, so eCourtDate retries it
 *   later, in case the first one fails;
 * - a publish failure gives the delivery back (lease 0, with the events that did go out), so eCourtDate's retry
 *   takes it over (conditional on the claim token it read) and publishes only the rest;
 * - a copy that finds the record of another copy of the delivery (done, held, or taken over) extends its TTL to
 *   what the copy's own times need, when that is later (no TTL when the copy has no time), so a copy that differs
 *   in its time fields cannot be published again once the first copy's window has passed;
 * - a holder that died mid-way loses its lease when it runs out; the lease outlasts the function timeout, so a
 *   live holder is never taken over;
 * - once done, every copy is answered 200 and publishes nothing, until the record's TTL.
 * Every claim writes a random token, so a write the SDK resent after DynamoDB had applied it (its answer lost) is
 * recognised as this claim's own, not taken for another holder's.
 */
export class WebhookDedupe {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #ttlSeconds: number;
  readonly #leaseMs: number;
  readonly #now: () => number;

  /** `ttlSeconds`: the default retention of a record; `leaseMs`: how long a claim holds a delivery. */
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

  /**
   * Claims a delivery by its dedupe key; a new record is kept as `kept.retention` says (default: `ttlSeconds` from
   * now), and a record another copy made is kept at least as `kept.cover` says (default: as it is). DynamoDB
   * errors other than a lost condition are thrown.
   */
  async claim(key: string, kept?: CopyRetention): Promise<Claim> {
    const id = WEBHOOK_KEY_PREFIX + key;
    for (let round = 0; round < CLAIM_ROUNDS; round++) {
      const now = this.#now();
      const token = randomUUID();
      const created = await this.#create(id, token, now, kept?.retention);
      if (isMine(created, token)) return { kind: 'claimed', token, published: [] };
      const existing =
        (created.applied ? undefined : (created.old as DedupeRecord | undefined)) ?? (await this.#get(id));
      if (existing === undefined) continue;
      if (kept !== undefined) await this.#extend(id, existing, kept.cover);
      const held = this.#heldElsewhere(existing, now);
      if (held !== undefined) return held;
      if (isMine(await this.#takeOver(id, token, existing, now), token)) {
        return { kind: 'claimed', token, published: existing.published ?? [] };
      }
    }
    // Several writers in a row beat this one: it is certainly in progress elsewhere.
    return { kind: 'in_progress', retryAfterSeconds: Math.ceil(this.#leaseMs / 1000) };
  }

  /**
   * Marks a claimed delivery done. False when the claim was lost (the lease ran out and another invocation took
   * the delivery over): the caller has published anyway, and says so in its log. Throws DynamoDB's errors.
   */
  async complete(key: string, token: string, published: readonly string[]): Promise<boolean> {
    const done = await this.#update(WEBHOOK_KEY_PREFIX + key, {
      UpdateExpression:
        'SET webhook_state = :done, published = :published, done_at = :now, lease_until = :zero',
      ConditionExpression: 'claim_token = :token',
      ExpressionAttributeValues: {
        ':done': 'done',
        ':published': [...published],
        ':now': this.#now(),
        ':zero': 0,
        ':token': token,
      },
    });
    return done.applied;
  }

  /**
   * Gives a claimed delivery back after a failure, keeping what was published, so eCourtDate's retry can take
   * it over at once. False when the claim was lost (the record is already someone else's). Throws DynamoDB's
   * errors.
   */
  async release(key: string, token: string, published: readonly string[]): Promise<boolean> {
    const released = await this.#update(WEBHOOK_KEY_PREFIX + key, {
      UpdateExpression: 'SET lease_until = :zero, published = :published',
      ConditionExpression: 'claim_token = :token',
      ExpressionAttributeValues: { ':zero': 0, ':published': [...published], ':token': token },
    });
    return released.applied;
  }

  /**
   * `release`, tried `PROGRESS_WRITE_TRIES` times (200 ms, then 400 ms apart; each try with the SDK's own
   * retries): what went out must be on record before the answer, or eCourtDate's retry publishes it again
   * (docs/webhooks.md, "Deduplication"). Never throws.
   */
  async saveProgress(key: string, token: string, published: readonly string[]): Promise<ProgressWrite> {
    let errorName = 'UnknownError';
    for (let tried = 0; tried < PROGRESS_WRITE_TRIES; tried++) {
      if (tried > 0) await sleep(PROGRESS_RETRY_DELAY_MS * 2 ** (tried - 1));
      try {
        return (await this.release(key, token, published)) ? { kind: 'saved' } : { kind: 'lost' };
      } catch (error) {
        errorName = error instanceof Error ? error.name : typeof error;
      }
    }
    return { kind: 'unsaved', errorName };
  }

  /** The record of a delivery, or undefined. */
  async get(key: string): Promise<DedupeRecord | undefined> {
    return this.#get(WEBHOOK_KEY_PREFIX + key);
  }

  /** Creates the record of a delivery nobody holds: no record, or one past its TTL (deleted lazily). */
  #create(
    id: string,
    token: string,
    now: number,
    retention: Retention | undefined,
  ): Promise<ConditionalWrite> {
    const kept = retention ?? { until: Math.floor(now / 1000) + this.#ttlSeconds };
    const record: DedupeRecord = {
      id,
      webhook_state: 'pending',
      claim_token: token,
      lease_until: now + this.#leaseMs,
      published: [],
      attempts: 1,
      first_received_at: now,
      ...(kept === 'forever' ? {} : { expiration: kept.until }),
    };
    return conditionalWrite(() =>
      this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: record,
          ConditionExpression: 'attribute_not_exists(#id) OR #expiration < :nowSeconds',
          ExpressionAttributeNames: { '#id': LEDGER_TABLE_KEY, '#expiration': LEDGER_TABLE_TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':nowSeconds': Math.floor(now / 1000) },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    );
  }

  /**
   * Keeps the record `existing` (made by another copy) at least as `cover` says, with one conditional UpdateItem
   * when it would expire sooner: a later TTL, or none. The condition keeps a concurrent extension that went
   * further, and never creates an item. Throws DynamoDB's errors: the copy is then answered 503 and comes back.
   */
  async #extend(id: string, existing: DedupeRecord, cover: Retention): Promise<void> {
    if (existing.expiration === undefined) return;
    if (cover !== 'forever' && cover.until <= existing.expiration) return;
    await conditionalWrite(() =>
      this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [LEDGER_TABLE_KEY]: id },
          ExpressionAttributeNames: { '#expiration': LEDGER_TABLE_TTL_ATTRIBUTE },
          ...(cover === 'forever'
            ? { UpdateExpression: 'REMOVE #expiration', ConditionExpression: 'attribute_exists(#expiration)' }
            : {
                UpdateExpression: 'SET #expiration = :until',
                ConditionExpression: '#expiration < :until',
                ExpressionAttributeValues: { ':until': cover.until },
              }),
        }),
      ),
    );
  }

  /** `done` or `in_progress` when `existing` is not free to take over; undefined when it is. */
  #heldElsewhere(existing: DedupeRecord, now: number): Claim | undefined {
    if (existing.webhook_state === 'done') return { kind: 'done' };
    if (existing.lease_until <= now) return undefined;
    return {
      kind: 'in_progress',
      retryAfterSeconds: Math.max(1, Math.ceil((existing.lease_until - now) / 1000)),
    };
  }

  /** Takes over a pending record whose lease ran out, conditional on the claim it read. */
  #takeOver(id: string, token: string, existing: DedupeRecord, now: number): Promise<ConditionalWrite> {
    return this.#update(id, {
      UpdateExpression: 'SET claim_token = :token, lease_until = :lease, attempts = attempts + :one',
      ConditionExpression: 'claim_token = :previous AND webhook_state = :pending',
      ExpressionAttributeValues: {
        ':token': token,
        ':lease': now + this.#leaseMs,
        ':one': 1,
        ':previous': existing.claim_token,
        ':pending': 'pending',
      },
    });
  }

  async #get(id: string): Promise<DedupeRecord | undefined> {
    const out = await this.#doc.send(
      new GetCommand({ TableName: this.#table, Key: { [LEDGER_TABLE_KEY]: id }, ConsistentRead: true }),
    );
    return out.Item as DedupeRecord | undefined;
  }

  /** A conditional UpdateItem of the record `id` that returns the record when its condition fails. */
  #update(
    id: string,
    input: Pick<
      ConstructorParameters<typeof UpdateCommand>[0],
      'UpdateExpression' | 'ConditionExpression' | 'ExpressionAttributeValues'
    >,
  ): Promise<ConditionalWrite> {
    return conditionalWrite(() =>
      this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { [LEDGER_TABLE_KEY]: id },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          ...input,
        }),
      ),
    );
  }
}

/** True when a conditional write is this claim's: applied, or applied before and resent (the token is there). */
function isMine(write: ConditionalWrite, token: string): boolean {
  return write.applied || write.old?.claim_token === token;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
