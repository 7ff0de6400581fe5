import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { type EmulatedQueue, type SqsEmulator, startSqsEmulator } from '#local/emulators/sqs-emulator.ts';
import { FunctionInstance } from '#local/lambda/container.ts';
import type { PollResult, SqsHandler } from '#local/lambda/event-source.ts';
import {
  type EventSourceMapping,
  type SenderInstance,
  startEventSourceMapping,
} from '#local/lambda/event-source-mapping.ts';
import { hideFor } from '#shared/sqs/settle.ts';
import { eventually } from '#test/local/wait.ts';

let emulator: SqsEmulator;
let mapping: EventSourceMapping | undefined;

afterEach(async () => {
  await mapping?.stop();
  mapping = undefined;
  await emulator?.stop();
});

/** The send queue and its dead-letter queue, with a 1 s visibility timeout and the given maxReceiveCount. */
async function queues(maxReceiveCount = 200): Promise<{ queue: EmulatedQueue; dlq: EmulatedQueue }> {
  emulator = await startSqsEmulator();
  const dlq = await emulator.createQueue('dlq');
  const queue = await emulator.createQueue('send', {
    VisibilityTimeout: '1',
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: String(maxReceiveCount) }),
  });
  return { queue, dlq };
}

async function enqueue(queue: EmulatedQueue, bodies: readonly string[]): Promise<void> {
  for (let start = 0; start < bodies.length; start += 10) {
    await emulator.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: bodies.slice(start, start + 10).map((body, i) => ({ Id: String(i), MessageBody: body })),
      }),
    );
  }
}

/** A handler that records its invocations and fails the records `fails` says to. */
function recordingHandler(fails: (record: SQSRecord) => boolean | 'throw' = () => false) {
  const batches: SQSRecord[][] = [];
  let running = 0;
  let maxRunning = 0;
  const handler: SqsHandler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    batches.push(event.Records);
    try {
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (event.Records.some((record) => fails(record) === 'throw')) throw new Error('invocation failed');
      return {
        batchItemFailures: event.Records.filter((record) => fails(record) === true).map((record) => ({
          itemIdentifier: record.messageId,
        })),
      };
    } finally {
      running -= 1;
    }
  };
  return {
    handler,
    batches,
    get maxRunning() {
      return maxRunning;
    },
    receives: (body: string) => batches.flat().filter((record) => record.body === body),
  };
}

function instance(name: string, handler: SqsHandler): SenderInstance {
  return { name, handler, sqs: emulator.sqs };
}

async function queueSize(name: string): Promise<number> {
  const state = await emulator.inspect(name);
  return state.ready.length + state.inflight.length + state.delayed.length;
}

describe('local event source mapping against the SQS emulator', () => {
  it('hands an instance batches of at most 10 records, one batch at a time, and deletes what succeeded', async () => {
    const { queue } = await queues();
    await enqueue(
      queue,
      Array.from({ length: 25 }, (_, i) => `job-${i}`),
    );
    const recorder = recordingHandler();

    mapping = startEventSourceMapping({
      queue,
      instances: [instance('a', recorder.handler)],
      functionTimeoutMs: 60_000,
    });

    await eventually(async () => expect(await queueSize('send')).toBe(0));
    expect(recorder.batches.map((batch) => batch.length)).toEqual([10, 10, 5]);
    expect(recorder.maxRunning).toBe(1);
    expect(new Set(recorder.batches.flat().map((r) => r.body)).size).toBe(25);
  });

  it('runs each instance with its own handler, one batch at a time', async () => {
    const { queue } = await queues();
    await enqueue(
      queue,
      Array.from({ length: 30 }, (_, i) => `job-${i}`),
    );
    const recorders = [recordingHandler(), recordingHandler(), recordingHandler()];

    mapping = startEventSourceMapping({
      queue,
      instances: recorders.map((r, i) => instance(`sender-${i}`, r.handler)),
      functionTimeoutMs: 60_000,
    });

    await eventually(async () => expect(await queueSize('send')).toBe(0));
    for (const recorder of recorders) {
      expect(recorder.batches.length).toBeGreaterThan(0);
      expect(recorder.maxRunning).toBe(1);
    }
    expect(recorders.flatMap((r) => r.batches.flat()).length).toBe(30);
  });

  it('with more pollers than instances, keeps the next batch ready and deletes off the instance, never running an instance twice at once', async () => {
    const { queue } = await queues();
    await enqueue(
      queue,
      Array.from({ length: 40 }, (_, i) => `job-${i}`),
    );
    const recorder = recordingHandler();
    // The pollers' deletes take a while, as a round trip to SQS does; the instance must not wait for them.
    const events: string[] = [];
    let deletesPending = 0;
    const sqs = {
      send: async (command: { constructor: { name: string } }) => {
        const isDelete = command.constructor.name === 'DeleteMessageBatchCommand';
        if (isDelete) deletesPending += 1;
        try {
          if (isDelete) await new Promise((resolve) => setTimeout(resolve, 50));
          return await emulator.sqs.send(command as never);
        } finally {
          if (isDelete) deletesPending -= 1;
        }
      },
    } as unknown as SenderInstance['sqs'];
    const handler: SqsHandler = async (event, context) => {
      events.push(deletesPending > 0 ? 'invoked while a delete was pending' : 'invoked');
      return recorder.handler(event, context);
    };

    mapping = startEventSourceMapping({
      queue,
      instances: [{ name: 'a', handler, sqs }],
      pollers: 2,
      functionTimeoutMs: 60_000,
    });

    await eventually(async () => expect(await queueSize('send')).toBe(0));
    expect(recorder.maxRunning).toBe(1);
    expect(recorder.batches.flat().length).toBe(40);
    expect(events).toContain('invoked while a delete was pending');
  });

  it('keeps polling when onInvocation throws, and reports the error to onPollError', async () => {
    const { queue } = await queues();
    await enqueue(
      queue,
      Array.from({ length: 30 }, (_, i) => `job-${i}`),
    );
    const recorder = recordingHandler();
    const errors: unknown[] = [];

    mapping = startEventSourceMapping({
      queue,
      instances: [instance('a', recorder.handler)],
      functionTimeoutMs: 60_000,
      onInvocation() {
        throw new Error('observer failed');
      },
      onPollError: (_, error) => errors.push(error),
    });

    await eventually(async () => expect(await queueSize('send')).toBe(0));
    expect(recorder.batches.flat().length).toBe(30);
    // The observer runs after the poller's delete: the last invocation's error may come just after the queue empties.
    await eventually(async () => expect(errors.length).toBe(recorder.batches.length));
    expect(errors.length).toBeGreaterThanOrEqual(3);
  });

  it('refuses a mapping without instances or with a pollers count that is not a whole number >= 1', async () => {
    const { queue } = await queues();
    const a = instance('a', recordingHandler().handler);
    expect(() => startEventSourceMapping({ queue, instances: [], functionTimeoutMs: 1_000 })).toThrow(
      /instances/,
    );
    for (const pollers of [0, 1.5, Number.NaN]) {
      expect(() =>
        startEventSourceMapping({ queue, instances: [a], pollers, functionTimeoutMs: 1_000 }),
      ).toThrow(/pollers/);
    }
  });

  it('partial batch failure: deletes the successes and offers the failed record again after its visibility timeout', async () => {
    const { queue } = await queues();
    await enqueue(queue, ['ok-1', 'fail-once', 'ok-2']);
    const recorder = recordingHandler(
      (record) => record.body === 'fail-once' && record.attributes.ApproximateReceiveCount === '1',
    );
    const results: PollResult[] = [];

    mapping = startEventSourceMapping({
      queue,
      instances: [instance('a', recorder.handler)],
      functionTimeoutMs: 60_000,
      onInvocation: (_name, result) => results.push(result),
    });

    // The queue empties a moment before the last invocation is reported: wait for both.
    await eventually(async () => {
      expect(await queueSize('send')).toBe(0);
      expect(results.flatMap((result) => result.deleted)).toHaveLength(3);
    });
    const bodyOf = (id: string) => recorder.batches.flat().find((r) => r.messageId === id)?.body;
    // SQS may hand the three messages out over more than one receive: look at every invocation.
    const failed = results.flatMap((result) => result.failed.map(bodyOf));
    const deleted = results.flatMap((result) => result.deleted.map(bodyOf));
    expect(failed).toEqual(['fail-once']);
    expect(deleted.sort()).toEqual(['fail-once', 'ok-1', 'ok-2']);
    const failedIn = results.findIndex((result) => result.failed.map(bodyOf).includes('fail-once'));
    const deletedIn = results.findIndex((result) => result.deleted.map(bodyOf).includes('fail-once'));
    expect(deletedIn).toBeGreaterThan(failedIn);
    expect(recorder.receives('fail-once').map((r) => r.attributes.ApproximateReceiveCount)).toEqual([
      '1',
      '2',
    ]);
    expect(recorder.receives('ok-1')).toHaveLength(1);
    expect(recorder.receives('ok-2')).toHaveLength(1);
  });

  it('a handler error fails the whole batch: every record comes back', async () => {
    const { queue } = await queues();
    await enqueue(queue, ['a', 'b', 'poison-once']);
    const recorder = recordingHandler((record) =>
      record.body === 'poison-once' && record.attributes.ApproximateReceiveCount === '1' ? 'throw' : false,
    );
    const errors: unknown[] = [];

    mapping = startEventSourceMapping({
      queue,
      instances: [instance('a', recorder.handler)],
      functionTimeoutMs: 60_000,
      onInvocation: (_name, result) => {
        if (result.error) errors.push(result.error);
      },
    });

    await eventually(async () => expect(await queueSize('send')).toBe(0));
    expect(errors).toHaveLength(1);
    for (const body of ['a', 'b', 'poison-once']) expect(recorder.receives(body)).toHaveLength(2);
  });

  it('respects a visibility timeout set by the handler: the record is not offered again before it ends', async () => {
    const { queue } = await queues();
    await enqueue(queue, ['retry-in-2s']);
    const seenAt: number[] = [];
    const handler: SqsHandler = async (event) => {
      seenAt.push(Date.now());
      const [record] = event.Records;
      if (record && record.attributes.ApproximateReceiveCount === '1') {
        await hideFor(emulator.sqs, queue.url, record.receiptHandle, 2);
        return { batchItemFailures: [{ itemIdentifier: record.messageId }] };
      }
      return { batchItemFailures: [] };
    };

    mapping = startEventSourceMapping({
      queue,
      instances: [instance('a', handler)],
      functionTimeoutMs: 60_000,
    });

    await eventually(() => expect(seenAt).toHaveLength(2), 10_000);
    const [first = 0, second = 0] = seenAt;
    expect(second - first).toBeGreaterThanOrEqual(1_900);
  });

  it('redrive: a record that keeps failing moves to the dead-letter queue after maxReceiveCount receives', async () => {
    const { queue } = await queues(2);
    await enqueue(queue, ['always-fails', 'fine']);
    const recorder = recordingHandler((record) => record.body === 'always-fails');

    mapping = startEventSourceMapping({
      queue,
      instances: [instance('a', recorder.handler)],
      functionTimeoutMs: 60_000,
    });

    await eventually(async () => expect((await emulator.inspect('dlq')).ready).toHaveLength(1), 10_000);
    const [moved] = (await emulator.inspect('dlq')).ready;
    expect(moved?.body).toBe('always-fails');
    expect(recorder.receives('always-fails').map((r) => r.messageId)).toEqual([
      moved?.messageId,
      moved?.messageId,
    ]);
    expect(recorder.receives('fine')).toHaveLength(1);
    expect(await queueSize('send')).toBe(0);
  });
});

/**
 * A function instance whose first container awaits a request (`answer` releases it) and, once answered, logs a
 * line and sends an SQS message to `side` before it succeeds; later containers succeed at once.
 */
function slowFirstContainer(side: EmulatedQueue) {
  let answer: (response: Response) => void = () => undefined;
  const answered: string[] = [];
  const logged: string[] = [];
  const instance = new FunctionInstance('sender-1', (io) => {
    const sqs = io.instrument(
      new SQSClient({
        endpoint: emulator.endpoint,
        useQueueUrlAsEndpoint: false,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      }),
    );
    const log = io.live((line: string) => logged.push(line));
    const slow = io.fetch(() => new Promise<Response>((resolve) => (answer = resolve)));
    return async () => {
      if (io.generation === 1) {
        const response = await slow('http://api.invalid/v1/messages/oneoffs');
        answered.push(String(response.status));
        log('after the answer');
        await sqs.send(new SendMessageCommand({ QueueUrl: side.url, MessageBody: 'after the answer' }));
      }
      return { batchItemFailures: [] };
    };
  });
  return { instance, answer: (response: Response) => answer(response), answered, logged };
}

describe('an invocation that outlives the function timeout', () => {
  /** Runs the mapping until the first invocation timed out; returns what it reported then. */
  async function timedOut() {
    const { queue } = await queues();
    const side = await emulator.createQueue('side');
    await enqueue(queue, ['job-1']);
    const slow = slowFirstContainer(side);
    const results: PollResult[] = [];
    mapping = startEventSourceMapping({
      queue,
      instances: [
        { name: 'sender-1', handler: slow.instance.handler, sqs: emulator.sqs, end: slow.instance.end },
      ],
      functionTimeoutMs: 300,
      onInvocation: (_, result) => results.push(result),
    });
    await eventually(() => expect(results).toHaveLength(1));
    return { ...slow, queue, side, results };
  }

  it('never hands the handler the answer of a request it was still awaiting at the deadline', async () => {
    const { answer, answered, results } = await timedOut();

    answer(new Response('{}', { status: 201 }));
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect(results[0]?.error).toBeInstanceOf(Error);
    expect(answered).toEqual([]);
  });

  it('lets nothing the handler would do after the deadline happen: no log line, no AWS request, no delete', async () => {
    const { answer, logged, side, results } = await timedOut();

    answer(new Response('{}', { status: 201 }));
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect(logged).toEqual([]);
    expect(await queueSize(side.name)).toBe(0);
    expect(results[0]?.deleted).toEqual([]);
  });

  it('fails the whole batch: its record comes back after the visibility timeout', async () => {
    const { queue, results } = await timedOut();

    await eventually(async () => expect(await queueSize(queue.name)).toBe(0));
    expect(results.map((result) => [result.received, result.deleted.length])).toEqual([
      [1, 0],
      [1, 1],
    ]);
  });

  it('runs the next invocation on a fresh container: a cold start', async () => {
    const { instance, queue, results } = await timedOut();

    await eventually(async () => expect(await queueSize(queue.name)).toBe(0));
    expect(results).toHaveLength(2);
    expect(instance.coldStarts).toBe(2);
    expect(instance.container().generation).toBe(2);
  });
});
