import type { InstanceClients } from '#local/pipeline/senders.ts';
import { UUID_KEY_PREFIX } from '#shared/ledger/delivery.ts';
import { JOB_KEY_PREFIX, LEDGER_TABLE_KEY } from '#shared/ledger/schema.ts';
import type { OutageService, PlannedJob, PlannedOutage } from '#test/chaos/plan.ts';

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
 *   retries with its backoff, spends its retry quota, and gives up.
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

  /** Instruments the SDK clients of one container of an instance (the pipeline's `onInstance` hook). */
  instrument(clients: InstanceClients): void {
    this.#add(clients.dynamodb.middlewareStack, (next) => (args) => this.#dynamodb(next, args));
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
