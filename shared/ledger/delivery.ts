import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { LEDGER_TABLE_KEY, LEDGER_TABLE_TTL_ATTRIBUTE } from '#shared/ledger/ledger.ts';
import type { DeliveryStatus } from '#shared/webhook/payload.ts';

/**
 * Each job's delivery status, from eCourtDate's webhooks (docs/webhooks.md, "Delivery status per job"). A 201
 * means accepted, not delivered; the outbound message updates that follow are tied back to the job that sent the
 * message through a small index item per delivered job, `uuid#<the 201's uuid>` -> job id, and recorded on the
 * job's ledger entry `job#<job id>` as `delivery_status` with a bounded `delivery_history`.
 */

/** Key prefix of the index item that names the job of an eCourtDate message: `uuid#<uuid>`. */
export const UUID_KEY_PREFIX = 'uuid#';
const JOB_KEY_PREFIX = 'job#';

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
  /** eCourtDate's spelling, when it differs from `status`. */
  readonly raw_status?: string;
  readonly message_uuid?: string;
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
  /** The same update (same webhook and status) was recorded before: a retry of a delivery. */
  | { readonly kind: 'unchanged'; readonly status: DeliveryStatus | undefined }
  /** No ledger entry for the job (expired, or never there). */
  | { readonly kind: 'no_job' };

/**
 * Adds an update to a history: sorted by `at` then `received_at`, without repeating an update already there
 * (same webhook uuid and status), cut to the newest `DELIVERY_HISTORY_MAX`. Updates can arrive out of order
 * (eCourtDate retries a delivery it could not hand over), so the status is that of the newest by time, not the
 * last to arrive. Returns undefined when the update was already recorded.
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
      : event.webhook_uuid === undefined && event.status === update.status && event.at === update.at,
  );
  if (repeat) return undefined;
  const next = [...history, update]
    .sort((a, b) => a.at - b.at || a.received_at - b.received_at)
    .slice(-DELIVERY_HISTORY_MAX);
  const newest = next[next.length - 1] ?? update;
  return { status: newest.status, at: newest.at, history: next };
}

/**
 * The webhook side of the ledger table: the uuid index and each job's delivery status. Item operations by key
 * only (GetItem, PutItem, UpdateItem), like the rest of the ledger.
 */
export class DeliveryLedger {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #ttlSeconds: number;
  readonly #now: () => number;

  /** `ttlSeconds`: how long an index item is kept (the job ledger's TTL). */
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
   * Records which job created the eCourtDate message `uuid` (the uuid of the 201): one PutItem of a small item,
   * one write unit. The sender calls it when a job is delivered and webhooks are on, before it settles the job,
   * so that a status update arriving right after the 201 finds the job. Idempotent.
   */
  async putUuidIndex(uuid: string, jobId: string): Promise<void> {
    const now = this.#now();
    await this.#doc.send(
      new PutCommand({
        TableName: this.#table,
        Item: {
          [LEDGER_TABLE_KEY]: UUID_KEY_PREFIX + uuid,
          job_id: jobId,
          created_at: now,
          [LEDGER_TABLE_TTL_ATTRIBUTE]: Math.floor(now / 1000) + this.#ttlSeconds,
        },
      }),
    );
  }

  /** The job that created the eCourtDate message `uuid`, or undefined when the relay did not. */
  async findJobIdByUuid(uuid: string): Promise<string | undefined> {
    const out = await this.#doc.send(
      new GetCommand({
        TableName: this.#table,
        Key: { [LEDGER_TABLE_KEY]: UUID_KEY_PREFIX + uuid },
        // Written by the sender moments before the first status update can arrive.
        ConsistentRead: true,
        ProjectionExpression: 'job_id',
      }),
    );
    const jobId = out.Item?.job_id;
    return typeof jobId === 'string' ? jobId : undefined;
  }

  /**
   * Records a status update on the job's ledger entry (`job#<jobId>`): `delivery_status`, `delivery_status_at`
   * and `delivery_history`, with an UpdateItem that touches nothing else of the entry and is conditional on the
   * entry existing and on the delivery version read (concurrent updates of one job retry). Repeating an update
   * (a retried delivery) changes nothing.
   */
  async recordDeliveryStatus(jobId: string, update: DeliveryEvent): Promise<RecordResult> {
    const key = { [LEDGER_TABLE_KEY]: JOB_KEY_PREFIX + jobId };
    for (let round = 0; round < 5; round++) {
      const out = await this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: key,
          ConsistentRead: true,
          ProjectionExpression: '#id, delivery_status, delivery_history, delivery_version',
          ExpressionAttributeNames: { '#id': LEDGER_TABLE_KEY },
        }),
      );
      if (out.Item === undefined) return { kind: 'no_job' };
      const current = out.Item as JobDelivery;
      const next = addDeliveryEvent(current.delivery_history ?? [], update);
      if (next === undefined) return { kind: 'unchanged', status: current.delivery_status };
      const version = current.delivery_version ?? 0;
      try {
        await this.#doc.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: key,
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
        );
        return { kind: 'recorded', status: next.status, history: next.history };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    }
    throw new Error(`the delivery status of job ${jobId} kept changing under concurrent updates`);
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
}
