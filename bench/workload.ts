/**
 * One measurement of the benchmark, in a process of its own (forked by bench/relay.bench.ts): the relay's real
 * handler polled like Lambda's event source mapping, a bare `fetch` loop, the floor (a `fetch` and two
 * conditional DynamoDB writes per job), one batch on a lone instance of a shared budget, or a pacing drill.
 * Receives one {@link WorkloadSpec}, answers with its figures and exits. What the sender logs goes to this
 * process's stdout, which the orchestrator appends to the log file.
 */
import { fork } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { join } from 'node:path';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { loadStageConfig } from '#infra/config.ts';
import { senderEnvironment } from '#infra/stack-contract.ts';
import { lambdaContext, pollOnce } from '#local/lambda/event-source.ts';
import { runPacingDrill } from '#local/pacing-drill.ts';
import { sinkObservability } from '#local/pipeline/observability.ts';
import { startWorld } from '#local/world.ts';
import { createAwsClients } from '#shared/clients/aws.ts';
import { ENV, loadSenderConfig } from '#shared/config.ts';
import { API_CLIENT_ITEM_ID } from '#shared/ledger/schema.ts';
import { createObservability, loadTracing } from '#shared/observability.ts';
import { createSenderHandler, type SenderHandler } from '#shared/sender/handler.ts';
import { messageGroupOfBody } from '#shared/sqs/message-group.ts';
import type { PollersCommand, PollersEvent } from './pollers.ts';
import {
  type BatchLatencyFigures,
  BENCH_CLIENT,
  BENCH_SECRET_ID,
  type BenchResources,
  type CapacityCounts,
  type CommandCounts,
  counting,
  type FairnessRun,
  type HostEndpoints,
  LOCAL_AWS,
  type MiddlewareStack,
  type WorkloadFigures,
  type WorkloadSpec,
} from './protocol.ts';

/** The item operations whose capacity DynamoDB reports with `ReturnConsumedCapacity`. */
const ITEM_OPERATIONS = new Set([
  'GetItemCommand',
  'PutItemCommand',
  'UpdateItemCommand',
  'DeleteItemCommand',
]);

/** The kind of ledger item a request touches: its key's prefix up to `#` (`job#`, `uuid#`), else `other`. */
function itemKind(input: Record<string, unknown>): string {
  const item = (input.Item ?? input.Key) as Record<string, unknown> | undefined;
  const raw = item?.id;
  // Marshalled ({ S: 'job#...' }) or, before the document client marshals it, plain.
  const id = typeof raw === 'string' ? raw : (raw as { S?: unknown } | undefined)?.S;
  if (typeof id !== 'string') return 'other';
  // The stage's budget and circuit breaker (docs/pacing.md): counted apart from the job ledger's items.
  if (id === API_CLIENT_ITEM_ID) return API_CLIENT_ITEM_ID;
  const hash = id.indexOf('#');
  return hash < 0 ? 'other' : id.slice(0, hash + 1);
}

/**
 * Asks DynamoDB for the capacity each item operation of `client` consumes (`ReturnConsumedCapacity: TOTAL`;
 * dynalite sizes items as DynamoDB does) and adds it to `capacity` by operation and item kind. Adds a few bytes
 * to each request; changes nothing else.
 */
function measuringCapacity<T extends { middlewareStack: unknown }>(client: T, capacity: CapacityCounts): T {
  (client.middlewareStack as MiddlewareStack).add(
    (next, context) => async (args) => {
      const name = String(context.commandName);
      if (!ITEM_OPERATIONS.has(name)) return next(args);
      const { input } = args as { input: Record<string, unknown> };
      const key = `${name.replace(/Command$/, '')} ${itemKind(input)}`;
      const entry = capacity[key] ?? { requests: 0, capacityUnits: 0, conditionFailed: 0 };
      capacity[key] = entry;
      entry.requests += 1;
      try {
        const out = (await next({
          ...(args as object),
          input: { ...input, ReturnConsumedCapacity: 'TOTAL' },
        })) as {
          output?: { ConsumedCapacity?: { CapacityUnits?: number } };
        };
        entry.capacityUnits += out.output?.ConsumedCapacity?.CapacityUnits ?? 0;
        return out;
      } catch (error) {
        if (error instanceof Error && error.name === 'ConditionalCheckFailedException')
          entry.conditionFailed += 1;
        throw error;
      }
    },
    { step: 'initialize', name: 'benchCapacity' },
  );
  return client;
}

/** Requests to eCourtDate by endpoint, counted on the process's global `fetch` (what the relay sends through). */
const apiCounts = { token: 0, send: 0 };
const globalFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
  if (path.endsWith('/oauth/token')) apiCounts.token += 1;
  else if (path.endsWith('/v1/messages/oneoffs')) apiCounts.send += 1;
  return globalFetch(input, init);
};

function zero(...all: (CommandCounts | CapacityCounts)[]): void {
  for (const counts of all) for (const key of Object.keys(counts)) delete counts[key];
  apiCounts.token = 0;
  apiCounts.send = 0;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

function jobBody(runId: string, i: number): string {
  return JSON.stringify({
    id: `${runId}-${i}`,
    message: { to: '+15550100000', content: `Benchmark reminder ${runId} ${i}`, channel: 'text' },
  });
}

async function enqueue(sqs: SQSClient, queueUrl: string, runId: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 10) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Array.from({ length: Math.min(10, count - i) }, (_, k) => ({
          Id: String(k),
          MessageBody: jobBody(runId, i + k),
        })),
      }),
    );
  }
}

/**
 * The sender's configuration as the stack sets it for staging, pointed at the host and at `requestsPerMinute`,
 * with webhooks (the message-uuid index) on or off.
 */
function senderConfig(
  endpoints: HostEndpoints,
  resources: BenchResources,
  requestsPerMinute: number,
  webhooksEnabled = false,
) {
  const stage = loadStageConfig({ stage: 'staging' });
  return loadSenderConfig({
    ...senderEnvironment(
      { ...stage, baseUrl: endpoints.ecourtdate },
      {
        secretId: BENCH_SECRET_ID,
        sendQueueUrl: resources.queue.url,
        deadLetterQueueUrl: resources.deadLetterQueueUrl,
        ledgerTableName: resources.table,
        webhooksEnabled,
      },
    ),
    [ENV.requestsPerMinute]: String(requestsPerMinute),
    [ENV.sqsEndpoint]: endpoints.sqs,
    [ENV.secretsManagerEndpoint]: endpoints.secretsManager,
    [ENV.dynamodbEndpoint]: endpoints.dynamodb,
  });
}

function feeder(endpoints: HostEndpoints): SQSClient {
  return new SQSClient({ ...LOCAL_AWS, endpoint: endpoints.sqs, useQueueUrlAsEndpoint: false });
}

/** The handler with its invocations' wall time added to `clock.ms`. */
function timed(handler: SenderHandler, clock: { ms: number }): SenderHandler {
  return async (event: SQSEvent, context) => {
    const started = performance.now();
    try {
      return await handler(event, context);
    } finally {
      clock.ms += performance.now() - started;
    }
  };
}

async function relay(spec: Extract<WorkloadSpec, { kind: 'relay' }>): Promise<WorkloadFigures> {
  const config = senderConfig(
    spec.endpoints,
    spec.resources,
    spec.requestsPerMinute,
    spec.webhooksEnabled === true,
  );
  const counts = { sqs: {}, dynamodb: {}, secrets: {} } as Record<
    'sqs' | 'dynamodb' | 'secrets',
    CommandCounts
  >;
  const capacity: CapacityCounts = {};
  const clock = { ms: 0 };
  const containers = Array.from({ length: spec.instances }, (_, i) => {
    // The clients of one container, as functions/sender.ts builds them, each with a request counter.
    const clients = createAwsClients(config, LOCAL_AWS);
    counting(clients.sqs, counts.sqs);
    measuringCapacity(counting(clients.dynamodb, counts.dynamodb), capacity);
    counting(clients.secrets, counts.secrets);
    return { clients, name: `sender-${i + 1}` };
  });
  // As functions/sender.ts: Powertools Tracer (and the X-Ray SDK) only with traceSubsegments.
  const tracing = spec.traceSubsegments === true ? await loadTracing() : undefined;
  const instances = new Map(
    containers.map(({ clients, name }) => {
      const observability = createObservability(tracing);
      return [name, timed(createSenderHandler({ config, ...clients, observability }), clock)] as const;
    }),
  );
  const sqs = feeder(spec.endpoints);

  // The event source mapping runs in a process of its own, as Lambda's pollers run outside the function: this
  // process spends its CPU time on the handler only. Each invocation comes over the IPC channel.
  const pollers = fork(join(import.meta.dirname, 'pollers.ts'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const events = new EventEmitter();
  pollers.on('message', (event: PollersEvent | { type: 'ready' }) => {
    if (event.type !== 'invoke') {
      events.emit(event.type, event);
      return;
    }
    const handler = instances.get(event.instance) as SenderHandler;
    const context = lambdaContext(event.instance, Math.max(event.deadline - Date.now(), 0));
    handler({ Records: event.records as SQSRecord[] }, context).then(
      (response) => pollers.send({ type: 'invoked', id: event.id, response } satisfies PollersCommand),
      (error: unknown) =>
        pollers.send({
          type: 'invoked',
          id: event.id,
          error: error instanceof Error ? error.message : String(error),
        } satisfies PollersCommand),
    );
  });
  const next = <T>(type: string) => once(events, type).then(([event]) => event as T);
  await next('ready');

  /**
   * Runs the mapping until `count` records were deleted (settled) and until it stopped. Resolves with what the
   * pollers report, the time (performance.now(), ms) and this process's CPU usage when they reported the last
   * delete: the mapping's stop waits for the pollers' pending long polls, which are not the jobs' time.
   */
  const deliver = async (count: number) => {
    const delivered = next<Extract<PollersEvent, { type: 'delivered' }>>('delivered');
    const stopped = next('stopped');
    pollers.send({
      type: 'deliver',
      count,
      sqsEndpoint: spec.endpoints.sqs,
      queue: spec.resources.queue,
      instances: [...instances.keys()],
      batchSize: spec.batchSize,
      functionTimeoutMs: spec.functionTimeoutMs,
    } satisfies PollersCommand);
    const report = await delivered;
    const end = { endedAt: performance.now(), cpuAtEnd: process.cpuUsage() };
    await stopped;
    return { ...report, ...end };
  };

  // Warm-up: cold start, secret, token and JIT outside the measured span.
  await enqueue(sqs, spec.resources.queue.url, `${spec.runId}-warm`, spec.warmup);
  await deliver(spec.warmup);
  await enqueue(sqs, spec.resources.queue.url, spec.runId, spec.jobs);
  zero(counts.sqs, counts.dynamodb, counts.secrets, capacity);
  clock.ms = 0;

  const cpu = process.cpuUsage();
  const started = performance.now();
  const { invocations, endedAt, cpuAtEnd, sqs: pollerSqs, cpuMs: pollerCpuMs } = await deliver(spec.jobs);
  pollers.disconnect();
  const seconds = (endedAt - started) / 1000;
  const cpuMs = (cpuAtEnd.user + cpuAtEnd.system - cpu.user - cpu.system) / 1000;
  // The handler's own SQS requests (visibility changes, dead-letter sends) and the pollers' receives and deletes.
  for (const [name, n] of Object.entries(pollerSqs)) counts.sqs[name] = (counts.sqs[name] ?? 0) + n;
  const ecourtdate = { ...apiCounts };
  const measured = { ...capacity };
  const ledger = await scanLedger(spec.endpoints, spec.resources.table, spec.runId);
  return {
    jobs: spec.jobs,
    seconds,
    cpuMs,
    ...counts,
    ecourtdate,
    invocations,
    handlerMs: clock.ms,
    pollerCpuMs,
    largestItemBytes: ledger.largest,
    largestItemBytesByKind: ledger.largestByKind,
    capacity: measured,
    delivered: ledger.delivered,
    uuidIndexed: ledger.uuidIndexed,
  };
}

/** `fetch` (bare) or the floor: `concurrency` loops sharing the jobs, one `POST` each (floor: between two writes). */
async function loops(spec: Extract<WorkloadSpec, { kind: 'fetch' | 'floor' }>): Promise<WorkloadFigures> {
  const base = spec.endpoints.ecourtdate;
  const dynamodbCounts: CommandCounts = {};
  const capacity: CapacityCounts = {};
  const doc = DynamoDBDocumentClient.from(
    measuringCapacity(
      counting(new DynamoDBClient({ ...LOCAL_AWS, endpoint: spec.endpoints.dynamodb }), dynamodbCounts),
      capacity,
    ),
  );
  const tokenAnswer = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({
      grant_type: 'client_credentials',
      client_id: BENCH_CLIENT.id,
      client_secret: BENCH_CLIENT.secret,
    }),
  });
  const { access_token: token } = (await tokenAnswer.json()) as { access_token: string };

  const post = async (runId: string, i: number): Promise<string> => {
    const answer = await fetch(`${base}/v1/messages/oneoffs`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: JSON.stringify(JSON.parse(jobBody(runId, i)).message),
    });
    const text = await answer.text();
    if (answer.status !== 201) throw new Error(`expected 201, got ${answer.status}`);
    return (JSON.parse(text) as { uuid: string }).uuid;
  };
  const job = async (runId: string, i: number): Promise<void> => {
    if (spec.kind === 'fetch') {
      await post(runId, i);
      return;
    }
    // The least an exactly-once relay does: claim the job, send, settle the claim.
    const id = `job#${runId}-${i}`;
    const expiration = Math.floor(Date.now() / 1000) + 30 * 86_400;
    await doc.send(
      new PutCommand({
        TableName: spec.table,
        Item: { id, state: 'sending', version: 1, attempt: 1, claimedAt: Date.now(), expiration },
        ConditionExpression: 'attribute_not_exists(id)',
      }),
    );
    const uuid = await post(runId, i);
    await doc.send(
      new PutCommand({
        TableName: spec.table,
        Item: { id, state: 'delivered', version: 2, attempt: 1, uuid, settledAt: Date.now(), expiration },
        ConditionExpression: 'version = :claimed',
        ExpressionAttributeValues: { ':claimed': 1 },
      }),
    );
  };
  const run = async (runId: string, count: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: spec.concurrency }, async () => {
        for (let i = next++; i < count; i = next++) await job(runId, i);
      }),
    );
  };

  await run(`${spec.runId}-warm`, spec.warmup);
  zero(dynamodbCounts, capacity);
  const cpu = process.cpuUsage();
  const started = performance.now();
  await run(spec.runId, spec.jobs);
  const seconds = (performance.now() - started) / 1000;
  const cpuMs = cpuMsSince(cpu);
  return {
    jobs: spec.jobs,
    seconds,
    cpuMs,
    sqs: {},
    dynamodb: dynamodbCounts,
    secrets: {},
    ecourtdate: { ...apiCounts },
    invocations: 0,
    handlerMs: 0,
    ...(spec.kind === 'floor'
      ? {
          largestItemBytes: (await scanLedger(spec.endpoints, spec.table, spec.runId)).largest,
          capacity: { ...capacity },
        }
      : {}),
  };
}

async function batchLatency(
  spec: Extract<WorkloadSpec, { kind: 'batch-latency' }>,
): Promise<BatchLatencyFigures> {
  const config = senderConfig(
    spec.endpoints,
    spec.resources,
    spec.requestsPerMinute,
    spec.webhooksEnabled === true,
  );
  const clients = createAwsClients(config, LOCAL_AWS);
  const clock = { ms: 0 };
  // The handler's own pacer: a SharedBudgetPacer leasing from the api-client item of this run's ledger table in
  // the emulated DynamoDB, the whole budget to this lone instance (docs/pacing.md, "One budget for the API client").
  const handler = timed(createSenderHandler({ config, ...clients }), clock);
  const sqs = feeder(spec.endpoints);
  // The budget numbers its slots by slice (one second, epoch-aligned): each invocation starts as a slice begins,
  // as a batch of jobs arriving within the budget finds it, so that a batch is not held for slots a batch before it
  // took in the same slice (that is the budget's rate, not a batch's latency).
  const sliceMs = 1000 / config.timeScale;
  const nextSlice = () => new Promise((resolve) => setTimeout(resolve, sliceMs - (Date.now() % sliceMs)));
  const invoke = async (runId: string, count: number) => {
    await enqueue(sqs, spec.resources.queue.url, runId, count);
    await nextSlice();
    clock.ms = 0;
    const result = await pollOnce({
      sqs: clients.sqs,
      queueUrl: spec.resources.queue.url,
      queueArn: spec.resources.queue.arn,
      handler,
      batchSize: spec.batchSize,
      waitTimeSeconds: 1,
      functionTimeoutMs: spec.functionTimeoutMs,
    });
    return { ms: clock.ms, delivered: result.deleted.length };
  };
  // Cold start (secret, token) and a few batches first, as a warm container would have them done (JIT, the
  // connections of a batch). Then 3 single jobs and 5 batches, the median of each reported: at most one
  // batch (10 requests) a slice, which every slice of a budget of 600 a minute or more holds (15 at 900).
  await invoke(`${spec.runId}-cold`, 1);
  for (let i = 0; i < 3; i++) await invoke(`${spec.runId}-warm-${i}`, spec.batchSize);
  const singles = [];
  for (let i = 0; i < 3; i++) singles.push(await invoke(`${spec.runId}-single-${i}`, 1));
  const batches = [];
  for (let i = 0; i < 5; i++) batches.push(await invoke(`${spec.runId}-batch-${i}`, spec.batchSize));
  const middle = <T extends { ms: number }>(all: T[]) =>
    [...all].sort((x, y) => x.ms - y.ms)[Math.floor(all.length / 2)] as T;
  const single = middle(singles);
  const batch = middle(batches);

  const tokenAnswer = await fetch(`${spec.endpoints.ecourtdate}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: BENCH_CLIENT.id, client_secret: BENCH_CLIENT.secret }),
  });
  const { access_token: token } = (await tokenAnswer.json()) as { access_token: string };
  const call = async (i: number) => {
    const started = performance.now();
    const answer = await fetch(`${spec.endpoints.ecourtdate}/v1/messages/oneoffs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(JSON.parse(jobBody(`${spec.runId}-call`, i)).message),
    });
    await answer.text();
    return performance.now() - started;
  };
  await call(0); // opens the connection, as the relay's are open
  const calls = [];
  for (let i = 1; i <= 5; i++) calls.push(await call(i));
  const oneCallMs = [...calls].sort((x, y) => x - y)[2] as number;
  return { batchMs: batch.ms, oneCallMs, singleJobMs: single.ms, delivered: batch.delivered };
}

/**
 * The ledger table after a run: its largest item, overall and by kind (key prefix up to `#`), sized as DynamoDB
 * bills it (attribute names plus values, UTF-8); how many of run `runId`'s measured jobs (ids `<runId>-<n>`, not
 * the warm-up's) are `delivered`, and how many have a message-uuid index item.
 */
async function scanLedger(
  endpoints: HostEndpoints,
  table: string,
  runId: string,
): Promise<{
  largest: number;
  largestByKind: Record<string, number>;
  delivered: number;
  uuidIndexed: number;
}> {
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: endpoints.dynamodb });
  const measuredJob = new RegExp(`^${runId.replace(/[^\w]/g, '\\$&')}-\\d+$`);
  const largestByKind: Record<string, number> = {};
  let largest = 0;
  let delivered = 0;
  let uuidIndexed = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const out = await client.send(
      new ScanCommand({ TableName: table, ExclusiveStartKey: start as never, Limit: 1000 }),
    );
    for (const item of out.Items ?? []) {
      let size = 0;
      for (const [name, value] of Object.entries(item))
        size += Buffer.byteLength(name) + valueSize(value as unknown as Record<string, unknown>);
      largest = Math.max(largest, size);
      const id = item.id?.S ?? '';
      const kind = id.includes('#') ? id.slice(0, id.indexOf('#') + 1) : 'other';
      largestByKind[kind] = Math.max(largestByKind[kind] ?? 0, size);
      if (kind === 'job#' && measuredJob.test(id.slice(kind.length)) && item.status?.S === 'delivered') {
        delivered += 1;
      }
      if (kind === 'uuid#' && measuredJob.test(item.job_id?.S ?? '')) uuidIndexed += 1;
    }
    start = out.LastEvaluatedKey;
  } while (start !== undefined);
  client.destroy();
  return { largest, largestByKind, delivered, uuidIndexed };
}

function valueSize(value: Record<string, unknown>): number {
  if (typeof value.S === 'string') return Buffer.byteLength(value.S);
  if (typeof value.N === 'string') return Math.ceil(value.N.replace(/^-|\.|^0+/g, '').length / 2) + 1;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.M !== undefined) {
    let size = 3;
    for (const [name, inner] of Object.entries(value.M as Record<string, Record<string, unknown>>)) {
      size += Buffer.byteLength(name) + valueSize(inner) + 1;
    }
    return size;
  }
  if (Array.isArray(value.L)) {
    return 3 + (value.L as Record<string, unknown>[]).reduce((n, inner) => n + valueSize(inner) + 1, 0);
  }
  return JSON.stringify(value).length;
}

/**
 * One agency's burst beside a few jobs of another, as test/integration/fairness.test.ts runs it: the jobs put on the
 * world's fair send queue with their agency as `MessageGroupId`, 3 instances of the real sender (pacing out of the
 * way: the order is what is measured), Lambda's event source mapping. Ends when every job of the few was served.
 */
async function fairness(spec: Extract<WorkloadSpec, { kind: 'fairness' }>): Promise<FairnessRun> {
  const world = await startWorld({
    apiClient: BENCH_CLIENT,
    concurrency: FAIRNESS_INSTANCES,
    simulator: { rateLimitPerMinute: 1_000_000_000 },
    iam: false,
  });
  const clients: { destroy(): void }[] = [];
  let mapping: { stop(): Promise<void> } | undefined;
  try {
    const config = loadSenderConfig({ ...world.senderEnv, [ENV.requestsPerMinute]: '60000' });
    const sink = { write: (line: string) => process.stdout.write(`${line}\n`), metric() {} };
    const job = (agency: string, n: number) =>
      JSON.stringify({
        id: `${agency}-${n}`,
        message: {
          to: `+1555${agency === spec.burstAgency ? '1' : '2'}${String(n).padStart(6, '0')}`,
          content: 'Reminder',
        },
        agency_reference: agency,
      });
    const bodies = [
      ...Array.from({ length: spec.burst }, (_, i) => job(spec.burstAgency, i)),
      ...Array.from({ length: spec.few }, (_, i) => job(spec.fewAgency, i)),
    ];
    for (let start = 0; start < bodies.length; start += 10) {
      await world.sqs.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: world.sendQueue.url,
          Entries: bodies.slice(start, start + 10).map((body, index) => ({
            Id: String(index),
            MessageBody: body,
            MessageGroupId: messageGroupOfBody(body),
          })),
        }),
      );
    }
    const sim = world.simulator as NonNullable<typeof world.simulator>;
    const served = () =>
      sim.requests
        .filter((request) => request.path === '/v1/messages/oneoffs')
        .map((request) => request.query.agency_reference ?? '');
    mapping = world.startEventSourceMapping({
      instances: Array.from({ length: FAIRNESS_INSTANCES }, (_, i) => {
        const aws = createAwsClients(config, LOCAL_AWS);
        clients.push(...Object.values(aws));
        return {
          name: `sender-${i + 1}`,
          handler: createSenderHandler({ config, ...aws, observability: sinkObservability(sink) }),
          sqs: aws.sqs,
        };
      }),
      functionTimeoutMs: loadStageConfig({ stage: 'staging' }).functionTimeoutSeconds * 1000,
    });
    const deadline = Date.now() + 120_000;
    while (served().filter((agency) => agency === spec.fewAgency).length < spec.few) {
      if (Date.now() > deadline)
        throw new Error(`fairness: ${spec.fewAgency}'s jobs were not all served in 120 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return { ...spec, served: served() };
  } finally {
    await mapping?.stop();
    for (const client of clients) client.destroy();
    await world.close();
  }
}

/** Sender instances of the fairness run, as in test/integration/fairness.test.ts. */
const FAIRNESS_INSTANCES = 3;

async function run(spec: WorkloadSpec): Promise<unknown> {
  switch (spec.kind) {
    case 'relay':
      return relay(spec);
    case 'fetch':
    case 'floor':
      return loops(spec);
    case 'batch-latency':
      return batchLatency(spec);
    case 'pacing':
      return runPacingDrill({
        ...spec.options,
        sink: { write: (line) => process.stdout.write(`${line}\n`), metric() {} },
      });
    case 'fairness':
      return fairness(spec);
  }
}

process.once('message', (message: { id: number; command: WorkloadSpec }) => {
  run(message.command).then(
    (result) => process.send?.({ id: message.id, result }, () => process.exit(0)),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.send?.({ id: message.id, error: error instanceof Error ? error.message : String(error) }, () =>
        process.exit(1),
      );
    },
  );
});
process.send?.({ ready: true });
