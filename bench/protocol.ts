/**
 * What the benchmark's processes say to each other: the orchestrator (bench/relay.bench.ts) forks the emulator
 * host (bench/emulator-host.ts) once and one workload process (bench/workload.ts) per measurement, so that each
 * measurement's CPU time and JIT state are its own.
 */
import { type ChildProcess, fork } from 'node:child_process';
import type { PacingDrillOptions } from '#local/pacing-drill.ts';
import { LOCAL_RESOURCE_NAMES } from '#local/resource-names.ts';

export const BENCH_CLIENT = { id: 'bench-client', secret: 'bench-secret-0123456789abcdef' } as const;
/** The secret the emulator host's world holds the bench client's credentials in. */
export const BENCH_SECRET_ID = LOCAL_RESOURCE_NAMES.apiCredentialsSecretId;
export const LOCAL_AWS = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
} as const;

export interface HostEndpoints {
  readonly sqs: string;
  readonly dynamodb: string;
  readonly secretsManager: string;
  readonly ecourtdate: string;
}

export type HostCommand =
  | { cmd: 'createQueue'; name: string; attributes?: Record<string, string> }
  | { cmd: 'createTable'; name: string }
  /** Every `POST /v1/messages/oneoffs` answers after `ms` (0: at once). */
  | { cmd: 'latency'; ms: number }
  | { cmd: 'counts' }
  | { cmd: 'stop' };

export interface HostCounts {
  readonly ecourtdate: { readonly token: number; readonly send: number; readonly rateLimited: number };
  readonly dynamodb: Readonly<Record<string, number>>;
  /** Requests the strict SQS layer refused: a run inside SQS's limits has none. */
  readonly sqsRefusals: number;
}

/** A send queue with its dead-letter queue and a ledger table, on the host. */
export interface BenchResources {
  readonly queue: { readonly url: string; readonly arn: string };
  readonly deadLetterQueueUrl: string;
  readonly table: string;
}

/** Request counts by AWS command name (`PutItemCommand`, ...). */
export type CommandCounts = Record<string, number>;

/**
 * DynamoDB requests by operation and the kind of item they touch, e.g. `PutItem job#` or `PutItem uuid#` (the
 * key's prefix up to its `#`), with the capacity units DynamoDB reports for them (`ReturnConsumedCapacity:
 * TOTAL`: a write is one unit per KB of the larger of the item before and after, a strongly consistent read one
 * per 4 KB) and how many failed their condition.
 */
export type CapacityCounts = Record<
  string,
  { requests: number; capacityUnits: number; conditionFailed: number }
>;

/** One measured run of a workload. */
export interface WorkloadFigures {
  readonly jobs: number;
  /** Wall time of the measured span, s. */
  readonly seconds: number;
  /** CPU time (user + system) of the workload process over the span, ms. */
  readonly cpuMs: number;
  readonly sqs: CommandCounts;
  readonly dynamodb: CommandCounts;
  readonly secrets: CommandCounts;
  /** Requests the workload made to eCourtDate (token + send). */
  readonly ecourtdate: { readonly token: number; readonly send: number };
  /** Lambda invocations (relay only). */
  readonly invocations: number;
  /** Summed wall time of the handler's invocations, ms (relay only). */
  readonly handlerMs: number;
  /** The largest ledger item seen after the run, bytes as DynamoDB sizes them (relay and floor). */
  readonly largestItemBytes?: number;
  /** The largest ledger item of each kind (key prefix up to `#`: `job#`, `uuid#`) after the run, bytes. */
  readonly largestItemBytesByKind?: Readonly<Record<string, number>>;
  /** DynamoDB requests of the measured span by operation and item kind, with their capacity units. */
  readonly capacity?: CapacityCounts;
  /**
   * CPU time of the relay's event source mapping (its pollers' receives and deletes, in a process of their own as
   * Lambda's run outside the function), ms (relay only; `cpuMs` is the handler's process).
   */
  readonly pollerCpuMs?: number;
  /** Jobs of the measured span whose ledger entry says `delivered` after the run (relay only). */
  readonly delivered?: number;
  /** Jobs of the measured span with a message-uuid index item (`uuid#<uuid>`) after the run (relay only). */
  readonly uuidIndexed?: number;
}

/**
 * The event source mapping's pollers per instance in the relay's throughput runs (reports/bench.md, "Performance and
 * cost").
 */
export const RELAY_POLLERS_PER_INSTANCE = 2;

export type WorkloadSpec =
  | {
      kind: 'relay';
      instances: number;
      jobs: number;
      warmup: number;
      endpoints: HostEndpoints;
      resources: BenchResources;
      /** Each instance's share, requests a minute. */
      requestsPerMinute: number;
      batchSize: number;
      functionTimeoutMs: number;
      runId: string;
      /**
       * The sender's `WEBHOOKS_ENABLED`: with it, each delivered job's message uuid is indexed (docs/webhooks.md).
       * Default false.
       */
      webhooksEnabled?: boolean;
      /**
       * The stage's `traceSubsegments`: each instance gets Powertools Tracer, so the X-Ray SDK and its context hook
       * are loaded (outside Lambda the Tracer itself stays disabled). Default false, as the stack deploys.
       */
      traceSubsegments?: boolean;
    }
  | {
      kind: 'fetch' | 'floor';
      concurrency: number;
      jobs: number;
      warmup: number;
      endpoints: HostEndpoints;
      table: string;
      runId: string;
    }
  | {
      /**
       * One warm instance leasing from a shared budget of `requestsPerMinute` it has to itself: one batch of
       * `batchSize` jobs, and one bare call.
       */
      kind: 'batch-latency';
      endpoints: HostEndpoints;
      resources: BenchResources;
      /** The stage's shared budget, requests a minute (`REQUESTS_PER_MINUTE`). */
      requestsPerMinute: number;
      batchSize: number;
      functionTimeoutMs: number;
      runId: string;
      /** The sender's `WEBHOOKS_ENABLED` (default false). */
      webhooksEnabled?: boolean;
    }
  | {
      /** A pacing drill (local/pacing-drill.ts): the shared budget, or today's static split with a share. */
      kind: 'pacing';
      options: PacingDrillOptionsData;
    }
  | {
      /**
       * Fairness (docs/pacing.md, "Fairness"): `burst` jobs of `burstAgency`, then `few` of `fewAgency`, through
       * the fair send queue, 3 instances of the real sender, pacing out of the way.
       */
      kind: 'fairness';
      burstAgency: string;
      burst: number;
      fewAgency: string;
      few: number;
    };

/** The pacing drill's options that cross the IPC channel (no sink, no stage: staging's defaults). */
export type PacingDrillOptionsData = Omit<PacingDrillOptions, 'sink' | 'stage'>;

/** What the fairness run measured: each message request's `agency_reference`, in the order eCourtDate got them. */
export interface FairnessRun {
  readonly burstAgency: string;
  readonly burst: number;
  readonly fewAgency: string;
  readonly few: number;
  readonly served: readonly string[];
}

export interface BatchLatencyFigures {
  /** Wall time of an invocation that sent the whole batch, ms: the median of three. */
  readonly batchMs: number;
  /** Wall time of one bare `fetch` of the same endpoint, ms. */
  readonly oneCallMs: number;
  /** Wall time of an invocation with a single job, ms. */
  readonly singleJobMs: number;
  readonly delivered: number;
}

/** A forked child on the IPC channel: `call` sends a message and resolves with the matching answer. */
export interface Child<Out> {
  readonly process: ChildProcess;
  call(command: unknown): Promise<Out>;
}

/**
 * Forks `script` (a .ts file: the child inherits tsx's loader from this process) with its stdout and stderr
 * appended to `logFd`, and resolves with the `ready` value of the child's first message. Rejects when the child
 * exits first; every pending `call` rejects when it exits.
 */
export async function forkChild<Out, Ready = unknown>(
  script: string,
  options: { logFd: number; env?: NodeJS.ProcessEnv },
): Promise<{ child: Child<Out>; ready: Ready }> {
  const proc = fork(script, [], {
    stdio: ['ignore', options.logFd, options.logFd, 'ipc'],
    env: { ...process.env, ...options.env },
  });
  const pending = new Map<number, { resolve: (v: Out) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  const ready = new Promise<Ready>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code) => {
      const error = new Error(`${script} exited with code ${code}`);
      reject(error);
      for (const p of pending.values()) p.reject(error);
    });
    proc.on('message', (message: { ready?: Ready; id?: number; result?: Out; error?: string }) => {
      if (message.ready !== undefined) resolve(message.ready);
      if (message.id === undefined) return;
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (message.error !== undefined) waiter?.reject(new Error(message.error));
      else waiter?.resolve(message.result as Out);
    });
  });
  const child: Child<Out> = {
    process: proc,
    call(command) {
      const id = nextId++;
      return new Promise<Out>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        proc.send({ id, command });
      });
    },
  };
  return { child, ready: await ready };
}

export type Next = (args: unknown) => Promise<unknown>;
export interface MiddlewareStack {
  add(middleware: (next: Next, context: { commandName?: string }) => Next, options: object): void;
}

/** Counts every request `client` sends, by command name, into `counts`. */
export function counting<T extends { middlewareStack: unknown }>(client: T, counts: CommandCounts): T {
  (client.middlewareStack as MiddlewareStack).add(
    (next, context) => async (args) => {
      const name = String(context.commandName);
      counts[name] = (counts[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'benchCounter' },
  );
  return client;
}
