import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

let faultsInjected = 0;

/** A fault `injectDynamoFaults` puts on the DynamoDB calls of one client. */
export interface DynamoFault {
  /** The DynamoDB operation: `PutItem`, `UpdateItem`, `GetItem`, ... */
  readonly operation: string;
  /**
   * Picks the calls by their JSON text; default: every call of `operation`. For `lost_answer` and `throttled` it
   * is the request's body (marshalled, as sent: `{"id":{"S":"webhook#..."}}`); for `down`, which acts before the
   * request is built, it is the command's input, `JSON.stringify(args.input)` (through a document client, not
   * marshalled: `{"id":"webhook#..."}`). A match on a quoted key prefix (`'"webhook#'`) or on the expression text
   * picks the same calls either way.
   */
  readonly match?: (requestBody: string) => boolean;
  /**
   * `lost_answer`: DynamoDB applies the first attempt of the call, then the connection resets before the answer
   * arrives, so the SDK sends it again; `throttled`: every attempt of the call is refused with
   * `ThrottlingException` before it reaches the table, so the SDK gives up on it; `down`: the call fails at once
   * with `ThrottlingException`, as after the SDK's last retry (an outage, without the retries' real waits).
   */
  readonly kind: 'lost_answer' | 'throttled' | 'down';
  /** How many matching calls (`send`s, each with its SDK retries) to spoil. */
  readonly calls: number;
}

/**
 * Spoils the first matching DynamoDB calls of `client` as `fault` says. It works inside the SDK's retry loop (the
 * `deserialize` step runs once per attempt; a call's attempts share its `amz-sdk-invocation-id`), so the SDK's own
 * retries meet the fault as they would meet a real one. Returns a reader of the attempts spoiled so far.
 */
export function injectDynamoFaults(client: DynamoDBClient, fault: DynamoFault): () => number {
  if (fault.kind === 'down') return failAtOnce(client, fault);
  const spoiledCalls = new Set<string>();
  let spoiledAttempts = 0;
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      const headers = request.headers ?? {};
      const call = headers['amz-sdk-invocation-id'] ?? '';
      const body = request.body instanceof Uint8Array ? Buffer.from(request.body).toString('utf8') : '';
      const firstAttempt = /attempt=1;/.test(headers['amz-sdk-request'] ?? 'attempt=1;');
      const matches =
        (headers['x-amz-target'] ?? '').endsWith(`.${fault.operation}`) && (fault.match?.(body) ?? true);
      const spoil = spoiledCalls.has(call)
        ? fault.kind === 'throttled'
        : matches && firstAttempt && spoiledCalls.size < fault.calls;
      if (!spoil) return next(args);
      spoiledCalls.add(call);
      spoiledAttempts += 1;
      if (fault.kind === 'throttled') {
        throw Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), {
          name: 'ThrottlingException',
          $metadata: { httpStatusCode: 400 },
        });
      }
      await next(args).catch(() => undefined);
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    },
    { step: 'deserialize', name: `dynamoTestFault${++faultsInjected}` },
  );
  return () => spoiledAttempts;
}

/**
 * `down`: the matching calls fail before the SDK's retry loop, as a call that ran out of retries does. The request
 * body does not exist yet at `initialize`, so `match` sees the command's input.
 */
function failAtOnce(client: DynamoDBClient, fault: DynamoFault): () => number {
  let spoiled = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = (context as { commandName?: string }).commandName ?? '';
      if (operation !== `${fault.operation}Command` || spoiled >= fault.calls) return next(args);
      if (fault.match !== undefined && !fault.match(JSON.stringify(args.input))) return next(args);
      spoiled += 1;
      throw Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), {
        name: 'ThrottlingException',
        $metadata: { httpStatusCode: 400 },
      });
    },
    { step: 'initialize', name: `dynamoTestFault${++faultsInjected}` },
  );
  return () => spoiled;
}
