import type { InstanceClients } from '#local/pipeline/senders.ts';
import { AWS_CALL_LIMITS } from '#shared/clients/aws-call-limits.ts';
import { UUID_KEY_PREFIX } from '#shared/ledger/delivery.ts';
import { JOB_KEY_PREFIX, LEDGER_TABLE_KEY } from '#shared/ledger/schema.ts';
import type { OutageService, PlannedJob, PlannedOutage, PlannedTimeouts } from '#test/chaos/plan.ts';

/** An outage as it happened: the service, and from and to in epoch ms. */
export interface Outage {
  readonly service: OutageService;
  readonly from: number;
  readonly to: number;
}

/** A ledger write of a job that the world spoiled, and when (epoch ms). */
export interface SpoiledWrite {
  readonly jobId: string;
  /**
   * `claim`, `settle`: applied, then the answer lost (the SDK resends it); `settle-throttled`: the settle after a
   * 201, throttled on every SDK try; `index-throttled`: the first uuid index write, throttled on every SDK try.
   */
  readonly kind: 'claim' | 'settle' | 'settle-throttled' | 'index-throttled';
  readonly at: number;
}

/** The SQS calls of the senders and of Lambda's pollers that an SQS outage refuses (every one that writes). */
const SQS_REFUSED = new Set([
  'SendMessage',
  'SendMessageBatch',
  'ChangeMessageVisibility',
  'ChangeMessageVisibilityBatch',
  'DeleteMessage',
  'DeleteMessageBatch',
]);

/** A window of slow DynamoDB as it happened: the instance, and from and to in epoch ms. */
export interface SlowWindow {
  readonly instance: string;
  readonly from: number;
  readonly to: number;
}

/** A planned fault that can make an invocation outlive the function timeout. */
export type TimeoutFault = 'slow-dynamodb' | 'stalled-secret-read';

/** The part of a container (`ContainerIo` of local/lambda/container.ts) the timeout faults read. */
export interface FaultedContainer {
  readonly ended: boolean;
  /** 1 for an instance's first container, then one more per cold start. */
  readonly generation: number;
}

/**
 * One attempt of an AWS call that answers as slowly as the SDK lets it (shared/clients/aws-call-limits.ts): its
 * headers just before the request timeout, then its body just before the socket timeout, ms.
 */
const SLOW_ATTEMPT_MS = AWS_CALL_LIMITS.requestTimeoutMs - 100 + AWS_CALL_LIMITS.socketTimeoutMs - 100;
/**
 * One attempt of a stalled call: headers just before the request timeout, then a body that stalls until the
 * socket timeout gives up on it, ms (every attempt at its worst, as `awsCallWorstCaseMs` counts it).
 */
const STALLED_ATTEMPT_MS = AWS_CALL_LIMITS.requestTimeoutMs - 100 + AWS_CALL_LIMITS.socketTimeoutMs;

const forever = <T>(): Promise<T> => new Promise<T>(() => undefined);
const sleep = (ms: number) => new Promise<void>((resolveSleep) => setTimeout(resolveSleep, ms));

type Middleware = (next: (args: unknown) => Promise<unknown>) => (args: unknown) => Promise<unknown>;

interface HttpRequestView {
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
}

let injected = 0;
const UTF8 = new TextDecoder();

/**
 * The faults the chaos world puts on the senders' AWS calls, inside the SDK's retry loop (the `deserialize` step
 * runs once per attempt, and a call's attempts share their `amz-sdk-invocation-id`), as
 * test/helpers/dynamo-faults.ts does for one client, so the SDK's own retries meet each fault as they would
 * meet a real one:
 *
 * - DynamoDB answers lost after the write applied: the first claim or the first settle of a planned job reaches
 *   the table, then the connection resets; the SDK sends it again, and the resend fails its condition against
 *   the very write it repeats;
 * - a settle after a 201 throttled on every try, and the first uuid index write of a delivered job throttled
 *   on every try (the SDK gives up: `ThrottlingException`);
 * - outages: while one lasts, every attempt of the service's calls is refused as the service refuses when it is
 *   down (DynamoDB `InternalServerError` 500, SQS `ServiceUnavailable` 503 on every call that writes: sends,
 *   visibility changes and deletes, the pollers' included, EventBridge `InternalException` 500), so the SDK
 *   retries with its backoff, spends its retry quota, and gives up;
 * - timeouts (docs/chaos.md, "Function timeouts"): in a window of slow DynamoDB, every attempt of the instance's
 *   DynamoDB calls answers just before the SDK's request and socket timeouts would fire (`SLOW_ATTEMPT_MS`), so
 *   the claim, the settle and the index write of one record outlive the function timeout together; and one
 *   instance's cold-start `GetSecretValue` stalls on every attempt until the socket timeout gives up on it, so
 *   the SDK gives up after all its attempts, later than the function timeout. A delayed attempt of a container
 *   ended meanwhile never leaves, as nothing of an ended container does.
 */
export class AwsFaults {
  readonly #jobs: ReadonlyMap<string, PlannedJob>;
  #outages: readonly Outage[] = [];
  readonly #now: () => number;
  /** Job faults already used: each happens once per job, whichever instance meets it. */
  readonly #used = new Set<string>();
  /** Calls (invocation ids) whose every attempt is throttled. */
  readonly #throttledCalls = new Set<string>();
  readonly spoiled: SpoiledWrite[] = [];
  /** Attempts each outage refused, by service. */
  readonly refused: Record<OutageService, number> = { dynamodb: 0, sqs: 0, eventbridge: 0 };
  #slowWindows: readonly SlowWindow[] = [];
  #stalledSecretRead: string | undefined;
  /** Invocation ids of the stalled `GetSecretValue` calls (one per stalled instance). */
  readonly #stalledCalls = new Set<string>();
  /** Epoch ms each instance last had an attempt slowed, by fault. */
  readonly #lastSlowed = new Map<string, Partial<Record<TimeoutFault, number>>>();
  /** Attempts the timeout faults slowed or stalled, by fault. */
  readonly slowed: Record<TimeoutFault, number> = {
    'slow-dynamodb': 0,
    'stalled-secret-read': 0,
  };

  constructor(options: { jobs: ReadonlyMap<string, PlannedJob>; now?: () => number }) {
    this.#jobs = options.jobs;
    this.#now = options.now ?? Date.now;
  }

  /** The outages, in epoch ms: scheduled by `schedule`. */
  get outages(): readonly Outage[] {
    return this.#outages;
  }

  /** Schedules the planned outages, counted from `start` (epoch ms: when the jobs were put on the queue). */
  schedule(start: number, planned: readonly PlannedOutage[]): void {
    this.#outages = planned.map((outage) => ({
      service: outage.service,
      from: start + outage.fromMs,
      to: start + outage.toMs,
    }));
  }

  /** The windows of slow DynamoDB, in epoch ms: scheduled by `scheduleTimeouts`. */
  get slowWindows(): readonly SlowWindow[] {
    return this.#slowWindows;
  }

  /**
   * Schedules the planned timeout faults, the windows counted from `start` (epoch ms: when the jobs were put on
   * the queue).
   */
  scheduleTimeouts(start: number, planned: PlannedTimeouts): void {
    this.#slowWindows = planned.slowDynamodb.map((window) => ({
      instance: window.instance,
      from: start + window.fromMs,
      to: start + window.toMs,
    }));
    this.#stalledSecretRead = planned.stalledSecretRead;
  }

  /** Records that `instance` met `fault` now, for `timeoutCause`. */
  #met(instance: string, fault: TimeoutFault): void {
    const last = this.#lastSlowed.get(instance) ?? {};
    last[fault] = this.#now();
    this.#lastSlowed.set(instance, last);
  }

  /**
   * The planned timeout fault `instance` met since `since` (epoch ms: its batch was received), the stalled
   * secret read first (it holds the whole invocation up), or undefined when it met none.
   */
  timeoutCause(instance: string, since: number | undefined): TimeoutFault | undefined {
    const last = this.#lastSlowed.get(instance) ?? {};
    const order: TimeoutFault[] = ['stalled-secret-read', 'slow-dynamodb'];
    return order.find((fault) => (last[fault] ?? Number.NEGATIVE_INFINITY) >= (since ?? 0));
  }

  /**
   * Instruments the SDK clients of one container of `instance` (the pipeline's `onInstance` hook); `container`
   * is the container they belong to, whose end a delayed attempt respects.
   */
  instrument(clients: InstanceClients, instance: string, container: FaultedContainer): void {
    this.#add(clients.dynamodb.middlewareStack, (next) => (args) => this.#dynamodb(next, args));
    this.#add(clients.dynamodb.middlewareStack, (next) => async (args) => {
      if (!this.#slowNow(instance)) return next(args);
      this.slowed['slow-dynamodb'] += 1;
      this.#met(instance, 'slow-dynamodb');
      await sleep(SLOW_ATTEMPT_MS);
      return container.ended ? forever() : next(args);
    });
    this.#add(clients.secrets.middlewareStack, (next) => async (args) => {
      const call = (args as { request?: HttpRequestView }).request?.headers?.['amz-sdk-invocation-id'] ?? '';
      const first = instance === this.#stalledSecretRead && container.generation === 1;
      if (first && this.#stalledCalls.size === 0 && operationOf(args) === 'GetSecretValue') {
        this.#stalledCalls.add(call);
      }
      if (!this.#stalledCalls.has(call)) return next(args);
      this.slowed['stalled-secret-read'] += 1;
      this.#met(instance, 'stalled-secret-read');
      await sleep(STALLED_ATTEMPT_MS);
      if (container.ended) return forever();
      throw Object.assign(new Error(`Connection timed out after ${AWS_CALL_LIMITS.socketTimeoutMs} ms`), {
        name: 'TimeoutError',
      });
    });
    this.instrumentPoller(clients.sqs);
    if (clients.events) {
      this.#add(
        clients.events.middlewareStack,
        (next) => (args) => this.#refuseIfDown('eventbridge', next, args),
      );
    }
  }

  /** Instruments an SQS client: the senders' own, or the pollers' (the pipeline's `onPoller` hook). */
  instrumentPoller(sqs: InstanceClients['sqs']): void {
    this.#add(sqs.middlewareStack, (next) => (args) => this.#refuseIfDown('sqs', next, args));
  }

  #add(stack: { add(middleware: never, options: object): void }, middleware: Middleware): void {
    stack.add(middleware as never, { step: 'deserialize', name: `chaosAwsFault${++injected}` });
  }

  #slowNow(instance: string): boolean {
    const now = this.#now();
    return this.#slowWindows.some(
      (window) => window.instance === instance && now >= window.from && now < window.to,
    );
  }

  #down(service: OutageService): boolean {
    const now = this.#now();
    return this.#outages.some(
      (outage) => outage.service === service && now >= outage.from && now < outage.to,
    );
  }

  async #refuseIfDown(service: OutageService, next: (args: unknown) => Promise<unknown>, args: unknown) {
    const operation = operationOf(args);
    if (this.#down(service) && (service !== 'sqs' || SQS_REFUSED.has(operation))) {
      this.refused[service] += 1;
      throw OUTAGE_ERRORS[service]();
    }
    return next(args);
  }

  async #dynamodb(next: (args: unknown) => Promise<unknown>, args: unknown): Promise<unknown> {
    if (this.#down('dynamodb')) {
      this.refused.dynamodb += 1;
      throw OUTAGE_ERRORS.dynamodb();
    }
    const request = (args as { request?: HttpRequestView }).request ?? {};
    const headers = request.headers ?? {};
    const call = headers['amz-sdk-invocation-id'] ?? '';
    if (this.#throttledCalls.has(call)) throw throttled();
    const firstAttempt = /attempt=1;/.test(headers['amz-sdk-request'] ?? 'attempt=1;');
    if (!firstAttempt || operationOf(args) !== 'PutItem') return next(args);
    const fault = this.#faultOf(itemOf(request.body));
    if (fault === undefined) return next(args);
    this.spoiled.push({ ...fault, at: this.#now() });
    if (fault.kind === 'claim' || fault.kind === 'settle') {
      // Applied, then the connection resets before the answer arrives.
      await next(args).catch(() => undefined);
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    }
    this.#throttledCalls.add(call);
    throw throttled();
  }

  /** The planned fault this PutItem meets (and uses up), if any. */
  #faultOf(item: Record<string, Record<string, unknown>> | undefined): Omit<SpoiledWrite, 'at'> | undefined {
    const key = String(item?.[LEDGER_TABLE_KEY]?.S ?? '');
    const candidates: Omit<SpoiledWrite, 'at'>[] = [];
    if (key.startsWith(JOB_KEY_PREFIX)) {
      const jobId = key.slice(JOB_KEY_PREFIX.length);
      const job = this.#jobs.get(jobId);
      const claim = item?.attempt_open?.BOOL === true;
      if (job?.lostAnswer === 'claim' && claim) candidates.push({ jobId, kind: 'claim' });
      if (job?.lostAnswer === 'settle' && !claim) candidates.push({ jobId, kind: 'settle' });
      if (job?.settleThrottled && item?.status?.S === 'delivered') {
        candidates.push({ jobId, kind: 'settle-throttled' });
      }
    } else if (key.startsWith(UUID_KEY_PREFIX)) {
      const jobId = String(item?.job_id?.S ?? '');
      if (this.#jobs.get(jobId)?.indexThrottled) candidates.push({ jobId, kind: 'index-throttled' });
    }
    const found = candidates.find((fault) => !this.#used.has(`${fault.kind}:${fault.jobId}`));
    if (found) this.#used.add(`${found.kind}:${found.jobId}`);
    return found;
  }
}

/** The operation of a request, from its `X-Amz-Target` (`DynamoDB_20120810.PutItem` → `PutItem`). */
function operationOf(args: unknown): string {
  const target = (args as { request?: HttpRequestView }).request?.headers?.['x-amz-target'] ?? '';
  return target.slice(target.lastIndexOf('.') + 1);
}

/** The marshalled `Item` of a PutItem request body, or undefined. */
function itemOf(body: unknown): Record<string, Record<string, unknown>> | undefined {
  // Decoded as bytes: the SDK's body adapter warns when read as a string (Buffer.from calls its valueOf).
  const text = typeof body === 'string' ? body : body instanceof Uint8Array ? UTF8.decode(body) : '';
  try {
    return (JSON.parse(text) as { Item?: Record<string, Record<string, unknown>> }).Item;
  } catch {
    return undefined;
  }
}

function serviceError(name: string, status: number, message: string): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: 'server',
    $metadata: { httpStatusCode: status, attempts: 1, totalRetryDelay: 0 },
  });
}

function throttled(): Error {
  return Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), {
    name: 'ThrottlingException',
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
  });
}

const OUTAGE_ERRORS: Record<OutageService, () => Error> = {
  dynamodb: () => serviceError('InternalServerError', 500, 'Internal server error'),
  sqs: () =>
    serviceError(
      'ServiceUnavailable',
      503,
      'The request has failed due to a temporary failure of the server.',
    ),
  eventbridge: () => serviceError('InternalException', 500, 'An internal error occurred.'),
};
