import type { SQSRecord } from 'aws-lambda';
import { DEFAULTS, loadSenderConfig, type SenderConfig } from '#shared/config.ts';
import { type SendJob, validateJob } from '#shared/job.ts';
import type { ClaimInput, LedgerEntry } from '#shared/ledger/gate.ts';
import type { AttemptResult, RetryPolicy } from '#shared/policy.ts';

/** A realistic job body as upstream systems send it; override any field. */
export function jobBody(
  overrides: Record<string, unknown> = {},
  message: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id: 'cms-48213-reminder-1',
    message: {
      to: '+15551234567',
      content: 'Reminder: you have court on Dec 3 at 9:00 AM, Room 4B.',
      subject: 'Court reminder',
      channel: 'text',
      ...message,
    },
    ...overrides,
  };
}

export function job(overrides: Record<string, unknown> = {}, message: Record<string, unknown> = {}): SendJob {
  return validateJob(jobBody(overrides, message));
}

export const T0 = Date.parse('2026-12-01T12:00:00Z');

export function policy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  return {
    backoffSeconds: [...DEFAULTS.backoffSeconds],
    backoffJitter: 0,
    maxAttempts: DEFAULTS.maxAttempts,
    serverErrorMaxAttempts: DEFAULTS.serverErrorMaxAttempts,
    serverErrorRetrySeconds: DEFAULTS.serverErrorRetrySeconds,
    rateLimitWaitSeconds: DEFAULTS.rateLimitWaitSeconds,
    rateLimitHintMaxSeconds: DEFAULTS.rateLimitHintMaxSeconds,
    maxAgeSeconds: DEFAULTS.maxAgeSeconds,
    duplicateWindowSeconds: DEFAULTS.duplicateWindowSeconds,
    httpTimeoutMs: DEFAULTS.httpTimeoutMs,
    timeScale: 1,
    ...overrides,
  };
}

export function response(
  status: number,
  extra: { uuid?: string; retryAfterSeconds?: number; stage?: 'send' | 'token' } = {},
): AttemptResult {
  return {
    kind: 'response',
    stage: extra.stage ?? 'send',
    status,
    uuid: extra.uuid,
    retryAfterSeconds: extra.retryAfterSeconds,
  };
}

export function transport(error: 'timeout' | 'connection', stage: 'send' | 'token' = 'send'): AttemptResult {
  return { kind: 'transport', stage, error };
}

/** Sender configuration for tests: every required variable set, overridable by env name. */
export function senderConfig(env: Record<string, string> = {}): SenderConfig {
  return loadSenderConfig({
    ECOURTDATE_BASE_URL: 'http://127.0.0.1:9',
    ECOURTDATE_SECRET_ID: 'ecourtdate-relay/test',
    SEND_QUEUE_URL: 'http://127.0.0.1:9/000000000000/send',
    DEAD_LETTER_QUEUE_URL: 'http://127.0.0.1:9/000000000000/dlq',
    LEDGER_TABLE_NAME: 'relay-ledger',
    ...env,
  });
}

/** An SQS record as the event source mapping delivers it. */
export function sqsRecord(
  body: string,
  attrs: { receiveCount?: number; firstReceivedAt?: number; id?: string } = {},
): SQSRecord {
  const id = attrs.id ?? `msg-${Math.random().toString(36).slice(2)}`;
  return {
    messageId: id,
    receiptHandle: `rh-${id}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(attrs.receiveCount ?? 1),
      SentTimestamp: String(attrs.firstReceivedAt ?? T0),
      SenderId: 'AIDAEXAMPLE',
      ApproximateFirstReceiveTimestamp: String(attrs.firstReceivedAt ?? T0),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:send',
    awsRegion: 'us-east-1',
  };
}

/** A failure to read or parse the client secret: the attempt ended before any request (stage `secret`). */
export function secretFailure(): AttemptResult {
  return { kind: 'secret', stage: 'secret' };
}

/** The fingerprint of the job body in `ledgerEntry` and `claimInput`. */
export const BODY_HASH = 'sha256-of-the-job-body';

/**
 * A job's ledger entry between attempts: retrying after one 503 at T0 that was settled at T0 + 1 s with a
 * 60 s wait (version 3). Override any field.
 */
export function ledgerEntry(overrides: Partial<LedgerEntry> = {}): LedgerEntry {
  return {
    id: 'job#cms-48213-reminder-1',
    job_id: 'cms-48213-reminder-1',
    status: 'retrying',
    body_hash: BODY_HASH,
    generation: 1,
    version: 3,
    first_attempt_at: T0,
    sends: 1,
    retryable: 1,
    server_500: 0,
    rate_limited: 0,
    not_sent: 0,
    unknown_outcome: true,
    attempt_open: false,
    attempt_started_at: T0,
    next_attempt_at: T0 + 61_000,
    unknown_at: T0,
    last_status: '503',
    history: [
      {
        at: T0 + 1_000,
        generation: 1,
        status: '503',
        outcome: 'retry',
        retry_cause: 'unknown_outcome',
        retry_in_seconds: 60,
      },
    ],
    expiration: Math.floor(T0 / 1000) + 30 * 86_400,
    updated_at: T0 + 1_000,
    ...overrides,
  };
}

/** The attempt (and write) token of `claimInput`'s claim; `JobLedger.claim` makes a random one when none is given. */
export const CLAIM_TOKEN = 'claim-token-of-the-copy';

/**
 * A record's claim on the job of `ledgerEntry`, at `now` (default: T0 + 2 min) with a 5 min lease, under the
 * token `CLAIM_TOKEN`. A plain copy of the job: no redrive token, no carried attempt, unless given.
 */
export function claimInput(overrides: Partial<ClaimInput> = {}): ClaimInput {
  const now = overrides.now ?? T0 + 120_000;
  return {
    jobId: 'cms-48213-reminder-1',
    bodyHash: BODY_HASH,
    messageId: 'msg-copy-2',
    now,
    leaseUntil: now + 300_000,
    token: CLAIM_TOKEN,
    ...overrides,
  };
}
