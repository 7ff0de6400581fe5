import { createHash } from 'node:crypto';
import type { SQSRecord } from 'aws-lambda';

/**
 * The job's SQS message group: what makes the send queue a fair queue (docs/pacing.md, "Fairness";
 * docs/contract.md, "Message group"). Every producer, the local pipeline, `relay send` and the sender's own copies
 * set `MessageGroupId` to the group of the job, so that SQS serves the jobs of an agency that is quiet before the
 * backlog of one that bursts. Pure: no SDK import.
 */

/** The group of a job without `agency_reference` (docs/contract.md, "Message group"). */
export const DEFAULT_MESSAGE_GROUP = 'default';

/**
 * The group the stack's EventBridge rule gives every job it puts on the send queue: a rule target takes one fixed
 * `MessageGroupId`, not one per event (docs/contract.md, "Message group").
 */
export const EVENTBRIDGE_MESSAGE_GROUP = 'eventbridge';

// What SQS takes as a MessageGroupId: 1-128 alphanumeric and punctuation characters (SendMessage).
const SQS_MESSAGE_GROUP_ID = /^[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]{1,128}$/;

/**
 * The `MessageGroupId` of a job with this `agency_reference` (undefined or blank: `default`). A reference SQS takes
 * as a group is the group itself (`county-a`); any other (a space, a character outside ASCII) is percent-encoded
 * (`Cook County` becomes `Cook%20County`), which stays one group per reference, and one whose encoding is longer
 * than SQS's 128 characters becomes `sha256:` and 64 hex digits of the reference. Never throws.
 *
 * @example
 * messageGroupOf('county-a'); // 'county-a'
 * messageGroupOf(undefined); // 'default'
 */
export function messageGroupOf(agencyReference: string | undefined): string {
  if (agencyReference === undefined || agencyReference.trim() === '') return DEFAULT_MESSAGE_GROUP;
  if (SQS_MESSAGE_GROUP_ID.test(agencyReference)) return agencyReference;
  let encoded: string | undefined;
  try {
    encoded = encodeURIComponent(agencyReference);
  } catch {
    // A lone surrogate has no UTF-8 form: only its hash names it.
    encoded = undefined;
  }
  if (encoded !== undefined && SQS_MESSAGE_GROUP_ID.test(encoded)) return encoded;
  return `sha256:${createHash('sha256').update(agencyReference).digest('hex')}`;
}

/**
 * The `MessageGroupId` of a job given as the text of its body, for producers that hold the text: the group of its
 * `agency_reference` when the body is a JSON object whose `agency_reference` is a string, else `default` (a body
 * that is not a job is dead-lettered `invalid_job` whatever its group). Never throws.
 */
export function messageGroupOfBody(body: string): string {
  let job: unknown;
  try {
    job = JSON.parse(body);
  } catch {
    return DEFAULT_MESSAGE_GROUP;
  }
  const reference =
    typeof job === 'object' && job !== null && !Array.isArray(job)
      ? (job as Record<string, unknown>).agency_reference
      : undefined;
  return messageGroupOf(typeof reference === 'string' ? reference : undefined);
}

/** The `MessageGroupId` a received record carried (SQS's system attribute), or undefined when it had none. */
export function recordMessageGroup(record: Pick<SQSRecord, 'attributes'>): string | undefined {
  return record.attributes?.MessageGroupId || undefined;
}
