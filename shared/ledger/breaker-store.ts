import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { conditionalWrite } from '#shared/clients/conditional-write.ts';
import {
  type BreakerReason,
  type BreakerStore,
  type BreakerView,
  CLOSED,
  type OpenBreaker,
} from '#shared/ecourtdate/breaker.ts';
import { API_CLIENT_ITEM_ID, LEDGER_TABLE_KEY } from '#shared/ledger/schema.ts';

/** The breaker's attributes on the `api-client` item (docs/ledger.md, "The api-client item"). */
const ATTRIBUTES = [
  'breaker_state',
  'breaker_reason',
  'breaker_opened_at',
  'breaker_probe_at',
  'breaker_probe_step',
] as const;

/**
 * The breaker's state as the `api-client` item holds it (pure): `closed` when the item or its attributes are
 * missing or malformed, so that a damaged item never holds jobs.
 */
export function breakerViewOf(item: Readonly<Record<string, unknown>> | undefined): BreakerView {
  if (item?.breaker_state !== 'open') return CLOSED;
  const reason = item.breaker_reason;
  const openedAt = item.breaker_opened_at;
  const probeAt = item.breaker_probe_at;
  const probeStep = item.breaker_probe_step;
  if (
    (reason !== 'unavailable' && reason !== 'auth') ||
    typeof openedAt !== 'number' ||
    typeof probeAt !== 'number' ||
    typeof probeStep !== 'number'
  ) {
    return CLOSED;
  }
  return { state: 'open', reason: reason as BreakerReason, openedAt, probeAt, probeStep };
}

/**
 * The breaker's shared state in the stage's ledger table: the `breaker_*` attributes of the `api-client` item,
 * each write conditional (`BreakerStore`). One GetItem or one UpdateItem per call; a refused condition returns the
 * item as it is (`ReturnValuesOnConditionCheckFailure`), read again when DynamoDB leaves it out. Throws DynamoDB's
 * errors.
 */
export class DynamoBreakerStore implements BreakerStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  readonly #callTimeoutMs: number;

  /**
   * @param options.callTimeoutMs each call is abandoned after this long, ms (it then throws an AbortError): the
   *   breaker's calls come before a job's waits, so the sender bounds them (`API_CLIENT_CALL_TIMEOUT_MS`).
   *   @default no limit
   */
  constructor(options: {
    readonly client: DynamoDBClient;
    readonly tableName: string;
    readonly callTimeoutMs?: number;
  }) {
    this.#doc = DynamoDBDocumentClient.from(options.client);
    this.#table = options.tableName;
    this.#callTimeoutMs = options.callTimeoutMs ?? Number.POSITIVE_INFINITY;
  }

  #signal(): { abortSignal?: AbortSignal } {
    return Number.isFinite(this.#callTimeoutMs)
      ? { abortSignal: AbortSignal.timeout(this.#callTimeoutMs) }
      : {};
  }

  async read(): Promise<BreakerView> {
    const { Item } = await this.#doc.send(
      new GetCommand({
        TableName: this.#table,
        Key: KEY,
        ConsistentRead: true,
        ProjectionExpression: ATTRIBUTES.join(', '),
      }),
      this.#signal(),
    );
    return breakerViewOf(Item);
  }

  async open(view: OpenBreaker): Promise<BreakerView> {
    return this.#write(view, {
      UpdateExpression:
        'SET breaker_state = :open, breaker_reason = :reason, breaker_opened_at = :opened, ' +
        'breaker_probe_at = :probe, breaker_probe_step = :step',
      // Unless a whole open state is there: an item marked open with attributes missing or malformed reads as
      // closed (`breakerViewOf`), so it must not refuse an opening either. Nor an opening decided before the
      // probe that last closed it: its failures were those of the outage that probe saw end.
      ConditionExpression:
        'NOT (breaker_state = :open AND breaker_reason IN (:unavailable, :auth) AND ' +
        'attribute_type(breaker_opened_at, :number) AND attribute_type(breaker_probe_at, :number) AND ' +
        'attribute_type(breaker_probe_step, :number)) AND ' +
        '(attribute_not_exists(breaker_closed_at) OR breaker_closed_at < :opened)',
      ExpressionAttributeValues: {
        ':open': 'open',
        ':unavailable': 'unavailable',
        ':auth': 'auth',
        ':number': 'N',
        ':reason': view.reason,
        ':opened': view.openedAt,
        ':probe': view.probeAt,
        ':step': view.probeStep,
      },
    });
  }

  async claimProbe(seen: OpenBreaker, next: OpenBreaker): Promise<{ claimed: boolean; view: BreakerView }> {
    const view = await this.#write(next, {
      UpdateExpression: 'SET breaker_probe_at = :next, breaker_probe_step = :step',
      ConditionExpression:
        'breaker_state = :open AND breaker_opened_at = :opened AND breaker_probe_at = :seen',
      ExpressionAttributeValues: {
        ':open': 'open',
        ':opened': seen.openedAt,
        ':seen': seen.probeAt,
        ':next': next.probeAt,
        ':step': next.probeStep,
      },
    });
    return { claimed: view === next, view };
  }

  async close(seen: OpenBreaker, now: number): Promise<BreakerView> {
    return this.#write(CLOSED, {
      UpdateExpression: 'SET breaker_state = :closed, breaker_closed_at = :now',
      ConditionExpression: 'breaker_state = :open AND breaker_opened_at = :opened',
      ExpressionAttributeValues: {
        ':open': 'open',
        ':closed': 'closed',
        ':opened': seen.openedAt,
        ':now': now,
      },
    });
  }

  /** One conditional UpdateItem: `written` when applied, else the state the item holds. */
  async #write(
    written: BreakerView,
    update: Pick<
      ConstructorParameters<typeof UpdateCommand>[0],
      'UpdateExpression' | 'ConditionExpression' | 'ExpressionAttributeValues'
    >,
  ): Promise<BreakerView> {
    const write = await conditionalWrite(() =>
      this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: KEY,
          ...update,
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
        this.#signal(),
      ),
    );
    if (write.applied) return written;
    return write.old ? breakerViewOf(write.old) : this.read();
  }
}

const KEY = { [LEDGER_TABLE_KEY]: API_CLIENT_ITEM_ID };
