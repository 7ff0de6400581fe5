import { join } from 'node:path';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { Message } from '@aws-sdk/client-sqs';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { AlarmMonitor } from '#local/cloudwatch/alarms.ts';
import type { QueueInspection, SqsRefusal } from '#local/emulators/sqs-emulator.ts';
import { type ContainerIo, FunctionInstance } from '#local/lambda/container.ts';
import { type SenderInstance, startEventSourceMapping } from '#local/lambda/event-source-mapping.ts';
import type { Closers } from '#local/pipeline/closers.ts';
import { EMULATOR_CREDENTIALS, LOCAL_REGION } from '#local/pipeline/endpoints-file.ts';
import type { JobLine } from '#local/pipeline/jobs-file.ts';
import {
  type LogFile,
  openLogFile,
  senderEventOf,
  sinkObservability,
} from '#local/pipeline/observability.ts';
import { type RunPlan, StartError } from '#local/pipeline/plan.ts';
import type { ApiCallCounts } from '#local/pipeline/report.ts';
import type { LocalResources, WebhookReceiverOverrides } from '#local/pipeline/resources.ts';
import { JobTracker } from '#local/pipeline/tracker.ts';
import type { LocalWebhooks } from '#local/pipeline/webhook-local.ts';
import type { World } from '#local/world.ts';
import { alarmDefinitions } from '#shared/alarm-definitions.ts';
import {
  type AwsClients,
  type ClientOverrides,
  createAwsClients,
  eventBridgeClientOf,
} from '#shared/clients/aws.ts';
import { loadSenderConfig, type SenderConfig } from '#shared/config.ts';
import { createApiFetch } from '#shared/ecourtdate/connection.ts';
import { EcdTransportError } from '#shared/ecourtdate/errors.ts';
import { classifyTransportFailure, type FetchLike } from '#shared/ecourtdate/http.ts';
import { createSenderHandler } from '#shared/sender/handler.ts';
import type { Settlement } from '#shared/sender/runtime.ts';
import { messageGroupOfBody } from '#shared/sqs/message-group.ts';

/** Programmatic hooks for fault-injection runs (the chaos suite); the command line uses none. */
export interface PipelineHooks {
  /**
   * Wraps the fetch of each container of an instance (at each cold start), inside the container's gate, e.g. to
   * make an instance die in the middle of a request.
   */
  readonly wrapFetch?: (fetch: FetchLike, instance: string, container: ContainerIo) => FetchLike;
  /**
   * Called at each cold start of an instance (a fresh container, `local/lambda/container.ts`) with its AWS SDK
   * clients, e.g. to add middleware that makes a service fail, and the container's I/O (`end` stops it, as a
   * crash does). `events` is there when the stage publishes `eCourtDate Job Settled` (`publishJobSettled`).
   */
  readonly onInstance?: (instance: string, clients: InstanceClients, container: ContainerIo) => void;
  /** Called once per instance with the SQS client its pollers receive and delete with (outside the container). */
  readonly onPoller?: (instance: string, sqs: SQSClient) => void;
  /** Called when a batch is handed to an instance; `receivedAt` is the poller's receive, epoch ms. */
  readonly onInvoke?: (instance: string, messages: readonly Message[], receivedAt: number) => void;
  /** Called when an invocation outlived the function timeout, as its container is ended. */
  readonly onInvocationTimeout?: (instance: string) => void;
  /** Overrides of the sender's environment, e.g. a short HTTP timeout for runs full of hanging requests. */
  readonly senderEnv?: Readonly<Record<string, string>>;
  /**
   * The function timeout in real ms: an invocation that outlives it fails its batch and its container is ended
   * (nothing it does afterwards happens; the next invocation is a cold start). Default: the stage's.
   */
  readonly functionTimeoutMs?: number;
  /** Called once the senders are polling, with the send queue, e.g. to redeliver messages as SQS sometimes does. */
  readonly onStarted?: (
    sendQueue: {
      readonly sqs: SQSClient;
      readonly url: string;
      inspect(): Promise<QueueInspection>;
      /** What the strict SQS layer refused so far: none in a run that stays inside SQS's limits. */
      refusals(): readonly SqsRefusal[];
    },
    pipeline: PipelineParts,
  ) => void;
  /** Called after each invocation with every record's settlement, as the sender's batch adapter hands them over. */
  readonly onSettled?: (instance: string, settlements: readonly Settlement[]) => void;
  /** The local webhook receiver's clock (e.g. moved past the dedupe window, to replay old deliveries). */
  readonly webhookReceiver?: WebhookReceiverOverrides;
  /**
   * A world already started (local/world.ts), e.g. with the simulator and secrets a fault-injection run scripts:
   * the run uses it instead of starting one, and leaves it running. It must have webhooks and the run's stage, time
   * scale and instance count (`StartError` otherwise).
   */
  readonly world?: World;
}

/** An instance's AWS SDK clients, as `PipelineHooks.onInstance` gets them. */
export interface InstanceClients extends AwsClients {
  /** The `eCourtDate Job Settled` publisher's client; undefined unless the stage publishes them. */
  readonly events?: EventBridgeClient | undefined;
}

/** The rest of a running pipeline, for a hook that posts webhooks or reads what was published. */
export interface PipelineParts {
  /** The webhook receiver on loopback and its EventBridge stand-in (also the Job Settled events' bus). */
  readonly webhooks: LocalWebhooks;
}

/** The senders of a run and what they report: job outcomes, API calls, metrics for the alarms. */
export interface Senders {
  readonly config: SenderConfig;
  readonly tracker: JobTracker;
  readonly monitor: AlarmMonitor;
  readonly apiCalls: ApiCallCounts;
  readonly logFile: LogFile;
  /** Epoch ms the jobs were put on the queue: the run's clock starts here. */
  readonly startedAt: number;
  /**
   * The first request to a real API (`--ecourtdate-url`) that got no answer, as a sentence naming the cause
   * and the host; undefined while every request got one. The simulator's scripted drops are not reported.
   */
  readonly firstTransportFailure: () => string | undefined;
  /**
   * With `--ecourtdate-url`: the first failure's sentence when no request had got an answer before it and its
   * cause is one that retrying from this machine cannot fix (`cannotRecover`); the watch then stops the run.
   */
  readonly unreachable: () => string | undefined;
  /** After the summary (with --keep-running): called with a line for every job handled from then on. */
  afterRun: ((line: string) => void) | undefined;
}

const INSTANCE = (index: number) => `sender-${index + 1}`;

/**
 * Step 2 of a run: builds the sender's configuration as the stack would (pointed at the local resources), opens
 * the sender log, puts every job on the send queue, and starts `plan.concurrency` instances of the real sender
 * handler under the local event source mapping. Everything started is registered with `closers`.
 */
export async function startSenders(
  plan: RunPlan,
  resources: LocalResources,
  hooks: PipelineHooks,
  closers: Closers,
): Promise<Senders> {
  const config = loadSenderConfig({
    // As the stack sets it (the instances share the stage's one budget), pointed at the local world,
    // which the run started with its stage, time scale and instance count (local/world.ts).
    ...resources.world.senderEnv,
    ...hooks.senderEnv,
  });
  const logFile = openLogFile(join(plan.stateDir, 'sender.log'));
  closers.push(() => logFile.close());
  const startedAt = Date.now();
  let transportFailure: string | undefined;
  let unreachable: string | undefined;
  let answered = false;
  const senders: Senders = {
    config,
    tracker: new JobTracker(),
    monitor: new AlarmMonitor({
      definitions: alarmDefinitions(plan.stage.alarmThresholds),
      startedAt,
      timeScale: plan.options.timeScale,
      unavailableSources: {
        eventsDeadLetterQueue: 'no EventBridge in a local run',
        ledgerTable: 'the DynamoDB emulator publishes no metrics',
      },
    }),
    apiCalls: { token: 0, send: 0 },
    logFile,
    startedAt,
    firstTransportFailure: () => transportFailure,
    unreachable: () => unreachable,
    afterRun: undefined,
  };
  const watcher: TransportWatcher | undefined = plan.options.ecourtdateUrl
    ? {
        onAnswer() {
          answered = true;
        },
        onFailure(error) {
          if (transportFailure !== undefined) return;
          transportFailure = error.describe();
          if (!answered && cannotRecover(error)) unreachable = transportFailure;
        },
      }
    : undefined;
  // The sender role's credentials (the world's IAM checks every call, docs/test-world.md) and the emulators'
  // region: the handler's own would consult the AWS profile.
  const aws: ClientOverrides = {
    region: LOCAL_REGION,
    credentials: resources.world.iam?.credentials.sender ?? EMULATOR_CREDENTIALS,
  };
  // Loaded here, so that each container builds its client at once (with the emulators' region and credentials:
  // the handler's own would consult the AWS profile).
  const EventBridge = config.jobSettledBus
    ? (await import('@aws-sdk/client-eventbridge')).EventBridgeClient
    : undefined;
  const instances = createInstances(plan, senders, hooks, closers, watcher, EventBridge, aws);
  await enqueue(resources.emulator.sqs, resources.sendQueue.url, plan.lines, senders.tracker);
  startMapping(plan, resources, senders, instances, hooks, closers);
  hooks.onStarted?.(
    {
      sqs: resources.emulator.sqs,
      url: resources.sendQueue.url,
      inspect: () => resources.emulator.inspect(resources.sendQueue.name),
      refusals: () => resources.emulator.refusals(),
    },
    { webhooks: resources.webhooks },
  );
  return senders;
}

/**
 * One function instance per concurrency slot, each running the real sender handler in its own container
 * (`local/lambda/container.ts`): its own SDK clients, secret cache, token cache, pacer and API connection pool,
 * built again at each cold start; the job ledger is shared through the table, as in AWS. Every client and the
 * `fetch` are gated by the container, and so are its logs and metrics (to the log file, the tracker and the
 * alarms) and its settlements: once the mapping ends a container at the function timeout, nothing of it arrives.
 */
function createInstances(
  plan: RunPlan,
  senders: Senders,
  hooks: PipelineHooks,
  closers: Closers,
  watcher: TransportWatcher | undefined,
  EventBridge: typeof EventBridgeClient | undefined,
  local: ClientOverrides,
): SenderInstance[] {
  const { config, tracker, monitor, logFile } = senders;
  const sink = {
    write: (line: string) => logFile.write(line),
    metric: (name: string, value: number) => monitor.count(name, value),
  };
  // Each record's settlement, as the sender's batch adapter keeps it: the tracker follows jobs by these values.
  const onSettled = (instance: string, settlements: readonly Settlement[]) => {
    hooks.onSettled?.(instance, settlements);
    for (const settlement of settlements) {
      const event = senderEventOf(settlement);
      const tracked = tracker.onSenderEvent(event);
      if (!tracked && senders.afterRun && event.kind !== 'retried' && event.kind !== 'requeued') {
        const name = event.jobId ?? '(no id)';
        const outcome = `${event.outcome}${event.reason ? ` (${event.reason})` : ''}`;
        // A job sent again after it settled goes out no second time: the line says so.
        senders.afterRun(
          event.alreadySettled
            ? `job ${name}: already ${outcome}; acknowledged, not sent again`
            : `job ${name}: ${outcome}`,
        );
      }
    }
  };
  // The clean-ups of the containers not ended yet, run when the pipeline stops (after the mapping).
  const running = new Set<() => Promise<void>>();
  closers.push(async () => {
    await Promise.allSettled([...running].map((dispose) => dispose()));
  });
  return Array.from({ length: plan.concurrency }, (_, index) => {
    const name = INSTANCE(index);
    const instance = new FunctionInstance(name, (io) => {
      const clients = createAwsClients(config, local);
      const eventBridge = EventBridge && eventBridgeClientOf(EventBridge, config, local);
      for (const client of [...Object.values(clients), ...(eventBridge ? [eventBridge] : [])]) {
        io.instrument(client);
      }
      hooks.onInstance?.(name, { ...clients, events: eventBridge }, io);
      const apiFetch = createApiFetch();
      const dispose = async () => {
        for (const client of Object.values(clients)) client.destroy();
        eventBridge?.destroy();
        await apiFetch.close();
      };
      running.add(dispose);
      io.onEnd(() => {
        running.delete(dispose);
        return dispose();
      });
      const counted = countingFetch(senders.apiCalls, apiFetch, watcher);
      return createSenderHandler({
        config,
        ...clients,
        fetch: io.fetch(hooks.wrapFetch?.(counted, name, io) ?? counted),
        observability: sinkObservability({ write: io.live(sink.write), metric: io.live(sink.metric) }),
        ...(eventBridge === undefined ? {} : { events: eventBridge }),
        onSettled: io.live((settlements: readonly Settlement[]) => onSettled(name, settlements)),
      });
    });
    // The pollers' own client: Lambda's pollers run outside the function, so no container gates it.
    const pollerSqs = createAwsClients(config, local).sqs;
    hooks.onPoller?.(name, pollerSqs);
    closers.push(async () => pollerSqs.destroy());
    return {
      name,
      handler: instance.handler,
      sqs: pollerSqs,
      end: () => {
        hooks.onInvocationTimeout?.(name);
        instance.end();
      },
    };
  });
}

/** Starts the event source mapping; stopping it is registered last, so it runs first. */
function startMapping(
  plan: RunPlan,
  resources: LocalResources,
  senders: Senders,
  instances: readonly SenderInstance[],
  hooks: PipelineHooks,
  closers: Closers,
): void {
  const { tracker, monitor, logFile } = senders;
  const logError = (message: string, instance: string, error: unknown) =>
    logFile.write(
      JSON.stringify({
        level: 'ERROR',
        message,
        function_name: instance,
        error_name: error instanceof Error ? error.name : typeof error,
      }),
    );
  const mapping = startEventSourceMapping({
    queue: resources.sendQueue,
    instances,
    batchSize: plan.stage.batchSize,
    // Real time: it bounds the computing an invocation may do, which a time scale does not shorten.
    functionTimeoutMs: hooks.functionTimeoutMs ?? plan.stage.functionTimeoutSeconds * 1000,
    ...(hooks.onInvoke === undefined ? {} : { onInvoke: hooks.onInvoke }),
    onInvocation(instance, result) {
      tracker.onDeleted(result.deleted);
      const at = Date.now();
      monitor.sum('senderFunction', 'Invocations', 1, at);
      monitor.sum('senderFunction', 'Errors', result.error === undefined ? 0 : 1, at);
      // Nothing throttles a local instance; Lambda reports 0 for a function that ran.
      monitor.sum('senderFunction', 'Throttles', 0, at);
      if (result.error !== undefined) {
        logError(
          'invocation failed: the whole batch returns after the visibility timeout',
          instance,
          result.error,
        );
      }
    },
    onPollError: (instance, error) => logError('event source poll failed', instance, error),
  });
  let stopped = false;
  closers.push(async () => {
    if (stopped) return;
    stopped = true;
    // Closing the simulator first ends any held (scripted hang) request at once.
    const stopping = mapping.stop();
    await resources.sim?.close();
    await stopping;
  });
}

/** What `countingFetch` tells about requests to a real API: that one got an answer, or that one got none. */
interface TransportWatcher {
  onAnswer(): void;
  onFailure(error: EcdTransportError): void;
}

/**
 * Whether a request's failure is one that retrying from this machine will not fix, so a smoke run (docs/deploy.md,
 * "Smoke test against eCourtDate staging") should stop at once rather than wait out its backoffs and timeout:
 * the name does not resolve (but a temporary DNS failure, EAI_AGAIN, may pass), nothing listens at the address,
 * the server's certificate is rejected, or `fetch` blocks the port. All of them happen before any byte is sent.
 */
export function cannotRecover(error: EcdTransportError): boolean {
  if (error.mayHaveBeenSent) return false;
  switch (error.failure) {
    case 'refused':
    case 'bad_port':
    case 'tls':
      return true;
    case 'dns':
      return error.code !== 'EAI_AGAIN';
    default:
      return false;
  }
}

/**
 * `fetch` that counts the sender's requests (token requests, and requests to the messages endpoints) and, when
 * given a watcher, tells it which requests got an answer and which got none (DNS, refused, TLS, reset, timeout,
 * a blocked port, with the host).
 */
function countingFetch(
  counts: ApiCallCounts,
  send: FetchLike,
  watcher: TransportWatcher | undefined,
): FetchLike {
  return async (input, init) => {
    const url = new URL(String(input));
    if (url.pathname.endsWith('/oauth/token')) counts.token += 1;
    else if (url.pathname.includes('/v1/messages')) counts.send += 1;
    try {
      const response = await send(input, init);
      watcher?.onAnswer();
      return response;
    } catch (error) {
      if (watcher) {
        const { failure, code, beforeSend } = classifyTransportFailure(error, init?.signal?.aborted === true);
        watcher.onFailure(new EcdTransportError(failure, url, { cause: error, code, beforeSend }));
      }
      throw error;
    }
  };
}

/**
 * Puts every line on the send queue as written, in file order, each in its agency's message group (docs/contract.md,
 * "Message group"), and registers it with the tracker.
 */
async function enqueue(sqs: SQSClient, queueUrl: string, lines: readonly JobLine[], tracker: JobTracker) {
  for (let start = 0; start < lines.length; start += 10) {
    const chunk = lines.slice(start, start + 10);
    const out = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((line, index) => ({
          Id: String(index),
          MessageBody: line.body,
          MessageGroupId: messageGroupOfBody(line.body),
        })),
      }),
    );
    const failed = out.Failed?.[0];
    if (failed) {
      const line = chunk[Number(failed.Id)];
      throw new StartError(
        `line ${line?.line ?? '?'} could not be put on the queue: ${failed.Message ?? failed.Code ?? 'rejected'}`,
      );
    }
    const enqueuedAt = Date.now();
    for (const entry of out.Successful ?? []) {
      const line = chunk[Number(entry.Id)];
      if (line && entry.MessageId) tracker.add(line, entry.MessageId, enqueuedAt);
    }
  }
}
