/**
 * The relay's event source mapping in a process of its own (forked by bench/workload.ts), as Lambda's pollers run
 * outside the function: the pollers' SQS receives and deletes cost the workload's process no CPU time. The
 * instances it invokes are proxies: each invocation travels over the IPC channel to the workload process, which
 * runs the real handler and answers with its batch response.
 *
 * Messages, workload → pollers: {@link PollersCommand}; pollers → workload: {@link PollersEvent}.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse } from 'aws-lambda';
import { type SenderInstance, startEventSourceMapping } from '#local/lambda/event-source-mapping.ts';
import { type CommandCounts, counting, LOCAL_AWS, RELAY_POLLERS_PER_INSTANCE } from './protocol.ts';

/** What the workload asks of the pollers. */
export type PollersCommand =
  | {
      type: 'deliver';
      /** Runs the mapping until this many records were deleted. */
      count: number;
      sqsEndpoint: string;
      queue: { url: string; arn: string };
      /** The workload's instances, by name. */
      instances: string[];
      batchSize: number;
      functionTimeoutMs: number;
    }
  | { type: 'invoked'; id: number; response?: SQSBatchResponse; error?: string };

/** What the pollers tell the workload. */
export type PollersEvent =
  | {
      type: 'invoke';
      id: number;
      instance: string;
      records: unknown[];
      /** When the invocation times out, epoch ms. */
      deadline: number;
    }
  | {
      type: 'delivered';
      invocations: number;
      /** The pollers' SQS requests by command, and their CPU time in ms, from the start of the delivery. */
      sqs: CommandCounts;
      cpuMs: number;
    }
  /** The mapping has stopped (its pending long polls ended): the queue may get the next jobs. */
  | { type: 'stopped' };

const send = (event: PollersEvent) => process.send?.(event);
const pending = new Map<number, (answer: { response?: SQSBatchResponse; error?: string }) => void>();
let nextId = 0;

/** The pollers' long-poll wait (`waitTimeSeconds`), ms. */
const LONG_POLL_WAIT_MS = 1000;

async function deliver(command: Extract<PollersCommand, { type: 'deliver' }>): Promise<void> {
  const counts: CommandCounts = {};
  const sqs = counting(
    new SQSClient({ ...LOCAL_AWS, endpoint: command.sqsEndpoint, useQueueUrlAsEndpoint: false }),
    counts,
  );
  const cpu = process.cpuUsage();
  const instances: SenderInstance[] = command.instances.map((name) => ({
    name,
    sqs,
    handler: (event, context) =>
      new Promise<SQSBatchResponse | undefined>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, (answer) =>
          answer.error === undefined ? resolve(answer.response) : reject(new Error(answer.error)),
        );
        send({
          type: 'invoke',
          id,
          instance: name,
          records: event.Records,
          deadline: Date.now() + context.getRemainingTimeInMillis(),
        });
      }),
  }));
  // Distinct messages: a message received again after its visibility timeout may be deleted twice.
  const deleted = new Set<string>();
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const mapping = startEventSourceMapping({
    queue: command.queue,
    instances,
    // A received batch waits ready for the next free instance, as with Lambda's pollers (at least five a queue).
    pollers: RELAY_POLLERS_PER_INSTANCE * instances.length,
    batchSize: command.batchSize,
    functionTimeoutMs: command.functionTimeoutMs,
    waitTimeSeconds: LONG_POLL_WAIT_MS / 1000,
    onInvocation(_, result) {
      for (const id of result.deleted) deleted.add(id);
      if (deleted.size >= command.count) done();
    },
  });
  await finished;
  const used = process.cpuUsage(cpu);
  send({
    type: 'delivered',
    invocations: mapping.invocations,
    sqs: { ...counts },
    cpuMs: (used.user + used.system) / 1000,
  });
  await mapping.stop();
  sqs.destroy();
  // `stop()` ends the pending long polls on this side only: the queue may hold each one for the rest of its wait
  // and hand it the next run's first jobs, which nobody would receive before their visibility timeout.
  await new Promise((resolve) => setTimeout(resolve, LONG_POLL_WAIT_MS + 250));
  send({ type: 'stopped' });
}

process.on('message', (command: PollersCommand) => {
  if (command.type === 'invoked') {
    const answer = pending.get(command.id);
    pending.delete(command.id);
    answer?.(command);
    return;
  }
  deliver(command).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
