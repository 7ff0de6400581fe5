import type { DeliveryEvent, JobDelivery } from '#shared/ledger/delivery.ts';

/**
 * How a job's delivery status reads in the local run's summary and report and in `relay job ID`
 * (docs/webhooks.md, "Delivery status per job"). Pure formatting, no SDK: the CLI loads it at start-up.
 */

/**
 * A job's delivery status in one line: `delivered (sent → delivered)`, `failed`, or `-` when no webhook has
 * named the job's message (webhooks off, not yet arrived, or the job was never delivered).
 *
 * @example describeDelivery({ delivery_status: 'delivered', delivery_history: [sent, delivered] }) === 'delivered (sent → delivered)'
 */
export function describeDelivery(delivery: JobDelivery | undefined): string {
  const status = delivery?.delivery_status;
  if (status === undefined) return '-';
  const steps = (delivery?.delivery_history ?? []).map((event) => event.status);
  return steps.length > 1 ? `${status} (${steps.join(' → ')})` : status;
}

/**
 * The delivery history as lines for `relay job ID`, oldest first: time (UTC), status, eCourtDate's own word when
 * it differs, the webhook's uuid.
 *
 * @example deliveryHistoryLines(entry) // ['2026-12-01 15:00:03Z  sent  webhook 5b0d9a4e-…', ...]
 */
export function deliveryHistoryLines(delivery: Pick<JobDelivery, 'delivery_history'> | undefined): string[] {
  return (delivery?.delivery_history ?? []).map((event: DeliveryEvent) =>
    [
      new Date(event.at)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d{3}Z$/, 'Z'),
      event.status,
      ...(event.raw_status ? [`(eCourtDate: ${event.raw_status})`] : []),
      ...(event.webhook_uuid ? [`webhook ${event.webhook_uuid}`] : []),
    ].join('  '),
  );
}
