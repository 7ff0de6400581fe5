import { createHash } from 'node:crypto';
import {
  GetQueueAttributesCommand as JsonGetQueueAttributes,
  ReceiveMessageCommand as JsonReceiveMessage,
  SendMessageCommand as JsonSendMessage,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { XMLParser } from 'fast-xml-parser';
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  PurgeQueueCommand,
  SQSClient as QuerySQSClient,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from 'sqs-query-protocol-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EmulatedQueue, type SqsEmulator, startSqsEmulator } from '#local/emulators/sqs-emulator.ts';
import { assumedRoleArn, createIamGate } from '#local/iam/gate.ts';
import { localQueueArn } from '#local/iam/template-policies.ts';

// The local SQS endpoint (the strict layer in front of fauxqs, docs/sqs-limits.md) spoken to in SQS's query
// protocol by a real client of it: the AWS SDK for JavaScript v3 from before SQS's JSON protocol, as the Debian
// AWS CLI 2.9.19 and older SDKs speak it. It validates the MD5 digests of what it sends and receives, so a wrong
// digest fails the call. A JSON-protocol client (the current SDK) sees the same queues.

const REGION = 'us-east-1';
const LOCAL = { accessKeyId: 'local', secretAccessKey: 'local' };
/** A role with no grant at all: every call it signs is denied by the IAM gate (local/iam/). */
const NOBODY = { accessKeyId: 'ASIALOCALNOBODYROLE0', secretAccessKey: 'local' };

let emulator: SqsEmulator;
let queue: EmulatedQueue;
let query: QuerySQSClient;
let json: SQSClient;

beforeEach(async () => {
  emulator = await startSqsEmulator({
    iam: createIamGate([
      { roleName: 'NobodyRole', sessionName: 'nobody', accessKeyIds: [NOBODY.accessKeyId], statements: [] },
    ]),
  });
  queue = await emulator.createQueue('query-protocol');
  query = new QuerySQSClient({
    endpoint: emulator.endpoint,
    region: REGION,
    credentials: LOCAL,
    maxAttempts: 1,
  });
  json = emulator.sqs;
});

afterEach(async () => {
  query.destroy();
  await emulator.stop();
});

const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');

/** Every message of the queue, received by the JSON client (at most 10). */
async function receiveAllAsJson() {
  const out = await json.send(
    new JsonReceiveMessage({
      QueueUrl: queue.url,
      MaxNumberOfMessages: 10,
      MessageAttributeNames: ['All'],
      WaitTimeSeconds: 0,
    }),
  );
  return out.Messages ?? [];
}

/** Puts `count` messages on the queue with the JSON client and receives them with the query client. */
async function receivedByQuery(count: number) {
  for (let i = 0; i < count; i += 1) {
    await json.send(new JsonSendMessage({ QueueUrl: queue.url, MessageBody: `{"n":${i}}` }));
  }
  const out = await query.send(
    new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
  );
  expect(out.Messages).toHaveLength(count);
  return out.Messages ?? [];
}

describe('the local SQS endpoint in the query protocol', () => {
  it('SendMessage with message attributes: the digests are the ones the client checks, and a JSON client receives the message as sent', async () => {
    const body = '{"id":"cms-1","note":"a < b & c > d\r\nnext line"}';
    const attributes = {
      agency: { DataType: 'String', StringValue: 'county-a' },
      priority: { DataType: 'Number', StringValue: '3' },
      blob: { DataType: 'Binary', BinaryValue: new Uint8Array([0, 1, 2, 255]) },
    };

    const sent = await query.send(
      new SendMessageCommand({ QueueUrl: queue.url, MessageBody: body, MessageAttributes: attributes }),
    );
    const twin = await emulator.createQueue('query-protocol-twin');
    const sentAsJson = await json.send(
      new JsonSendMessage({ QueueUrl: twin.url, MessageBody: body, MessageAttributes: attributes }),
    );

    expect(sent.MD5OfMessageBody).toBe(md5(body));
    expect(sent.MD5OfMessageAttributes).toBe(sentAsJson.MD5OfMessageAttributes);
    const [received] = await receiveAllAsJson();
    expect(received?.MessageId).toBe(sent.MessageId);
    expect(received?.Body).toBe(body);
    expect(received?.MessageAttributes).toEqual({
      agency: { DataType: 'String', StringValue: 'county-a' },
      priority: { DataType: 'Number', StringValue: '3' },
      blob: { DataType: 'Binary', BinaryValue: new Uint8Array([0, 1, 2, 255]) },
    });
  });

  it('ReceiveMessage answers the body, MD5, system attributes and message attributes of a message a JSON client sent', async () => {
    const body = '{"text":"<tag> & \'quotes" \r\n\ttab"}';
    const sent = await json.send(
      new JsonSendMessage({
        QueueUrl: queue.url,
        MessageBody: body,
        MessageAttributes: { agency: { DataType: 'String', StringValue: 'county-a & b' } },
      }),
    );

    const out = await query.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.url,
        AttributeNames: ['All'],
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 0,
      }),
    );

    expect(out.Messages).toHaveLength(1);
    const [message] = out.Messages ?? [];
    expect(message).toMatchObject({ MessageId: sent.MessageId, Body: body, MD5OfBody: md5(body) });
    expect(message?.ReceiptHandle).toEqual(expect.any(String));
    expect(message?.Attributes?.ApproximateReceiveCount).toBe('1');
    expect(message?.MessageAttributes).toEqual({
      agency: { DataType: 'String', StringValue: 'county-a & b' },
    });
    expect(message?.MD5OfMessageAttributes).toBe(sent.MD5OfMessageAttributes);
  });

  it('DeleteMessage and DeleteMessageBatch delete the messages they name', async () => {
    const [first, second, third] = await receivedByQuery(3);

    await query.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: first?.ReceiptHandle }));
    const batch = await query.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: [
          { Id: 'second', ReceiptHandle: second?.ReceiptHandle },
          { Id: 'third', ReceiptHandle: third?.ReceiptHandle },
        ],
      }),
    );

    expect(batch.Successful?.map((entry) => entry.Id)).toEqual(['second', 'third']);
    expect(batch.Failed ?? []).toEqual([]);
    expect(await emulator.inspect(queue.name)).toMatchObject({ ready: [], delayed: [], inflight: [] });
  });

  it('ChangeMessageVisibility and ChangeMessageVisibilityBatch set the visibility timeout of the messages they name', async () => {
    const [first, second, third] = await receivedByQuery(3);

    await query.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queue.url,
        ReceiptHandle: first?.ReceiptHandle,
        VisibilityTimeout: 0,
      }),
    );
    const batch = await query.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queue.url,
        Entries: [
          { Id: 'second', ReceiptHandle: second?.ReceiptHandle, VisibilityTimeout: 0 },
          { Id: 'third', ReceiptHandle: third?.ReceiptHandle, VisibilityTimeout: 43_200 },
        ],
      }),
    );

    expect(batch.Successful?.map((entry) => entry.Id)).toEqual(['second', 'third']);
    const state = await emulator.inspect(queue.name);
    expect(state.ready.map((m) => m.messageId).sort()).toEqual([first?.MessageId, second?.MessageId].sort());
    expect(state.inflight.map((m) => m.message.messageId)).toEqual([third?.MessageId]);
  });

  it('SendMessageBatch with one bad entry: the others are sent and the bad one is answered in Failed with SQS code', async () => {
    const out = await query.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: [
          {
            Id: 'good-1',
            MessageBody: '{"n":1}',
            MessageAttributes: { a: { DataType: 'String', StringValue: 'x' } },
          },
          { Id: 'bad', MessageBody: 'nul \u0000 here' },
          { Id: 'good-2', MessageBody: '{"n":2}', DelaySeconds: 0 },
        ],
      }),
    );

    expect(out.Successful?.map((entry) => [entry.Id, entry.MD5OfMessageBody])).toEqual([
      ['good-1', md5('{"n":1}')],
      ['good-2', md5('{"n":2}')],
    ]);
    expect(out.Failed).toEqual([
      { Id: 'bad', SenderFault: true, Code: 'InvalidMessageContents', Message: expect.any(String) },
    ]);
    expect((await receiveAllAsJson()).map((m) => m.Body).sort()).toEqual(['{"n":1}', '{"n":2}']);
    expect(emulator.refusals()).toMatchObject([{ action: 'SendMessageBatch', entryId: 'bad' }]);
  });

  it('a batch of 11 entries is refused as SQS refuses it: TooManyEntriesInBatchRequest, HTTP 400, nothing sent', async () => {
    const entries = Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, MessageBody: '{}' }));

    await expect(
      query.send(new SendMessageBatchCommand({ QueueUrl: queue.url, Entries: entries })),
    ).rejects.toMatchObject({ name: 'TooManyEntriesInBatchRequest', $metadata: { httpStatusCode: 400 } });
    expect(await receiveAllAsJson()).toEqual([]);
    expect(emulator.refusals().map((r) => r.code)).toEqual(['TooManyEntriesInBatchRequest']);
  });

  it('a message over 1 MiB is refused as SQS refuses it: InvalidParameterValue, nothing sent', async () => {
    const body = 'x'.repeat(1_048_577);

    await expect(
      query.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: body })),
    ).rejects.toMatchObject({ name: 'InvalidParameterValue', $metadata: { httpStatusCode: 400 } });
    expect(await receiveAllAsJson()).toEqual([]);
  });

  it('a refusal is answered with SQS query-protocol XML error document', async () => {
    const form = new URLSearchParams({
      Action: 'ChangeMessageVisibility',
      Version: '2012-11-05',
      QueueUrl: queue.url,
      ReceiptHandle: 'any',
      VisibilityTimeout: '43201',
    });

    const answer = await fetch(emulator.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: form.toString(),
    });

    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toBe('text/xml');
    const document = new XMLParser({ ignoreAttributes: false }).parse(await answer.text());
    expect(document).toEqual({
      ErrorResponse: {
        '@_xmlns': 'http://queue.amazonaws.com/doc/2012-11-05/',
        Error: {
          Type: 'Sender',
          Code: 'InvalidParameterValue',
          Message: expect.stringContaining('VisibilityTimeout'),
        },
        RequestId: expect.any(String),
      },
    });
  });

  it('a call the stack IAM denies fails with AccessDenied, HTTP 403 and AWS message', async () => {
    const nobody = new QuerySQSClient({
      endpoint: emulator.endpoint,
      region: REGION,
      credentials: NOBODY,
      maxAttempts: 1,
    });

    const call = nobody.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{}' }));

    await expect(call).rejects.toMatchObject({
      name: 'AccessDenied',
      message: expect.stringContaining(
        `User: ${assumedRoleArn('NobodyRole', 'nobody')} is not authorized to perform: sqs:SendMessage on resource: ${localQueueArn(queue.name)}`,
      ),
      $metadata: { httpStatusCode: 403 },
    });
    expect(emulator.denials()).toMatchObject([{ action: 'sqs:SendMessage', allowed: false }]);
    nobody.destroy();
  });

  it('CreateQueue, GetQueueUrl and ListQueues name the same queues a JSON client sees', async () => {
    const created = await query.send(
      new CreateQueueCommand({ QueueName: 'made-by-query', Attributes: { VisibilityTimeout: '120' } }),
    );

    const url = await query.send(new GetQueueUrlCommand({ QueueName: 'made-by-query' }));
    const listed = await query.send(new ListQueuesCommand({ QueueNamePrefix: 'made-by' }));

    expect(url.QueueUrl).toBe(created.QueueUrl);
    expect(listed.QueueUrls).toEqual([created.QueueUrl]);
    const attributes = await json.send(
      new JsonGetQueueAttributes({ QueueUrl: created.QueueUrl, AttributeNames: ['VisibilityTimeout'] }),
    );
    expect(attributes.Attributes).toEqual({ VisibilityTimeout: '120' });
  });

  it('GetQueueUrl of a queue that does not exist fails with QueueDoesNotExist', async () => {
    await expect(query.send(new GetQueueUrlCommand({ QueueName: 'no-such-queue' }))).rejects.toMatchObject({
      name: 'QueueDoesNotExist',
      $metadata: { httpStatusCode: 400 },
    });
  });

  it('GetQueueAttributes answers what a JSON client reads, and PurgeQueue empties the queue for both', async () => {
    await json.send(new JsonSendMessage({ QueueUrl: queue.url, MessageBody: '{"n":1}' }));
    await query.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"n":2}' }));
    const names = ['QueueArn', 'ApproximateNumberOfMessages', 'VisibilityTimeout'] as const;

    const asQuery = await query.send(
      new GetQueueAttributesCommand({ QueueUrl: queue.url, AttributeNames: [...names] }),
    );
    const asJson = await json.send(
      new JsonGetQueueAttributes({ QueueUrl: queue.url, AttributeNames: [...names] }),
    );

    expect(asQuery.Attributes).toEqual(asJson.Attributes);
    expect(asQuery.Attributes).toMatchObject({ QueueArn: queue.arn, ApproximateNumberOfMessages: '2' });
    await query.send(new PurgeQueueCommand({ QueueUrl: queue.url }));
    expect(await receiveAllAsJson()).toEqual([]);
  });
});
