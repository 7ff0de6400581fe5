import {
  ChangeMessageVisibilityCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse } from 'aws-lambda';
import { vi } from 'vitest';
import { loadStageConfig } from '#infra/config.ts';
import type { RecordedRequest, Simulator, SimulatorOptions } from '#local/ecourtdate-simulator/index.ts';
import type { DynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import type { SecretsManagerStub } from '#local/emulators/secrets-manager-stub.ts';
import type { EmulatedQueue, QueueInspection, SqsEmulator } from '#local/emulators/sqs-emulator.ts';
import { describeDenials } from '#local/iam/gate.ts';
import type { LocalIam, PolicyEdit } from '#local/iam/local-iam.ts';
import { FunctionInstance } from '#local/lambda/container.ts';
import type { PollResult } from '#local/lambda/event-source.ts';
import { sinkObservability } from '#local/pipeline/observability.ts';
import { LOCAL_RESOURCE_NAMES } from '#local/resource-names.ts';
import { startWorld, type World } from '#local/world.ts';
import { type AwsClients, createAwsClients } from '#shared/clients/aws.ts';
import { loadSenderConfig } from '#shared/config.ts';
import { createApiFetch } from '#shared/ecourtdate/connection.ts';
import type { FetchLike } from '#shared/ecourtdate/http.ts';
import type { RequestPacer } from '#shared/ecourtdate/pacer.ts';
import { JobLedger } from '#shared/ledger/ledger.ts';
import { createSenderHandler, type SenderHandler } from '#shared/sender/handler.ts';
import type { Settlement } from '#shared/sender/runtime.ts';

/** The world's API-credentials secret and ledger table (local/resource-names.ts). */
export const SECRET_ID = LOCAL_RESOURCE_NAMES.apiCredentialsSecretId;
export const LEDGER_TABLE = LOCAL_RESOURCE_NAMES.ledgerTable;
export const CLIENT_ID = 'relay-test-client';
export const CLIENT_SECRET = 'cs_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0';
/** The function timeout an invocation gets unless a test says otherwise: staging's, as the stack derives it. */
export const FUNCTION_TIMEOUT_MS = loadStageConfig({ stage: 'staging' }).functionTimeoutSeconds * 1000;

export interface Harness {
  /** The world the harness runs in (local/world.ts). */
  readonly world: World;
  readonly emulator: SqsEmulator;
  readonly sqs: SQSClient;
  readonly sendQueue: EmulatedQueue;
  readonly deadLetterQueue: EmulatedQueue;
  readonly sim: Simulator;
  readonly secrets: SecretsManagerStub;
  /** dynalite holding the job ledger table. */
  readonly dynamodb: DynamoDbEmulator;
  /** The real `functions/sender.ts` handler, loaded with this harness's environment. */
  readonly handler: SenderHandler;
  readonly env: Readonly<Record<string, string>>;
  /** The stack's IAM as the emulators enforce it: the sender role's calls and denials. */
  readonly iam: LocalIam;
  /** Puts a job (object → JSON, string → as is) on the send queue; returns the SQS message id. */
  enqueue(job: unknown, attributes?: Record<string, MessageAttributeValue>): Promise<string>;
  /** An operator's redrive of one dead-lettered message: same body and attributes, back on the send queue. */
  redrive(message: Message): Promise<string>;
  /** One event-source poll: receive up to 10, invoke the handler, delete what succeeded. */
  invoke(): Promise<PollResult & { response?: SQSBatchResponse | undefined }>;
  /**
   * Another function instance with the same configuration, in a container of its own (local/lambda/container.ts:
   * its own caches, rebuilt at each cold start), optionally with its own fetch, extra variables, its SDK clients
   * changed before use (e.g. `injectDynamoFaults`), a hook on each batch's settlements, or a sink for its log lines
   * (JSON, one a call; without it they go to stdout), or a pacer of its own instead of the stage's shared budget
   * (one per container). The container gates all of them.
   */
  createInstance(options?: {
    pacer?: () => RequestPacer;
    fetch?: FetchLike;
    env?: Record<string, string>;
    clients?: (clients: AwsClients) => void;
    onSettled?: (settlements: readonly Settlement[]) => void;
    log?: (line: string) => void;
  }): HarnessInstance;
  /**
   * One event-source poll into a given instance, with a function timeout: an invocation past it fails its batch
   * and, for a `createInstance` instance, ends its container (the next invocation is a cold start).
   */
  invokeWith(
    handler: SenderHandler | HarnessInstance,
    options?: { functionTimeoutMs?: number; batchSize?: number },
  ): Promise<PollResult>;
  /** Reads every message on the dead-letter queue (and leaves them invisible for a while). */
  drainDeadLetters(): Promise<Message[]>;
  /** The send queue's state, without receiving anything: ready, delayed, and in flight with deadlines. */
  inspect(): Promise<QueueInspection>;
  /**
   * Seconds from now until each in-flight message of the send queue becomes visible again, by SQS message
   * id: the backoff the sender chose.
   */
  hiddenFor(): Promise<Map<string, number>>;
  /**
   * Time passes until the longest hidden or delayed message of the send queue is due (or `ms` more, when
   * given): every in-flight message becomes visible at once, and the clock (`Date.now`, which the sender, the ledger and the
   * emulators read) moves on that far, so that the ledger's next-attempt times are due too. `'earliest'` moves
   * the clock only until the next message is due, for runs where the elapsed time matters (the duplicate window).
   */
  fastForward(ms?: number | 'earliest'): Promise<void>;
  /** The job ledger in the harness's table, to read entries as the operator CLI does. */
  ledger(): JobLedger;
  /**
   * Polls (`invoke`, each followed by `fastForward`) until the send queue is empty, at most `max` times; returns
   * how many polls it took. `invoke` defaults to the real handler.
   */
  runUntilQuiet(max: number, invoke?: () => Promise<unknown>): Promise<number>;
  /** Requests the simulator received on the messages endpoint. */
  sends(): readonly RecordedRequest[];
  close(): Promise<void>;
}

/** A `createInstance` handler: it runs each invocation on the instance's current container. */
export type HarnessInstance = SenderHandler & {
  /** The function instance: its cold starts, and `end` (Lambda stopping the container). */
  readonly instance: FunctionInstance;
};

export interface HarnessOptions {
  /** Extra sender environment (e.g. `{ TIME_SCALE: '20' }`). */
  readonly env?: Record<string, string>;
  readonly simulator?: SimulatorOptions;
  /** Secret value; defaults to valid credentials for the simulator's client. */
  readonly secretValue?: string;
  /** The send queue's redrive `maxReceiveCount` (also given to the sender as MAX_RECEIVE_COUNT). @default 50 */
  readonly maxReceiveCount?: number;
  /** Changes the sender role's policy before use, e.g. removing one grant (local/iam/). */
  readonly senderPolicy?: PolicyEdit;
  /**
   * Webhooks on, as in a stack with the receiver: the world holds the webhook signing key and the EventBridge
   * stand-in, and the sender writes the uuid index of a delivered job. @default false
   */
  readonly webhooks?: boolean;
  /**
   * The sender publishes `eCourtDate Job Settled` (the stage's `publishJobSettled`) to the world's EventBridge
   * stand-in, `world.events`, on the world's bus. @default false
   */
  readonly jobSettledEvents?: boolean;
  /** Starts the world's EventBridge stand-in even when nothing is to publish to it. @default jobSettledEvents */
  readonly eventBridge?: boolean;
}

/**
 * Starts the relay's world on loopback (`startWorld`, local/world.ts): the SQS emulator with the send queue and
 * its dead-letter queue, the eCourtDate simulator, a Secrets Manager endpoint holding the client credentials,
 * dynalite with the job ledger table, and the real sender handler loaded from `functions/sender.ts` with the
 * world's sender environment (staging's settings, no jitter, a 2 s HTTP timeout, pacing out of the way), as
 * Lambda would load it.
 */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  // Virtual wall clock: it runs on as real time does, and `fastForward` moves it on (timers stay real).
  vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
  // A test that turns webhooks or the Job Settled events on through the sender's environment gets the stack that has them.
  const webhooks = options.webhooks ?? options.env?.WEBHOOKS_ENABLED === 'true';
  const jobSettledEvents = options.jobSettledEvents ?? options.env?.PUBLISH_JOB_SETTLED === 'true';
  const world = await startWorld({
    // The crash safety net only; the sender dead-letters explicitly long before this.
    maxReceiveCount: options.maxReceiveCount ?? 50,
    apiClient: { id: CLIENT_ID, secret: CLIENT_SECRET },
    apiSecretValue: options.secretValue,
    simulator: options.simulator,
    webhooks,
    eventBridge: options.eventBridge,
    // The handler loaded from functions/sender.ts signs with the environment's credentials, as in Lambda.
    iam: {
      senderPolicy: options.senderPolicy,
      extraAccessKeyIds: { sender: process.env.AWS_ACCESS_KEY_ID ? [process.env.AWS_ACCESS_KEY_ID] : [] },
    },
    ...(jobSettledEvents
      ? { stage: { ...loadStageConfig({ stage: 'staging' }), publishJobSettled: true } }
      : {}),
  });
  const { sqs: emulator, sendQueue, deadLetterQueue, dynamodb, secrets } = world;
  const iam = world.iam as LocalIam;
  const sim = world.simulator as Simulator;
  const env: Record<string, string> = {
    ...world.senderEnv,
    BACKOFF_JITTER: '0',
    HTTP_TIMEOUT_MS: '2000',
    // Fast enough for tests; pacing itself is tested on its own.
    REQUESTS_PER_MINUTE: '60000',
    ...options.env,
  };
  const handler = await loadSenderModule(env);
  const { sqs } = emulator;
  const enqueue = async (
    job: unknown,
    attributes?: Record<string, MessageAttributeValue>,
  ): Promise<string> => {
    const body = typeof job === 'string' ? job : JSON.stringify(job);
    const out = await sqs.send(
      new SendMessageCommand({ QueueUrl: sendQueue.url, MessageBody: body, MessageAttributes: attributes }),
    );
    return out.MessageId ?? '';
  };

  const harness: Harness = {
    world,
    emulator,
    sqs,
    sendQueue,
    deadLetterQueue,
    sim,
    secrets,
    dynamodb,
    handler,
    env,
    iam,
    enqueue,
    redrive: (message) => enqueue(message.Body ?? '', message.MessageAttributes),
    invoke: () => world.poll(handler, { functionTimeoutMs: FUNCTION_TIMEOUT_MS }),
    createInstance(instanceOptions = {}) {
      const config = loadSenderConfig({ ...env, ...instanceOptions.env });
      const { log, onSettled } = instanceOptions;
      const instance = new FunctionInstance('sender', (io) => {
        const clients = createAwsClients(config);
        for (const client of Object.values(clients)) io.instrument(client);
        instanceOptions.clients?.(clients);
        const apiFetch = instanceOptions.fetch ?? createApiFetch();
        io.onEnd(() => {
          for (const client of Object.values(clients)) client.destroy();
        });
        return createSenderHandler({
          config,
          ...clients,
          fetch: io.fetch(apiFetch),
          onSettled: onSettled && io.live(onSettled),
          ...(instanceOptions.pacer === undefined ? {} : { pacer: instanceOptions.pacer() }),
          ...(log === undefined
            ? {}
            : { observability: sinkObservability({ write: io.live(log), metric: () => undefined }) }),
        });
      });
      const handler: SenderHandler = (event, context) =>
        instance.handler(event, context) as ReturnType<SenderHandler>;
      return Object.assign(handler, { instance });
    },
    invokeWith: (target, invokeOptions = {}) =>
      world.poll(target, {
        functionTimeoutMs: invokeOptions.functionTimeoutMs ?? FUNCTION_TIMEOUT_MS,
        batchSize: invokeOptions.batchSize,
        onTimeout: 'instance' in target ? target.instance.end : undefined,
      }),
    async drainDeadLetters() {
      const all: Message[] = [];
      for (;;) {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: deadLetterQueue.url,
            MaxNumberOfMessages: 10,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['All'],
            VisibilityTimeout: 300,
          }),
        );
        if (!out.Messages?.length) return all;
        all.push(...out.Messages);
      }
    },
    inspect: () => emulator.inspect(sendQueue.name),
    async hiddenFor() {
      const state = await emulator.inspect(sendQueue.name);
      const now = Date.now();
      return new Map(state.inflight.map((e) => [e.message.messageId, (e.visibilityDeadline - now) / 1000]));
    },
    async fastForward(ms) {
      const state = await emulator.inspect(sendQueue.name);
      const now = Date.now();
      const dueIn = [
        ...state.inflight.map((e) => e.visibilityDeadline - now),
        ...state.delayed.map((m) => (m.delayUntil ?? now) - now),
      ];
      if (ms === 'earliest') {
        // Only as far as the next message is due: the emulator shows it again by itself.
        if (state.ready.length === 0 && dueIn.length > 0)
          vi.setSystemTime(now + Math.max(0, Math.min(...dueIn)) + 1_000);
        return;
      }
      for (const entry of state.inflight) {
        await sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: sendQueue.url,
            ReceiptHandle: entry.receiptHandle,
            VisibilityTimeout: 0,
          }),
        );
      }
      vi.setSystemTime(Date.now() + (ms ?? Math.max(0, ...dueIn) + 1_000));
    },
    ledger: () => new JobLedger({ client: dynamodb.client, tableName: LEDGER_TABLE, ttlSeconds: 86_400 }),
    async runUntilQuiet(max, invoke) {
      for (let polls = 0; polls < max; polls++) {
        const state = await emulator.inspect(sendQueue.name);
        if (state.ready.length + state.delayed.length + state.inflight.length === 0) return polls;
        await (invoke ?? harness.invoke)();
        await harness.fastForward();
      }
      return max;
    },
    sends: () => sim.requests.filter((r) => r.path === '/v1/messages/oneoffs'),
    async close() {
      await world.close();
      vi.useRealTimers();
      // A call the stack's IAM denies fails the test that made it, unless the test removed the grant itself or
      // took the denial it expected (`iam.gate.takeDenials()`).
      const denied = iam.gate.denials();
      if (denied.length > 0 && !options.senderPolicy) throw new Error(describeDenials(denied));
    },
  };
  return harness;
}

/**
 * Loads `functions/sender.ts` afresh (a cold start) with `env` as its environment. The module reads its
 * configuration at import, so the environment is set for the import and restored afterwards.
 */
export async function loadSenderModule(env: Record<string, string>): Promise<SenderHandler> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    vi.resetModules();
    const module = (await import('../../functions/sender.ts')) as { handler: SenderHandler };
    return module.handler;
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

/** A message attribute's string value from a received SQS message. */
export function attr(message: Message, name: string): string | undefined {
  return message.MessageAttributes?.[name]?.StringValue;
}
