import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder of the JSON Schemas of the event contract (README.md, "Layout"). */
export const SCHEMAS_DIR = fileURLToPath(new URL('../schemas/', import.meta.url));

/**
 * One schema of the event contract: its file in `schemas/`, its name in the stage's EventBridge schema registry
 * (`source@DetailType`, as EventBridge names the schemas it discovers), and what it describes.
 */
export interface EventSchemaFile {
  readonly file: string;
  readonly schemaName: string;
  /** The EventBridge `detail-type` the schema describes. */
  readonly detailType: string;
  /**
   * `job`: the file describes the send job itself (an SQS body, the `detail` of an event); `event`: the whole
   * EventBridge event the relay publishes, its `detail` in `definitions`.
   */
  readonly describes: 'job' | 'event';
}

/**
 * Every schema in `schemas/`: the send job and each event the relay publishes (docs/contract.md, "The event
 * contract"). All are JSON Schema draft 4, the form the schema registry takes as `JSONSchemaDraft4`.
 */
export const EVENT_SCHEMA_FILES: readonly EventSchemaFile[] = [
  {
    file: 'send-job.schema.json',
    schemaName: 'ecourtdate-relay.upstream@SendMessage',
    detailType: 'eCourtDate Send Message',
    describes: 'job',
  },
  {
    file: 'message-status.schema.json',
    schemaName: 'ecourtdate-relay@MessageStatus',
    detailType: 'eCourtDate Message Status',
    describes: 'event',
  },
  {
    file: 'inbound-message.schema.json',
    schemaName: 'ecourtdate-relay@InboundMessage',
    detailType: 'eCourtDate Inbound Message',
    describes: 'event',
  },
  {
    file: 'webhook.schema.json',
    schemaName: 'ecourtdate-relay@Webhook',
    detailType: 'eCourtDate Webhook',
    describes: 'event',
  },
  {
    file: 'job-delivery-status.schema.json',
    schemaName: 'ecourtdate-relay@JobDeliveryStatus',
    detailType: 'eCourtDate Job Delivery Status',
    describes: 'event',
  },
  {
    file: 'job-settled.schema.json',
    schemaName: 'ecourtdate-relay@JobSettled',
    detailType: 'eCourtDate Job Settled',
    describes: 'event',
  },
];

/**
 * The text of a schema file of `schemas/`, as the registry stores it. Throws the file system's error (ENOENT)
 * when the file is missing.
 */
export function readSchemaText(file: string): string {
  return readFileSync(join(SCHEMAS_DIR, file), 'utf8');
}

/** A schema file of `schemas/`, parsed. Throws as `readSchemaText`, or `SyntaxError` for a file that is not JSON. */
export function readSchema(file: string): Record<string, unknown> {
  return JSON.parse(readSchemaText(file)) as Record<string, unknown>;
}
