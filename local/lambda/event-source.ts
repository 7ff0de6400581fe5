import { randomUUID } from 'node:crypto';
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined>;

export interface EventSourceOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly handler: SqsHandler;
  /** Records per invocation, 1-10 like a standard queue's event source mapping. @default 10 */
  readonly batchSize?: number;
  /** Long-poll wait of each receive. @default 1 */
  readonly waitTimeSeconds?: number;
  /** What `context.getRemainingTimeInMillis()` starts from. @default 60_000 */
  readonly functionTimeoutMs?: number;
  readonly functionName?: string;
  readonly region?: string;
  /**
   * Called at the function timeout when the invocation is still running, before the batch is failed: Lambda
   * stops the environment there, so this ends the instance's container (`FunctionInstance.end` in
   * `local/lambda/container.ts`).
   */
  readonly onTimeout?: () => void;
}

export interface PollResult {
  /** Records handed to the handler. */
  readonly received: number;
  /** Message ids the handler reported as failed (left on the queue for a later receive). */
  readonly failed: readonly string[];
  /** Message ids deleted after a successful invocation. */
  readonly deleted: readonly string[];
  /** Set when the invocation threw: the whole batch stays on the queue, as with Lambda. */
  readonly error?: unknown;
  readonly response?: SQSBatchResponse | undefined;
}

/** What an invocation of a batch came to, before its records are deleted ({@link invokeBatch}). */
export interface InvocationOutcome extends Omit<PollResult, 'deleted'> {
  /** The messages to delete: those not failed (none when the invocation failed). */
  readonly toDelete: readonly Message[];
}

/**
 * The poller's receive: up to `batchSize` messages (1-10), with all system and message attributes, long-polling
 * `waitTimeSeconds`. Resolves with no messages when none arrived in that time. Throws what `ReceiveMessage` throws,
 * and an `AbortError` when `abortSignal` ends the wait (a poller shut down drops its connection; a message SQS
 * handed to it meanwhile stays hidden for its visibility timeout, as in SQS).
 */
export async function receiveBatch(
  options: Pick<EventSourceOptions, 'sqs' | 'queueUrl' | 'batchSize' | 'waitTimeSeconds'>,
  abortSignal?: AbortSignal,
): Promise<Message[]> {
  const batchSize = Math.min(Math.max(options.batchSize ?? 10, 1), 10);
  const out = await options.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: options.queueUrl,
      MaxNumberOfMessages: batchSize,
      WaitTimeSeconds: options.waitTimeSeconds ?? 1,
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    }),
    abortSignal === undefined ? {} : { abortSignal },
  );
  return out.Messages ?? [];
}

/**
 * One invocation of the handler with `messages` as Lambda hands them to an SQS-triggered function. A handler
 * error, an invocation that outlives the function timeout (ms), or a failure id that is not in the batch fails
 * the whole batch (nothing to delete; the records come back after their visibility timeout), exactly as the
 * managed integration behaves. At the timeout `onTimeout` is called first (it ends the container, so nothing the
 * handler does afterwards happens). Never rejects.
 */
export async function invokeBatch(
  options: Pick<
    EventSourceOptions,
    'handler' | 'queueArn' | 'functionTimeoutMs' | 'functionName' | 'region' | 'onTimeout'
  >,
  messages: readonly Message[],
): Promise<InvocationOutcome> {
  const records = messages.map((m) => toRecord(m, options.queueArn, options.region ?? 'us-east-1'));
  const context = lambdaContext(options.functionName ?? 'sender', options.functionTimeoutMs ?? 60_000);
  const timeoutMs = options.functionTimeoutMs ?? 60_000;
  let response: SQSBatchResponse | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    // Lambda ends an invocation at its timeout; one that never returns (an instance that died) fails its batch.
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        options.onTimeout?.();
        reject(new Error(`invocation timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    });
    response = (await Promise.race([options.handler({ Records: records }, context), timedOut])) ?? undefined;
  } catch (error) {
    return { received: records.length, failed: records.map((r) => r.messageId), toDelete: [], error };
  } finally {
    clearTimeout(timer);
  }

  const ids = new Set(records.map((r) => r.messageId));
  const failures = (response?.batchItemFailures ?? []).map((f) => f.itemIdentifier);
  if (failures.some((id) => !ids.has(id))) {
    const error = new Error(
      'batchItemFailures named a record that is not in the batch: the whole batch failed',
    );
    return { received: records.length, failed: [...ids], toDelete: [], error, response };
  }
  const failed = new Set(failures);
  return {
    received: records.length,
    failed: [...failed],
    toDelete: messages.filter((m) => m.MessageId && !failed.has(m.MessageId)),
    ...(response === undefined ? {} : { response }),
  };
}

/** The poller's delete of an invocation's succeeded records (one `DeleteMessageBatch`). Throws what it throws. */
export async function deleteSucceeded(
  options: Pick<EventSourceOptions, 'sqs' | 'queueUrl'>,
  outcome: InvocationOutcome,
): Promise<PollResult> {
  if (outcome.toDelete.length > 0) {
    await options.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: options.queueUrl,
        Entries: outcome.toDelete.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
  return {
    received: outcome.received,
    failed: outcome.failed,
    deleted: outcome.toDelete.map((m) => m.MessageId ?? ''),
    ...(outcome.error === undefined ? {} : { error: outcome.error }),
    ...(outcome.response === undefined ? {} : { response: outcome.response }),
  };
}

/**
 * One poll of Lambda's SQS event source mapping, reproduced on an SQS-compatible endpoint: receive a batch
 * ({@link receiveBatch}), invoke the handler ({@link invokeBatch}), then delete every record that is not reported
 * in `batchItemFailures` ({@link deleteSucceeded}). Throws when the receive or the delete fails.
 */
export async function pollOnce(options: EventSourceOptions): Promise<PollResult> {
  const messages = await receiveBatch(options);
  if (messages.length === 0) return { received: 0, failed: [], deleted: [] };
  return deleteSucceeded(options, await invokeBatch(options, messages));
}

/** Converts a ReceiveMessage result into the record shape Lambda hands to an SQS-triggered function. */
export function toRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const attrs = message.Attributes ?? {};
  const messageAttributes: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    messageAttributes[name] = {
      dataType: value.DataType ?? 'String',
      stringValue: value.StringValue,
      stringListValues: [],
      binaryListValues: [],
    };
  }
  return {
    messageId: message.MessageId ?? randomUUID(),
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attrs.ApproximateReceiveCount ?? '1',
      SentTimestamp: attrs.SentTimestamp ?? String(Date.now()),
      SenderId: attrs.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attrs.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      // A fair queue's message carries its group, as on a FIFO queue (docs/pacing.md, "Fairness").
      ...(attrs.MessageGroupId ? { MessageGroupId: attrs.MessageGroupId } : {}),
    },
    messageAttributes,
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/** A Lambda context whose remaining time counts down from `timeoutMs`. */
export function lambdaContext(functionName: string, timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  const fail = () => {
    throw new Error('callback-style completion is not supported here');
  };
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    done: fail,
    fail,
    succeed: fail,
  };
}
