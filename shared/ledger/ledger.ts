import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { conditionalWrite } from '#shared/clients/conditional-write.ts';
import {
  appendHistory,
  type ClaimInput,
  firstEntry,
  type GateVerdict,
  gate,
  type LedgerEntry,
  type LedgerStatus,
} from '#shared/ledger/gate.ts';
import { JOB_KEY_PREFIX } from '#shared/ledger/schema.ts';
import type { Outcome } from '#shared/outcome.ts';
import type { AttemptClass } from '#shared/policy.ts';

export type { LedgerEntry, LedgerEvent, LedgerStatus } from '#shared/ledger/gate.ts';
export { LEDGER_HISTORY_MAX, priorOf } from '#shared/ledger/gate.ts';
export { LEDGER_TABLE_KEY, LEDGER_TABLE_TTL_ATTRIBUTE } from '#shared/ledger/schema.ts';

/** What a claim came to: the attempt is ours, or the gate's verdict, or another writer won the race. */
export type ClaimResult =
  | { readonly kind: 'claimed'; readonly entry: LedgerEntry; readonly lost: boolean }
  | Exclude<GateVerdict, { kind: 'claim' }>
  /** Another writer changed the entry at the same moment: try again shortly. */
  | { readonly kind: 'busy' };

export interface SettleInput {
  /** The entry as the claim wrote it (or as found, for an answer carried by a copy). */
  readonly entry: LedgerEntry;
  /**
   * This write's token: random, new for every write, so that the write recognises itself (see `write_token`).
   * @default a new random UUID
   */
  readonly token?: string | undefined;
  /** For a dead letter: its redrive token, also put on the dead-letter message (`dead_letter_id`). */
  readonly deadLetterToken?: string | undefined;
  /** Epoch ms. */
  readonly now: number;
  /** How the attempt counts; undefined when nothing was attempted (deferred, expired, blocked). */
  readonly attempt?: AttemptClass | undefined;
  /** HTTP status, `timeout`, `connection`, `secret`, `lost`; undefined keeps the last one. */
  readonly lastStatus?: string | undefined;
  readonly outcome: Outcome;
  /** For dead-lettered jobs: the send-queue message id that was dead-lettered. */
  readonly messageId?: string | undefined;
  readonly detail?: string | undefined;
  /** For a dead letter: the redacted excerpt of eCourtDate's last answer, kept for its copies' dead letters. */
  readonly excerpt?: string | undefined;
  /**
   * For a settled job (not a retry): the token of the `eCourtDate Job Settled` event's first publication, held by
   * this writer (see `event_token`); undefined keeps the entry's (a settle whose event is a replay).
   */
  readonly eventToken?: string | undefined;
}

/** What an event claim came to: this copy publishes first, another holder took it, or the entry changed. */
export type EventClaimResult = 'claimed' | 'taken' | 'busy';

/** What a settle came to: written (by this call, or by its first try whose answer was lost), or a conflict. */
export type SettleResult =
  | { readonly kind: 'written'; readonly entry: LedgerEntry }
  /** The entry changed under the open attempt: another writer took over a lease this invocation still held. */
  | { readonly kind: 'conflict' };

/**
 * The job ledger: one DynamoDB item per job, and the one gate every record passes (docs/ledger.md).
 * A first attempt costs two requests, both conditional writes: the claim (`attribute_not_exists`) before the
 * request and the settle after it. A later attempt costs three: the claim that finds the entry (which comes back
 * with the failed condition, `ReturnValuesOnConditionCheckFailure`), the claim conditional on the version it
 * read, and the settle. Every write is conditional, so two writers never both win.
 */
export class JobLedger {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #ttlSeconds: number;

  constructor(options: { client: DynamoDBClient; tableName: string; ttlSeconds: number }) {
    this.#doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.#table = options.tableName;
    this.#ttlSeconds = options.ttlSeconds;
  }

  /** The entry of a job, or undefined (a consistent read; the operator CLI's `relay job ID`). */
  async get(jobId: string): Promise<LedgerEntry | undefined> {
    const out = await this.#doc.send(
      new GetCommand({ TableName: this.#table, Key: { id: JOB_KEY_PREFIX + jobId }, ConsistentRead: true }),
    );
    return out.Item as LedgerEntry | undefined;
  }

  /**
   * Claims the job's next attempt, or says why this record may not make one; a `conflict` (another body under the
   * id) is first noted on the entry (`#noteRefusal`), and comes back with the entry as noted. Throws the SDK's error when
   * DynamoDB fails: nothing was claimed then, and nothing sent. A claim whose write DynamoDB applied but whose
   * answer was lost (the SDK's retry then fails the condition) is still this claim's: it finds its own token.
   */
  async claim(request: ClaimInput): Promise<ClaimResult> {
    const input = { ...request, token: request.token ?? randomUUID() };
    const expiration = this.#expiration(input.now);
    const created = firstEntry(input, expiration, JOB_KEY_PREFIX);
    const existing = await this.#put(created, 'attribute_not_exists(id)');
    if (existing === 'written') return { kind: 'claimed', entry: created, lost: false };
    if (existing === undefined) return { kind: 'busy' };
    const verdict = gate(existing, input, expiration);
    if (verdict.kind === 'conflict')
      return { kind: 'conflict', entry: await this.#noteRefusal(existing, input) };
    if (verdict.kind !== 'claim') return verdict;
    if ((await this.#replace(verdict.entry, existing.version)) !== 'written') return { kind: 'busy' };
    return { kind: 'claimed', entry: verdict.entry, lost: verdict.lost };
  }

  /**
   * Closes the claimed attempt with what it came to; a retry also records the earliest time of the next
   * attempt; a dead letter its redrive token. Returns the entry as written, or `conflict` when another writer
   * changed the entry. Throws the SDK's error when DynamoDB fails (the caller carries the answer on a copy).
   */
  async settle(request: SettleInput): Promise<SettleResult> {
    const input = { ...request, token: request.token ?? randomUUID() };
    const next = settledEntry(input, this.#expiration(input.now));
    const written = await this.#replace(next, input.entry.version);
    return written === 'written' ? { kind: 'written', entry: next } : { kind: 'conflict' };
  }

  /**
   * Takes over the first publication of a settled job's `eCourtDate Job Settled` event from `held` (the
   * `event_token` a copy carries in `settled_event_pending`) to `next`, by a Put conditional on the version read
   * and on `held`. `claimed` when this write (or its first try whose answer was lost) moved it: the caller
   * publishes the event unmarked. `taken` when the entry holds another token (a twin of the copy took it, or the
   * job was claimed or settled again): the caller marks its event replayed. `busy` when only the version moved:
   * the caller tries again later. Throws the SDK's error when DynamoDB fails. docs/ledger.md.
   */
  async claimEvent(request: {
    readonly entry: LedgerEntry;
    readonly held: string;
    readonly next: string;
    /** This write's token (see `write_token`). @default a new random UUID */
    readonly token?: string | undefined;
  }): Promise<EventClaimResult> {
    const { entry, held, next } = request;
    if (entry.event_token !== held) return 'taken';
    const written = await this.#replace(
      { ...entry, event_token: next, write_token: request.token ?? randomUUID(), version: entry.version + 1 },
      entry.version,
      { condition: 'event_token = :held', values: { ':held': held } },
    );
    if (written === 'written') return 'claimed';
    return written?.event_token === held ? 'busy' : 'taken';
  }

  /**
   * Records a body refused `id_conflict` on the job's entry (`refused_count`, `refused_body_hash`, `refused_at`;
   * docs/contract.md, "When a message changes"), for `relay job ID`, and keeps the entry `ledgerTtlDays` past the
   * refusal (its `expiration`, never earlier than it was), as its dead letter is judged against it
   * (docs/privacy.md). The Put leaves `version` and every other
   * field as found, and is conditional on the entry being exactly as read (version, delivery status, refusals), so
   * it never undoes a claim or a settle and never disturbs one: theirs keep the refusal (see `#replace`). Made
   * again over the entry found when another write came first; after `SIDE_MERGE_ROUNDS` such rounds the record is
   * still refused, without its note. Returns the entry as it stands. Throws the SDK's error when DynamoDB fails.
   */
  async #noteRefusal(existing: LedgerEntry, input: ClaimInput): Promise<LedgerEntry> {
    const token = randomUUID();
    let current = existing;
    for (let round = 0; round < SIDE_MERGE_ROUNDS; round++) {
      const next: LedgerEntry = {
        ...current,
        refused_count: (current.refused_count ?? 0) + 1,
        refused_body_hash: input.bodyHash,
        refused_at: input.now,
        refused_token: token,
        // The refused version's dead letter is judged against this entry: keep it ledgerTtlDays past the refusal.
        expiration: Math.max(current.expiration, this.#expiration(input.now)),
      };
      const side = sideCondition(current);
      // The note keeps the entry's write token: it is recognised as its own write by its refusal token instead.
      const found = await this.#put(
        next,
        ['version = :expected', ...side.conditions].join(' AND '),
        { ':expected': current.version, ...side.values },
        (item) => item.refused_token === token,
      );
      if (found === 'written') return next;
      if (found === undefined) return current;
      current = found;
    }
    return current;
  }

  /**
   * Replaces the entry if it still has `expectedVersion` (and meets `also`); `written`, or the entry found
   * instead. Two kinds of write change the item without touching `version`: the webhook receiver's delivery
   * status (docs/webhooks.md) and a refused body's note (`#noteRefusal`). The Put is also conditional on the
   * versions of those fields as read, and when only they moved, it is made again over the fields found, so a
   * status or a refusal recorded meanwhile is never overwritten.
   */
  async #replace(
    entry: LedgerEntry,
    expectedVersion: number,
    also?: { readonly condition: string; readonly values: Record<string, unknown> },
  ): Promise<'written' | LedgerEntry | undefined> {
    let next = entry;
    let found: 'written' | LedgerEntry | undefined;
    for (let round = 0; round < SIDE_MERGE_ROUNDS; round++) {
      const side = sideCondition(next);
      found = await this.#put(
        next,
        ['version = :expected', ...side.conditions, ...(also ? [also.condition] : [])].join(' AND '),
        { ':expected': expectedVersion, ...side.values, ...also?.values },
      );
      if (found === 'written' || found === undefined || found.version !== expectedVersion) return found;
      const movedDelivery =
        (found as DeliveryFields).delivery_version !== (next as DeliveryFields).delivery_version;
      const movedRefusal = found.refused_count !== next.refused_count;
      if (!movedDelivery && !movedRefusal) return found;
      next = withSideFieldsOf(next, found);
    }
    return found;
  }

  /**
   * Puts the entry under `condition`. Returns `written` when the item now holds this very write (the put, or its
   * first try whose answer was lost: the SDK retried, the retry failed the condition, and the item carries this
   * write's token: `write_token`, or what `isOwnWrite` looks for); else the entry that failed the condition
   * (undefined if there is none).
   */
  async #put(
    entry: LedgerEntry,
    condition: string,
    values?: Record<string, unknown>,
    isOwnWrite: (found: LedgerEntry) => boolean = (found) =>
      found.write_token !== undefined && found.write_token === entry.write_token,
  ): Promise<'written' | LedgerEntry | undefined> {
    const write = await conditionalWrite(() =>
      this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: entry,
          ConditionExpression: condition,
          ...(values ? { ExpressionAttributeValues: values } : {}),
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    );
    if (write.applied) return 'written';
    // DynamoDB hands back the item that failed the condition; an emulator without that feature costs a read.
    const found = (write.old as LedgerEntry | undefined) ?? (await this.get(entry.job_id));
    if (found !== undefined && isOwnWrite(found)) return 'written';
    return found;
  }

  #expiration(now: number): number {
    return Math.floor(now / 1000) + this.#ttlSeconds;
  }
}

/** Rounds of the Put of an entry whose delivery status or refusals keep changing meanwhile. */
const SIDE_MERGE_ROUNDS = 4;

/** The fields of a job's entry that only the webhook receiver writes (shared/ledger/delivery.ts). */
const DELIVERY_FIELDS = [
  'delivery_status',
  'delivery_status_at',
  'delivery_history',
  'delivery_version',
  'delivery_updated_at',
] as const;
type DeliveryFields = { readonly delivery_version?: number };

/** The fields of a job's entry that only a refused body's note writes (`JobLedger.#noteRefusal`). */
const REFUSAL_FIELDS = ['refused_count', 'refused_body_hash', 'refused_at', 'refused_token'] as const;

/**
 * The conditions of a Put that must find the fields written beside `version` (the delivery status, the
 * refusals) as `entry` holds them, and the values they name. Pure.
 */
function sideCondition(entry: LedgerEntry): { conditions: string[]; values: Record<string, unknown> } {
  const delivery = (entry as DeliveryFields).delivery_version;
  const refused = entry.refused_count;
  return {
    conditions: [
      delivery === undefined ? 'attribute_not_exists(delivery_version)' : 'delivery_version = :delivery',
      refused === undefined ? 'attribute_not_exists(refused_count)' : 'refused_count = :refused',
    ],
    values: {
      ...(delivery === undefined ? {} : { ':delivery': delivery }),
      ...(refused === undefined ? {} : { ':refused': refused }),
    },
  };
}

/** `entry` with the webhook receiver's and the refusals' fields as `found` holds them (absent ones removed). Pure. */
function withSideFieldsOf(entry: LedgerEntry, found: LedgerEntry): LedgerEntry {
  const next: Record<string, unknown> = { ...entry };
  const source = found as unknown as Record<string, unknown>;
  for (const field of [...DELIVERY_FIELDS, ...REFUSAL_FIELDS]) next[field] = source[field];
  return next as unknown as LedgerEntry;
}

/** The entry after an attempt settled. Pure. */
export function settledEntry(input: SettleInput, expiration: number): LedgerEntry {
  const { entry, now, attempt, outcome } = input;
  const status: LedgerStatus =
    outcome.type === 'retry' ? 'retrying' : outcome.type === 'dead_letter' ? 'dead_lettered' : outcome.type;
  const reason = outcome.type === 'dead_letter' ? outcome.reason : undefined;
  return {
    ...entry,
    status,
    attempt_open: false,
    lease_until: undefined,
    write_token: input.token,
    version: entry.version + 1,
    sends: entry.sends + (attempt?.sent ? 1 : 0),
    retryable: entry.retryable + (attempt?.retryable ? 1 : 0),
    server_500: entry.server_500 + (attempt?.serverError500 ? 1 : 0),
    rate_limited: entry.rate_limited + (attempt?.rateLimited ? 1 : 0),
    not_sent: (entry.not_sent ?? 0) + (attempt?.notSent ? 1 : 0),
    unknown_outcome: entry.unknown_outcome || (attempt?.unknownOutcome ?? false),
    // The earliest unknown outcome of the generation: a message it created is the first to leave the window.
    unknown_at: entry.unknown_at ?? (attempt?.unknownOutcome ? (entry.attempt_started_at ?? now) : undefined),
    next_attempt_at: outcome.type === 'retry' ? now + outcome.delaySeconds * 1000 : undefined,
    last_status: input.lastStatus ?? entry.last_status,
    uuid: outcome.type === 'delivered' && outcome.uuid ? outcome.uuid : entry.uuid,
    dead_letter_reason: reason,
    dead_letter_message_id: reason ? input.messageId : undefined,
    dead_letter_token: reason ? input.deadLetterToken : undefined,
    // Kept for the dead letters of the job's later copies (capped: an entry stays small).
    dead_letter_detail: reason && input.detail ? input.detail.slice(0, 512) : undefined,
    dead_letter_excerpt: reason && input.excerpt ? input.excerpt.slice(0, 512) : undefined,
    // A settle without a token of its own (a replay's) keeps the holder of the settlement's first event.
    event_token: outcome.type === 'retry' ? undefined : (input.eventToken ?? entry.event_token),
    history: appendHistory(entry.history, {
      at: now,
      generation: entry.generation,
      status: input.lastStatus ?? 'none',
      ...(outcome.type === 'retry'
        ? { outcome: 'retry', retry_cause: outcome.cause, retry_in_seconds: outcome.delaySeconds }
        : outcome.type === 'dead_letter'
          ? { outcome: 'dead_lettered', reason: outcome.reason }
          : { outcome: outcome.type }),
      ...(input.detail ? { detail: input.detail.slice(0, 160) } : {}),
    }),
    expiration,
    updated_at: now,
  };
}
