import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EmulatedQueue, type SqsEmulator, startSqsEmulator } from '#local/emulators/sqs-emulator.ts';

// The strict SQS layer in front of fauxqs, through the real SDK client: each rule refuses what real SQS refuses
// (SQS API reference) and accepts the boundary value. A regression in the layer fails one of these.

const HOUR = 3_600_000;
let clock = Date.parse('2026-12-01T12:00:00Z');
let emulator: SqsEmulator;
let queue: EmulatedQueue;

beforeEach(async () => {
  clock = Date.parse('2026-12-01T12:00:00Z');
  emulator = await startSqsEmulator({ now: () => clock });
  queue = await emulator.createQueue('strict');
});

afterEach(async () => {
  await emulator.stop();
});

/** Asserts the call fails with SQS's error `code` and that the layer recorded exactly that refusal. */
async function expectRefused(call: Promise<unknown>, code: string): Promise<void> {
  await expect(call).rejects.toMatchObject({ name: code, $metadata: { httpStatusCode: 400 } });
  expect(emulator.refusals().map((r) => r.code)).toEqual([code]);
}

async function expectAccepted(call: Promise<unknown>): Promise<void> {
  await call;
  expect(emulator.refusals()).toEqual([]);
}

const send = (input: { body?: string; attributes?: Record<string, MessageAttributeValue>; delay?: number }) =>
  emulator.sqs.send(
    new SendMessageCommand({
      QueueUrl: queue.url,
      MessageBody: input.body ?? 'a job',
      MessageAttributes: input.attributes,
      DelaySeconds: input.delay,
    }),
  );

const text = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: value });

/** `count` attributes named a0, a1, ... */
const attributes = (count: number): Record<string, MessageAttributeValue> =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`a${i}`, text('v')]));

async function receiveOne(visibilityTimeout = 60): Promise<string> {
  const out = await emulator.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queue.url, VisibilityTimeout: visibilityTimeout }),
  );
  const handle = out.Messages?.[0]?.ReceiptHandle;
  if (!handle) throw new Error('nothing received');
  return handle;
}

const changeVisibility = (handle: string, seconds: number) =>
  emulator.sqs.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: queue.url,
      ReceiptHandle: handle,
      VisibilityTimeout: seconds,
    }),
  );

const HOSTILE = {
  'U+0000': '\u0000',
  'ESC (U+001B)': '\u001b',
  'BEL (U+0007)': '\u0007',
  'U+FFFE': '\ufffe',
  'U+FFFF': '\uffff',
  'a lone high surrogate': '\ud800',
  'a lone low surrogate': '\udfff',
};

describe('SendMessage: characters', () => {
  it.each(Object.entries(HOSTILE))('refuses a body holding %s', async (_, char) => {
    await expectRefused(send({ body: `excerpt ${char} end` }), 'InvalidMessageContents');
  });

  it('accepts a body at the edges of the allowed ranges (tab, LF, CR, U+0020, U+D7FF, U+E000, U+FFFD)', async () => {
    await expectAccepted(send({ body: '\t\n\r \ud7ff\ue000\ufffd' }));
  });

  it.each(Object.entries(HOSTILE))('refuses an attribute value holding %s', async (_, char) => {
    await expectRefused(
      send({ attributes: { response_excerpt: text(`x${char}y`) } }),
      'InvalidParameterValue',
    );
  });

  it('accepts an attribute value with characters beyond the BMP (U+10000, an emoji, U+10FFFF)', async () => {
    await expectAccepted(send({ attributes: { note: text('\u{10000} \u{1F600} \u{10FFFF}') } }));
  });

  it('names the attribute and the character code in the refusal, never the value', async () => {
    await send({ attributes: { detail: text('+15550100401 secret\u0000') } }).catch(() => undefined);
    const [refusal] = emulator.refusals();
    expect(refusal?.message).toContain("'detail'");
    expect(refusal?.message).toContain('#x0');
    expect(JSON.stringify(emulator.refusals())).not.toContain('15550100401');
  });
});

describe('SendMessage: attributes', () => {
  it('refuses 11 message attributes', async () => {
    await expectRefused(send({ attributes: attributes(11) }), 'InvalidParameterValue');
  });

  it('accepts 10 message attributes', async () => {
    await expectAccepted(send({ attributes: attributes(10) }));
  });

  it.each([
    ['longer than 256 characters', 'n'.repeat(257)],
    ['with a space', 'job id'],
    ['with a slash', 'job/id'],
    ['starting with AWS.', 'AWS.trace'],
    ['starting with amazon. in any casing', 'aMaZoN.trace'],
    ['starting with a period', '.job'],
    ['ending with a period', 'job.'],
    ['with two periods in a row', 'job..id'],
  ])('refuses an attribute name %s', async (_, name) => {
    await expectRefused(send({ attributes: { [name]: text('v') } }), 'InvalidParameterValue');
  });

  it('accepts a 256-character name of letters, digits, underscore, hyphen and single periods', async () => {
    const name = `Job_id-2.${'x'.repeat(247)}`;
    expect(name).toHaveLength(256);
    await expectAccepted(send({ attributes: { [name]: text('v') } }));
  });

  it('refuses an empty String value', async () => {
    await expectRefused(send({ attributes: { detail: text('') } }), 'InvalidParameterValue');
  });

  it.each([
    ['an unknown data type', { DataType: 'Text', StringValue: 'v' }],
    ['a Number that is not a number', { DataType: 'Number', StringValue: 'five' }],
    ['a Number with more than 38 digits', { DataType: 'Number', StringValue: '1'.repeat(39) }],
  ])('refuses %s', async (_, value) => {
    await expectRefused(send({ attributes: { a: value } }), 'InvalidParameterValue');
  });

  it('accepts a custom String label, a 38-digit Number and a Binary value', async () => {
    await expectAccepted(
      send({
        attributes: {
          label: { DataType: 'String.job-id', StringValue: 'v' },
          count: { DataType: 'Number', StringValue: `-${'9'.repeat(38)}` },
          bytes: { DataType: 'Binary', BinaryValue: new Uint8Array([0, 1, 255]) },
        },
      }),
    );
  });
});

describe('SendMessage: size and delay', () => {
  const MAX = 1_048_576;

  it('accepts a message of exactly 1,048,576 bytes, attributes counted (name, type and value)', async () => {
    const attribute = { detail: text('abc') }; // 6 + 6 + 3 bytes
    await expectAccepted(send({ body: 'x'.repeat(MAX - 15), attributes: attribute }));
  });

  it('refuses a message one byte over, the extra byte in an attribute', async () => {
    await expectRefused(
      send({ body: 'x'.repeat(MAX - 15), attributes: { detail: text('abcd') } }),
      'InvalidParameterValue',
    );
  });

  it('counts UTF-8 bytes, not characters', async () => {
    await expectRefused(send({ body: 'é'.repeat(MAX / 2 + 1) }), 'InvalidParameterValue');
  });

  it.each([901, -1, 1.5])('refuses DelaySeconds %s', async (delay) => {
    await expectRefused(send({ delay }), 'InvalidParameterValue');
  });

  it.each([0, 900])('accepts DelaySeconds %s', async (delay) => {
    await expectAccepted(send({ delay }));
  });
});

describe('SendMessageBatch', () => {
  const entries = (count: number, make = (i: number) => ({ Id: `e${i}`, MessageBody: `job ${i}` })) =>
    Array.from({ length: count }, (_, i) => make(i));
  const sendBatch = (batch: SendMessageBatchRequestEntry[]) =>
    emulator.sqs.send(new SendMessageBatchCommand({ QueueUrl: queue.url, Entries: batch }));

  it('refuses an empty batch', async () => {
    await expectRefused(sendBatch([]), 'EmptyBatchRequest');
  });

  it('refuses 11 entries and accepts 10', async () => {
    await expectRefused(sendBatch(entries(11)), 'TooManyEntriesInBatchRequest');
    const out = await sendBatch(entries(10));
    expect(out.Successful).toHaveLength(10);
  });

  it.each([
    ['with a space', 'entry 1'],
    ['of 81 characters', 'e'.repeat(81)],
    ['empty', ''],
  ])('refuses an entry id %s', async (_, id) => {
    await expectRefused(sendBatch([{ Id: id, MessageBody: 'job' }]), 'InvalidBatchEntryId');
  });

  it('accepts an 80-character id of letters, digits, hyphens and underscores', async () => {
    await expectAccepted(sendBatch([{ Id: `A-z_9${'e'.repeat(75)}`, MessageBody: 'job' }]));
  });

  it('refuses repeated entry ids', async () => {
    await expectRefused(
      sendBatch([
        { Id: 'same', MessageBody: 'a' },
        { Id: 'same', MessageBody: 'b' },
      ]),
      'BatchEntryIdsNotDistinct',
    );
  });

  it('refuses a batch whose entries add up to more than 1,048,576 bytes', async () => {
    const half = 'x'.repeat(524_289);
    await expectRefused(
      sendBatch([
        { Id: 'a', MessageBody: half },
        { Id: 'b', MessageBody: half },
      ]),
      'BatchRequestTooLong',
    );
  });

  it('answers a refused entry in Failed, with its code, and sends the others', async () => {
    const out = await sendBatch([
      { Id: 'good', MessageBody: 'job' },
      { Id: 'bad', MessageBody: 'job', DelaySeconds: 901 },
      { Id: 'hostile', MessageBody: 'job', MessageAttributes: { e: text('\u0007') } },
    ]);
    expect(out.Successful?.map((e) => e.Id)).toEqual(['good']);
    expect(out.Failed).toEqual([
      expect.objectContaining({ Id: 'bad', Code: 'InvalidParameterValue', SenderFault: true }),
      expect.objectContaining({ Id: 'hostile', Code: 'InvalidParameterValue', SenderFault: true }),
    ]);
    expect(emulator.refusals().map((r) => r.entryId)).toEqual(['bad', 'hostile']);
    expect((await emulator.inspect('strict')).ready).toHaveLength(1);
  });
});

describe('ChangeMessageVisibility', () => {
  beforeEach(async () => {
    await send({});
  });

  it.each([43_201, -1])('refuses VisibilityTimeout %s', async (seconds) => {
    const handle = await receiveOne();
    await expectRefused(changeVisibility(handle, seconds), 'InvalidParameterValue');
  });

  it('accepts 43,200 s right after the receive', async () => {
    const handle = await receiveOne();
    await expectAccepted(changeVisibility(handle, 43_200));
  });

  it('refuses a visibility ending more than 12 h after the receive: 1 h later, 39,601 s', async () => {
    const handle = await receiveOne(7_200);
    clock += HOUR;
    await expectRefused(changeVisibility(handle, 39_601), 'InvalidParameterValue');
    expect(emulator.refusals()[0]?.message).toContain(
      'Total VisibilityTimeout for the message is beyond the limit',
    );
  });

  it('accepts a visibility ending exactly 12 h after the receive: 1 h later, 39,600 s', async () => {
    const handle = await receiveOne(7_200);
    clock += HOUR;
    await expectAccepted(changeVisibility(handle, 39_600));
  });

  it('counts from the receive, not from the last change: extending twice cannot pass 12 h', async () => {
    const handle = await receiveOne();
    await changeVisibility(handle, 43_200);
    clock += 6 * HOUR;
    await expectRefused(changeVisibility(handle, 6 * 3_600 + 1), 'InvalidParameterValue');
  });

  it('refuses the receipt handle of an earlier receive once the message was received again', async () => {
    const first = await receiveOne();
    await changeVisibility(first, 0);
    const second = await receiveOne();
    await expectRefused(changeVisibility(first, 30), 'InvalidParameterValue');
    expect(emulator.refusals()[0]?.message).toContain('parameter ReceiptHandle is invalid');
    await changeVisibility(second, 30);
    expect(emulator.refusals()).toHaveLength(1);
  });

  it('refuses the receipt handle of a deleted message', async () => {
    const handle = await receiveOne();
    await emulator.sqs.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: handle }));
    await expectRefused(changeVisibility(handle, 30), 'InvalidParameterValue');
  });

  it('counts the 12 h in scaled time in a time-scaled run', async () => {
    await emulator.stop();
    emulator = await startSqsEmulator({ now: () => clock, timeScale: 100 });
    queue = await emulator.createQueue('strict');
    await send({});
    const handle = await receiveOne();
    clock += 400_000; // 40,000 scaled seconds
    await expectRefused(changeVisibility(handle, 33), 'InvalidParameterValue'); // 3,300 scaled: 43,300
    await changeVisibility(handle, 32); // 3,200 scaled: exactly 43,200
    expect(emulator.refusals()).toHaveLength(1);
  });
});

describe('ChangeMessageVisibilityBatch', () => {
  it('answers an entry beyond 12 h in Failed and changes the others', async () => {
    await send({ body: 'one' });
    await send({ body: 'two' });
    const out = await emulator.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
    );
    const [a, b] = (out.Messages ?? []).map((m) => m.ReceiptHandle ?? '');
    clock += 2 * HOUR;
    const answer = await emulator.sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queue.url,
        Entries: [
          { Id: 'fits', ReceiptHandle: a, VisibilityTimeout: 36_000 },
          { Id: 'beyond', ReceiptHandle: b, VisibilityTimeout: 36_001 },
        ],
      }),
    );
    expect(answer.Successful?.map((e) => e.Id)).toEqual(['fits']);
    expect(answer.Failed).toEqual([expect.objectContaining({ Id: 'beyond', Code: 'InvalidParameterValue' })]);
  });

  it('refuses 11 entries', async () => {
    const batch = Array.from({ length: 11 }, (_, i) => ({
      Id: `e${i}`,
      ReceiptHandle: 'h',
      VisibilityTimeout: 1,
    }));
    await expectRefused(
      emulator.sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: queue.url, Entries: batch })),
      'TooManyEntriesInBatchRequest',
    );
  });
});

describe('DeleteMessage(Batch)', () => {
  it('answers success to a stale receipt handle but keeps the message (SQS: "might not be deleted")', async () => {
    await send({});
    const first = await receiveOne();
    await changeVisibility(first, 0);
    await receiveOne();
    await emulator.sqs.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: first }));
    expect((await emulator.inspect('strict')).inflight).toHaveLength(1);
    expect(emulator.ignoredDeletes()).toHaveLength(1);
    expect(emulator.refusals()).toEqual([]);
  });

  it('deletes with the current handle and ignores a stale one in the same batch', async () => {
    await send({ body: 'one' });
    await send({ body: 'two' });
    const out = await emulator.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queue.url, VisibilityTimeout: 60, MaxNumberOfMessages: 10 }),
    );
    const [one, two] = out.Messages ?? [];
    await changeVisibility(one?.ReceiptHandle ?? '', 0);
    await receiveOne(); // `one` again, under a new handle
    const answer = await emulator.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: [
          { Id: 'stale', ReceiptHandle: one?.ReceiptHandle },
          { Id: 'current', ReceiptHandle: two?.ReceiptHandle },
        ],
      }),
    );
    expect(answer.Successful?.map((e) => e.Id).sort()).toEqual(['current', 'stale']);
    const left = (await emulator.inspect('strict')).inflight.map((e) => e.message.messageId);
    expect(left).toEqual([one?.MessageId]);
  });

  it('refuses an empty batch', async () => {
    await expectRefused(
      emulator.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queue.url, Entries: [] })),
      'EmptyBatchRequest',
    );
  });
});
