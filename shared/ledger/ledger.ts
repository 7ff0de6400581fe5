import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Outcome } from '#shared/outcome.ts';
import type { AttemptClass, PriorAttempts } from '#shared/policy.ts';

/** Where a job stands in the ledger. */
export type LedgerStatus = 'in_progress' | 'retrying' | 'delivered' | 'duplicate' | 'dead_lettered';

/** One line of a job's short history, newest last. */
export interface LedgerEvent {
  readonly at: number;
  readonly generation: number;
  /** HTTP status, `timeout`, `connection`, `lost` (the instance stopped mid-attempt) or `none`. */
  readonly status: string;
  readonly outcome: string;
  readonly detail?: string;
}

/**
 * The ledger's record of one job (DynamoDB item `job#<id>`). Counts are per generation: a redrive from the
 * dead-letter queue starts a new generation with a fresh budget. `unknown_outcome` is kept across
 * generations, because a message created by any earlier attempt still answers 409.
 */
export interface LedgerEntry {
  readonly id: string;
  readonly job_id: string;
  readonly status: LedgerStatus;
  readonly body_hash: string;
  readonly generation: number;
  readonly version: number;
  /** Epoch ms of the first attempt of this generation: the 24 h maximum age counts from here. */
  readonly first_attempt_at: number;
  readonly sends: number;
  readonly retryable: number;
  readonly server_500: number;
  readonly rate_limited: number;
  readonly unknown_outcome: boolean;
  /** An attempt began and was never recorded: the instance stopped, its outcome is unknown. */
  readonly attempt_open: boolean;
  /** Epoch ms when the open (or last) attempt began. */
  readonly attempt_started_at?: number;
  /**
   * Epoch ms of this generation's latest attempt whose outcome is unknown. Resending is only safe while
   * eCourtDate's duplicate window around it is open; an operator's redrive clears it.
   */
  readonly unknown_at?: number;
  readonly last_status?: string;
  readonly uuid?: string;
  readonly dead_letter_reason?: string;
  /** The send-queue message id that was dead-lettered; the same id coming back means the ack was lost. */
  readonly dead_letter_message_id?: string;
  readonly history: readonly LedgerEvent[];
  /** TTL, epoch seconds (shared with the idempotency records in the same table). */
  readonly expiration: number;
  readonly updated_at: number;
}

export type BeginResult =
  /** Same id, different body: never sent. */
  | { readonly kind: 'conflict'; readonly entry: LedgerEntry }
  /** Already delivered or a duplicate: acknowledge without sending. */
  | { readonly kind: 'settled'; readonly entry: LedgerEntry }
  /** This very SQS message was dead-lettered before but not acknowledged: dead-letter it again, do not send. */
  | { readonly kind: 'dead_letter_again'; readonly entry: LedgerEntry }
  /** Go ahead: one attempt is open. `lost` says the previous attempt's outcome is unknown (instance stopped). */
  | {
      readonly kind: 'attempt';
      readonly entry: LedgerEntry;
      readonly prior: PriorAttempts;
      readonly lost: boolean;
    }
  /** Another writer changed the entry at the same moment: try again shortly. */
  | { readonly kind: 'busy' };

export interface FinishInput {
  readonly entry: LedgerEntry;
  readonly now: number;
  /** What the attempt was, for the per-class counts; undefined when nothing was sent (deferred, expired). */
  readonly attempt?: AttemptClass | undefined;
  readonly lastStatus?: string | undefined;
  readonly outcome: Outcome;
  /** For dead-lettered jobs: the send-queue message id that was dead-lettered. */
  readonly messageId?: string | undefined;
  readonly detail?: string | undefined;
}

export const LEDGER_HISTORY_MAX = 20;

/**
 * The table's partition key and TTL attribute: the names the ledger writes and Powertools Idempotency's
 * DynamoDB persistence layer uses by default, so both kinds of record share one table. The stack and the
 * local emulator create the table from these.
 */
export const LEDGER_TABLE_KEY = 'id';
export const LEDGER_TABLE_TTL_ATTRIBUTE = 'expiration';
const KEY_PREFIX = 'job#';

/**
 * The job ledger in DynamoDB: what the relay knows of each job across deliveries, instances, crashes and
 * redrives. Every write is conditional on the entry's version, so two writers never both win.
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

  /** The entry of a job, or undefined. */
  async get(jobId: string): Promise<LedgerEntry | undefined> {
    const out = await this.#doc.send(
      new GetCommand({ TableName: this.#table, Key: { id: KEY_PREFIX + jobId }, ConsistentRead: true }),
    );
    return out.Item as LedgerEntry | undefined;
  }

  /**
   * Opens an attempt at a job: creates its entry, or reads it and decides whether it may be sent. A job
   * that comes back after being dead-lettered from another message (an operator's redrive, or upstream
   * sending it again) starts a new generation with a fresh attempt budget. Only an operator's redrive
   * (`redriven`: the message carries the relay's dead-letter attributes) clears an earlier unknown outcome:
   * that is a person's decision to send again; an upstream resend is not.
   */
  async begin(
    jobId: string,
    input: { bodyHash: string; messageId: string; now: number; redriven?: boolean },
  ): Promise<BeginResult> {
    const { bodyHash, messageId, now } = input;
    const existing = await this.get(jobId);
    if (!existing) {
      const entry: LedgerEntry = {
        id: KEY_PREFIX + jobId,
        job_id: jobId,
        status: 'in_progress',
        body_hash: bodyHash,
        generation: 1,
        version: 1,
        first_attempt_at: now,
        sends: 0,
        retryable: 0,
        server_500: 0,
        rate_limited: 0,
        unknown_outcome: false,
        attempt_open: true,
        attempt_started_at: now,
        history: [],
        expiration: this.#expiration(now),
        updated_at: now,
      };
      try {
        await this.#doc.send(
          new PutCommand({
            TableName: this.#table,
            Item: entry,
            ConditionExpression: 'attribute_not_exists(id)',
          }),
        );
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) return { kind: 'busy' };
        throw error;
      }
      return { kind: 'attempt', entry, prior: priorOf(entry), lost: false };
    }

    if (existing.body_hash !== bodyHash) return { kind: 'conflict', entry: existing };
    if (existing.status === 'delivered' || existing.status === 'duplicate')
      return { kind: 'settled', entry: existing };
    if (existing.status === 'dead_lettered' && existing.dead_letter_message_id === messageId) {
      return { kind: 'dead_letter_again', entry: existing };
    }

    let next: LedgerEntry;
    let lost = false;
    if (existing.status === 'dead_lettered') {
      next = {
        ...existing,
        generation: existing.generation + 1,
        first_attempt_at: now,
        sends: 0,
        retryable: 0,
        server_500: 0,
        rate_limited: 0,
        unknown_at: input.redriven ? undefined : existing.unknown_at,
        dead_letter_reason: undefined,
        dead_letter_message_id: undefined,
        history: appendHistory(existing.history, {
          at: now,
          generation: existing.generation + 1,
          status: 'none',
          outcome: input.redriven ? 'redriven' : 'resent',
        }),
      };
    } else if (existing.attempt_open) {
      // The last attempt began but never reported: the instance stopped, perhaps after sending.
      lost = true;
      next = {
        ...existing,
        retryable: existing.retryable + 1,
        unknown_outcome: true,
        unknown_at: existing.attempt_started_at ?? existing.updated_at,
        last_status: 'lost',
        history: appendHistory(existing.history, {
          at: now,
          generation: existing.generation,
          status: 'lost',
          outcome: 'unknown',
          detail: 'the previous attempt never reported (instance stopped)',
        }),
      };
    } else {
      next = existing;
    }
    const opened: LedgerEntry = {
      ...next,
      status: 'in_progress',
      attempt_open: true,
      attempt_started_at: now,
      version: existing.version + 1,
      expiration: this.#expiration(now),
      updated_at: now,
    };
    if (!(await this.#replace(opened, existing.version))) return { kind: 'busy' };
    return { kind: 'attempt', entry: opened, prior: priorOf(opened), lost };
  }

  /** Closes the open attempt with what it came to. Returns the entry as written. */
  async finish(input: FinishInput): Promise<LedgerEntry> {
    const { entry, now, attempt, outcome } = input;
    const status: LedgerStatus =
      outcome.type === 'retry' ? 'retrying' : outcome.type === 'dead_letter' ? 'dead_lettered' : outcome.type;
    const reason = outcome.type === 'dead_letter' ? outcome.reason : undefined;
    const next: LedgerEntry = {
      ...entry,
      status,
      attempt_open: false,
      version: entry.version + 1,
      sends: entry.sends + (attempt?.sent ? 1 : 0),
      retryable: entry.retryable + (attempt?.retryable ? 1 : 0),
      server_500: entry.server_500 + (attempt?.serverError500 ? 1 : 0),
      rate_limited: entry.rate_limited + (attempt?.rateLimited ? 1 : 0),
      unknown_outcome: entry.unknown_outcome || (attempt?.unknownOutcome ?? false),
      unknown_at: attempt?.unknownOutcome ? (entry.attempt_started_at ?? now) : entry.unknown_at,
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
        detail: input.detail,
      }),
      expiration: this.#expiration(now),
      updated_at: now,
    };
    if (!(await this.#replace(next, entry.version))) {
      throw new Error(`ledger entry of job ${entry.job_id} changed under an open attempt`);
    }
    return next;
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

function priorOf(entry: LedgerEntry): PriorAttempts {
  return {
    retryable: entry.retryable,
    serverErrors500: entry.server_500,
    rateLimited: entry.rate_limited,
    unknownOutcome: entry.unknown_outcome,
  };
}

function appendHistory(history: readonly LedgerEvent[], event: LedgerEvent): LedgerEvent[] {
  return [...history, event].slice(-LEDGER_HISTORY_MAX);
}
