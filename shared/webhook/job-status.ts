import type { DeliveryEvent, DeliveryLedger, UuidIndexItem } from '#shared/ledger/delivery.ts';
import type { JobMatch } from '#shared/webhook/events.ts';
import type { DeliveryStatus, NormalisedWebhook } from '#shared/webhook/payload.ts';

/** What a delivery did to the relay's jobs (docs/webhooks.md, "Delivery status per job"). */
export type JobStatusOutcome =
  /** Not an update of a message (or the message is not a job's any more: its entry expired). */
  | { readonly kind: 'none' }
  /** Recorded on the job that sent the message. */
  | { readonly kind: 'recorded'; readonly match: JobMatch }
  /** No index named the message yet: kept on the index items of `messageUuids` until the sender writes one. */
  | { readonly kind: 'pending'; readonly messageUuids: readonly string[] };

/**
 * Records a message update (or an inbound reply naming the message it answers, as `replied`) on the relay's
 * job that sent the message. The candidate uuids are tried in order; the first the uuid index knows wins. When
 * none is known yet, the update is kept on the index item of each candidate (`keepPendingStatus`), since the
 * sender writes the index after the 201 and a webhook can come first: `putUuidIndex` then moves it onto the job.
 * Idempotent: a repeated update changes nothing, one without uuid included (its `body_digest`). Throws
 * DynamoDB's errors (the caller answers 503).
 */
export async function recordJobStatus(
  deliveries: DeliveryLedger,
  webhook: NormalisedWebhook,
  receivedAt: number,
): Promise<JobStatusOutcome> {
  const candidates = statusCandidates(webhook);
  if (candidates === undefined) return { kind: 'none' };
  const update = (messageUuid: string): DeliveryEvent => ({
    status: candidates.status,
    at: webhook.occurredAt ?? receivedAt,
    received_at: receivedAt,
    webhook_uuid: webhook.uuid,
    // eCourtDate's word, never its free text: the history is a payload-free view.
    raw_status: webhook.statusWord !== candidates.status ? webhook.statusWord : undefined,
    message_uuid: messageUuid,
    // Without a uuid, what tells a retried copy (dated by its own receipt when it names no time) for a repeat.
    body_digest: webhook.uuid === undefined ? webhook.bodyDigest : undefined,
  });
  const record = async (jobId: string, messageUuid: string): Promise<JobStatusOutcome> => {
    const result = await deliveries.recordDeliveryStatus(jobId, update(messageUuid));
    if (result.kind === 'no_job') return { kind: 'none' };
    const jobStatus = result.status ?? candidates.status;
    return { kind: 'recorded', match: { jobId, messageUuid, status: candidates.status, jobStatus } };
  };

  const unindexed: [string, UuidIndexItem | undefined][] = [];
  for (const messageUuid of candidates.uuids) {
    const item = await deliveries.readUuidIndex(messageUuid);
    if (item?.jobId !== undefined) return record(item.jobId, messageUuid);
    unindexed.push([messageUuid, item]);
  }
  for (const [messageUuid, item] of unindexed) {
    const kept = await deliveries.keepPendingStatus(messageUuid, update(messageUuid), item);
    if (kept.kind === 'indexed') return record(kept.jobId, messageUuid);
  }
  return unindexed.length === 0 ? { kind: 'none' } : { kind: 'pending', messageUuids: candidates.uuids };
}

/** The messages an update may be about, and the status it gives the job; undefined when it is no update. */
function statusCandidates(
  webhook: NormalisedWebhook,
): { readonly uuids: readonly string[]; readonly status: DeliveryStatus } | undefined {
  if (webhook.kind === 'message_status' && webhook.status !== undefined) {
    return { uuids: webhook.messageUuids, status: webhook.status };
  }
  if (webhook.kind === 'inbound_message') return { uuids: webhook.repliedToUuids, status: 'replied' };
  return undefined;
}
