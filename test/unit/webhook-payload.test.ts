import { describe, expect, it } from 'vitest';
import { deliveryHistoryLines, describeDelivery } from '#local/pipeline/webhook-report.ts';
import { DETAIL_TYPE, planEvents } from '#shared/webhook/events.ts';
import { normaliseStatus, normaliseWebhook, parseTime } from '#shared/webhook/payload.ts';

const raw = (payload: unknown) => Buffer.from(JSON.stringify(payload));
const read = (payload: unknown) => normaliseWebhook(payload, raw(payload));

describe('normaliseWebhook', () => {
  it('reads the documented message fields of an inbound text', () => {
    const payload = {
      uuid: 'e1',
      channel: 'text',
      direction: 'inbound',
      created_at: '2026-03-15T14:30:00Z',
      last_status: 'received',
    };

    expect(read(payload)).toMatchObject({
      kind: 'inbound_message',
      uuid: 'e1',
      channel: 'text',
      direction: 'inbound',
      createdAt: '2026-03-15T14:30:00Z',
    });
  });

  it('takes an outbound message with a status as a message status update', () => {
    expect(
      read({ uuid: 'e2', direction: 'outbound', last_status: 'delivered', message_uuid: 'm2' }),
    ).toMatchObject({
      kind: 'message_status',
      status: 'delivered',
      messageUuids: ['m2', 'e2'],
    });
  });

  it('reads the direction from a type name such as INBOUND_TEXTS', () => {
    expect(read({ uuid: 'e3', type: 'INBOUND_TEXTS', content: 'hi' })).toMatchObject({
      kind: 'inbound_message',
      direction: 'inbound',
      type: 'INBOUND_TEXTS',
    });
  });

  it('reads the status from a type name such as message.failed', () => {
    expect(read({ uuid: 'e4', type: 'message.failed', message_id: 'm4' })).toMatchObject({
      kind: 'message_status',
      status: 'failed',
      rawStatus: 'failed',
      messageUuids: ['m4', 'e4'],
    });
  });

  it('reads a wrapped record, with the message id from the record and the event id from the envelope', () => {
    const payload = {
      uuid: 'e5',
      type: 'outbound_message',
      data: { uuid: 'm5', direction: 'outbound', last_status: 'sent' },
    };

    expect(read(payload)).toMatchObject({
      kind: 'message_status',
      uuid: 'e5',
      status: 'sent',
      messageUuids: ['m5', 'e5'],
    });
  });

  it('takes anything that is not a message as a generic webhook', () => {
    expect(read({ uuid: 'e6', type: 'payment.created', amount: 25 }).kind).toBe('webhook');
    expect(read([1, 2, 3]).kind).toBe('webhook');
  });

  it('reads the message an inbound reply answers', () => {
    expect(read({ uuid: 'e7', direction: 'inbound', in_reply_to: { uuid: 'm7' } }).repliedToUuids).toEqual([
      'm7',
    ]);
  });

  it('ignores ids that are not id-like rather than carrying them into keys', () => {
    expect(read({ uuid: 'a b <script>', direction: 'inbound' }).uuid).toBeUndefined();
  });
});

describe('personal data in the normalised fields', () => {
  it('masks an e-mail address in a status before it strips any character', () => {
    const webhook = read({ uuid: 'e9', direction: 'outbound', last_status: 'bounced: john.doe@example.com' });

    expect(webhook).toMatchObject({ status: 'failed', statusWord: 'bounced' });
    expect(JSON.stringify(webhook)).not.toMatch(/john|doeexample/);
  });

  it('masks an e-mail address that only stripping would join together', () => {
    const webhook = read({
      uuid: 'e10',
      direction: 'outbound',
      last_status: 'bounced john.doe@exa"mple.com',
    });

    expect(JSON.stringify(webhook)).not.toMatch(/john|doe/);
  });

  it('masks an e-mail address in a type name before it strips any character', () => {
    const webhook = read({ uuid: 'e11', type: 'message.bounced <jordan.private@example.org>' });

    expect(JSON.stringify(webhook)).not.toMatch(/jordan|private/);
  });

  it('has no status word for a status in free text, which normalises to other', () => {
    const webhook = read({ uuid: 'e12', direction: 'outbound', last_status: 'Opened by Jordan' });

    expect(webhook.status).toBe('other');
    expect(webhook.statusWord).toBeUndefined();
  });
});

describe('dedupe key', () => {
  it('is the same for a redelivery of the same bytes', () => {
    const payload = { uuid: 'e1', direction: 'outbound', last_status: 'sent' };

    expect(read(payload).dedupeKey).toBe(read(payload).dedupeKey);
  });

  it('differs for two statuses under one uuid', () => {
    expect(read({ uuid: 'm1', last_status: 'sent' }).dedupeKey).not.toBe(
      read({ uuid: 'm1', last_status: 'delivered' }).dedupeKey,
    );
  });

  it('is the hash of the bytes when the payload has no uuid', () => {
    expect(read({ type: 'form.submitted', id: 3 }).dedupeKey).toMatch(/^sha256-[0-9a-f]{64}$/);
  });
});

describe('normaliseStatus', () => {
  it.each([
    ['Delivered', 'delivered'],
    ['undelivered', 'failed'],
    ['bounced', 'failed'],
    ['retrying', 'retried'],
    ['reply', 'replied'],
    ['queued', 'queued'],
    ['message_delivered', 'delivered'],
    ['opened', 'opened'],
    ['opened by jordan', 'other'],
    ['clicked twice', 'other'],
    ['bounced:john.doe@example.com', 'failed'],
    ['failed:5557654321', 'failed'],
    ['JOHN(AT)EXAMPLE(DOT)COM', 'other'],
    ['john_doe_at_example_dot_com', 'other'],
    ['opened-by-jordan-smith', 'other'],
    ['maría', 'other'],
    ['constructor', 'other'],
    ['received', 'received'],
  ])('reads %s as %s', (given, expected) => {
    expect(normaliseStatus(given)).toBe(expected);
  });
});

describe('parseTime', () => {
  it('reads ISO 8601, eCourtDate’s UTC "YYYY-MM-DD H:i:s" and epoch seconds alike', () => {
    const at = Date.UTC(2026, 2, 15, 14, 30, 0);

    expect(parseTime('2026-03-15T14:30:00Z')).toBe(at);
    expect(parseTime('2026-03-15 14:30:00')).toBe(at);
    expect(parseTime('2026-03-15 9:30:00')).toBe(at - 5 * 3_600_000);
    expect(parseTime(at / 1000)).toBe(at);
    expect(parseTime('soon')).toBeUndefined();
  });

  it('reads epoch seconds and ms written as a string of 9-13 digits', () => {
    const at = Date.UTC(2026, 2, 15, 14, 30, 0);

    expect(parseTime(String(at / 1000))).toBe(at);
    expect(parseTime(`${at / 1000}.25`)).toBe(at + 250);
    expect(parseTime(String(at))).toBe(at);
  });

  it.each(['1', '12', '2026', 'Room 12', '03/04/2026', '04.03.2026', 'Dec 3'])(
    'takes %j, which Date.parse would read by guessing, for no time',
    (text) => {
      expect(parseTime(text)).toBeUndefined();
    },
  );
});

describe('planEvents', () => {
  it('plans the kind’s event with the raw payload, and a job event when a job matched', () => {
    const payload = { uuid: 'e1', direction: 'outbound', last_status: 'delivered', message_uuid: 'm1' };

    const events = planEvents(read(payload), payload, 0, {
      jobId: 'job-1',
      messageUuid: 'm1',
      status: 'delivered',
      jobStatus: 'delivered',
    });

    expect(events.map((e) => [e.key, e.detailType])).toEqual([
      ['webhook', DETAIL_TYPE.messageStatus],
      ['job_delivery_status', DETAIL_TYPE.jobDeliveryStatus],
    ]);
    expect(events[0]?.detail).toMatchObject({ job_id: 'job-1', message_uuid: 'm1', payload });
    expect(events[1]?.detail).toMatchObject({ job_id: 'job-1', status: 'delivered', webhook_uuid: 'e1' });
  });
});

describe('describeDelivery and deliveryHistoryLines', () => {
  const sent = { status: 'sent', at: Date.UTC(2026, 11, 1, 15, 0, 3), received_at: 0, webhook_uuid: 'w1' };
  const failed = {
    status: 'failed',
    raw_status: 'undelivered',
    at: Date.UTC(2026, 11, 1, 15, 0, 9),
    received_at: 0,
  };

  it('reads a job’s status with the steps that led to it, or - without one', () => {
    expect(describeDelivery({ delivery_status: 'failed', delivery_history: [sent, failed] })).toBe(
      'failed (sent → failed)',
    );
    expect(describeDelivery({ delivery_status: 'sent', delivery_history: [sent] })).toBe('sent');
    expect(describeDelivery(undefined)).toBe('-');
  });

  it('lists the history oldest first with times in UTC and eCourtDate’s own word', () => {
    expect(deliveryHistoryLines({ delivery_history: [sent, failed] })).toEqual([
      '2026-12-01 15:00:03Z  sent  webhook w1',
      '2026-12-01 15:00:09Z  failed  (eCourtDate: undelivered)',
    ]);
  });
});

describe('a negated status', () => {
  it.each(['not delivered', 'Message could not be sent', 'never delivered', 'NOT DELIVERED: carrier error'])(
    '%s is not the status it names',
    (raw) => {
      expect(normaliseStatus(raw)).toBe('other');
    },
  );
});
