import {
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EmulatedQueue, type SqsEmulator, startSqsEmulator } from '#local/emulators/sqs-emulator.ts';
import { toRecord } from '#local/lambda/event-source.ts';
import {
  DLQ_ATTRIBUTE,
  firstReceivedAt,
  hideFor,
  REQUEUE_ATTRIBUTE,
  requeueCopy,
  SQS_MAX_MESSAGE_BYTES,
  sendToDeadLetterQueue,
} from '#shared/sqs/settle.ts';

// shared/sqs/settle.ts against the strict SQS layer: every call the sender makes stays inside SQS's limits
// (docs/sqs-limits.md), whatever a response or a delay asks for.

const T0 = Date.parse('2026-12-01T12:00:00Z');
let clock = T0;
let emulator: SqsEmulator;
let queue: EmulatedQueue;
let dlq: EmulatedQueue;

beforeEach(async () => {
  clock = T0;
  emulator = await startSqsEmulator({ now: () => clock });
  dlq = await emulator.createQueue('dlq');
  queue = await emulator.createQueue('send');
});

afterEach(async () => {
  // Every test: nothing the relay sent was refused.
  expect(emulator.refusals()).toEqual([]);
  await emulator.stop();
});

const JOB = JSON.stringify({ id: 'job-1', message: { to: '+15550100401', content: 'Court on Dec 3' } });

async function enqueueAndReceive(attributes?: Record<string, MessageAttributeValue>): Promise<Message> {
  await emulator.sqs.send(
    new SendMessageCommand({ QueueUrl: queue.url, MessageBody: JOB, MessageAttributes: attributes }),
  );
  const out = await emulator.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queue.url,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['All'],
      VisibilityTimeout: 360,
    }),
  );
  const message = out.Messages?.[0];
  if (!message) throw new Error('nothing received');
  return message;
}

async function receiveAll(url: string): Promise<Message[]> {
  const out = await emulator.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }),
  );
  return out.Messages ?? [];
}

const text = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: value });
const stringOf = (message: Message | undefined, name: string) =>
  message?.MessageAttributes?.[name]?.StringValue;

describe('hideFor', () => {
  it('caps a 24 h wait so the visibility ends within 12 h of the receive, even 1,200 s after it', async () => {
    const message = await enqueueAndReceive();
    // The receive may precede the call by the batching window (300 s) and a whole invocation (900 s).
    clock += 1_200_000;
    const hidden = await hideFor(emulator.sqs, queue.url, message.ReceiptHandle ?? '', 86_400);
    expect(hidden).toBe(42_000);
  });

  it('asks for the wait it is given when it fits', async () => {
    const message = await enqueueAndReceive();
    expect(await hideFor(emulator.sqs, queue.url, message.ReceiptHandle ?? '', 120.4)).toBe(120);
    const [inflight] = (await emulator.inspect('send')).inflight;
    expect(((inflight?.visibilityDeadline ?? 0) - Date.now()) / 1000).toBeGreaterThan(110);
  });

  it('refuses a NaN delay without calling SQS', async () => {
    const message = await enqueueAndReceive();
    await expect(hideFor(emulator.sqs, queue.url, message.ReceiptHandle ?? '', Number.NaN)).rejects.toThrow(
      RangeError,
    );
  });
});

describe('sendToDeadLetterQueue', () => {
  const hostileExcerpt = 'err\u0000or \u001b[31m red \u0007 bell \ufffe\uffff \ud800 lone \udc00 end';
  const info = {
    reason: 'client_error' as const,
    jobId: 'job-1',
    lastStatus: 400,
    attempts: 1,
    firstAttemptAt: T0,
    detail: 'eCourtDate answered 400 \u0000',
    responseExcerpt: hostileExcerpt,
  };

  it('dead-letters a job whose response excerpt holds U+0000, ESC, BEL, U+FFFE, U+FFFF and lone surrogates', async () => {
    const { droppedAttributes } = await sendToDeadLetterQueue(emulator.sqs, dlq.url, JOB, info, T0);
    expect(droppedAttributes).toEqual([]);
    const [message] = await receiveAll(dlq.url);
    expect(message?.Body).toBe(JOB);
    expect(stringOf(message, DLQ_ATTRIBUTE.responseExcerpt)).toBe(
      'err\ufffdor \ufffd[31m red \ufffd bell \ufffd\ufffd \ufffd lone \ufffd end',
    );
    expect(stringOf(message, DLQ_ATTRIBUTE.detail)).toBe('eCourtDate answered 400 \ufffd');
    expect(stringOf(message, DLQ_ATTRIBUTE.reason)).toBe('client_error');
  });

  it('keeps an excerpt that SQS accepts unchanged, characters beyond the BMP included', async () => {
    const excerpt = 'tab\there, é, 中文, 😀';
    await sendToDeadLetterQueue(emulator.sqs, dlq.url, JOB, { ...info, responseExcerpt: excerpt }, T0);
    const [message] = await receiveAll(dlq.url);
    expect(stringOf(message, DLQ_ATTRIBUTE.responseExcerpt)).toBe(excerpt);
  });

  it('sizes the message after sanitising: an excerpt that only fits before is shed, the reason kept', async () => {
    // 300 control characters: 300 bytes as sent, 900 once each is U+FFFD.
    const excerpt = '\u0001'.repeat(300);
    const essentials = 600; // generously more than every other attribute together
    const body = JSON.stringify({ id: 'job-1', pad: 'x'.repeat(SQS_MAX_MESSAGE_BYTES - essentials - 500) });
    const { droppedAttributes } = await sendToDeadLetterQueue(
      emulator.sqs,
      dlq.url,
      body,
      { ...info, detail: undefined, responseExcerpt: excerpt },
      T0,
    );
    expect(droppedAttributes).toEqual([DLQ_ATTRIBUTE.responseExcerpt]);
    const [message] = await receiveAll(dlq.url);
    expect(message?.Body).toBe(body);
    expect(stringOf(message, DLQ_ATTRIBUTE.reason)).toBe('client_error');
  });

  it('leaves out an attribute whose value would be empty, which SQS refuses', async () => {
    await sendToDeadLetterQueue(emulator.sqs, dlq.url, JOB, { ...info, jobId: '', lastStatus: '' }, T0);
    const [message] = await receiveAll(dlq.url);
    expect(message?.MessageAttributes).not.toHaveProperty(DLQ_ATTRIBUTE.jobId);
    expect(message?.MessageAttributes).not.toHaveProperty(DLQ_ATTRIBUTE.lastStatus);
  });
});

describe('requeueCopy', () => {
  const originalAttributes = {
    [DLQ_ATTRIBUTE.reason]: text('retries_exhausted'),
    label: { DataType: 'String.agency', StringValue: 'county-a' },
    count: { DataType: 'Number', StringValue: '3' },
  };

  it('sends the same body as a new message, its receive count starting again, without the producer and dead-letter attributes', async () => {
    const received = await enqueueAndReceive(originalAttributes);
    const record = toRecord(received, queue.arn, 'us-east-1');
    const copy = await requeueCopy(emulator.sqs, queue.url, record, 0, clock);
    expect(copy.messageId).not.toBe(record.messageId);
    const state = await emulator.inspect('send');
    const fresh = state.ready.find((m) => m.messageId === copy.messageId);
    expect(fresh?.body).toBe(JOB);
    expect(fresh?.approximateReceiveCount ?? 0).toBe(0);
    // Nothing reads the producer's attributes, and the dead letter's described the dead letter: only the relay's.
    expect(Object.keys(fresh?.messageAttributes ?? {}).sort()).toEqual(
      [REQUEUE_ATTRIBUTE.firstReceivedAt, REQUEUE_ATTRIBUTE.requeuedFrom].sort(),
    );
    expect([...copy.droppedAttributes].sort()).toEqual(Object.keys(originalAttributes).sort());
  });

  it('keeps the redrive token only when asked (a copy of a redriven record not yet claimed)', async () => {
    const token = { [DLQ_ATTRIBUTE.deadLetterId]: text('0f8e2c1a-redrive') };
    const record = toRecord(
      await enqueueAndReceive({ ...originalAttributes, ...token }),
      queue.arn,
      'us-east-1',
    );
    const plain = await requeueCopy(emulator.sqs, queue.url, record, 0, clock);
    const kept = await requeueCopy(emulator.sqs, queue.url, record, 0, clock, { keepRedriveToken: true });
    const { ready } = await emulator.inspect('send');
    const attrs = (id: string) => ready.find((m) => m.messageId === id)?.messageAttributes ?? {};
    expect(attrs(plain.messageId)[DLQ_ATTRIBUTE.deadLetterId]).toBeUndefined();
    expect(attrs(kept.messageId)[DLQ_ATTRIBUTE.deadLetterId]).toEqual(token[DLQ_ATTRIBUTE.deadLetterId]);
  });

  it('carries an answer (carried_answer)', async () => {
    const record = toRecord(await enqueueAndReceive(originalAttributes), queue.arn, 'us-east-1');
    const carry = {
      token: 'attempt-1',
      result: { kind: 'response' as const, stage: 'send' as const, status: 201 },
    };
    const copy = await requeueCopy(emulator.sqs, queue.url, record, 0, clock, { carry });
    const fresh = (await emulator.inspect('send')).ready.find((m) => m.messageId === copy.messageId);
    expect(
      JSON.parse(fresh?.messageAttributes?.[REQUEUE_ATTRIBUTE.carriedAnswer]?.StringValue ?? '{}'),
    ).toEqual(carry);
  });

  /** A received record whose body leaves `room` bytes of SQS's 1 MiB. */
  async function bigRecord(room: number) {
    const body = JSON.stringify({ id: 'big', pad: 'x'.repeat(1_048_576 - room - 22) });
    await emulator.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: body }));
    const out = await emulator.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.url,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    return toRecord(out.Messages?.[0] ?? {}, queue.arn, 'us-east-1');
  }

  it('sheds the detail and excerpt of a carried answer that does not fit SQS 1 MiB whole, and keeps its attempt and result', async () => {
    const big = await bigRecord(200);
    const result = { kind: 'response' as const, stage: 'send' as const, status: 201, uuid: 'uuid-201' };
    const carry = { token: 'attempt-1', result, detail: 'd'.repeat(400), excerpt: 'e'.repeat(400) };
    const copy = await requeueCopy(emulator.sqs, queue.url, big, 0, clock, { carry });
    const fresh = (await emulator.inspect('send')).ready.find((m) => m.messageId === copy.messageId);
    expect(
      JSON.parse(fresh?.messageAttributes?.[REQUEUE_ATTRIBUTE.carriedAnswer]?.StringValue ?? '{}'),
    ).toEqual({ token: 'attempt-1', result });
  });

  it('refuses to copy rather than drop a carried answer that does not fit SQS 1 MiB even without its detail', async () => {
    const big = await bigRecord(20);
    const carry = { token: 'attempt-1', detail: 'd'.repeat(400) };
    await expect(requeueCopy(emulator.sqs, queue.url, big, 0, clock, { carry })).rejects.toThrow(RangeError);
  });

  it("carries no answer when told the record's was used (null), and the record's own otherwise", async () => {
    const carried = { token: 'attempt-1', result: { kind: 'response', stage: 'send', status: 429 } };
    const received = await enqueueAndReceive({
      [REQUEUE_ATTRIBUTE.carriedAnswer]: text(JSON.stringify(carried)),
    });
    const record = toRecord(received, queue.arn, 'us-east-1');
    const used = await requeueCopy(emulator.sqs, queue.url, record, 0, clock, { carry: null });
    const kept = await requeueCopy(emulator.sqs, queue.url, record, 0, clock);
    const { ready } = await emulator.inspect('send');
    const attrs = (id: string) => ready.find((m) => m.messageId === id)?.messageAttributes ?? {};
    expect(attrs(used.messageId)).not.toHaveProperty(REQUEUE_ATTRIBUTE.carriedAnswer);
    expect(JSON.parse(attrs(kept.messageId)[REQUEUE_ATTRIBUTE.carriedAnswer]?.StringValue ?? '{}')).toEqual(
      carried,
    );
  });

  it('adds first_received_at (the first receipt, epoch ms) and requeued_from (the message id)', async () => {
    const received = await enqueueAndReceive(originalAttributes);
    const record = toRecord(received, queue.arn, 'us-east-1');
    const copy = await requeueCopy(emulator.sqs, queue.url, record, 0, clock);
    const fresh = (await emulator.inspect('send')).ready.find((m) => m.messageId === copy.messageId);
    expect(fresh?.messageAttributes?.[REQUEUE_ATTRIBUTE.firstReceivedAt]).toEqual({
      DataType: 'Number',
      StringValue: record.attributes.ApproximateFirstReceiveTimestamp,
    });
    expect(fresh?.messageAttributes?.[REQUEUE_ATTRIBUTE.requeuedFrom]?.StringValue).toBe(record.messageId);
  });

  it('keeps the first message id and first receipt across a copy of a copy', async () => {
    const first = toRecord(await enqueueAndReceive(), queue.arn, 'us-east-1');
    await requeueCopy(emulator.sqs, queue.url, first, 0, clock);
    const [again] = await receiveAll(queue.url).then((all) =>
      all.filter((m) => m.MessageId !== first.messageId),
    );
    if (!again) throw new Error('the copy was not received');
    const second = toRecord(again, queue.arn, 'us-east-1');
    expect(firstReceivedAt(second)).toBe(Number(first.attributes.ApproximateFirstReceiveTimestamp));
    const copy = await requeueCopy(emulator.sqs, queue.url, second, 0, clock);
    const fresh = (await emulator.inspect('send')).ready.find((m) => m.messageId === copy.messageId);
    expect(fresh?.messageAttributes?.[REQUEUE_ATTRIBUTE.requeuedFrom]?.StringValue).toBe(first.messageId);
    expect(Object.keys(fresh?.messageAttributes ?? {}).sort()).toEqual([
      REQUEUE_ATTRIBUTE.firstReceivedAt,
      REQUEUE_ATTRIBUTE.requeuedFrom,
    ]);
  });

  it('caps DelaySeconds at 900 for a 12 h+ delay', async () => {
    const record = toRecord(await enqueueAndReceive(), queue.arn, 'us-east-1');
    const copy = await requeueCopy(emulator.sqs, queue.url, record, 86_400, clock);
    expect(copy.delaySeconds).toBe(900);
    const delayed = (await emulator.inspect('send')).delayed.find((m) => m.messageId === copy.messageId);
    const seconds = ((delayed?.delayUntil ?? 0) - Date.now()) / 1000;
    expect(seconds).toBeGreaterThan(890);
    expect(seconds).toBeLessThanOrEqual(900);
  });

  const attributes = (count: number) =>
    Object.fromEntries(Array.from({ length: count }, (_, i) => [`a${i}`, text('v')]));

  it('carries all of its own attributes whatever number the producer sent (ten)', async () => {
    const record = toRecord(await enqueueAndReceive(attributes(10)), queue.arn, 'us-east-1');
    const carry = { token: 'attempt-1' };
    const copy = await requeueCopy(emulator.sqs, queue.url, record, 0, clock, {
      carry,
      settledEventPending: 'a-1',
    });
    const fresh = (await emulator.inspect('send')).ready.find((m) => m.messageId === copy.messageId);
    expect(Object.keys(fresh?.messageAttributes ?? {}).sort()).toEqual(
      Object.values(REQUEUE_ATTRIBUTE).sort(),
    );
  });

  it('keeps a redrive token when asked, sanitised to what SQS accepts', async () => {
    const record: SQSRecord = {
      ...toRecord(await enqueueAndReceive(), queue.arn, 'us-east-1'),
      messageAttributes: {
        [DLQ_ATTRIBUTE.deadLetterId]: {
          dataType: 'String',
          stringValue: 'a\u0000b',
          stringListValues: [],
          binaryListValues: [],
        },
        blob: { dataType: 'Binary', binaryValue: 'AAH/', stringListValues: [], binaryListValues: [] },
      },
    };
    const copy = await requeueCopy(emulator.sqs, queue.url, record, 0, clock, { keepRedriveToken: true });
    expect(copy.droppedAttributes).toEqual(['blob']);
    const fresh = (await emulator.inspect('send')).ready.find((m) => m.messageId === copy.messageId);
    expect(fresh?.messageAttributes?.[DLQ_ATTRIBUTE.deadLetterId]?.StringValue).toBe('a\ufffdb');
  });
});

describe('firstReceivedAt', () => {
  const record = (attributes: Partial<SQSRecord>): SQSRecord =>
    ({
      messageId: 'm',
      attributes: { ApproximateFirstReceiveTimestamp: '1700000000000' },
      messageAttributes: {},
      ...attributes,
    }) as SQSRecord;

  it("is SQS's first-receive timestamp for an original message", () => {
    expect(firstReceivedAt(record({}))).toBe(1_700_000_000_000);
  });

  it('is the carried first_received_at for a fresh copy', () => {
    const carried = {
      [REQUEUE_ATTRIBUTE.firstReceivedAt]: {
        dataType: 'Number',
        stringValue: '1600000000000',
        stringListValues: [],
        binaryListValues: [],
      },
    };
    expect(firstReceivedAt(record({ messageAttributes: carried }))).toBe(1_600_000_000_000);
  });

  it('is undefined when the record has neither', () => {
    expect(firstReceivedAt(record({ attributes: {} as SQSRecord['attributes'] }))).toBeUndefined();
  });
});
