import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type DynamoDbEmulator, startDynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import { type EmulatedQueue, type SqsEmulator, startSqsEmulator } from '#local/emulators/sqs-emulator.ts';
import type { AwsClients } from '#shared/clients/aws.ts';
import { InstanceKiller } from '#test/chaos/kill.ts';
import { recordJobId } from '#test/chaos/world.ts';

/** How the chaos suite kills a simulated Lambda instance (test/chaos/kill.ts), against the real emulators. */
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
const TABLE = 'kill-test';
const FUNCTION_TIMEOUT_MS = 8_000;

let sqsEmulator: SqsEmulator;
let dynamodb: DynamoDbEmulator;
let queue: EmulatedQueue;
let counter = 0;

beforeAll(async () => {
  sqsEmulator = await startSqsEmulator();
  dynamodb = await startDynamoDbEmulator();
  await dynamodb.createLedgerTable(TABLE);
});

afterAll(async () => {
  await sqsEmulator?.stop();
  await dynamodb?.stop();
});

/** A fresh queue, a killer on a test clock, and one instrumented instance's clients. */
async function instance(now: () => number = Date.now) {
  queue = await sqsEmulator.createQueue(`kill-${++counter}`, { VisibilityTimeout: '30' });
  const clients: AwsClients = {
    sqs: new SQSClient({
      endpoint: sqsEmulator.endpoint,
      useQueueUrlAsEndpoint: false,
      region: 'us-east-1',
      credentials: CREDENTIALS,
    }),
    dynamodb: new DynamoDBClient({
      endpoint: dynamodb.endpoint,
      region: 'us-east-1',
      credentials: CREDENTIALS,
    }),
    secrets: new SecretsManagerClient({ region: 'us-east-1', credentials: CREDENTIALS }),
  };
  const killer = new InstanceKiller({
    functionTimeoutMs: FUNCTION_TIMEOUT_MS,
    jobIdOfRecord: recordJobId,
    now,
  });
  killer.instrument('sender-1', clients);
  return { killer, clients, doc: DynamoDBDocumentClient.from(clients.dynamodb) };
}

/** Whether `promise` is still pending once everything already under way has run. */
async function pending(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  await new Promise((resolve) => setImmediate(resolve));
  return (await Promise.race([promise.catch(() => undefined), Promise.resolve(marker)])) === marker;
}

const item = (id: string) => ({ id, body_hash: 'x' });
const receive = (sqs: SQSClient) =>
  sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));

describe('InstanceKiller', () => {
  it('lets a live instance call SQS and DynamoDB as usual', async () => {
    const { clients, doc } = await instance();

    await clients.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"id":"job-1"}' }));
    await doc.send(new PutCommand({ TableName: TABLE, Item: item('live') }));

    expect((await sqsEmulator.inspect(queue.name)).ready).toHaveLength(1);
    expect((await doc.send(new GetCommand({ TableName: TABLE, Key: { id: 'live' } }))).Item).toBeDefined();
  });

  it('sends nothing for a dead instance: its SQS and DynamoDB calls never reach the emulators or answer', async () => {
    const { killer, clients, doc } = await instance();
    killer.kill('sender-1', 'kill-before-send', 'job-1');

    const sqsCall = clients.sqs.send(
      new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"id":"job-1"}' }),
    );
    const ledgerCall = doc.send(new PutCommand({ TableName: TABLE, Item: item('dead') }));
    // Back as a fresh container: its calls from now on go out, and finish after any that had leaked before.
    await receive(clients.sqs);
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"id":"job-later"}' }),
    );
    await doc.send(new PutCommand({ TableName: TABLE, Item: item('later') }));

    expect((await sqsEmulator.inspect(queue.name)).ready.map((m) => m.body)).toEqual(['{"id":"job-later"}']);
    expect((await doc.send(new GetCommand({ TableName: TABLE, Key: { id: 'dead' } }))).Item).toBeUndefined();
    expect(await pending(sqsCall)).toBe(true);
    expect(await pending(ledgerCall)).toBe(true);
  });

  it('loses the answer of a call made before the kill: the write happened, the instance never learns it', async () => {
    const { killer, clients } = await instance();

    const inFlight = clients.sqs.send(
      new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"id":"job-2"}' }),
    );
    killer.kill('sender-1', 'kill-after-send', 'job-2');

    await vi.waitFor(async () => expect((await sqsEmulator.inspect(queue.name)).ready).toHaveLength(1));
    expect(await pending(inFlight)).toBe(true);
  });

  it('brings the instance back as a fresh container when the event source polls again, and counts the batch it held as touched', async () => {
    const { killer, clients } = await instance();
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"id":"job-3"}' }));
    await receive(clients.sqs);

    killer.kill('sender-1', 'kill-before-send', 'job-3');
    await receive(clients.sqs);
    const after = clients.sqs.send(
      new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"id":"job-4"}' }),
    );

    expect(killer.isDead('sender-1')).toBe(false);
    expect(await after).toMatchObject({ MessageId: expect.any(String) });
    expect(killer.kills).toEqual([
      expect.objectContaining({ cause: 'kill-before-send', touched: ['job-3'] }),
    ]);
  });

  it('counts an invocation that lasted the function timeout as a kill of its batch', async () => {
    let clock = 1_000_000;
    const { killer, clients } = await instance(() => clock);
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"id":"job-5"}' }));
    await receive(clients.sqs);

    clock += FUNCTION_TIMEOUT_MS;
    await receive(clients.sqs);

    expect(killer.kills).toEqual([
      {
        instance: 'sender-1',
        at: 1_000_000 + FUNCTION_TIMEOUT_MS,
        cause: 'invocation-timeout',
        touched: ['job-5'],
        batchReceivedAt: 1_000_000,
      },
    ]);
  });

  it('does not count a quick invocation as a kill', async () => {
    let clock = 1_000_000;
    const { killer, clients } = await instance(() => clock);
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"id":"job-6"}' }));
    await receive(clients.sqs);

    clock += 200;
    await receive(clients.sqs);

    expect(killer.kills).toEqual([]);
  });
});
