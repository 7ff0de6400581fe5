import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SenderConfig } from '#shared/config.ts';
import type { Breaker } from '#shared/ecourtdate/breaker.ts';
import type { EcourtdateClient } from '#shared/ecourtdate/client.ts';
import type { RequestPacer } from '#shared/ecourtdate/pacer.ts';
import type { DeliveryLedger } from '#shared/ledger/delivery.ts';
import type { JobLedger } from '#shared/ledger/ledger.ts';
import type { Outcome } from '#shared/outcome.ts';
import type { JobSettledPublisher } from '#shared/sender/settled-event.ts';

/**
 * The messages of the sender's per-record log lines. Operators filter on them in CloudWatch Logs Insights.
 */
export const LOG_MESSAGE = {
  settled: 'job settled',
  alreadySettled: 'job already settled; acknowledged without sending',
  handedOver: 'job handed over to the copy that took its ledger entry over; acknowledged',
  retried: 'job retried later',
  requeued: 'job re-queued as a fresh copy',
  deadLettered: 'job dead-lettered',
  left: 'job left on the queue; SQS offers it again after its visibility timeout',
  suspectHint: 'rate-limit hint beyond belief; capped',
  breakerOpened: 'eCourtDate circuit breaker opened; jobs are held until a probe succeeds',
  breakerClosed: 'eCourtDate circuit breaker closed; held jobs go out again',
  breakerStoreFailed: 'circuit breaker state could not be read or written; going on with the state last seen',
} as const;

/** Everything one container needs to settle records. */
export interface SenderRuntime {
  readonly config: SenderConfig;
  readonly sqs: SQSClient;
  readonly client: EcourtdateClient;
  readonly pacer: RequestPacer;
  /** The stage's circuit breaker, as this container sees it (docs/pacing.md, "The circuit breaker"). */
  readonly breaker: Breaker;
  readonly ledger: JobLedger;
  /** Puts an `eCourtDate Job Settled` event on the bus for each settled job; absent when that is off. */
  readonly settledEvents?: Pick<JobSettledPublisher, 'publish'> | undefined;
  /** Indexes a delivered job's message uuid for the webhook receiver; absent when webhooks are off. */
  readonly delivery?: Pick<DeliveryLedger, 'putUuidIndex'> | undefined;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Epoch ms. */
  readonly now: () => number;
  /** Jitter source in [0, 1). */
  readonly random: () => number;
  /** A new random token (claims, ledger writes, redrive tokens). */
  readonly token: () => string;
}

/** What the invocation tells each of its records. Times are epoch ms. */
export interface InvocationBudget {
  /** By when this invocation must be done: the lease of every attempt it claims. */
  readonly deadlineAt: number;
  /**
   * By when every wait of an attempt (pacing, a token renewal, a resend's slot) must be over: the deadline less
   * the worst-case chain of requests and AWS calls that can follow the waits. Undefined: no limit (no context).
   */
  readonly waitUntil?: number | undefined;
}

/**
 * What became of one record, as applied: the value the batch adapter keeps for each record and hands to its
 * `onSettled` hook (the local pipeline follows jobs by it). `applied` is what was done with the SQS message:
 * acknowledged (deleted by the event source mapping), dead-lettered (then acknowledged), hidden for the retry
 * delay (a batch item failure), re-queued as a fresh copy (then acknowledged), or left on the queue (a batch item
 * failure without a new visibility: SQS offers it again after the queue's visibility timeout).
 */
export interface Settlement {
  readonly messageId: string;
  readonly jobId: string | undefined;
  readonly applied: 'acknowledged' | 'dead_lettered' | 'hidden' | 'requeued' | 'left';
  /** Reported in `batchItemFailures`: SQS keeps the message. */
  readonly batchItemFailure: boolean;
  /** The outcome the decision applied (for `left`, the one it could not apply). */
  readonly outcome: Outcome;
  /** The job had settled before: acknowledged without a send. */
  readonly alreadySettled: boolean;
  /** Requests that reached, or may have reached, the messages endpoint (the ledger's count). */
  readonly attempts: number;
  /** Last HTTP status, or `timeout`, `connection`, `secret`, `lost`; undefined when nothing was sent. */
  readonly lastStatus: number | string | undefined;
  /** Why, in a sentence (the field an invalid job breaks, what the policy saw); never message text. */
  readonly detail: string | undefined;
  /** Short, redacted excerpt of eCourtDate's answer, for a job not delivered. */
  readonly responseExcerpt: string | undefined;
  /** For `requeued`: the fresh copy's SQS message id. */
  readonly requeuedAs: string | undefined;
  /** For a retry: seconds until the job is offered again. */
  readonly retryInSeconds: number | undefined;
}
