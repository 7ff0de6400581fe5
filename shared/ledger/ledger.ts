import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { RelayError } from '#shared/errors.ts';
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
  /** The entry as the claim wrote it. */
  readonly entry: LedgerEntry;
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
}

/** The entry changed under an open attempt (another writer took over a lease this invocation still held). */
export class LedgerConflictError extends RelayError {}

/**
 * The job ledger: one DynamoDB item per job, and the one gate every record passes (README, "The job ledger").
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
   * Claims the job's next attempt, or says why this record may not make one. Throws the SDK's error when
   * DynamoDB fails: nothing was claimed then, and nothing sent.
   */
  async claim(input: ClaimInput): Promise<ClaimResult> {
    const expiration = this.#expiration(input.now);
    const created = firstEntry(input, expiration, JOB_KEY_PREFIX);
    const existing = await this.#putIfAbsent(created);
    if (existing === null) return { kind: 'claimed', entry: created, lost: false };
    if (existing === undefined) return { kind: 'busy' };
    const verdict = gate(existing, input, expiration);
    if (verdict.kind !== 'claim') return verdict;
    if (!(await this.#replace(verdict.entry, existing.version))) return { kind: 'busy' };
    return { kind: 'claimed', entry: verdict.entry, lost: verdict.lost };
  }

  /**
   * Closes the claimed attempt with what it came to; a retry also records the earliest time of the next
   * attempt. Returns the entry as written. Throws `LedgerConflictError` if another writer changed the entry.
   */
  async settle(input: SettleInput): Promise<LedgerEntry> {
    const next = settledEntry(input, this.#expiration(input.now));
    if (!(await this.#replace(next, input.entry.version))) {
      throw new LedgerConflictError(
        `ledger entry of job ${input.entry.job_id} changed under an open attempt`,
      );
    }
    return next;
  }

  /** Creates the entry; null when created, else the entry that exists (undefined if it vanished meanwhile). */
  async #putIfAbsent(entry: LedgerEntry): Promise<LedgerEntry | null | undefined> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: entry,
          ConditionExpression: 'attribute_not_exists(id)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return null;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // DynamoDB hands back the item that failed the condition; an emulator without that feature costs a read.
      if (error.Item) return unmarshall(error.Item) as LedgerEntry;
      return this.get(entry.job_id);
    }
  }

  async #replace(entry: LedgerEntry, expectedVersion: number): Promise<boolean> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: entry,
          ConditionExpression: 'version = :expected',
          ExpressionAttributeValues: { ':expected': expectedVersion },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  #expiration(now: number): number {
    return Math.floor(now / 1000) + this.#ttlSeconds;
  }
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
    history: appendHistory(entry.history, {
      at: now,
      generation: entry.generation,
      status: input.lastStatus ?? 'none',
      outcome:
        outcome.type === 'retry'
          ? `retry in ${outcome.delaySeconds} s (${outcome.cause})`
          : (reason ?? outcome.type),
      ...(input.detail ? { detail: input.detail.slice(0, 160) } : {}),
    }),
    expiration,
    updated_at: now,
  };
}
