import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type DynamoDbEmulator, startDynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import { type EmulatedQueue, type SqsEmulator, startSqsEmulator } from '#local/emulators/sqs-emulator.ts';
import { FunctionInstance } from '#local/lambda/container.ts';
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

/** A fresh queue, a killer on a test clock, and one instance whose container's clients are `clients()`. */
async function instance(now: () => number = Date.now) {
  queue = await sqsEmulator.createQueue(`kill-${++counter}`, { VisibilityTimeout: '30' });
  const killer = new InstanceKiller({ jobIdOfRecord: recordJobId, now });
  let clients: AwsClients | undefined;
  const slot = new FunctionInstance('sender-1', (io) => {
    clients = {
      sqs: io.instrument(
        new SQSClient({
          endpoint: sqsEmulator.endpoint,
          useQueueUrlAsEndpoint: false,
          region: 'us-east-1',
          credentials: CREDENTIALS,
        }),
      ),
      dynamodb: io.instrument(
        new DynamoDBClient({ endpoint: dynamodb.endpoint, region: 'us-east-1', credentials: CREDENTIALS }),
      ),
      secrets: io.instrument(new SecretsManagerClient({ region: 'us-east-1', credentials: CREDENTIALS })),
    };
    killer.attach('sender-1', io);
    return async () => ({ batchItemFailures: [] });
  });
  /** The current container's clients (a cold start when the last one was ended). */
  const current = () => {
    slot.container();
    const built = clients as AwsClients;
    return { clients: built, doc: DynamoDBDocumentClient.from(built.dynamodb) };
  };
  return { killer, slot, current };
}

/** Whether `promise` is still pending once everything already under way has run. */
async function pending(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  await new Promise((resolve) => setImmediate(resolve));
  return (await Promise.race([promise.catch(() => undefined), Promise.resolve(marker)])) === marker;
}

const item = (id: string) => ({ id, body_hash: 'x' });
const send = (sqs: SQSClient, id: string) =>
  sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: JSON.stringify({ id }) }));

describe('InstanceKiller', () => {
  it('lets a live instance call SQS and DynamoDB as usual', async () => {
    const { current } = await instance();
    const { clients, doc } = current();

    await send(clients.sqs, 'job-1');
    await doc.send(new PutCommand({ TableName: TABLE, Item: item('live') }));

    expect((await sqsEmulator.inspect(queue.name)).ready).toHaveLength(1);
    expect((await doc.send(new GetCommand({ TableName: TABLE, Key: { id: 'live' } }))).Item).toBeDefined();
  });

  it('sends nothing for a dead instance: its SQS and DynamoDB calls never reach the emulators or answer', async () => {
    const { killer, current } = await instance();
    const dead = current();
    killer.kill('sender-1', 'kill-before-send', 'job-1');

    const sqsCall = send(dead.clients.sqs, 'job-1');
    const ledgerCall = dead.doc.send(new PutCommand({ TableName: TABLE, Item: item('dead') }));
    // The next invocation is a fresh container: its calls go out, and finish after any that had leaked before.
    const fresh = current();
    await send(fresh.clients.sqs, 'job-later');
    await fresh.doc.send(new PutCommand({ TableName: TABLE, Item: item('later') }));

    expect((await sqsEmulator.inspect(queue.name)).ready.map((m) => m.body)).toEqual(['{"id":"job-later"}']);
    expect(
      (await fresh.doc.send(new GetCommand({ TableName: TABLE, Key: { id: 'dead' } }))).Item,
    ).toBeUndefined();
    expect(await pending(sqsCall)).toBe(true);
    expect(await pending(ledgerCall)).toBe(true);
  });

  it('loses the answer of a call made before the kill: the write happened, the instance never learns it', async () => {
    const { killer, current } = await instance();

    const inFlight = send(current().clients.sqs, 'job-2');
    killer.kill('sender-1', 'kill-after-send', 'job-2');

    await vi.waitFor(async () => expect((await sqsEmulator.inspect(queue.name)).ready).toHaveLength(1));
    expect(await pending(inFlight)).toBe(true);
  });

  it('sends no retry of a call under way once killed: the SDK tries again, and the attempt never leaves', async () => {
    const { killer, current } = await instance();
    const { clients } = current();
    // Before the container's gate, every attempt the SDK makes; after it, the ones that left.
    const tried: string[] = [];
    const left: string[] = [];
    type Next = (args: unknown) => Promise<unknown>;
    const headerOf = (args: unknown) =>
      (args as { request?: { headers?: Record<string, string> } }).request?.headers?.['amz-sdk-request'] ??
      '';
    clients.sqs.middlewareStack.add(
      ((next: Next) => (args: unknown) => {
        tried.push(headerOf(args));
        return next(args);
      }) as never,
      { step: 'deserialize', priority: 'high', name: 'killTestTried' },
    );
    // The first attempt meets a 503 (SQS down), and the instance dies while the SDK backs off.
    clients.sqs.middlewareStack.add(
      ((next: Next) => (args: unknown) => {
        left.push(headerOf(args));
        if (left.length > 1) return next(args);
        killer.kill('sender-1', 'kill-before-send', 'job-4');
        const error = Object.assign(new Error('Service Unavailable'), {
          name: 'ServiceUnavailable',
          $fault: 'server',
          $metadata: { httpStatusCode: 503 },
        });
        return Promise.reject(error);
      }) as never,
      { step: 'deserialize', priority: 'low', name: 'killTestRefused' },
    );

    const call = send(clients.sqs, 'job-4');

    await vi.waitFor(() => expect(tried).toHaveLength(2));
    expect(left).toHaveLength(1);
    expect((await sqsEmulator.inspect(queue.name)).ready).toEqual([]);
    expect(await pending(call)).toBe(true);
  });

  it('brings the instance back alive at its next cold start, and counts the batch it held as touched', async () => {
    const { killer, slot, current } = await instance();
    current();
    killer.invoked('sender-1', ['{"id":"job-3"}'], 1_000);

    killer.kill('sender-1', 'kill-before-send', 'job-3');
    expect(killer.isDead('sender-1')).toBe(true);
    current();

    expect(slot.coldStarts).toBe(2);
    expect(killer.isDead('sender-1')).toBe(false);
    expect(killer.kills).toEqual([
      expect.objectContaining({ cause: 'kill-before-send', touched: ['job-3'], batchReceivedAt: 1_000 }),
    ]);
  });

  it('counts an invocation the mapping ended at the function timeout as a kill of its batch', async () => {
    const clock = 1_000_000 + FUNCTION_TIMEOUT_MS;
    const { killer, current } = await instance(() => clock);
    current();
    killer.invoked('sender-1', ['{"id":"job-5"}'], 1_000_000);

    killer.timedOut('sender-1');

    expect(killer.kills).toEqual([
      {
        instance: 'sender-1',
        at: 1_000_000 + FUNCTION_TIMEOUT_MS,
        cause: 'invocation-timeout',
        jobId: undefined,
        touched: ['job-5'],
        batchReceivedAt: 1_000_000,
      },
    ]);
  });

  it('does not count the timeout of an invocation whose instance was already killed again', async () => {
    const { killer, current } = await instance();
    current();
    killer.invoked('sender-1', ['{"id":"job-6"}'], 1_000);
    killer.kill('sender-1', 'kill-after-send', 'job-6');

    killer.timedOut('sender-1');

    expect(killer.kills.map((kill) => kill.cause)).toEqual(['kill-after-send']);
  });
});
