import type { DeliveryStatus, NormalisedWebhook, WebhookKind } from '#shared/webhook/payload.ts';

/** The `source` of every event the relay puts on the bus (docs/webhooks.md, "Events on the bus"). */
export const EVENT_SOURCE = 'ecourtdate-relay';

/** The `detail-type` of each event the relay publishes. Upstream rules match on these: never rename. */
export const DETAIL_TYPE = {
  messageStatus: 'eCourtDate Message Status',
  inboundMessage: 'eCourtDate Inbound Message',
  webhook: 'eCourtDate Webhook',
  jobDeliveryStatus: 'eCourtDate Job Delivery Status',
} as const;

const DETAIL_TYPE_OF_KIND: Record<WebhookKind, string> = {
  message_status: DETAIL_TYPE.messageStatus,
  inbound_message: DETAIL_TYPE.inboundMessage,
  webhook: DETAIL_TYPE.webhook,
};

/** `detail` of `eCourtDate Message Status`, `eCourtDate Inbound Message` and `eCourtDate Webhook`. */
export interface WebhookEventDetail {
  /** The payload's `uuid` (eCourtDate's event id), or null when it has none. */
  readonly webhook_uuid: string | null;
  readonly kind: WebhookKind;
  /** The payload's own type name, when it carries one. */
  readonly type: string | null;
  readonly direction: 'inbound' | 'outbound' | null;
  readonly channel: string | null;
  /**
   * Normalised: `queued`, `sent`, `delivered`, `failed`, `retried`, `replied`, eCourtDate's word when it is one
   * word, or `other`.
   */
  readonly status: DeliveryStatus | null;
  /**
   * eCourtDate's status text (lower case, at most 32 characters), e-mail addresses and phone numbers masked: this
   * event carries the payload anyway.
   */
  readonly raw_status: string | null;
  /** The outbound message the update is about (or the reply answers), when one could be read. */
  readonly message_uuid: string | null;
  readonly created_at: string | null;
  /** When the relay received the delivery, ISO 8601 UTC. */
  readonly received_at: string;
  /** The relay's job that sent the message, when the update names a message the relay created. */
  readonly job_id?: string;
  /**
   * The payload exactly as received: the handler passes its JSON text (`PayloadText`), which goes into the
   * event's `Detail` as written, so big integers keep every digit and any nesting depth serialises.
   */
  readonly payload: unknown;
}

/**
 * A JSON text (already checked to parse) carried into an event's `detail` as written, never re-serialised
 * (docs/webhooks.md, "Events on the bus"). `JSON.rawJSON` cannot do this: it takes primitives only.
 */
export class PayloadText {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

/**
 * The `Detail` string of an event: its fields as JSON, with a `PayloadText` payload spliced in as its text.
 * Throws only what `JSON.stringify` throws for a payload passed as a value (a `PayloadText` never throws).
 *
 * @example serializeDetail({ a: 1, payload: new PayloadText('{"id":12345678901234567890}') })
 * // '{"a":1,"payload":{"id":12345678901234567890}}'
 */
export function serializeDetail(detail: object): string {
  if (!('payload' in detail) || !(detail.payload instanceof PayloadText)) return JSON.stringify(detail);
  const { payload, ...rest } = detail;
  const head = JSON.stringify(rest);
  return `${head.slice(0, -1)}${head === '{}' ? '' : ','}"payload":${payload.text}}`;
}

/** `detail` of `eCourtDate Job Delivery Status`. */
export interface JobDeliveryStatusDetail {
  readonly job_id: string;
  readonly message_uuid: string;
  /** This update's status: the relay's word, eCourtDate's single word, or `other` (never free text). */
  readonly status: DeliveryStatus;
  /** eCourtDate's own word for it (`undelivered`, `bounced`), or null: never its free text. */
  readonly raw_status: string | null;
  /**
   * The job's delivery status with this update counted: the newest by time, so a late `sent` after `delivered`
   * leaves it `delivered`.
   */
  readonly job_status: DeliveryStatus;
  /** When the status happened (the payload's time, else the receive time), ISO 8601 UTC. */
  readonly at: string;
  readonly webhook_uuid: string | null;
  readonly channel: string | null;
  readonly received_at: string;
}

/** A webhook's effect on one of the relay's jobs: the job, the message it sent, and the new status. */
export interface JobMatch {
  readonly jobId: string;
  readonly messageUuid: string;
  /** This update's status. */
  readonly status: DeliveryStatus;
  /** The job's status with this update counted. */
  readonly jobStatus: DeliveryStatus;
}

/** One event to publish. `key` names it in the dedupe record, so a retry skips what already went out. */
export interface PlannedEvent {
  readonly key: 'webhook' | 'job_delivery_status';
  readonly detailType: string;
  readonly detail: WebhookEventDetail | JobDeliveryStatusDetail;
}

/**
 * The events one delivery becomes: always its kind's event with the raw payload, and `eCourtDate Job Delivery
 * Status` when it changed the status of one of the relay's jobs.
 */
export function planEvents(
  webhook: NormalisedWebhook,
  payload: unknown,
  receivedAt: number,
  match: JobMatch | undefined,
): PlannedEvent[] {
  const receivedIso = new Date(receivedAt).toISOString();
  const events: PlannedEvent[] = [
    {
      key: 'webhook',
      detailType: DETAIL_TYPE_OF_KIND[webhook.kind],
      detail: {
        webhook_uuid: webhook.uuid ?? null,
        kind: webhook.kind,
        type: webhook.type ?? null,
        direction: webhook.direction ?? null,
        channel: webhook.channel ?? null,
        status: webhook.status ?? null,
        raw_status: webhook.rawStatus ?? null,
        message_uuid:
          match?.messageUuid ??
          (webhook.kind === 'inbound_message' ? webhook.repliedToUuids[0] : webhook.messageUuids[0]) ??
          null,
        created_at: webhook.createdAt ?? null,
        received_at: receivedIso,
        ...(match ? { job_id: match.jobId } : {}),
        payload,
      },
    },
  ];
  if (match) {
    events.push({
      key: 'job_delivery_status',
      detailType: DETAIL_TYPE.jobDeliveryStatus,
      detail: {
        job_id: match.jobId,
        message_uuid: match.messageUuid,
        status: match.status,
        // eCourtDate's word, never its free text: this event carries no payload.
        raw_status: webhook.statusWord ?? null,
        job_status: match.jobStatus,
        at: new Date(webhook.occurredAt ?? receivedAt).toISOString(),
        webhook_uuid: webhook.uuid ?? null,
        channel: webhook.channel ?? null,
        received_at: receivedIso,
      },
    });
  }
  return events;
}
