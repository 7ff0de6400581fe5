import { GetQueueAttributesCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import {
  deleteSucceeded,
  invokeBatch,
  type PollResult,
  receiveBatch,
  type SqsHandler,
} from '#local/lambda/event-source.ts';

/**
 * One concurrency slot of the function: its handler (a `FunctionInstance` of `local/lambda/container.ts` runs
 * it on its own container, with its own module state), and the SQS client its pollers receive and delete with.
 */
export interface SenderInstance {
  readonly name: string;
  readonly handler: SqsHandler;
  /** The pollers' client: the mapping's own requests, never gated by a container. */
  readonly sqs: SQSClient;
  /**
   * Lambda stopping the environment at the function timeout: called when an invocation outlives it, before the
   * instance takes its next batch (`FunctionInstance.end`: the next invocation is a cold start).
   */
  readonly end?: () => void;
}

export interface EventSourceMappingOptions {
  readonly queue: { readonly url: string; readonly arn: string };
  /** The function's instances: at most one invocation each at a time, so their number is the maximum concurrency. */
  readonly instances: readonly SenderInstance[];
  /**
   * Polling loops, at least 1. Each receives a batch, waits for a free instance, invokes it, and deletes the
   * batch's succeeded records after the instance is free again, as Lambda's pollers do outside the function.
   * More pollers than instances keep a received batch ready for the next free instance (Lambda runs at least
   * five pollers for a queue, whatever the maximum concurrency). @default instances.length
   */
  readonly pollers?: number;
  /** Records per invocation (1-10). @default 10 */
  readonly batchSize?: number;
  /** The function timeout, which `context.getRemainingTimeInMillis()` counts down from. */
  readonly functionTimeoutMs: number;
  /**
   * Long-poll wait of each receive, as the managed poller long-polls; fauxqs answers as soon as a message
   * arrives or becomes visible again. `stop()` ends a pending receive at once. @default 1
   */
  readonly waitTimeSeconds?: number;
  /** Pause after a failed receive, ms. @default 500 */
  readonly errorDelayMs?: number;
  /** Called when a batch is handed to an instance, before its invocation; `receivedAt`: its receive, epoch ms. */
  readonly onInvoke?: (instance: string, messages: readonly Message[], receivedAt: number) => void;
  /** Called after every invocation and its delete (not after empty receives). */
  readonly onInvocation?: (instance: string, result: PollResult) => void;
  /** Called when a receive or delete failed (the emulator went away, a bad queue URL). */
  readonly onPollError?: (instance: string, error: unknown) => void;
}

export interface EventSourceMapping {
  /** Invocations so far, over all instances. */
  readonly invocations: number;
  /**
   * Stops polling, abandoning pending receives; resolves when every poller has finished its current batch. A
   * message SQS handed to an abandoned receive stays hidden for its visibility timeout. An invocation that outlived the
   * function timeout counts as finished (its batch failed): its instance's `end` stopped its container.
   */
  stop(): Promise<void>;
}

/**
 * Lambda's SQS event source mapping, on one machine: pollers receive batches of up to `batchSize` records and
 * invoke a free instance with each, and an instance handles one batch at a time, as a Lambda container handles
 * one invocation at a time; records the handler reports in `batchItemFailures` stay on the queue until their
 * visibility timeout ends, the rest are deleted by the poller; a handler error fails the whole batch. An
 * invocation that outlives `functionTimeoutMs` fails its whole batch too, and its instance is ended (`end`)
 * before it is free again, as Lambda stops the environment: nothing it does after the deadline happens. Redrive to
 * the dead-letter queue at `maxReceiveCount` is the queue's own (fauxqs applies the RedrivePolicy on receive,
 * as SQS does). A received batch is always invoked, also after `stop()` was called.
 *
 * @throws RangeError when there are no instances or `pollers` is not a whole number >= 1.
 * @example
 * const mapping = startEventSourceMapping({ queue, instances, functionTimeoutMs: 60_000 });
 * await mapping.stop();
 */
export function startEventSourceMapping(options: EventSourceMappingOptions): EventSourceMapping {
  const errorDelayMs = options.errorDelayMs ?? 500;
  const pollers = options.pollers ?? options.instances.length;
  if (options.instances.length === 0) throw new RangeError('instances: expected at least one');
  if (!Number.isInteger(pollers) || pollers < 1)
    throw new RangeError(`pollers: expected a whole number >= 1, got ${pollers}`);
  let stopping = false;
  // Ends the pollers' pending long polls on stop(), so a stop never waits out a receive's wait time.
  const receives = new AbortController();
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  let invocations = 0;

  // Free instances, and the pollers waiting for one (first come, first served).
  const free = [...options.instances];
  const waiting: ((instance: SenderInstance) => void)[] = [];
  const acquire = (): Promise<SenderInstance> => {
    const instance = free.shift();
    return instance ? Promise.resolve(instance) : new Promise((resolve) => waiting.push(resolve));
  };
  const release = (instance: SenderInstance) => {
    const next = waiting.shift();
    if (next) next(instance);
    else free.push(instance);
  };

  const pause = (ms: number) =>
    Promise.race([new Promise<void>((resolve) => setTimeout(resolve, ms).unref()), stopped]);

  const loop = async (index: number) => {
    // A poller's own requests go through one instance's client (each instance's client counts its requests).
    const sqs = (options.instances[index % options.instances.length] as SenderInstance).sqs;
    const queue = { sqs, queueUrl: options.queue.url };
    while (!stopping) {
      let messages: Message[];
      try {
        messages = await receiveBatch(
          { ...queue, batchSize: options.batchSize ?? 10, waitTimeSeconds: options.waitTimeSeconds ?? 1 },
          receives.signal,
        );
      } catch (error) {
        if (!stopping) options.onPollError?.(`poller-${index + 1}`, error);
        await pause(errorDelayMs);
        continue;
      }
      if (messages.length === 0) continue;
      const receivedAt = Date.now();
      const instance = await acquire();
      try {
        options.onInvoke?.(instance.name, messages, receivedAt);
      } catch (error) {
        options.onPollError?.(instance.name, error);
      }
      // Never rejects: a failed or timed-out invocation is an outcome with nothing to delete.
      const outcome = await invokeBatch(
        {
          handler: instance.handler,
          queueArn: options.queue.arn,
          functionTimeoutMs: options.functionTimeoutMs,
          functionName: instance.name,
          ...(instance.end === undefined ? {} : { onTimeout: instance.end }),
        },
        messages,
      );
      release(instance);
      invocations += 1;
      let result: PollResult;
      try {
        result = await deleteSucceeded(queue, outcome);
      } catch (error) {
        // The records stay on the queue and come back after their visibility timeout, as in Lambda.
        if (!stopping) options.onPollError?.(instance.name, error);
        await pause(errorDelayMs);
        continue;
      }
      try {
        options.onInvocation?.(instance.name, result);
      } catch (error) {
        // A failing observer must not end the poller (its queue would stop being read).
        options.onPollError?.(instance.name, error);
      }
    }
  };

  // Lambda reads the queue's attributes with the function's execution role when the mapping starts (the role
  // needs sqs:GetQueueAttributes beside ReceiveMessage and DeleteMessage): so does this one, so the test world's
  // IAM check sees that call too. A refusal is reported, as Lambda reports a mapping it cannot enable.
  const first = options.instances[0] as SenderInstance;
  void first.sqs
    .send(
      new GetQueueAttributesCommand({ QueueUrl: options.queue.url, AttributeNames: ['VisibilityTimeout'] }),
    )
    .catch((error: unknown) => options.onPollError?.(first.name, error));
  const loops = Array.from({ length: pollers }, (_, index) => loop(index));

  return {
    get invocations() {
      return invocations;
    },
    async stop() {
      stopping = true;
      wake();
      receives.abort();
      await Promise.allSettled(loops);
    },
  };
}
