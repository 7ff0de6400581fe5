import { randomUUID } from 'node:crypto';
import { accessKeyIdOf, type CheckedCall, type IamGate } from '#local/iam/gate.ts';
import { localEventBusArn } from '#local/iam/template-policies.ts';
import { PUT_EVENTS_MAX_BYTES, PUT_EVENTS_MAX_ENTRIES } from '#shared/clients/put-events-limits.ts';
import { listenOnLoopback, readBody, writeJson } from './loopback-server.ts';

/** One event the stub accepted. */
export interface PublishedEvent {
  readonly eventId: string;
  readonly eventBusName: string;
  readonly source: string;
  readonly detailType: string;
  /** The `Detail`, parsed. */
  readonly detail: unknown;
  /** Epoch ms when the stub accepted it. */
  readonly receivedAt: number;
}

/** One entry of a `PutEvents` request, as the stub saw it (before any injected failure). */
export interface PutEventsEntry {
  readonly EventBusName?: string;
  readonly Source?: string;
  readonly DetailType?: string;
  readonly Detail?: string;
}

export interface EventBridgeStub {
  /** Point the SDK here: `endpoint` option or `AWS_ENDPOINT_URL_EVENTBRIDGE`. */
  readonly url: string;
  /** Every event accepted, in order. */
  readonly events: readonly PublishedEvent[];
  /** Every call, in order: the `X-Amz-Target` and how many entries it carried. */
  readonly calls: ReadonlyArray<{ readonly target: string; readonly entries: number }>;
  /**
   * Makes the next `count` PutEvents calls fail as a whole with `errorType` (e.g. 'InternalException',
   * 'ThrottlingException'). Status defaults to 500 for InternalException, else 400.
   */
  failNext(count: number, errorType: string, options?: { status?: number }): void;
  /**
   * Makes the next `count` PutEvents calls refuse the entries `select` picks (default: all), with `errorCode`
   * (default 'InternalFailure') and a `FailedEntryCount`, as EventBridge does; the other entries are accepted.
   */
  failEntriesNext(
    count: number,
    options?: { select?: (entry: PutEventsEntry, index: number) => boolean; errorCode?: string },
  ): void;
  /** Calls `listener` with every accepted event; returns an unsubscribe function. */
  subscribe(listener: (event: PublishedEvent) => void): () => void;
  /** Forgets the events and calls recorded so far (not the injected failures). */
  clear(): void;
  /** Drops the failures still queued by `failNext` and `failEntriesNext`: the outage is over. */
  recover(): void;
  /** Requests of a function role that the stack's IAM denied (the `iam` option), oldest first. */
  denials(): readonly CheckedCall[];
  close(): Promise<void>;
}

const TARGET_PREFIX = 'AWSEvents.';
const CONTENT_TYPE = 'application/x-amz-json-1.1';

type Failure =
  | { readonly kind: 'call'; readonly status: number; readonly type: string }
  | {
      readonly kind: 'entries';
      readonly select: (entry: PutEventsEntry, index: number) => boolean;
      readonly errorCode: string;
    };

/**
 * Starts a loopback endpoint speaking enough of EventBridge's AWS JSON 1.1 protocol for the real
 * `@aws-sdk/client-eventbridge` to run `PutEvents` against it, as `local/emulators/secrets-manager-stub.ts` does for
 * Secrets Manager. It records what was published and can fail whole calls or single entries on demand.
 * Signatures are not checked; any bus name is accepted.
 *
 * @example
 * const stub = await startEventBridgeStub();
 * const client = new EventBridgeClient({ endpoint: stub.url, region: 'us-east-1', credentials });
 */
export async function startEventBridgeStub(
  options: {
    host?: string;
    port?: number;
    /**
     * The stack's IAM (local/iam/): each entry's bus (`EventBusName`, the default bus when absent) is authorized
     * for `events:PutEvents` first, and a call with a denied entry answered as EventBridge answers it
     * (`AccessDeniedException`, HTTP 400). @default every request is allowed
     */
    iam?: IamGate | undefined;
  } = {},
): Promise<EventBridgeStub> {
  const denied: CheckedCall[] = [];
  const events: PublishedEvent[] = [];
  const calls: { target: string; entries: number }[] = [];
  const failures: Failure[] = [];
  const listeners = new Set<(event: PublishedEvent) => void>();

  const putEvents = (input: Record<string, unknown>): { status: number; body: object; type?: string } => {
    const entries = input.Entries;
    if (!Array.isArray(entries) || entries.length === 0 || entries.length > PUT_EVENTS_MAX_ENTRIES) {
      return validation(`Entries must hold 1 to ${PUT_EVENTS_MAX_ENTRIES} entries.`);
    }
    const failure = failures.shift();
    if (failure?.kind === 'call') {
      return {
        status: failure.status,
        type: failure.type,
        body: { __type: failure.type, message: `Injected ${failure.type}.` },
      };
    }
    const results = (entries as PutEventsEntry[]).map((entry, index) => {
      if (failure?.kind === 'entries' && failure.select(entry, index)) {
        return { ErrorCode: failure.errorCode, ErrorMessage: `Injected ${failure.errorCode}.` };
      }
      const problem = entryProblem(entry);
      if (problem) return { ErrorCode: 'MalformedDetail', ErrorMessage: problem };
      const event: PublishedEvent = {
        eventId: randomUUID(),
        eventBusName: entry.EventBusName ?? 'default',
        source: entry.Source ?? '',
        detailType: entry.DetailType ?? '',
        detail: JSON.parse(entry.Detail ?? '{}'),
        receivedAt: Date.now(),
      };
      events.push(event);
      for (const listener of listeners) listener(event);
      return { EventId: event.eventId };
    });
    const failed = results.filter((result) => 'ErrorCode' in result).length;
    return { status: 200, body: { FailedEntryCount: failed, Entries: results } };
  };

  const server = await listenOnLoopback(
    async (req, res) => {
      const text = await readBody(req, 2 * PUT_EVENTS_MAX_BYTES);
      const target = String(req.headers['x-amz-target'] ?? '');
      const headers = { 'x-amzn-requestid': randomUUID() };
      const answer = (result: { status: number; body: object; type?: string }) =>
        writeJson(
          res,
          result.status,
          result.body,
          result.type ? { ...headers, 'x-amzn-errortype': result.type } : headers,
          CONTENT_TYPE,
        );
      let input: unknown;
      try {
        input = text === undefined || text === '' ? undefined : JSON.parse(text);
      } catch {
        input = undefined;
      }
      const entries = isRecord(input) && Array.isArray(input.Entries) ? input.Entries.length : 0;
      calls.push({ target, entries });
      if (req.method !== 'POST' || target !== `${TARGET_PREFIX}PutEvents`) {
        answer(error(400, 'UnknownOperationException', `Unknown operation ${target}`));
        return;
      }
      if (text === undefined || Buffer.byteLength(text) > PUT_EVENTS_MAX_BYTES + 16 * 1024) {
        answer(validation('Total size of the entries in the request is over the limit.'));
        return;
      }
      if (!isRecord(input)) {
        answer(error(400, 'SerializationException', 'The request body is not valid JSON.'));
        return;
      }
      if (options.iam && Array.isArray(input.Entries)) {
        const buses = new Set(
          (input.Entries as PutEventsEntry[]).map((entry) => entry.EventBusName ?? 'default'),
        );
        for (const bus of buses) {
          const decision = await options.iam.authorize({
            accessKeyId: accessKeyIdOf(req.headers),
            action: 'events:PutEvents',
            resource: localEventBusArn(bus),
          });
          if (decision.allowed) continue;
          denied.push(decision.call);
          answer(error(400, 'AccessDeniedException', decision.message));
          return;
        }
      }
      answer(putEvents(input));
    },
    { host: options.host, port: options.port },
  );

  return {
    url: server.url,
    events,
    calls,
    failNext(count, errorType, failure = {}) {
      positive(count);
      const status = failure.status ?? (errorType === 'InternalException' ? 500 : 400);
      for (let i = 0; i < count; i += 1) failures.push({ kind: 'call', status, type: errorType });
    },
    failEntriesNext(count, failure = {}) {
      positive(count);
      const select = failure.select ?? (() => true);
      const errorCode = failure.errorCode ?? 'InternalFailure';
      for (let i = 0; i < count; i += 1) failures.push({ kind: 'entries', select, errorCode });
    },
    recover() {
      failures.length = 0;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    clear() {
      events.length = 0;
      calls.length = 0;
    },
    denials: () => [...denied],
    close: () => server.close(),
  };
}

/** What EventBridge would refuse in one entry, or undefined. */
function entryProblem(entry: PutEventsEntry): string | undefined {
  if (!entry.Source || !entry.DetailType || entry.Detail === undefined) {
    return 'Source, DetailType and Detail are required.';
  }
  let detail: unknown;
  try {
    detail = JSON.parse(entry.Detail);
  } catch {
    return 'Detail is not valid JSON.';
  }
  return isRecord(detail) ? undefined : 'Detail must be a JSON object.';
}

function validation(message: string) {
  return error(400, 'ValidationException', message);
}

function error(status: number, type: string, message: string) {
  return { status, type, body: { __type: type, message } };
}

function positive(count: number): void {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be >= 1, got ${count}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
