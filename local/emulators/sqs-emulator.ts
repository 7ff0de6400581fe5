import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type BuildAppOptions, buildApp } from 'fauxqs';
import { FairQueueLoad, fairOrder } from '#local/emulators/fair-queue.ts';
import {
  type IgnoredDelete,
  type SqsRefusal,
  type StrictSqsOptions,
  startStrictSqsLayer,
} from '#local/emulators/strict-sqs.ts';
import type { CheckedCall } from '#local/iam/gate.ts';

export type { IgnoredDelete, SqsRefusal } from '#local/emulators/strict-sqs.ts';

export interface EmulatedQueue {
  readonly name: string;
  readonly url: string;
  readonly arn: string;
}

/** One message as fauxqs's inspection endpoint reports it. */
export interface InspectedMessage {
  readonly messageId: string;
  readonly body: string;
  readonly approximateReceiveCount?: number;
  /** Epoch ms at which a delayed message becomes visible. */
  readonly delayUntil?: number;
  /** The message attributes as sent (`DataType`, `StringValue` or base64 `BinaryValue`). */
  readonly messageAttributes?: Readonly<
    Record<
      string,
      { readonly DataType: string; readonly StringValue?: string; readonly BinaryValue?: string }
    >
  >;
}

export interface QueueInspection {
  readonly ready: readonly InspectedMessage[];
  readonly delayed: readonly InspectedMessage[];
  /** Received but not deleted, with the epoch ms at which each becomes visible again. */
  readonly inflight: readonly {
    readonly message: InspectedMessage;
    readonly receiptHandle: string;
    readonly visibilityDeadline: number;
  }[];
}

export interface SqsEmulator {
  /**
   * The endpoint to give SQS clients (`AWS_ENDPOINT_URL_SQS`), e.g. http://127.0.0.1:41234: the strict SQS
   * layer, which refuses what real SQS refuses and forwards the rest to fauxqs.
   */
  readonly endpoint: string;
  /** An SDK client pointed at the emulator. */
  readonly sqs: SQSClient;
  createQueue(name: string, attributes?: Record<string, string>): Promise<EmulatedQueue>;
  /** Non-destructive view of a queue: nothing is received, no visibility changes. */
  inspect(name: string): Promise<QueueInspection>;
  /**
   * Every request (or batch entry) the strict layer refused so far, oldest first: a run that stayed inside SQS's
   * limits has none. Each names the action, SQS's error code and message, never a value.
   */
  refusals(): readonly SqsRefusal[];
  /** DeleteMessage calls with a stale receipt handle, which SQS answers with success but which delete nothing. */
  ignoredDeletes(): readonly IgnoredDelete[];
  /** Requests of a function role that the stack's IAM denied (the `iam` option), oldest first. */
  denials(): readonly CheckedCall[];
  stop(): Promise<void>;
}

/** Options of `startSqsEmulator`. */
export interface SqsEmulatorOptions extends Omit<StrictSqsOptions, 'upstream'> {
  /** The strict layer's port; 0 picks a free one. @default 0 */
  readonly port?: number;
  readonly region?: string;
}

/**
 * Starts fauxqs in-process behind the strict SQS layer (local/emulators/strict-sqs.ts), both on 127.0.0.1 only. Every
 * client given `endpoint` (the sender, the local event source, the CLI) goes through the layer, so the tests and
 * `npm start` meet SQS's documented limits as the relay meets them in AWS. fauxqs's queue URLs name a
 * `localhost` subdomain that does not resolve, so every client must use `endpoint` with
 * `useQueueUrlAsEndpoint: false` (the relay's `createAwsClients` does this whenever `AWS_ENDPOINT_URL_SQS` is
 * set).
 *
 * @example
 * const emulator = await startSqsEmulator();
 * // ... run ...
 * expect(emulator.refusals()).toEqual([]);
 */
export async function startSqsEmulator(options: SqsEmulatorOptions = {}): Promise<SqsEmulator> {
  const sqsStore = await fairSqsStore(options.timeScale ?? 1);
  const app = buildApp({
    logger: false,
    host: 'localhost',
    stores: { sqsStore } as unknown as BuildAppOptions['stores'],
  });
  const fauxqs = await app.listen({ host: '127.0.0.1', port: 0 });
  const strict = await startStrictSqsLayer({
    upstream: fauxqs,
    onMessageGroup: (queueUrl, messageId, group) => sqsStore.assignGroup(queueUrl, messageId, group),
    now: options.now,
    timeScale: options.timeScale,
    onRefusal: options.onRefusal,
    port: options.port,
    iam: options.iam,
    region: options.region,
  }).catch(async (error: unknown) => {
    await app.close();
    throw error;
  });
  const { endpoint } = strict;
  const sqs = new SQSClient({
    endpoint,
    useQueueUrlAsEndpoint: false,
    region: options.region ?? 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  return {
    endpoint,
    sqs,
    async createQueue(name, attributes = {}) {
      const created = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
      const url = created.QueueUrl ?? '';
      const attrs = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
      );
      return { name, url, arn: attrs.Attributes?.QueueArn ?? '' };
    },
    async inspect(name) {
      const response = await fetch(`${fauxqs}/_fauxqs/queues/${encodeURIComponent(name)}`);
      if (!response.ok) throw new Error(`fauxqs has no queue named ${name} (HTTP ${response.status})`);
      const state = (await response.json()) as { messages: QueueInspection };
      return state.messages;
    },
    refusals: () => strict.refusals(),
    ignoredDeletes: () => strict.ignoredDeletes(),
    denials: () => strict.denials(),
    async stop() {
      sqs.destroy();
      await strict.close();
      await app.close();
    },
  };
}

/** One message in fauxqs's store (the fields the fair receive reads and writes). */
interface StoredMessage {
  readonly messageId: string;
  messageGroupId?: string | undefined;
}

/** One queue in fauxqs's store: its ready messages in order, those delayed, and those in flight. */
interface StoredQueue {
  isFifo(): boolean;
  processTimers(): void;
  messages: StoredMessage[];
  delayedMessages: StoredMessage[];
  readonly inflightMessages: Map<string, { readonly message: StoredMessage }>;
  dequeue(...args: unknown[]): { MessageId: string }[];
}

/** fauxqs's SQS store, with the fair receive of its standard queues and the groups the strict layer accepted. */
interface FairSqsStore {
  createQueue(...args: unknown[]): StoredQueue;
  getQueue(url: string): StoredQueue | undefined;
  /** Puts `group` on the stored message `messageId` of the queue at `queueUrl`, wherever it is by now. */
  assignGroup(queueUrl: string, messageId: string, group: string): void;
}

/**
 * fauxqs's own SQS store (its module, loaded by file: the package exports only `buildApp`), whose standard queues
 * hand out messages as a fair queue does (local/emulators/fair-queue.ts; docs/test-world.md, "Fair queues"):
 * before each receive, the ready messages are put in fair order, then fauxqs's own receive takes them from the
 * front. fauxqs keeps no `MessageGroupId` on a standard queue's message, so the strict layer hands each accepted
 * one over (`assignGroup`), and fauxqs's receive then returns it as the `MessageGroupId` system attribute. The
 * recent processing time counts `60 s / timeScale` of the clock.
 */
async function fairSqsStore(timeScale: number): Promise<FairSqsStore> {
  const module = (await import(new URL('sqs/sqsStore.js', import.meta.resolve('fauxqs')).href)) as {
    SqsStore: new () => FairSqsStore;
  };
  const store = new module.SqsStore();
  const createQueue = store.createQueue.bind(store);
  store.createQueue = (...args: unknown[]) => {
    const queue = createQueue(...args);
    if (!queue.isFifo()) makeFair(queue, new FairQueueLoad(60_000 / timeScale));
    return queue;
  };
  store.assignGroup = (queueUrl, messageId, group) => {
    const queue = store.getQueue(queueUrl);
    if (!queue) return;
    const inFlight = [...queue.inflightMessages.values()].map((entry) => entry.message);
    const message = [...queue.messages, ...queue.delayedMessages, ...inFlight].find(
      (candidate) => candidate.messageId === messageId,
    );
    if (message) message.messageGroupId = group;
  };
  return store;
}

function makeFair(queue: StoredQueue, load: FairQueueLoad): void {
  const dequeue = queue.dequeue.bind(queue);
  queue.dequeue = (...args: unknown[]) => {
    queue.processTimers();
    const now = Date.now();
    const inFlight = [...queue.inflightMessages.values()].map(({ message }) => ({
      messageId: message.messageId,
      group: message.messageGroupId,
    }));
    queue.messages = fairOrder(
      queue.messages,
      (message) => message.messageGroupId,
      load.observe(now, inFlight),
    );
    const received = dequeue(...args);
    const groups = new Map(queue.messages.map((message) => [message.messageId, message.messageGroupId]));
    for (const entry of queue.inflightMessages.values())
      groups.set(entry.message.messageId, entry.message.messageGroupId);
    for (const message of received) load.received(now, message.MessageId, groups.get(message.MessageId));
    return received;
  };
}
