import { ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { CliError } from '#cli/errors.ts';
import { awsErrorText, need, type Target } from '#cli/target.ts';
import { formatTable } from '#local/terminal/table.ts';
import { parseLastStatus } from '#shared/ecourtdate/status.ts';
import { fingerprintLabel, JOB_LIMITS } from '#shared/job.ts';
import type { JobDelivery } from '#shared/ledger/delivery.ts';
import { describeLedgerEvent } from '#shared/ledger/gate.ts';
import { JobLedger, type LedgerEntry, type LedgerStatus } from '#shared/ledger/ledger.ts';

/**
 * What an operator may see of a job's ledger entry: statuses, counts, times and the relay's own notes. The
 * ledger holds neither the message text nor the recipient, and this view adds nothing from anywhere else.
 * Times are ISO 8601 UTC; `null` where the ledger has nothing (yet).
 */
export interface JobView {
  readonly id: string;
  readonly status: LedgerStatus;
  /** 1, plus one for every time the job came back after being dead-lettered (a redrive). */
  readonly generation: number;
  /** This generation's attempts, by what they cost. */
  readonly attempts: {
    readonly sends: number;
    /** Attempts that spent the backoff budget: 5xx, timeouts, connection failures, 401s. */
    readonly retryable: number;
    readonly server500: number;
    /** 429 waits, which spend no budget. */
    readonly rateLimited: number;
    /** Attempts that ended before a request left (the secret, the token endpoint) or on a persistent 401. */
    readonly notSent: number;
  };
  /**
   * An attempt may have created the message without the relay learning so (timeout, 504, lost instance), and no
   * later answer settled it: false once the job is `delivered` or `duplicate` (a 409 proves the message exists,
   * a 201 inside the duplicate window that it did not before), though the ledger keeps its flag for redrives.
   */
  readonly unknownOutcome: boolean;
  readonly uuid: string | null;
  readonly firstAttemptAt: string;
  readonly lastStatus: string | null;
  readonly deadLetterReason: string | null;
  /** The fingerprint (`fingerprintLabel`) of the body that holds the id: the version the ledger accepted. */
  readonly body: string;
  /**
   * Bodies of this id refused `id_conflict` (docs/contract.md, "When a message changes"): how many records carried
   * one, and the latest one's fingerprint and time (ISO 8601 UTC); null when none was.
   */
  readonly refused: { readonly count: number; readonly latestBody: string; readonly latestAt: string } | null;
  /** Oldest first; the ledger keeps the latest 20. */
  readonly history: readonly {
    readonly at: string;
    readonly generation: number;
    readonly status: string;
    /** The outcome code (`delivered`, `duplicate`, `retry`, `dead_lettered`, `unknown`, `redriven`). */
    readonly outcome: string;
    /** With `dead_lettered`: the dead-letter reason. */
    readonly reason: string | null;
    /** With `retry`: the retry cause. */
    readonly retryCause: string | null;
    /** With `retry`: seconds until the next attempt was due. */
    readonly retryInSeconds: number | null;
    /** The outcome in a sentence, as the text output prints it (`retry in 60 s (rate_limited)`). */
    readonly described: string;
    readonly detail: string | null;
  }[];
  /**
   * What eCourtDate's webhooks said of the message (docs/webhooks.md, "Delivery status per job"): the newest
   * status and every update, oldest first; null and empty while none named it (or webhooks are off).
   */
  readonly delivery: {
    readonly status: string | null;
    readonly history: readonly {
      readonly at: string;
      readonly status: string;
      readonly rawStatus: string | null;
      readonly webhookUuid: string | null;
    }[];
  };
}

/**
 * `job ID`: the job's entry in the ledger table (a consistent read of one item), or undefined when the
 * ledger has none: the sender never saw the job, or the entry expired (`ledgerTtlDays` after its last change).
 */
export async function readJob(target: Target, jobId: string): Promise<JobView | undefined> {
  if (!JOB_LIMITS.idPattern.test(jobId)) {
    throw new CliError(
      `job ID: expected 1-128 characters of A-Z a-z 0-9 . _ : -, got "${jobId}"; the relay dead-letters a job ` +
        'with any other id (invalid_job) without a ledger entry: see "dlq list"',
    );
  }
  const tableName = need(target.ledgerTableName, 'the job ledger table', '--ledger-table');
  // Reads only: get() writes nothing, so the entries' time to live does not apply.
  const ledger = new JobLedger({ client: target.dynamodb, tableName, ttlSeconds: 0 });
  let entry: LedgerEntry | undefined;
  try {
    entry = await ledger.get(jobId);
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
    throw new CliError(
      `no table ${tableName} in ${target.description}: ${awsErrorText(error)}. Check --ledger-table, --region, ` +
        `or the stack output LedgerTableName`,
      { cause: error },
    );
  }
  return entry === undefined ? undefined : jobView(entry);
}

/** The operator's view of a ledger entry: the fields listed in `JobView`, nothing else of the item. */
export function jobView(entry: LedgerEntry & JobDelivery): JobView {
  return {
    id: entry.job_id,
    status: entry.status,
    generation: entry.generation,
    attempts: {
      sends: entry.sends,
      retryable: entry.retryable,
      server500: entry.server_500,
      rateLimited: entry.rate_limited,
      notSent: entry.not_sent ?? 0,
    },
    unknownOutcome: entry.unknown_outcome && entry.status !== 'delivered' && entry.status !== 'duplicate',
    uuid: entry.uuid ?? null,
    firstAttemptAt: iso(entry.first_attempt_at),
    lastStatus: entry.last_status ?? null,
    deadLetterReason: entry.dead_letter_reason ?? null,
    body: fingerprintLabel(entry.body_hash),
    refused:
      entry.refused_count === undefined ||
      entry.refused_body_hash === undefined ||
      entry.refused_at === undefined
        ? null
        : {
            count: entry.refused_count,
            latestBody: fingerprintLabel(entry.refused_body_hash),
            latestAt: iso(entry.refused_at),
          },
    history: entry.history.map((event) => ({
      at: iso(event.at),
      generation: event.generation,
      status: event.status,
      outcome: event.outcome,
      reason: event.reason ?? null,
      retryCause: event.retry_cause ?? null,
      retryInSeconds: event.retry_in_seconds ?? null,
      described: describeLedgerEvent(event),
      detail: event.detail ?? null,
    })),
    delivery: {
      status: entry.delivery_status ?? null,
      history: (entry.delivery_history ?? []).map((event) => ({
        at: iso(event.at),
        status: event.status,
        rawStatus: event.raw_status ?? null,
        webhookUuid: event.webhook_uuid ?? null,
      })),
    },
  };
}

/**
 * The entry as `job ID --json` prints it: the same conventions as every `--json` of the CLI and the `npm start`
 * report (snake_case keys; `attempts` is the number of sends, as everywhere; statuses and counts as numbers;
 * times in ISO 8601 UTC; null where the ledger has nothing).
 */
export function jobJson(view: JobView): Record<string, unknown> {
  return {
    job_id: view.id,
    status: view.status,
    generation: view.generation,
    attempts: view.attempts.sends,
    retryable_attempts: view.attempts.retryable,
    server_500_attempts: view.attempts.server500,
    rate_limit_waits: view.attempts.rateLimited,
    not_sent_attempts: view.attempts.notSent,
    unknown_outcome: view.unknownOutcome,
    uuid: view.uuid,
    first_attempt_at: view.firstAttemptAt,
    last_status: parseLastStatus(view.lastStatus ?? undefined),
    reason: view.deadLetterReason,
    body: view.body,
    refused_versions:
      view.refused === null
        ? null
        : {
            count: view.refused.count,
            latest_body: view.refused.latestBody,
            latest_at: view.refused.latestAt,
          },
    history: view.history.map((event) => ({
      at: event.at,
      generation: event.generation,
      status: parseLastStatus(event.status),
      outcome: event.outcome,
      reason: event.reason,
      retry_cause: event.retryCause,
      retry_in_seconds: event.retryInSeconds,
      detail: event.detail,
    })),
    delivery_status: view.delivery.status,
    delivery_history: view.delivery.history.map((event) => ({
      at: event.at,
      status: event.status,
      raw_status: event.rawStatus,
      webhook_uuid: event.webhookUuid,
    })),
  };
}

/** The entry for a terminal (or as one JSON object with `json`, see `jobJson`). */
export function renderJob(view: JobView, json: boolean): string {
  if (json) return JSON.stringify(jobJson(view));
  const { attempts } = view;
  const fields = formatTable(
    ['job', view.id],
    [
      ['status', view.status],
      ['generation', String(view.generation)],
      [
        'attempts',
        `${attempts.sends} sent, ${attempts.retryable} retryable, ${attempts.server500} HTTP 500, ` +
          `${attempts.rateLimited} 429 wait(s), ${attempts.notSent} not sent`,
      ],
      [
        'unknown outcome',
        view.unknownOutcome
          ? "yes: an attempt may have created the message (eCourtDate's Console > Logs shows whether it did)"
          : 'no',
      ],
      ['uuid', view.uuid ?? '-'],
      ['first attempt', view.firstAttemptAt],
      ['last status', view.lastStatus ?? '-'],
      ['dead-letter reason', view.deadLetterReason ?? '-'],
      ['body', `${view.body} (the version that holds this id)`],
      ['refused versions', refusedCell(view.refused)],
      ['delivery status', view.delivery.status ?? '- (no webhook has named the message)'],
    ],
  );
  const history =
    view.history.length === 0
      ? '(no attempt recorded yet)'
      : formatTable(
          ['time', 'generation', 'status', 'outcome', 'detail'],
          view.history.map((event) => [
            event.at,
            String(event.generation),
            event.status,
            event.described,
            event.detail ?? '',
          ]),
        );
  const delivery =
    view.delivery.history.length === 0
      ? ''
      : `\n\nDelivery (eCourtDate webhooks), oldest first:\n${formatTable(
          ['time', 'status', 'eCourtDate', 'webhook'],
          view.delivery.history.map((event) => [
            event.at,
            event.status,
            event.rawStatus ?? '',
            event.webhookUuid ?? '',
          ]),
        )}`;
  return `${fields}\n\nHistory, oldest first:\n${history}${delivery}`;
}

/** The `refused versions` row: none, or how many bodies were refused `id_conflict` and the latest one. */
function refusedCell(refused: JobView['refused']): string {
  if (refused === null) return 'none';
  const times = refused.count === 1 ? '1 record' : `${refused.count} records`;
  return (
    `${times} with another body, refused id_conflict and dead-lettered, not sent; the latest: body ` +
    `${refused.latestBody} at ${refused.latestAt}. Send a new version under a new id (docs/contract.md, "When a message changes")`
  );
}

function iso(epochMs: number): string {
  return new Date(epochMs).toISOString();
}
