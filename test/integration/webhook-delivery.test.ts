import { randomUUID } from 'node:crypto';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DELIVERY_HISTORY_MAX } from '#shared/ledger/delivery.ts';
import { DETAIL_TYPE } from '#shared/webhook/events.ts';
import { captureLogs } from '#test/helpers/log-capture.ts';
import {
  startWebhookHarness,
  WEBHOOK_LEDGER_TABLE,
  type WebhookHarness,
} from '#test/helpers/webhook-harness.ts';

/** An outbound message update; which field names the message is UNKNOWN, so tests use several forms. */
function statusUpdate(messageUuid: string, status: string, extra: Record<string, unknown> = {}) {
  return {
    uuid: randomUUID(),
    channel: 'text',
    direction: 'outbound',
    message_uuid: messageUuid,
    last_status: status,
    to: '+15557654321',
    content: 'Reminder: court on Dec 3 at 9:00 AM, Room 4B.',
    ...extra,
  };
}

let h: WebhookHarness;

beforeAll(async () => {
  h = await startWebhookHarness();
});

afterAll(async () => {
  await h?.close();
});

afterEach(() => {
  h.events.clear();
});

function jobEvents() {
  return h.events.events.filter((e) => e.detailType === DETAIL_TYPE.jobDeliveryStatus).map((e) => e.detail);
}

describe('delivery status per job', () => {
  it('records sent then delivered on the job that created the message, and publishes each with the job id', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-a', messageUuid);

    expect((await h.post(statusUpdate(messageUuid, 'sent'))).status).toBe(200);
    expect((await h.post(statusUpdate(messageUuid, 'delivered'))).status).toBe(200);

    const delivery = await h.delivery.getDelivery('job-a');
    expect(delivery?.delivery_status).toBe('delivered');
    expect(delivery?.delivery_history?.map((e) => e.status)).toEqual(['sent', 'delivered']);
    expect(jobEvents()).toEqual([
      expect.objectContaining({
        job_id: 'job-a',
        message_uuid: messageUuid,
        status: 'sent',
        job_status: 'sent',
      }),
      expect.objectContaining({
        job_id: 'job-a',
        message_uuid: messageUuid,
        status: 'delivered',
        job_status: 'delivered',
      }),
    ]);
    const statusEvents = h.events.events.filter((e) => e.detailType === DETAIL_TYPE.messageStatus);
    expect(statusEvents.map((e) => (e.detail as { job_id?: string }).job_id)).toEqual(['job-a', 'job-a']);
  });

  it('leaves the job delivered when a sent update arrives late, with an earlier time of its own', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-late', messageUuid);

    // eCourtDate's UTC `YYYY-MM-DD H:i:s`, a minute apart, within the replay horizon.
    const at = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
    await h.post(statusUpdate(messageUuid, 'delivered', { updated_at: at(Date.now() - 60_000) }));
    await h.post(statusUpdate(messageUuid, 'sent', { updated_at: at(Date.now() - 120_000) }));

    const delivery = await h.delivery.getDelivery('job-late');
    expect(delivery?.delivery_status).toBe('delivered');
    expect(delivery?.delivery_history?.map((e) => e.status)).toEqual(['sent', 'delivered']);
    expect(jobEvents().at(-1)).toMatchObject({ status: 'sent', job_status: 'delivered' });
  });

  it('normalises a carrier failure to failed, keeping eCourtDate’s word', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-failed', messageUuid);

    await h.post(statusUpdate(messageUuid, 'Undelivered'));

    const delivery = await h.delivery.getDelivery('job-failed');
    expect(delivery?.delivery_status).toBe('failed');
    expect(delivery?.delivery_history?.[0]).toMatchObject({ status: 'failed', raw_status: 'undelivered' });
  });

  it.each([
    ['a message object', (uuid: string) => ({ message: { uuid }, message_uuid: undefined })],
    [
      'a wrapped record',
      (uuid: string) => ({
        message_uuid: undefined,
        data: { uuid, direction: 'outbound', last_status: 'delivered' },
      }),
    ],
    [
      'a type name and message_id',
      (uuid: string) => ({
        type: 'message.delivered',
        message_id: uuid,
        last_status: undefined,
        direction: undefined,
      }),
    ],
  ])('finds the job when the update names the message through %s', async (_, form) => {
    const messageUuid = randomUUID();
    const jobId = `job-${randomUUID()}`;
    await h.seedDeliveredJob(jobId, messageUuid);

    await h.post(statusUpdate(messageUuid, 'delivered', form(messageUuid)));

    expect((await h.delivery.getDelivery(jobId))?.delivery_status).toBe('delivered');
  });

  it('records replied on the job when an inbound reply names the message it answers', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-replied', messageUuid);

    await h.post({
      uuid: randomUUID(),
      channel: 'text',
      direction: 'inbound',
      in_reply_to: messageUuid,
      from: '+15557654321',
      content: 'YES',
    });

    expect((await h.delivery.getDelivery('job-replied'))?.delivery_status).toBe('replied');
    expect(h.events.events.map((e) => e.detailType)).toEqual([
      DETAIL_TYPE.inboundMessage,
      DETAIL_TYPE.jobDeliveryStatus,
    ]);
  });

  it('publishes an update for a message the relay did not create without a job id and without a job event', async () => {
    const res = await h.post(statusUpdate(randomUUID(), 'delivered'));

    expect(res.status).toBe(200);
    expect(h.events.events).toHaveLength(1);
    expect(h.events.events[0]?.detailType).toBe(DETAIL_TYPE.messageStatus);
    expect(h.events.events[0]?.detail).not.toHaveProperty('job_id');
  });

  it('keeps two updates of one message apart even if its uuid were the message’s own id', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-same-uuid', messageUuid);
    // The webhook guide's sample is a message record: uuid, direction, last_status and no separate event id.
    const record = { uuid: messageUuid, channel: 'text', direction: 'outbound' };

    await h.post({ ...record, last_status: 'sent' });
    await h.post({ ...record, last_status: 'delivered' });

    expect((await h.delivery.getDelivery('job-same-uuid'))?.delivery_history?.map((e) => e.status)).toEqual([
      'sent',
      'delivered',
    ]);
  });
});

describe('eCourtDate’s free-text status', () => {
  it('keeps an e-mail address in a status out of the job’s history, the job event and the logs', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-bounced', messageUuid);
    const logs = captureLogs();
    try {
      const res = await h.post(statusUpdate(messageUuid, 'bounced: john.doe@example.com'));

      expect(res.status).toBe(200);
      const delivery = await h.delivery.getDelivery('job-bounced');
      expect(delivery?.delivery_status).toBe('failed');
      for (const view of [JSON.stringify(delivery), JSON.stringify(jobEvents()), logs.text()]) {
        expect(view).not.toMatch(/john|doe|example/i);
      }
    } finally {
      logs.stop();
    }
  });

  it('records and publishes only the normalised status of a status in free text, never the text', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-free-text', messageUuid);

    await h.post(statusUpdate(messageUuid, 'Opened by Jordan Smith'));

    const delivery = await h.delivery.getDelivery('job-free-text');
    expect(delivery?.delivery_history?.map((e) => e.status)).toEqual(['other']);
    expect(jobEvents()).toEqual([expect.objectContaining({ status: 'other', raw_status: null })]);
    expect(JSON.stringify([delivery, jobEvents()])).not.toMatch(/jordan|smith/i);
  });

  it('keeps eCourtDate’s own word beside the relay’s when the status is one word', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-word', messageUuid);

    await h.post(statusUpdate(messageUuid, 'Bounced: jordan.smith@example.com'));

    expect((await h.delivery.getDelivery('job-word'))?.delivery_history?.[0]).toMatchObject({
      status: 'failed',
      raw_status: 'bounced',
    });
    expect(jobEvents()).toEqual([expect.objectContaining({ status: 'failed', raw_status: 'bounced' })]);
  });
});

describe('DeliveryLedger', () => {
  it('finds the job of a message through the uuid index', async () => {
    await h.delivery.putUuidIndex('msg-1', 'job-1');

    expect(await h.delivery.findJobIdByUuid('msg-1')).toBe('job-1');
    expect(await h.delivery.findJobIdByUuid('msg-unknown')).toBeUndefined();
  });

  it('does not create a job entry for a job that has none', async () => {
    const result = await h.delivery.recordDeliveryStatus('job-missing', {
      status: 'delivered',
      at: 1,
      received_at: 1,
      webhook_uuid: 'w',
    });

    expect(result).toEqual({ kind: 'no_job' });
    expect(await h.delivery.getDelivery('job-missing')).toBeUndefined();
  });

  it('records a retried delivery of the same update once', async () => {
    await h.seedDeliveredJob('job-retry', randomUUID());
    const update = { status: 'delivered', at: 5, received_at: 5, webhook_uuid: 'w-1' };

    const first = await h.delivery.recordDeliveryStatus('job-retry', update);
    const again = await h.delivery.recordDeliveryStatus('job-retry', { ...update, received_at: 9 });

    expect(first.kind).toBe('recorded');
    expect(again).toEqual({ kind: 'unchanged', status: 'delivered' });
    expect((await h.delivery.getDelivery('job-retry'))?.delivery_history).toHaveLength(1);
  });

  it(`keeps the newest ${DELIVERY_HISTORY_MAX} updates`, async () => {
    await h.seedDeliveredJob('job-long', randomUUID());

    for (let i = 1; i <= DELIVERY_HISTORY_MAX + 3; i++) {
      await h.delivery.recordDeliveryStatus('job-long', {
        status: 'retried',
        at: i,
        received_at: i,
        webhook_uuid: `w${i}`,
      });
    }

    const history = (await h.delivery.getDelivery('job-long'))?.delivery_history ?? [];
    expect(history).toHaveLength(DELIVERY_HISTORY_MAX);
    expect(history[0]?.webhook_uuid).toBe('w4');
  });

  it('loses no update when several arrive for one job at once', async () => {
    await h.seedDeliveredJob('job-busy', randomUUID());

    await Promise.all(
      ['a', 'b', 'c', 'd'].map((id, i) =>
        h.delivery.recordDeliveryStatus('job-busy', {
          status: 'sent',
          at: i,
          received_at: i,
          webhook_uuid: id,
        }),
      ),
    );

    expect((await h.delivery.getDelivery('job-busy'))?.delivery_history).toHaveLength(4);
  });

  it('leaves the job entry’s own attributes as the sender wrote them', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-untouched', messageUuid);

    await h.delivery.recordDeliveryStatus('job-untouched', { status: 'delivered', at: 1, received_at: 1 });

    const doc = DynamoDBDocumentClient.from(h.dynamodb.client);
    const item = (
      await doc.send(new GetCommand({ TableName: WEBHOOK_LEDGER_TABLE, Key: { id: 'job#job-untouched' } }))
    ).Item;
    expect(item).toMatchObject({
      status: 'delivered',
      uuid: messageUuid,
      version: 2,
      delivery_status: 'delivered',
    });
  });
});
