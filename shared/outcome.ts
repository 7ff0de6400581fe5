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
  /**
   * The stage's circuit breaker is open (eCourtDate failing, or the credentials refused): the job is held, not
   * sent, and offered again after the next probe; no attempt is spent (docs/pacing.md, "The circuit breaker").
   */
  | 'held_unavailable'
  | 'held_auth'
  /** The job's next attempt is not due yet (a copy arrived during its backoff): hidden until then, not sent. */
  | 'not_due'
  /** Another instance is working on the same job right now. */
  | 'in_flight'
  /**
   * A dependency failed in a way no rule decides (DynamoDB, SQS or EventBridge refused, or a bug): the record is
   * re-queued as a fresh copy, carrying any answer eCourtDate gave, so no receive budget is spent.
   */
  | 'dependency_failure'
  /**
   * Another copy of the job took its ledger entry over while this record's attempt was still answering (it
   * outlived its lease): the job goes on with that copy, and this record is acknowledged.
   */
  | 'handed_over';

export type Outcome =
  | { readonly type: 'delivered'; readonly uuid?: string | undefined }
  | { readonly type: 'duplicate' }
  | { readonly type: 'retry'; readonly delaySeconds: number; readonly cause: RetryCause }
  | {
      readonly type: 'dead_letter';
      readonly reason: DeadLetterReason;
      /**
       * For `unknown_outcome` given to a job that ended otherwise (its budget spent, its deadline passed, a 4xx)
       * after an attempt whose outcome is unknown: what ended it (docs/contract.md, "What each response does").
       */
      readonly endedBy?: DeadLetterReason;
    };
