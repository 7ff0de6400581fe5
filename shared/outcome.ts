/**
 * What the relay decides for one attempt at one job. See the table "What each response does" in
 * docs/contract.md.
 */
export const DEAD_LETTER_REASONS = [
  'invalid_job',
  'bad_request',
  'forbidden',
  'not_found',
  'client_error',
  'retries_exhausted',
  'unknown_outcome',
  'expired',
  'id_conflict',
] as const;

export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

/** Why a retry was chosen; used in logs and the retry metric, never sent anywhere else. */
export type RetryCause =
  | 'rate_limited'
  | 'server_error'
  | 'unknown_outcome'
  | 'unauthorized'
  /** The client secret could not be read (Secrets Manager failed, or the secret is malformed). */
  | 'credentials'
  | 'deferred'
  /** The job's next attempt is not due yet (a copy arrived during its backoff): hidden until then, not sent. */
  | 'not_due'
  /** Another instance is working on the same job right now. */
  | 'in_flight';

export type Outcome =
  | { readonly type: 'delivered'; readonly uuid?: string | undefined }
  | { readonly type: 'duplicate' }
  | { readonly type: 'retry'; readonly delaySeconds: number; readonly cause: RetryCause }
  | { readonly type: 'dead_letter'; readonly reason: DeadLetterReason };
