import type { SQSClient } from '@aws-sdk/client-sqs';
import { type PollResult, pollOnce, type SqsHandler } from '#local/event-source.ts';

/** One simulated Lambda container: its own handler (and so its own module state) and SQS client. */
export interface SenderInstance {
  readonly name: string;
  readonly handler: SqsHandler;
  readonly sqs: SQSClient;
}

export interface EventSourceMappingOptions {
  readonly queue: { readonly url: string; readonly arn: string };
  /** One polling loop per instance: the mapping's maximum concurrency. */
  readonly instances: readonly SenderInstance[];
  /** Records per invocation (1-10). @default 10 */
  readonly batchSize?: number;
  /** The function timeout, which `context.getRemainingTimeInMillis()` counts down from. */
  readonly functionTimeoutMs: number;
  /**
   * Long-poll wait of each receive, as the managed poller long-polls; fauxqs answers as soon as a message
   * arrives or becomes visible again. `stop()` waits for a pending receive. @default 1
   */
  readonly waitTimeSeconds?: number;
  /** Pause after a failed receive, ms. @default 500 */
  readonly errorDelayMs?: number;
  /** Called after every invocation (not after empty receives). */
  readonly onInvocation?: (instance: string, result: PollResult) => void;
  /** Called when a receive or delete failed (the emulator went away, a bad queue URL). */
  readonly onPollError?: (instance: string, error: unknown) => void;
}

export interface EventSourceMapping {
  /** Invocations so far, over all instances. */
  readonly invocations: number;
  /** Stops polling; resolves when every instance has finished its current invocation. */
  stop(): Promise<void>;
}

/**
 * Lambda's SQS event source mapping, on one machine: each instance polls in its own loop and handles one batch
 * at a time, as a Lambda container handles one invocation at a time; a batch is up to `batchSize` records;
 * records the handler reports in `batchItemFailures` stay on the queue until their visibility timeout ends,
 * the rest are deleted; a handler error fails the whole batch. Redrive to the dead-letter queue at
 * `maxReceiveCount` is the queue's own (fauxqs applies the RedrivePolicy on receive, as SQS does).
 *
 * @example
 * const mapping = startEventSourceMapping({ queue, instances, functionTimeoutMs: 60_000 });
 * await mapping.stop();
 */
export function startEventSourceMapping(options: EventSourceMappingOptions): EventSourceMapping {
  const errorDelayMs = options.errorDelayMs ?? 500;
  let stopping = false;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  let invocations = 0;

  const pause = (ms: number) =>
    Promise.race([new Promise<void>((resolve) => setTimeout(resolve, ms).unref()), stopped]);

  const loop = async (instance: SenderInstance) => {
    while (!stopping) {
      let result: PollResult;
      try {
        result = await pollOnce({
          sqs: instance.sqs,
          queueUrl: options.queue.url,
          queueArn: options.queue.arn,
          handler: instance.handler,
          batchSize: options.batchSize ?? 10,
          waitTimeSeconds: options.waitTimeSeconds ?? 1,
          functionTimeoutMs: options.functionTimeoutMs,
          functionName: instance.name,
        });
      } catch (error) {
        if (!stopping) options.onPollError?.(instance.name, error);
        await pause(errorDelayMs);
        continue;
      }
      if (result.received === 0) continue;
      invocations += 1;
      options.onInvocation?.(instance.name, result);
    }
  };

  const loops = options.instances.map((instance) => loop(instance));
  return {
    get invocations() {
      return invocations;
    },
    async stop() {
      stopping = true;
      wake();
      await Promise.allSettled(loops);
    },
  };
}
