import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DETAIL_TYPE } from '#shared/webhook/events.ts';
import {
  injectDynamoFaults,
  startWebhookHarness,
  type WebhookHarness,
} from '#test/helpers/webhook-harness.ts';

/*
 * What the receiver guarantees when timing and its dependencies are against it (docs/webhooks.md,
 * "Deduplication", "Replays" and "Delivery status per job"): no status is lost, no old replay is published
 * again, what went out is remembered, and its own write is recognised as its own.
 */

const DAY_MS = 86_400_000;
/** The harness's dedupe window: the default `webhookDedupeDays`, 7. */
const WINDOW_MS = 7 * DAY_MS;
/** The lease of a claim (`WEBHOOK_LEASE_SECONDS`, 30 s). */
const LEASE_MS = 30_000;

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

/** An outbound status update of `messageUuid`, dated `at` (epoch ms) by its own `updated_at`. */
function statusUpdate(messageUuid: string, status: string, at = Date.now()): Record<string, unknown> {
  return {
    uuid: randomUUID(),
    channel: 'text',
    direction: 'outbound',
    message_uuid: messageUuid,
    last_status: status,
    to: '+15557654321',
    content: 'Reminder: court on Dec 3 at 9:00 AM, Room 4B.',
    created_at: new Date(at).toISOString(),
    updated_at: new Date(at).toISOString(),
  };
}

/** An inbound text dated `at` (epoch ms) by its `created_at`. */
function inboundText(at = Date.now()): Record<string, unknown> {
  return {
    uuid: randomUUID(),
    channel: 'text',
    direction: 'inbound',
    from: '+15557654321',
    content: 'Yes I will be there',
    created_at: new Date(at).toISOString(),
  };
}

/** A gateway in front of one new receiver container whose clock runs `offsetMs` ahead of the real one. */
async function instanceAt(offsetMs: number): Promise<string> {
  const gateway = await h.gateway([h.createInstance({ now: () => Date.now() + offsetMs })]);
  return gateway.url;
}

function eventsOf(uuid: unknown) {
  return h.events.events.filter((e) => (e.detail as { webhook_uuid?: unknown }).webhook_uuid === uuid);
}

describe('a status that arrives before the uuid index', () => {
  it('is recorded on the job when the sender writes the index afterwards', async () => {
    const messageUuid = randomUUID();
    await h.seedJob('job-early', messageUuid);
    const update = statusUpdate(messageUuid, 'delivered');

    const res = await h.post(update);
    const indexed = await h.delivery.putUuidIndex(messageUuid, 'job-early');

    expect(res.status).toBe(200);
    const delivery = await h.delivery.getDelivery('job-early');
    expect(delivery?.delivery_status).toBe('delivered');
    expect(delivery?.delivery_history?.map((e) => [e.status, e.webhook_uuid])).toEqual([
      ['delivered', update.uuid],
    ]);
    expect(indexed).toMatchObject({ status: 'delivered', merged: [{ webhook_uuid: update.uuid }] });
  });

  it('is cleared from the index item once it is on the job, and a second index write merges nothing', async () => {
    const messageUuid = randomUUID();
    await h.seedJob('job-early-twice', messageUuid);
    await h.post(statusUpdate(messageUuid, 'sent'));

    await h.delivery.putUuidIndex(messageUuid, 'job-early-twice');
    const again = await h.delivery.putUuidIndex(messageUuid, 'job-early-twice');

    expect(again.merged).toEqual([]);
    expect(await h.delivery.readUuidIndex(messageUuid)).toMatchObject({
      jobId: 'job-early-twice',
      pending: [],
    });
    expect((await h.delivery.getDelivery('job-early-twice'))?.delivery_history).toHaveLength(1);
  });

  it('goes to the job at once, with its job event, when it comes after the index', async () => {
    const messageUuid = randomUUID();
    await h.seedJob('job-late-index', messageUuid);
    await h.post(statusUpdate(messageUuid, 'sent'));
    await h.delivery.putUuidIndex(messageUuid, 'job-late-index');
    h.events.clear();

    await h.post(statusUpdate(messageUuid, 'delivered'));

    expect(h.events.events.map((e) => e.detailType)).toEqual([
      DETAIL_TYPE.messageStatus,
      DETAIL_TYPE.jobDeliveryStatus,
    ]);
    expect((await h.delivery.getDelivery('job-late-index'))?.delivery_history?.map((e) => e.status)).toEqual([
      'sent',
      'delivered',
    ]);
  });

  it('is lost by neither writer when statuses and the index write race', async () => {
    const messageUuid = randomUUID();
    await h.seedJob('job-race', messageUuid);
    const start = Date.now() - 60_000;
    const updates = ['queued', 'sent', 'retried', 'sent', 'delivered', 'replied'].map((status, i) =>
      statusUpdate(messageUuid, status, start + i * 1000),
    );

    const before = [];
    for (const update of updates.slice(0, 2)) before.push((await h.post(update)).status);
    const during = await Promise.all([
      ...updates.slice(2).map((update) => h.post(update).then((res) => res.status)),
      h.delivery.putUuidIndex(messageUuid, 'job-race').then(() => 200),
    ]);

    expect([...before, ...during].every((status) => status === 200)).toBe(true);
    const history = (await h.delivery.getDelivery('job-race'))?.delivery_history ?? [];
    expect(history.map((e) => e.webhook_uuid)).toEqual(updates.map((u) => u.uuid));
  });

  it('is still published as a message status event at once, without a job id', async () => {
    const messageUuid = randomUUID();
    await h.seedJob('job-early-event', messageUuid);
    const update = statusUpdate(messageUuid, 'sent');

    await h.post(update);

    expect(eventsOf(update.uuid).map((e) => e.detailType)).toEqual([DETAIL_TYPE.messageStatus]);
    expect(eventsOf(update.uuid)[0]?.detail).not.toHaveProperty('job_id');
  });
});

describe('replays', () => {
  it('does not publish again a signed delivery replayed after the dedupe window', async () => {
    const payload = inboundText();
    expect((await h.post(payload)).status).toBe(200);

    const replay = await h.post(payload, { url: await instanceAt(WINDOW_MS + DAY_MS) });

    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual({ status: 'stale' });
    expect(eventsOf(payload.uuid)).toHaveLength(1);
  });

  it('never publishes again a delivery with no time of its own, however late the copy', async () => {
    const payload = { uuid: randomUUID(), type: 'payment.created', amount: 25 };
    expect((await h.post(payload)).status).toBe(200);

    const replay = await h.post(payload, { url: await instanceAt(400 * DAY_MS) });

    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual({ status: 'duplicate' });
    expect(eventsOf(payload.uuid)).toHaveLength(1);
  });

  it('remembers a delivery dated ahead of its receipt until its own time is past the horizon', async () => {
    // eCourtDate's clock 20 hours ahead of the relay's: within the day of skew a payload time may have.
    const payload = inboundText(Date.now() + 20 * 3_600_000);
    expect((await h.post(payload)).status).toBe(200);

    // The window after the receipt has passed; the window after the delivery's own time has not.
    const replay = await h.post(payload, { url: await instanceAt(WINDOW_MS + 10 * 3_600_000) });

    expect(replay.status).toBe(200);
    expect(eventsOf(payload.uuid)).toHaveLength(1);
  });

  it('answers a copy within the horizon as a duplicate, late in the window', async () => {
    const payload = inboundText();
    await h.post(payload);

    const copy = await h.post(payload, { url: await instanceAt(WINDOW_MS - 2 * 3_600_000) });

    expect(await copy.json()).toEqual({ status: 'duplicate' });
    expect(eventsOf(payload.uuid)).toHaveLength(1);
  });

  it('records the status of a delivery older than the horizon on its job, and publishes nothing', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-old-status', messageUuid);
    const update = statusUpdate(messageUuid, 'delivered', Date.now() - WINDOW_MS - DAY_MS);

    const res = await h.post(update);

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'stale' });
    expect(h.events.events).toEqual([]);
    expect((await h.delivery.getDelivery('job-old-status'))?.delivery_status).toBe('delivered');
  });
});

describe('progress of a partly published delivery', () => {
  it('keeps what PutEvents took when the first progress write fails, so the retry publishes only the rest', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-progress', messageUuid);
    const update = statusUpdate(messageUuid, 'delivered');
    const first = await h.gateway([
      h.createInstance({
        // Every attempt of the first write to the dedupe record after its claim: the progress write.
        clients: (c) =>
          injectDynamoFaults(c.dynamodb, {
            operation: 'UpdateItem',
            match: (body) => body.includes('"webhook#'),
            kind: 'throttled',
            calls: 1,
          }),
      }),
    ]);
    h.events.failEntriesNext(1, { select: (entry) => entry.DetailType === DETAIL_TYPE.jobDeliveryStatus });

    const failed = await h.post(update, { url: first.url });
    const retry = await h.post(update, { url: await instanceAt(LEASE_MS + 1_000) });

    expect(failed.status).toBe(503);
    expect(retry.status).toBe(200);
    expect(h.events.events.map((e) => e.detailType)).toEqual([
      DETAIL_TYPE.messageStatus,
      DETAIL_TYPE.jobDeliveryStatus,
    ]);
  }, 30_000);
});

describe('a conditional write whose answer was lost', () => {
  it('answers 200, not 409, when the SDK resends a claim DynamoDB had already applied', async () => {
    const payload = inboundText();
    const gateway = await h.gateway([
      h.createInstance({
        clients: (c) =>
          injectDynamoFaults(c.dynamodb, {
            operation: 'PutItem',
            match: (body) => body.includes('"webhook#'),
            kind: 'lost_answer',
            calls: 1,
          }),
      }),
    ]);

    const res = await h.post(payload, { url: gateway.url });

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'accepted' });
    expect(eventsOf(payload.uuid)).toHaveLength(1);
  });

  it('takes over a given-back delivery when the SDK resends the takeover DynamoDB had already applied', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-takeover', messageUuid);
    const update = statusUpdate(messageUuid, 'sent');
    h.events.failNext(3, 'InternalException');
    expect((await h.post(update)).status).toBe(503);
    const gateway = await h.gateway([
      h.createInstance({
        clients: (c) =>
          injectDynamoFaults(c.dynamodb, {
            operation: 'UpdateItem',
            match: (body) => body.includes('"webhook#'),
            kind: 'lost_answer',
            calls: 1,
          }),
      }),
    ]);

    const retry = await h.post(update, { url: gateway.url });

    expect(retry.status).toBe(200);
    expect(h.events.events.map((e) => e.detailType)).toEqual([
      DETAIL_TYPE.messageStatus,
      DETAIL_TYPE.jobDeliveryStatus,
    ]);
  });
});
