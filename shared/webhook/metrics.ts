/**
 * The EMF metrics the webhook receiver emits, in the relay's namespace with the same `service` dimension as the
 * sender's (`shared/metric-names.ts`), so the stack's alarms and dashboard read them the same way. All are
 * Count metrics, summed over a period.
 */
export const WEBHOOK_METRIC = {
  /** Every request that reached the function. */
  received: 'WebhookReceived',
  /** Deliveries whose events all went on the bus. */
  accepted: 'WebhookAccepted',
  /** Events put on the bus (a delivery can make two: its own and a job's delivery status). */
  published: 'WebhookEventsPublished',
  /** A delivery already published came again: answered 200, nothing published. */
  duplicates: 'WebhookDuplicates',
  /** A copy arrived while another invocation held the same delivery: answered 409 to be retried. */
  inProgress: 'WebhookInProgress',
  /** Missing or wrong `X-ECD-Signature`. Alarmed on: a wrong secret, or someone probing. */
  signatureFailures: 'WebhookSignatureFailures',
  /** `PutEvents` failed or took only some entries: answered 5xx so eCourtDate retries. Alarmed on. */
  publishFailures: 'WebhookPublishFailures',
  /** The secret or the ledger table could not be used: answered 5xx so eCourtDate retries. Alarmed on. */
  internalErrors: 'WebhookInternalErrors',
  /** Turned away before the signature: source IP, method, content type or size. */
  rejected: 'WebhookRejected',
  /** Signed but not JSON: answered 400. */
  malformed: 'WebhookMalformed',
  /** A status update recorded on one of the relay's jobs. */
  jobStatusRecorded: 'WebhookJobStatusRecorded',
  /**
   * A status update whose message no uuid index named yet: kept pending on the index item until the sender
   * writes it (or, for a message the relay did not send, until it expires).
   */
  statusPending: 'WebhookStatusPending',
  /** Signed, but its own time is older than the replay horizon: answered 200, published no more. */
  stale: 'WebhookStale',
  /** What `PutEvents` took could not be put on record before the answer (docs/webhooks.md, "Deduplication"). */
  progressUnsaved: 'WebhookProgressUnsaved',
} as const;
