import { mkdir, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { DEAD_LETTER_RETENTION_DAYS, SEND_QUEUE_RETENTION_DAYS } from '#infra/config.ts';
import { startDynamoDbEmulator } from '#local/dynamodb-emulator.ts';
import { type Simulator, startSimulator } from '#local/ecourtdate-simulator.ts';
import { AlarmMonitor } from '#local/pipeline/alarms.ts';
import { startEventSourceMapping } from '#local/pipeline/event-source-mapping.ts';
import { type JobLine, readJobsFile } from '#local/pipeline/jobs-file.ts';
import {
  openLogFile,
  parseSenderEvent,
  type SenderSink,
  sinkObservability,
} from '#local/pipeline/observability.ts';
import {
  CLIENT_ID_VARIABLE,
  CLIENT_SECRET_VARIABLE,
  DEMO_HTTP_TIMEOUT_MS,
  type StartOptions,
} from '#local/pipeline/options.ts';
import { createProgress, type OutputStream } from '#local/pipeline/progress.ts';
import { type ApiCallCounts, buildReport, type RunReport, renderSummary } from '#local/pipeline/report.ts';
import { SCENARIO_AGENCIES, SCENARIO_CLIENT, scriptScenario } from '#local/pipeline/scenario.ts';
import { cdkStageConfig, localQueueSettings, localSenderEnvironment } from '#local/pipeline/stage.ts';
import { JobTracker } from '#local/pipeline/tracker.ts';
import { startSecretsManagerStub } from '#local/secrets-manager-stub.ts';
import { type QueueInspection, startSqsEmulator } from '#local/sqs-emulator.ts';
import { alarmDefinitions } from '#shared/alarm-definitions.ts';
import { createAwsClients } from '#shared/clients/aws.ts';
import { loadSenderConfig } from '#shared/config.ts';
import type { FetchLike } from '#shared/ecourtdate/http.ts';
import { createSenderHandler } from '#shared/sender/handler.ts';

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_SECRET_ID = 'ecourtdate-relay/local/api-client';
export const SEND_QUEUE_NAME = 'ecourtdate-relay-local-send';
export const DEAD_LETTER_QUEUE_NAME = 'ecourtdate-relay-local-dlq';
export const LEDGER_TABLE_NAME = 'ecourtdate-relay-local-ledger';
/** Credentials for the emulators, which check none; explicit so that no AWS profile is ever used. */
export const LOCAL_AWS_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;
/** Written by `--keep-running` for the operator CLI's `--local`. */
export const ENDPOINTS_FILE = 'endpoints.json';

const TICK_MS = 200;

/** Where the local pipeline's pieces listen: what `npm run relay -- --local` needs. */
export interface LocalEndpoints {
  readonly region: string;
  readonly sqsEndpoint: string;
  readonly sendQueueUrl: string;
  readonly sendQueueArn: string;
  readonly deadLetterQueueUrl: string;
  readonly deadLetterQueueArn: string;
  readonly secretsManagerEndpoint: string;
  readonly secretId: string;
  readonly ecourtdateUrl: string;
  /** The job ledger, for `npm run relay -- job ID --local`. */
  readonly dynamodbEndpoint: string;
  readonly ledgerTableName: string;
}

export interface PipelineIO {
  /** Progress and, in keep-running mode, a line per job handled afterwards. */
  readonly stdout: OutputStream;
  /** For the eCourtDate credentials with `--ecourtdate-url`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Relative paths (jobs, report, state dir, cdk.json) are resolved here. */
  readonly cwd: string;
}

export interface PipelineRun {
  readonly report: RunReport;
  /** The summary text, printed by `main`. */
  readonly summary: string;
  /** True when every job settled. */
  readonly settled: boolean;
  readonly endpoints: LocalEndpoints;
  readonly logFile: string;
  /** Stops everything still running (with --keep-running); safe to call more than once. */
  stop(): Promise<void>;
}

/** Programmatic hooks for fault-injection runs (the chaos suite); the command line uses none. */
export interface PipelineHooks {
  /** Wraps each instance's fetch, e.g. to make an instance die in the middle of a request. */
  readonly wrapFetch?: (fetch: FetchLike, instance: string) => FetchLike;
  /** Overrides of the sender's environment, e.g. a short HTTP timeout for runs full of hanging requests. */
  readonly senderEnv?: Readonly<Record<string, string>>;
  /** The function timeout in real ms (an invocation that outlives it fails its batch). Default: the stage's. */
  readonly functionTimeoutMs?: number;
  /** Called once the senders are polling, with the send queue, e.g. to redeliver messages as SQS sometimes does. */
  readonly onStarted?: (sendQueue: {
    readonly sqs: SQSClient;
    readonly url: string;
    inspect(): Promise<QueueInspection>;
  }) => void;
}

/** The run could not start: bad input, missing credentials, a port that would not open. */
export class StartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartError';
  }
}

/**
 * Runs the whole pipeline locally (design.md, "The main job, locally"): fauxqs with the send queue and its
 * dead-letter queue as the stack configures them, the eCourtDate simulator scripted for the sample jobs (or a
 * real API), a Secrets Manager stand-in holding the credentials, and `concurrency` instances of the real
 * sender handler under a local event source mapping. Enqueues the jobs, waits until all settled or the
 * timeout, and evaluates the stack's alarms over the run's metrics.
 */
export async function runPipeline(
  options: StartOptions,
  io: PipelineIO,
  hooks: PipelineHooks = {},
): Promise<PipelineRun> {
  const jobsPath = resolve(io.cwd, options.jobsFile);
  let lines: JobLine[];
  try {
    lines = await readJobsFile(jobsPath);
  } catch (error) {
    throw new StartError(error instanceof Error ? error.message : String(error), { cause: error });
  }
  const credentials = options.ecourtdateUrl ? credentialsFromEnv(io.env) : SCENARIO_CLIENT;
  let stage: ReturnType<typeof cdkStageConfig>;
  try {
    // The demo's scripted hang should not hold a batch for the deployed 10 s; a real API gets the real timeout.
    stage = cdkStageConfig(
      io.cwd,
      options.ecourtdateUrl ? {} : { httpTimeoutMs: String(DEMO_HTTP_TIMEOUT_MS) },
    );
  } catch (error) {
    throw new StartError(`cdk.json: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  const concurrency = options.concurrency ?? stage.maxConcurrency;
  const { timeScale } = options;
  const stateDir = resolve(io.cwd, options.stateDir);

  const closers: (() => Promise<unknown>)[] = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  };
  try {
    const emulator = await startSqsEmulator({ region: LOCAL_REGION });
    closers.push(() => emulator.stop());
    const queues = localQueueSettings(stage, timeScale, {
      sendDays: SEND_QUEUE_RETENTION_DAYS,
      deadLetterDays: DEAD_LETTER_RETENTION_DAYS,
    });
    const deadLetterQueue = await emulator.createQueue(DEAD_LETTER_QUEUE_NAME, {
      MessageRetentionPeriod: String(queues.deadLetterRetentionSeconds),
    });
    const sendQueue = await emulator.createQueue(SEND_QUEUE_NAME, {
      VisibilityTimeout: String(queues.visibilityTimeoutSeconds),
      MessageRetentionPeriod: String(queues.retentionSeconds),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: deadLetterQueue.arn,
        maxReceiveCount: String(queues.maxReceiveCount),
      }),
    });

    const dynamodb = await startDynamoDbEmulator();
    closers.push(() => dynamodb.stop());
    await dynamodb.createLedgerTable(LEDGER_TABLE_NAME);

    let sim: Simulator | undefined;
    if (options.ecourtdateUrl === undefined) {
      sim = await startSimulator({
        clients: { [SCENARIO_CLIENT.id]: SCENARIO_CLIENT.secret },
        knownAgencies: [...SCENARIO_AGENCIES],
        timeScale,
      });
      const started = sim;
      closers.push(() => started.close());
      scriptScenario(sim);
    }
    const baseUrl = sim?.url ?? options.ecourtdateUrl?.href ?? '';
    const secrets = await startSecretsManagerStub({
      secrets: {
        [LOCAL_SECRET_ID]: JSON.stringify({
          client_id: credentials.id,
          client_secret: credentials.secret,
        }),
      },
    });
    closers.push(() => secrets.close());

    const config = loadSenderConfig({
      // As the stack sets it (each instance paces itself to its share of the budget), pointed at the local pieces.
      ...localSenderEnvironment(stage, {
        baseUrl,
        concurrency,
        timeScale,
        resources: {
          secretId: LOCAL_SECRET_ID,
          sendQueueUrl: sendQueue.url,
          deadLetterQueueUrl: deadLetterQueue.url,
          ledgerTableName: LEDGER_TABLE_NAME,
        },
        endpoints: { sqs: emulator.endpoint, secretsManager: secrets.url, dynamodb: dynamodb.endpoint },
      }),
      ...hooks.senderEnv,
    });

    const logFile = openLogFile(join(stateDir, 'sender.log'));
    closers.push(() => logFile.close());
    const startedAt = Date.now();
    const tracker = new JobTracker();
    const monitor = new AlarmMonitor({
      definitions: alarmDefinitions(stage.alarmThresholds),
      startedAt,
      timeScale,
      unavailableSources: {
        eventsDeadLetterQueue: 'no EventBridge in a local run',
        ledgerTable: 'the DynamoDB emulator publishes no metrics',
      },
    });
    let afterRun: ((line: string) => void) | undefined;
    const sink: SenderSink = {
      write: (line) => logFile.write(line),
      log(attributes) {
        const event = parseSenderEvent(attributes);
        if (event === undefined) return;
        const tracked = tracker.onSenderEvent(event);
        if (!tracked && afterRun && event.kind !== 'retried') {
          afterRun(
            `job ${event.jobId ?? '(no id)'}: ${event.outcome}${event.reason ? ` (${event.reason})` : ''}`,
          );
        }
      },
      metric: (name, value) => monitor.count(name, value),
    };

    const apiCalls: ApiCallCounts = { token: 0, send: 0 };
    const instances = Array.from({ length: concurrency }, (_, index) => {
      // Each instance its own clients, as each container has; pointed at the emulators through `config`.
      const clients = createAwsClients(config, { region: LOCAL_REGION, credentials: LOCAL_AWS_CREDENTIALS });
      closers.push(async () => {
        for (const client of Object.values(clients)) client.destroy();
      });
      // One createSenderHandler per instance: its own secret cache, token cache and pacer, like a container;
      // the job ledger is shared through the table, as in AWS.
      const handler = createSenderHandler({
        config,
        ...clients,
        fetch: hooks.wrapFetch?.(countingFetch(apiCalls), `sender-${index + 1}`) ?? countingFetch(apiCalls),
        observability: sinkObservability(sink),
      });
      return { name: `sender-${index + 1}`, handler, sqs: clients.sqs };
    });

    await enqueue(emulator.sqs, sendQueue.url, lines, tracker);

    const mapping = startEventSourceMapping({
      queue: sendQueue,
      instances,
      batchSize: stage.batchSize,
      // Real time: it bounds the computing an invocation may do, which a time scale does not shorten.
      functionTimeoutMs: hooks.functionTimeoutMs ?? stage.functionTimeoutSeconds * 1000,
      onInvocation(instance, result) {
        tracker.onDeleted(result.deleted);
        const at = Date.now();
        monitor.sum('senderFunction', 'Invocations', 1, at);
        monitor.sum('senderFunction', 'Errors', result.error === undefined ? 0 : 1, at);
        // Nothing throttles a local instance; Lambda reports 0 for a function that ran.
        monitor.sum('senderFunction', 'Throttles', 0, at);
        if (result.error !== undefined) {
          logFile.write(
            JSON.stringify({
              level: 'ERROR',
              message: 'invocation failed: the whole batch returns after the visibility timeout',
              function_name: instance,
              error_name: result.error instanceof Error ? result.error.name : typeof result.error,
            }),
          );
        }
      },
      onPollError(instance, error) {
        logFile.write(
          JSON.stringify({
            level: 'ERROR',
            message: 'event source poll failed',
            function_name: instance,
            error_name: error instanceof Error ? error.name : typeof error,
          }),
        );
      },
    });
    let mappingStopped = false;
    const stopMapping = async () => {
      if (mappingStopped) return;
      mappingStopped = true;
      // Closing the simulator first ends any held (scripted hang) request at once.
      const stopping = mapping.stop();
      await sim?.close();
      await stopping;
    };
    // Pushed last, so closed first: in-flight invocations end before the clients, queues and log go away.
    closers.push(stopMapping);
    hooks.onStarted?.({
      sqs: emulator.sqs,
      url: sendQueue.url,
      inspect: () => emulator.inspect(SEND_QUEUE_NAME),
    });

    const progress = createProgress(io.stdout);
    const sample = async () => {
      const at = Date.now();
      try {
        const dlq = await emulator.inspect(DEAD_LETTER_QUEUE_NAME);
        tracker.onDeadLetterQueue(dlq.ready.map((m) => m.messageId));
        monitor.gauge('deadLetterQueue', 'ApproximateNumberOfMessagesVisible', dlq.ready.length, at);
      } catch {
        // The emulator is going away: nothing to sample.
      }
      const oldest = tracker.oldestUnsettledAt();
      const ageSeconds = oldest === undefined ? 0 : ((at - oldest) / 1000) * timeScale;
      monitor.gauge('sendQueue', 'ApproximateAgeOfOldestMessage', Math.floor(ageSeconds), at);
      progress.update({
        counts: tracker.counts(),
        apiCalls: apiCalls.send + apiCalls.token,
        elapsedMs: at - startedAt,
      });
    };

    const deadline = startedAt + options.timeoutSeconds * 1000;
    let timedOut = false;
    for (;;) {
      await sample();
      if (tracker.allSettled()) break;
      if (Date.now() >= deadline) {
        timedOut = true;
        break;
      }
      await new Promise((resolveTick) => setTimeout(resolveTick, TICK_MS));
    }
    progress.done();
    const endedAt = Date.now();
    const alarms = monitor.evaluate(endedAt);
    const report = buildReport(tracker.jobs, apiCalls, alarms);
    const summary = renderSummary({
      jobs: tracker.jobs,
      report,
      alarms,
      alarmPeriodSeconds: Math.max(...alarmDefinitions(stage.alarmThresholds).map((d) => d.periodSeconds)),
      elapsedMs: endedAt - startedAt,
      timeScale,
      target: sim ? 'the built-in eCourtDate simulator' : baseUrl,
      logFile: displayPath(io.cwd, logFile.path),
      timedOut,
    });

    const endpoints: LocalEndpoints = {
      region: LOCAL_REGION,
      sqsEndpoint: emulator.endpoint,
      sendQueueUrl: sendQueue.url,
      sendQueueArn: sendQueue.arn,
      deadLetterQueueUrl: deadLetterQueue.url,
      deadLetterQueueArn: deadLetterQueue.arn,
      secretsManagerEndpoint: secrets.url,
      secretId: LOCAL_SECRET_ID,
      ecourtdateUrl: baseUrl,
      dynamodbEndpoint: dynamodb.endpoint,
      ledgerTableName: LEDGER_TABLE_NAME,
    };
    if (options.keepRunning) {
      await mkdir(stateDir, { recursive: true });
      await writeFile(join(stateDir, ENDPOINTS_FILE), `${JSON.stringify(endpoints, null, 2)}\n`);
      afterRun = (line) => io.stdout.write(`${line}\n`);
    } else {
      await closeAll();
    }
    return {
      report,
      summary,
      settled: !timedOut && tracker.allSettled(),
      endpoints,
      logFile: logFile.path,
      stop: closeAll,
    };
  } catch (error) {
    await closeAll();
    if (error instanceof StartError) throw error;
    throw new StartError(
      `the local pipeline could not start: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

function credentialsFromEnv(env: PipelineIO['env']): { id: string; secret: string } {
  const id = env[CLIENT_ID_VARIABLE]?.trim();
  const secret = env[CLIENT_SECRET_VARIABLE]?.trim();
  const missing = [id ? undefined : CLIENT_ID_VARIABLE, secret ? undefined : CLIENT_SECRET_VARIABLE].filter(
    (name) => name !== undefined,
  );
  if (!id || !secret) {
    throw new StartError(
      `--ecourtdate-url needs the API client's credentials in the environment: ${missing.join(' and ')} ` +
        `${missing.length > 1 ? 'are' : 'is'} not set (the client id and secret from eCourtDate Console > APIs, ` +
        'for the same environment as the URL)',
    );
  }
  return { id, secret };
}

/** `fetch` that counts the sender's requests: token requests, and requests to the messages endpoints. */
function countingFetch(counts: ApiCallCounts): FetchLike {
  return (input, init) => {
    const path = new URL(String(input)).pathname;
    if (path.endsWith('/oauth/token')) counts.token += 1;
    else if (path.includes('/v1/messages')) counts.send += 1;
    return fetch(input, init);
  };
}

/** Puts every line on the send queue as written, in file order, and registers it with the tracker. */
async function enqueue(sqs: SQSClient, queueUrl: string, lines: readonly JobLine[], tracker: JobTracker) {
  for (let start = 0; start < lines.length; start += 10) {
    const chunk = lines.slice(start, start + 10);
    const out = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((line, index) => ({ Id: String(index), MessageBody: line.body })),
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

/** A path relative to the working directory when it is inside it, else absolute. */
function displayPath(cwd: string, path: string): string {
  const inside = relative(cwd, path);
  return inside && !inside.startsWith('..') && !isAbsolute(inside) ? inside : path;
}
