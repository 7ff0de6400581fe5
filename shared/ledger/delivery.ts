import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { conditionalWrite } from '#shared/clients/conditional-write.ts';
import { RelayError } from '#shared/errors.ts';
import { JOB_KEY_PREFIX, LEDGER_TABLE_KEY, LEDGER_TABLE_TTL_ATTRIBUTE } from '#shared/ledger/schema.ts';
import type { DeliveryStatus } from '#shared/webhook/payload.ts';

/**
 * Each job's delivery status, from eCourtDate's webhooks (docs/webhooks.md, "Delivery status per job"). A 201
 * means accepted, not delivered; the outbound message updates that follow are tied back to the job that sent the
 * message through a small index item per delivered job, `uuid#<the 201's uuid>` -> job id, and recorded on the
 * job's ledger entry `job#<job id>` as `delivery_status` with a bounded `delivery_history`. An update that
 * arrives before the index item is kept on that item as pending until the index is written, which moves it
 * onto the job: no status is lost to the gap between the 201 and the index write.
 */

/** Key prefix of the index item that names the job of an eCourtDate message: `uuid#<uuid>`. */
export const UUID_KEY_PREFIX = 'uuid#';

/** Rounds of a versioned read-modify-write before concurrent writers count as contention. */
const WRITE_ROUNDS = 5;

/** Entries kept in `delivery_history`; the oldest go first. */
export const DELIVERY_HISTORY_MAX = 20;

export type { DeliveryStatus };

/** One status update of a job's message, as recorded. Times are epoch ms. */
export interface DeliveryEvent {
  readonly status: DeliveryStatus;
  /** When it happened: the payload's own time when it carries one, else when the relay received it. */
  readonly at: number;
  readonly received_at: number;
  readonly webhook_uuid?: string;
  /**
   * eCourtDate's own word for the status (`undelivered`, `bounced`), when it differs from `status`; never its
   * free text, which may name a person (docs/webhooks.md, "What the receiver reads").
   */
  readonly raw_status?: string;
  readonly message_uuid?: string;
  /**
   * For an update without `webhook_uuid`: `sha256-<hex>` of the delivery's bytes (its dedupe key without the
   * status text), so a retried copy, dated by its own receipt when it names no time, is known for a repeat.
   */
  readonly body_digest?: string;
}

/** The delivery attributes of a job's ledger entry. */
export interface JobDelivery {
  /** The status of the newest update (by `at`, then by `received_at`). */
  readonly delivery_status?: DeliveryStatus;
  readonly delivery_status_at?: number;
  /** Oldest first, at most `DELIVERY_HISTORY_MAX`. */
  readonly delivery_history?: readonly DeliveryEvent[];
  /** Bumped by every delivery write; each write is conditional on the value it read. */
  readonly delivery_version?: number;
}

export type RecordResult =
  | { readonly kind: 'recorded'; readonly status: DeliveryStatus; readonly history: readonly DeliveryEvent[] }
  /** The same update (same webhook and status, or same bytes) was recorded before: a retry of a delivery. */
  | { readonly kind: 'unchanged'; readonly status: DeliveryStatus | undefined }
  /** No ledger entry for the job (expired, or never there). */
  | { readonly kind: 'no_job' };

/** What the uuid index item of one eCourtDate message holds. */
export interface UuidIndexItem {
  /** The relay's job that created the message; undefined until the sender has written the index. */
  readonly jobId: string | undefined;
  /** Updates that arrived before the index, oldest first; `putUuidIndex` moves them onto the job. */
  readonly pending: readonly DeliveryEvent[];
  /** Bumped by every pending write; each is conditional on the value it read (0: none yet). */
  readonly pendingVersion: number;
}

/** What `keepPendingStatus` did with an update. */
export type KeepResult =
  /** Kept on the index item (or already there) until the sender writes the index. */
  | { readonly kind: 'kept' }
  /** The index was written meanwhile: record the update on `jobId` instead. */
  | { readonly kind: 'indexed'; readonly jobId: string };

/** What `putUuidIndex` did besides writing the index. */
export interface UuidIndexResult {
  /** Updates that had arrived before the index and are now on the job (recorded, or there already). */
  readonly merged: readonly DeliveryEvent[];
  /** The job's delivery status after the merge; undefined when nothing was merged. */
  readonly status: DeliveryStatus | undefined;
}

/** A job's delivery status kept changing under concurrent writers for every round of a write. */
export class DeliveryContentionError extends RelayError {}

/**
 * Adds an update to a history: sorted by `at` then `received_at`, without repeating an update already there
 * (same webhook uuid and status; without a uuid, same status and the same time or the same bytes, `body_digest`:
 * a retried copy that names no time is dated by its own receipt), cut to the newest `DELIVERY_HISTORY_MAX`.
 * Updates can arrive out of order (eCourtDate retries a delivery it could not hand over), so the status is that of
 * the newest by time, not the last to arrive. Returns undefined when the update was already recorded.
 *
 * @example
 * addDeliveryEvent([], { status: 'delivered', at: 2, received_at: 3, webhook_uuid: 'w2' })?.status === 'delivered'
 */
export function addDeliveryEvent(
  history: readonly DeliveryEvent[],
  update: DeliveryEvent,
): { readonly status: DeliveryStatus; readonly at: number; readonly history: DeliveryEvent[] } | undefined {
  const repeat = history.some((event) =>
    update.webhook_uuid !== undefined
      ? event.webhook_uuid === update.webhook_uuid && event.status === update.status
      : event.webhook_uuid === undefined &&
        event.status === update.status &&
        (event.at === update.at ||
          (update.body_digest !== undefined && event.body_digest === update.body_digest)),
  );
  if (repeat) return undefined;
  const next = [...history, update]
    .sort((a, b) => a.at - b.at || a.received_at - b.received_at)
    .slice(-DELIVERY_HISTORY_MAX);
  const newest = next[next.length - 1] ?? update;
  return { status: newest.status, at: newest.at, history: next };
}

/**
 * The webhook side of the ledger table: the uuid index (with the updates kept before it) and each job's delivery
 * status. Item operations by key only (GetItem, UpdateItem), like the rest of the ledger; every write that
 * another writer could race is conditional.
 */
export class DeliveryLedger {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #ttlSeconds: number;
  readonly #now: () => number;

  /** `ttlSeconds`: how long an index item (or an item of pending updates) is kept after its last write. */
  constructor(options: {
    client: DynamoDBClient;
    tableName: string;
    ttlSeconds: number;
    now?: () => number;
  }) {
    this.#doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.#table = options.tableName;
    this.#ttlSeconds = options.ttlSeconds;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Records which job created the eCourtDate message `uuid` (the uuid of the 201), and moves onto the job's
   * entry any update that arrived before (kept by `keepPendingStatus`). The sender calls it when a job is
   * delivered and webhooks are on, right after it settles the job. Idempotent; throws DynamoDB's errors (the
   * sender then retries the record, and the next call merges what this one did not), and
   * `DeliveryContentionError`.
   *
   * When nothing is pending: one PutItem (one write unit), conditional on no update being pending. Otherwise the
   * failed condition returns the item; the pending updates are recorded on the job in one versioned write, then
   * one UpdateItem sets `job_id` and clears them, conditional on the pending version merged (an update kept
   * meanwhile makes it merge again). Once `job_id` is on the item, no update is kept there any more (that write
   * is conditional on its absence), so nothing can be left behind.
   */
  async putUuidIndex(uuid: string, jobId: string): Promise<UuidIndexResult> {
    const key = { [LEDGER_TABLE_KEY]: UUID_KEY_PREFIX + uuid };
    const now = this.#now();
    const expiration = this.#expiration(now);
    let write = await conditionalWrite(() =>
      this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: { ...key, job_id: jobId, created_at: now, [LEDGER_TABLE_TTL_ATTRIBUTE]: expiration },
          ConditionExpression: 'attribute_not_exists(pending_statuses)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    );
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      if (write.applied) return { merged: [], status: undefined };
      const item = write.old === undefined ? await this.readUuidIndex(uuid) : indexItemOf(write.old);
      const pending = item?.pending ?? [];
      const recorded = pending.length === 0 ? undefined : await this.#record(jobId, pending);
      // No entry for the job (it expired): the updates stay pending rather than vanish.
      if (recorded?.kind === 'no_job') return { merged: [], status: undefined };
      write = await conditionalWrite(() =>
        this.#doc.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: key,
            UpdateExpression:
              'SET job_id = :job, created_at = :now, #expiration = :expiration REMOVE pending_statuses',
            ConditionExpression: 'attribute_not_exists(pending_statuses) OR pending_version = :version',
            ExpressionAttributeNames: { '#expiration': LEDGER_TABLE_TTL_ATTRIBUTE },
            ExpressionAttributeValues: {
              ':job': jobId,
              ':now': now,
              ':expiration': expiration,
              ':version': item?.pendingVersion ?? 0,
            },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        ),
      );
      if (write.applied) return { merged: pending, status: recorded?.status };
    }
    throw new DeliveryContentionError(
      `the pending updates of message ${uuid} kept changing under the index write`,
    );
  }

  /** The job that created the eCourtDate message `uuid`, or undefined when the relay did not (or not yet). */
  async findJobIdByUuid(uuid: string): Promise<string | undefined> {
    return (await this.readUuidIndex(uuid))?.jobId;
  }

  /** The uuid index item of the eCourtDate message `uuid` (strongly consistent), or undefined when none. */
  async readUuidIndex(uuid: string): Promise<UuidIndexItem | undefined> {
    const out = await this.#doc.send(
      new GetCommand({
        TableName: this.#table,
        Key: { [LEDGER_TABLE_KEY]: UUID_KEY_PREFIX + uuid },
        // Written by the sender moments before the first status update can arrive.
        ConsistentRead: true,
        ProjectionExpression: 'job_id, pending_statuses, pending_version',
      }),
    );
    return out.Item === undefined ? undefined : indexItemOf(out.Item);
  }

  /**
   * Keeps an update of the message `uuid` on its index item until the sender writes the index (`putUuidIndex`
   * then moves it onto the job). Conditional on the index not being there and on the pending version read, so
   * neither the sender nor a concurrent update is overwritten; a write of its own that the SDK resent is
   * recognised (the update is on the item). `known`: the item as just read, to spare a read. Returns `indexed`
   * when the index turned out to be there. Throws DynamoDB's errors, and `DeliveryContentionError`.
   */
  async keepPendingStatus(uuid: string, update: DeliveryEvent, known?: UuidIndexItem): Promise<KeepResult> {
    let item = known ?? (await this.readUuidIndex(uuid));
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      if (item?.jobId !== undefined) return { kind: 'indexed', jobId: item.jobId };
      const next = addDeliveryEvent(item?.pending ?? [], update);
      if (next === undefined) return { kind: 'kept' };
      const version = item?.pendingVersion ?? 0;
      const now = this.#now();
      const write = await conditionalWrite(() =>
        this.#doc.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: { [LEDGER_TABLE_KEY]: UUID_KEY_PREFIX + uuid },
            UpdateExpression:
              'SET pending_statuses = :pending, pending_version = :next, #expiration = :expiration',
            ConditionExpression: `attribute_not_exists(job_id) AND ${
              version === 0 ? 'attribute_not_exists(pending_version)' : 'pending_version = :version'
            }`,
            ExpressionAttributeNames: { '#expiration': LEDGER_TABLE_TTL_ATTRIBUTE },
            ExpressionAttributeValues: {
              ':pending': next.history,
              ':next': version + 1,
              ':expiration': this.#expiration(now),
              ...(version === 0 ? {} : { ':version': version }),
            },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        ),
      );
      if (write.applied) return { kind: 'kept' };
      item = write.old === undefined ? await this.readUuidIndex(uuid) : indexItemOf(write.old);
    }
    throw new DeliveryContentionError(
      `the pending updates of message ${uuid} kept changing under concurrent writes`,
    );
  }

  /**
   * Records a status update on the job's ledger entry (`job#<jobId>`): `delivery_status`, `delivery_status_at`
   * and `delivery_history`, with an UpdateItem that touches nothing else of the entry and is conditional on the
   * entry existing and on the delivery version read (concurrent updates of one job retry). Repeating an update
   * (a retried delivery, or a write the SDK resent) changes nothing. Throws DynamoDB's errors, and
   * `DeliveryContentionError`.
   */
  async recordDeliveryStatus(jobId: string, update: DeliveryEvent): Promise<RecordResult> {
    return this.#record(jobId, [update]);
  }

  /** A job's delivery status and history (for `relay job ID`), or undefined when the job has no entry. */
  async getDelivery(jobId: string): Promise<JobDelivery | undefined> {
    const out = await this.#doc.send(
      new GetCommand({
        TableName: this.#table,
        Key: { [LEDGER_TABLE_KEY]: JOB_KEY_PREFIX + jobId },
        ConsistentRead: true,
        ProjectionExpression: '#id, delivery_status, delivery_status_at, delivery_history, delivery_version',
        ExpressionAttributeNames: { '#id': LEDGER_TABLE_KEY },
      }),
    );
    if (out.Item === undefined) return undefined;
    const { delivery_status, delivery_status_at, delivery_history, delivery_version } =
      out.Item as JobDelivery;
    return {
      delivery_status,
      delivery_status_at,
      delivery_history: delivery_history ?? [],
      delivery_version,
    };
  }

  /** Adds `updates` to the job's history in one versioned write (see `recordDeliveryStatus`). */
  async #record(jobId: string, updates: readonly DeliveryEvent[]): Promise<RecordResult> {
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      const current = await this.#readDelivery(jobId);
      if (current === undefined) return { kind: 'no_job' };
      const next = updates.reduce<ReturnType<typeof addDeliveryEvent>>(
        (acc, update) => addDeliveryEvent(acc?.history ?? current.delivery_history ?? [], update) ?? acc,
        undefined,
      );
      if (next === undefined) return { kind: 'unchanged', status: current.delivery_status };
      const version = current.delivery_version ?? 0;
      const write = await conditionalWrite(() =>
        this.#doc.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: { [LEDGER_TABLE_KEY]: JOB_KEY_PREFIX + jobId },
            UpdateExpression:
              'SET delivery_status = :status, delivery_status_at = :at, delivery_history = :history, ' +
              'delivery_version = :next, delivery_updated_at = :now',
            ConditionExpression:
              'attribute_exists(#id) AND (attribute_not_exists(delivery_version) OR delivery_version = :version)',
            ExpressionAttributeNames: { '#id': LEDGER_TABLE_KEY },
            ExpressionAttributeValues: {
              ':status': next.status,
              ':at': next.at,
              ':history': next.history,
              ':next': version + 1,
              ':version': version,
              ':now': this.#now(),
            },
          }),
        ),
      );
      if (write.applied) return { kind: 'recorded', status: next.status, history: next.history };
    }
    throw new DeliveryContentionError(
      `the delivery status of job ${jobId} kept changing under concurrent updates`,
    );
  }

  async #readDelivery(jobId: string): Promise<JobDelivery | undefined> {
    const out = await this.#doc.send(
      new GetCommand({
        TableName: this.#table,
        Key: { [LEDGER_TABLE_KEY]: JOB_KEY_PREFIX + jobId },
        ConsistentRead: true,
        ProjectionExpression: '#id, delivery_status, delivery_history, delivery_version',
        ExpressionAttributeNames: { '#id': LEDGER_TABLE_KEY },
      }),
    );
    return out.Item as JobDelivery | undefined;
  }

  /** The TTL of an item written at `now` (epoch ms), epoch seconds. */
  #expiration(now: number): number {
    return Math.floor(now / 1000) + this.#ttlSeconds;
  }
}

/** The uuid index item as stored (attributes `job_id`, `pending_statuses`, `pending_version`). */
function indexItemOf(item: Readonly<Record<string, unknown>> | undefined): UuidIndexItem {
  const jobId = item?.job_id;
  const pending = item?.pending_statuses;
  const version = item?.pending_version;
  return {
    jobId: typeof jobId === 'string' ? jobId : undefined,
    pending: Array.isArray(pending) ? (pending as DeliveryEvent[]) : [],
    pendingVersion: typeof version === 'number' ? version : 0,
  };
}
