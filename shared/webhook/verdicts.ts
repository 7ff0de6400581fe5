import { WEBHOOK_METRIC } from '#shared/webhook/metrics.ts';
import type { NormalisedWebhook } from '#shared/webhook/payload.ts';

/** How a verdict is answered, counted and logged. */
export interface VerdictSpec {
  /** The HTTP status code; every non-2xx makes eCourtDate retry the delivery. */
  readonly status: number;
  /** The EMF metric counted once for it (`WEBHOOK_METRIC`). */
  readonly metric: string;
  /** The JSON body; none for a 401, which says nothing about why. */
  readonly body?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  /** The level of the request's log line. */
  readonly level: 'info' | 'warn' | 'error';
}

const retryLater = { message: 'temporarily unavailable; retry later' };

/**
 * Every answer the receiver gives, by outcome name: the one table the status code, the body, the metric and the
 * log level come from. docs/webhooks.md, "What the receiver does with a request", documents each row, and a test
 * (test/unit/webhook-verdicts.test.ts) holds the two together.
 */
export const VERDICTS = {
  ip_not_allowed: {
    status: 403,
    metric: WEBHOOK_METRIC.rejected,
    body: { message: 'ip not allowed' },
    level: 'warn',
  },
  method_not_allowed: {
    status: 405,
    metric: WEBHOOK_METRIC.rejected,
    body: { message: 'method not allowed' },
    headers: { allow: 'POST' },
    level: 'warn',
  },
  unsupported_media_type: {
    status: 415,
    metric: WEBHOOK_METRIC.rejected,
    body: { message: 'unsupported media type' },
    level: 'warn',
  },
  body_too_large: {
    status: 413,
    metric: WEBHOOK_METRIC.rejected,
    body: { message: 'body too large' },
    level: 'warn',
  },
  signature_missing: { status: 401, metric: WEBHOOK_METRIC.signatureFailures, level: 'warn' },
  signature_invalid: { status: 401, metric: WEBHOOK_METRIC.signatureFailures, level: 'warn' },
  secret_unavailable: {
    status: 503,
    metric: WEBHOOK_METRIC.internalErrors,
    body: retryLater,
    level: 'error',
  },
  malformed: {
    status: 400,
    metric: WEBHOOK_METRIC.malformed,
    body: { message: 'the body is not JSON' },
    level: 'warn',
  },
  stale: { status: 200, metric: WEBHOOK_METRIC.stale, body: { status: 'stale' }, level: 'warn' },
  duplicate: { status: 200, metric: WEBHOOK_METRIC.duplicates, body: { status: 'duplicate' }, level: 'info' },
  in_progress: {
    status: 409,
    metric: WEBHOOK_METRIC.inProgress,
    body: { message: 'this delivery is being processed; retry later' },
    level: 'info',
  },
  dedupe_unavailable: {
    status: 503,
    metric: WEBHOOK_METRIC.internalErrors,
    body: retryLater,
    level: 'error',
  },
  ledger_unavailable: {
    status: 503,
    metric: WEBHOOK_METRIC.internalErrors,
    body: retryLater,
    level: 'error',
  },
  publish_failed: {
    status: 503,
    metric: WEBHOOK_METRIC.publishFailures,
    body: { message: 'could not publish; retry later' },
    level: 'error',
  },
  internal_error: {
    status: 500,
    metric: WEBHOOK_METRIC.internalErrors,
    body: { message: 'internal error; retry later' },
    level: 'error',
  },
  accepted: { status: 200, metric: WEBHOOK_METRIC.accepted, body: { status: 'accepted' }, level: 'info' },
} as const satisfies Record<string, VerdictSpec>;

/** The name of an outcome, as logged (`outcome`) and documented. */
export type Outcome = keyof typeof VERDICTS;

/** What became of one request: its row of `VERDICTS`, and what the log line and metrics say besides. */
export interface Verdict {
  readonly outcome: Outcome;
  readonly spec: VerdictSpec;
  /** Headers beyond the row's (`Retry-After`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Metrics counted besides the row's, once each. */
  readonly metrics: readonly string[];
  readonly webhook?: NormalisedWebhook;
  readonly jobId?: string;
  /** Events this request put on the bus. */
  readonly published?: number;
  /** More for the log line: names, codes and flags only, never request data. */
  readonly detail?: Readonly<Record<string, string>>;
  /** Raised above the row's level (a warning on an answer that is still right). */
  readonly level?: 'warn';
}

/** The facts of a verdict beyond its row. */
export type VerdictFacts = Omit<Verdict, 'outcome' | 'spec' | 'metrics'> & {
  readonly metrics?: readonly string[];
};

/**
 * The verdict `outcome`, from its row of `VERDICTS` and `facts`.
 *
 * @example verdict('in_progress', { webhook, headers: { 'retry-after': '12' } })
 */
export function verdict(outcome: Outcome, facts: VerdictFacts = {}): Verdict {
  return { ...facts, outcome, spec: VERDICTS[outcome], metrics: facts.metrics ?? [] };
}

/** The verdict for an error of a dependency (`secret_unavailable`, ...): logged by the error's name only. */
export function failure(outcome: Outcome, error: unknown, facts: VerdictFacts = {}): Verdict {
  return verdict(outcome, { ...facts, detail: { ...facts.detail, error_name: errorName(error) } });
}

/** An error's name, which is all a log line may say of it: SDK messages can quote request data. */
export function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
