/**
 * The one set of names the local world gives the stack's resources (queues, ledger table, secrets, event bus):
 * `startWorld` (local/world.ts) creates them under these names, and every harness, the local pipeline
 * (`npm start`), the chaos suite and the benchmark reads them from here. No AWS import: the operator CLI may
 * load this module and must start fast.
 */
export const LOCAL_RESOURCE_NAMES = {
  /** The send queue (SQS). */
  sendQueue: 'ecourtdate-relay-local-send',
  /** The send queue's dead-letter queue (SQS). */
  deadLetterQueue: 'ecourtdate-relay-local-dlq',
  /** The dead-letter queue of the EventBridge rule that feeds the send queue (SQS). */
  eventsDeadLetterQueue: 'ecourtdate-relay-local-events-dlq',
  /** The job ledger table (DynamoDB). */
  ledgerTable: 'ecourtdate-relay-local-ledger',
  /** The eCourtDate API client's credentials (Secrets Manager): `{"client_id": ..., "client_secret": ...}`. */
  apiCredentialsSecretId: 'ecourtdate-relay/local/api-credentials',
  /** The webhook signing key (Secrets Manager): `{"secret": ...}` (docs/webhooks.md). */
  webhookSecretId: 'ecourtdate-relay/local/webhook-signing-key',
  /** The event bus the webhook receiver, and the sender's `eCourtDate Job Settled` events, publish to. */
  eventBus: 'ecourtdate-relay-local',
} as const;

/** The local webhook signing key: 24 characters, as eCourtDate allows. Not a real credential. */
export const LOCAL_WEBHOOK_SECRET = 'relay-local-webhook-0001';

/** The eCourtDate API client the simulator accepts unless a world is given another. Not a real credential. */
export const LOCAL_API_CLIENT = {
  id: 'relay-local-client',
  secret: 'relay-local-secret-0123456789abcdef',
} as const;
