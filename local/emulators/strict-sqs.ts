import { randomUUID } from 'node:crypto';
import {
  Agent,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from 'node:http';
import { listenOnLoopback } from '#local/emulators/loopback-server.ts';
import { parseQueryRequest, toQueryAnswer } from '#local/emulators/sqs-query-protocol.ts';
import {
  checkBatch,
  checkBatchSize,
  checkMessage,
  checkTotalVisibility,
  checkVisibilityTimeout,
  staleReceiptHandle,
  type Violation,
  type WireMessage,
} from '#local/emulators/strict-sqs-rules.ts';
import { accessKeyIdOf, type CheckedCall, type IamGate } from '#local/iam/gate.ts';
import { localQueueArn } from '#local/iam/template-policies.ts';

/** A request, or one batch entry, that the strict layer refused as real SQS would. */
export interface SqsRefusal {
  /** The SQS action, e.g. `ChangeMessageVisibility`. */
  readonly action: string;
  /** SQS's error code, e.g. `InvalidParameterValue`. */
  readonly code: string;
  /** SQS's error message; it names attributes and character codes, never a value or a message text. */
  readonly message: string;
  readonly queueUrl?: string | undefined;
  /** The batch entry's `Id`, for a refusal inside a batch (SQS answers those in `Failed`). */
  readonly entryId?: string | undefined;
  /** Epoch ms, by the layer's clock. */
  readonly at: number;
}

/** A DeleteMessage with a receipt handle from an earlier receive: SQS answers success but keeps the message. */
export interface IgnoredDelete {
  readonly queueUrl?: string | undefined;
  readonly messageId: string;
  /** Epoch ms, by the layer's clock. */
  readonly at: number;
}

export interface StrictSqsOptions {
  /** The lenient SQS endpoint to forward accepted requests to (fauxqs). */
  readonly upstream: string;
  /** Port on 127.0.0.1; 0 picks a free one. @default 0 */
  readonly port?: number | undefined;
  /** Epoch ms; the receive time of each receipt handle and the 12 h are counted with it. @default Date.now */
  readonly now?: () => number;
  /**
   * The run's time scale: the 12 h total visibility is counted in scaled time, so a sender that scales its
   * delays down is held to the limit it would meet in AWS. Parameter ranges (0..43,200, 0..900) stay as SQS
   * has them. @default 1
   */
  readonly timeScale?: number;
  /** Called for every refusal, e.g. to print it in a local run. */
  readonly onRefusal?: (refusal: SqsRefusal) => void;
  /**
   * The stack's IAM (local/iam/): each request of a function role is authorized first and a denied one answered
   * as SQS answers it (`AccessDenied`). @default every request is allowed
   */
  readonly iam?: IamGate | undefined;
  /** The region of the queues' ARNs. @default 'us-east-1' */
  readonly region?: string | undefined;
  /**
   * Called for every message the upstream took with a `MessageGroupId` (SendMessage, SendMessageBatch), so that
   * an upstream without fair queues can keep the group of a standard queue's message (local/emulators/sqs-emulator.ts).
   */
  readonly onMessageGroup?: (queueUrl: string, messageId: string, group: string) => void;
}

export interface StrictSqsLayer {
  /** The endpoint clients use, e.g. http://127.0.0.1:41234. */
  readonly endpoint: string;
  /** Every refusal so far, oldest first. */
  refusals(): readonly SqsRefusal[];
  /** Deletes that named a stale receipt handle, so deleted nothing. */
  ignoredDeletes(): readonly IgnoredDelete[];
  /** Requests the `iam` gate denied, oldest first. */
  denials(): readonly CheckedCall[];
  close(): Promise<void>;
}

/** What the layer knows about one receipt handle, from the ReceiveMessage answer that produced it. */
interface Receipt {
  readonly messageId: string;
  /** Epoch ms of the receive. */
  readonly receivedAt: number;
  state: 'current' | 'superseded' | 'deleted';
}

type Body = Record<string, unknown>;
type Entry = Record<string, unknown> & { Id?: unknown };

/** The legacy query-protocol codes the SDK maps errors by (`x-amzn-query-error`); others are the code itself. */
const QUERY_ERROR_CODE: Readonly<Record<string, string>> = {
  EmptyBatchRequest: 'AWS.SimpleQueueService.EmptyBatchRequest',
  TooManyEntriesInBatchRequest: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
  BatchEntryIdsNotDistinct: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
  InvalidBatchEntryId: 'AWS.SimpleQueueService.InvalidBatchEntryId',
  BatchRequestTooLong: 'AWS.SimpleQueueService.BatchRequestTooLong',
};

const JSON_CONTENT_TYPE = 'application/x-amz-json-1.0';

/**
 * Starts a loopback HTTP proxy in front of a lenient SQS emulator that refuses, with the error real SQS returns
 * (HTTP 400, `__type` `com.amazonaws.sqs#<Code>`, `x-amzn-query-error`), whatever real SQS refuses
 * (local/emulators/strict-sqs-rules.ts): message size, characters, attributes, `DelaySeconds`, batch entries, a
 * `VisibilityTimeout` out of range or beyond 12 h from the receive, and a stale receipt handle. A refused batch
 * entry is answered in `Failed`, as SQS does; the others are forwarded. A DeleteMessage with a stale handle is
 * answered with success and deletes nothing ("the request will succeed, but the message might not be deleted",
 * DeleteMessage): the layer takes the strict reading of "might".
 *
 * It speaks both of SQS's wire protocols: the AWS JSON 1.0 protocol of current SDKs and AWS CLIs
 * (`X-Amz-Target: AmazonSQS.<Action>`), and the query protocol of older ones (a form-encoded `Action=...`
 * request, an XML answer), which it translates to its JSON twin and back (local/emulators/sqs-query-protocol.ts),
 * so that both meet the same rules and the same IAM check (docs/sqs-limits.md, "The strict SQS layer"). Anything
 * else (fauxqs's own inspection endpoints) is forwarded untouched.
 */
export async function startStrictSqsLayer(options: StrictSqsOptions): Promise<StrictSqsLayer> {
  const now = options.now ?? Date.now;
  const timeScale = options.timeScale ?? 1;
  const upstream = new URL(options.upstream);
  const agent = new Agent({ keepAlive: true });
  const refused: SqsRefusal[] = [];
  const ignored: IgnoredDelete[] = [];
  const denied: CheckedCall[] = [];
  const receipts = new Map<string, Receipt>();
  const latestHandle = new Map<string, string>();

  const refuse = (action: string, body: Body, violation: Violation, entryId?: string): void => {
    const refusal: SqsRefusal = { action, ...violation, queueUrl: queueUrlOf(body), entryId, at: now() };
    refused.push(refusal);
    options.onRefusal?.(refusal);
  };

  /** The stale-handle and 12 h rules for one visibility change; the range rule comes first, as in SQS. */
  const checkVisibilityChange = (handle: unknown, timeout: unknown): Violation | undefined => {
    const range = checkVisibilityTimeout(timeout);
    if (range) return range;
    const receipt = typeof handle === 'string' ? receipts.get(handle) : undefined;
    // A handle the layer never saw (made up, or from a receive that bypassed it) is left to the emulator.
    if (!receipt) return undefined;
    if (receipt.state !== 'current') return staleReceiptHandle(String(handle));
    // Whole seconds, as SQS counts the timeout; scaled like every other window of a time-scaled run.
    const elapsed = Math.floor(((now() - receipt.receivedAt) / 1000) * timeScale);
    return checkTotalVisibility(elapsed, (timeout as number) * timeScale);
  };

  /** Hands an accepted message's `MessageGroupId` to `onMessageGroup`. */
  const grouped = (body: Body, messageId: string, group: unknown): void => {
    const queueUrl = queueUrlOf(body);
    if (typeof group === 'string' && queueUrl !== undefined)
      options.onMessageGroup?.(queueUrl, messageId, group);
  };

  const isStale = (handle: unknown): Receipt | undefined => {
    const receipt = typeof handle === 'string' ? receipts.get(handle) : undefined;
    return receipt && receipt.state !== 'current' ? receipt : undefined;
  };

  const forget = (handle: unknown): void => {
    const receipt = typeof handle === 'string' ? receipts.get(handle) : undefined;
    if (receipt?.state !== 'current') return;
    receipt.state = 'deleted';
    latestHandle.delete(receipt.messageId);
  };

  const remember = (answer: Body): void => {
    const messages = Array.isArray(answer.Messages) ? (answer.Messages as Body[]) : [];
    const at = now();
    for (const message of messages) {
      const { MessageId: messageId, ReceiptHandle: handle } = message;
      if (typeof messageId !== 'string' || typeof handle !== 'string') continue;
      const previous = latestHandle.get(messageId);
      const earlier = previous === undefined ? undefined : receipts.get(previous);
      if (earlier) earlier.state = 'superseded';
      receipts.set(handle, { messageId, receivedAt: at, state: 'current' });
      latestHandle.set(messageId, handle);
    }
  };

  /**
   * A batch action: batch-level rules refuse the whole request; `entryRule` refuses single entries into
   * `Failed` or settles them here (`ok`); the rest are forwarded and the answers merged.
   */
  const batch = async (
    action: string,
    body: Body,
    forward: (body: Body) => Promise<Upstream>,
    entryRule: (entry: Entry) => Violation | 'ok' | undefined,
    batchRule?: (entries: Entry[]) => Violation | undefined,
  ): Promise<Upstream> => {
    const violation = checkBatch(body.Entries) ?? batchRule?.(body.Entries as Entry[]);
    if (violation) {
      refuse(action, body, violation);
      return errorAnswer(violation);
    }
    const failed: Body[] = [];
    const settled: Body[] = [];
    const passed: Entry[] = [];
    for (const entry of body.Entries as Entry[]) {
      const verdict = entryRule(entry);
      if (verdict === 'ok') settled.push({ Id: entry.Id });
      else if (verdict) {
        refuse(action, body, verdict, String(entry.Id));
        failed.push({ Id: entry.Id, SenderFault: true, Code: verdict.code, Message: verdict.message });
      } else passed.push(entry);
    }
    if (passed.length === 0) return jsonAnswer(200, { Successful: settled, Failed: failed });
    const answer = await forward({ ...body, Entries: passed });
    const parsed = answer.status === 200 ? parseJson(answer.body) : undefined;
    if (!parsed) return answer;
    const successful = [...settled, ...asArray(parsed.Successful)];
    return jsonAnswer(200, {
      ...parsed,
      Successful: successful,
      Failed: [...failed, ...asArray(parsed.Failed)],
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = await readAll(req);
    const query = parseQueryRequest(req.headers, raw);
    if (query) {
      // The query protocol's request as its JSON 1.0 twin, through the same rules, its answer back as XML.
      const headers = {
        ...req.headers,
        'content-type': JSON_CONTENT_TYPE,
        'x-amz-target': `AmazonSQS.${query.action}`,
      };
      const json = Buffer.from(JSON.stringify(query.body));
      const answer = await answerAction(req, headers, query.action, query.body, json);
      return send(res, toQueryAnswer(query.action, answer));
    }
    const target = req.headers['x-amz-target'];
    const action =
      typeof target === 'string' && target.startsWith('AmazonSQS.') ? target.slice(10) : undefined;
    const body = action ? parseJson(raw) : undefined;
    if (!action || !body) {
      return send(
        res,
        await forwardTo(upstream, agent, req.method ?? 'POST', req.url ?? '/', req.headers, raw),
      );
    }
    return send(res, await answerAction(req, req.headers, action, body, raw));
  };

  /** The answer to one JSON 1.0 request (`raw`, parsed as `body`): refused, settled here or forwarded. */
  const answerAction = async (
    req: IncomingMessage,
    headers: IncomingHttpHeaders,
    action: string,
    body: Body,
    raw: Buffer,
  ): Promise<Upstream> => {
    const forwardRaw = (payload: Buffer) =>
      forwardTo(upstream, agent, req.method ?? 'POST', req.url ?? '/', headers, payload);
    const forward = (next: Body) => forwardRaw(Buffer.from(JSON.stringify(next)));
    if (options.iam) {
      const decision = await options.iam.authorize({
        accessKeyId: accessKeyIdOf(req.headers),
        action: iamActionOf(action),
        resource: queueArnOf(body, options.region),
      });
      if (!decision.allowed) {
        denied.push(decision.call);
        return accessDeniedAnswer(decision.message);
      }
    }

    const single = async (violation: Violation | undefined): Promise<Upstream> => {
      if (!violation) return forwardRaw(raw);
      refuse(action, body, violation);
      return errorAnswer(violation);
    };

    switch (action) {
      case 'SendMessage': {
        const answer = await single(checkMessage(body as WireMessage));
        const sent = answer.status === 200 ? parseJson(answer.body) : undefined;
        if (typeof sent?.MessageId === 'string') grouped(body, sent.MessageId, body.MessageGroupId);
        return answer;
      }
      case 'SendMessageBatch': {
        const answer = await batch(
          action,
          body,
          forward,
          (entry) => checkMessage(entry as WireMessage),
          (entries) => checkBatchSize(entries as WireMessage[]),
        );
        const parsed = answer.status === 200 ? parseJson(answer.body) : undefined;
        const groups = new Map(asArray(body.Entries).map((entry) => [entry.Id, entry.MessageGroupId]));
        for (const done of asArray(parsed?.Successful)) {
          if (typeof done.MessageId === 'string') grouped(body, done.MessageId, groups.get(done.Id));
        }
        return answer;
      }
      case 'ChangeMessageVisibility':
        return single(checkVisibilityChange(body.ReceiptHandle, body.VisibilityTimeout));
      case 'ChangeMessageVisibilityBatch':
        return batch(action, body, forward, (entry) =>
          checkVisibilityChange(entry.ReceiptHandle, entry.VisibilityTimeout),
        );
      case 'DeleteMessage': {
        const stale = isStale(body.ReceiptHandle);
        if (stale) {
          ignored.push({ queueUrl: queueUrlOf(body), messageId: stale.messageId, at: now() });
          return jsonAnswer(200, {});
        }
        const answer = await forwardRaw(raw);
        if (answer.status === 200) forget(body.ReceiptHandle);
        return answer;
      }
      case 'DeleteMessageBatch': {
        const handles = new Map<unknown, unknown>();
        const answer = await batch(action, body, forward, (entry) => {
          const stale = isStale(entry.ReceiptHandle);
          if (!stale) {
            handles.set(entry.Id, entry.ReceiptHandle);
            return undefined;
          }
          ignored.push({ queueUrl: queueUrlOf(body), messageId: stale.messageId, at: now() });
          return 'ok';
        });
        const parsed = answer.status === 200 ? parseJson(answer.body) : undefined;
        for (const done of asArray(parsed?.Successful)) forget(handles.get(done.Id));
        return answer;
      }
      case 'ReceiveMessage': {
        const answer = await forwardRaw(raw);
        const parsed = answer.status === 200 ? parseJson(answer.body) : undefined;
        if (parsed) remember(parsed);
        return answer;
      }
      default:
        return forwardRaw(raw);
    }
  };

  const server = await listenOnLoopback(handle, { port: options.port });
  return {
    endpoint: server.url,
    refusals: () => [...refused],
    ignoredDeletes: () => [...ignored],
    denials: () => [...denied],
    async close() {
      await server.close();
      agent.destroy();
    },
  };
}

/** An HTTP answer, whole. */
interface Upstream {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
}

function errorAnswer(violation: Violation): Upstream {
  const answer = jsonAnswer(400, {
    __type: `com.amazonaws.sqs#${violation.code}`,
    message: violation.message,
  });
  return {
    ...answer,
    headers: {
      ...answer.headers,
      'x-amzn-query-error': `${QUERY_ERROR_CODE[violation.code] ?? violation.code};Sender`,
    },
  };
}

/**
 * SQS's answer to a request IAM denies: HTTP 403 with code `AccessDenied` (in `x-amzn-query-error`, which the
 * SDK names its error by), as SQS answers in its query protocol.
 */
function accessDeniedAnswer(message: string): Upstream {
  const answer = jsonAnswer(403, { __type: 'com.amazon.coral.service#AccessDeniedException', message });
  return { ...answer, headers: { ...answer.headers, 'x-amzn-query-error': 'AccessDenied;Sender' } };
}

/**
 * The IAM action of an SQS API action: the batch actions are authorized as their single forms ("You cannot
 * set permissions explicitly for SendMessageBatch, DeleteMessageBatch or ChangeMessageVisibilityBatch", Amazon
 * SQS batch actions).
 */
export function iamActionOf(action: string): string {
  return `sqs:${action.replace(/Batch$/, '')}`;
}

/** The ARN of the queue a request names (by `QueueUrl`, or `QueueName` for GetQueueUrl/CreateQueue). */
function queueArnOf(body: Body, region: string | undefined): string {
  const url = queueUrlOf(body);
  const name = url
    ? url.split('/').filter(Boolean).pop()
    : typeof body.QueueName === 'string'
      ? body.QueueName
      : undefined;
  return name === undefined ? '*' : localQueueArn(name, region);
}

function jsonAnswer(status: number, body: unknown): Upstream {
  return {
    status,
    headers: { 'content-type': JSON_CONTENT_TYPE, 'x-amzn-requestid': randomUUID() },
    body: Buffer.from(JSON.stringify(body)),
  };
}

// Hop-by-hop headers, and the length, which the proxy sets itself. The client's Host is kept: fauxqs builds
// queue URLs from it, so they name the layer's port, as the endpoint does.
const DROPPED_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

function forwardTo(
  upstream: URL,
  agent: Agent,
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
  payload: Buffer,
): Promise<Upstream> {
  const outgoing: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !DROPPED_HEADERS.has(name)) outgoing[name] = value;
  }
  outgoing['content-length'] = String(payload.length);
  return new Promise((resolve, reject) => {
    const call = request(
      {
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port,
        method,
        path,
        agent,
        headers: outgoing,
      },
      async (answer) => {
        try {
          const body = await readAll(answer);
          const kept: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(answer.headers)) {
            if (value !== undefined && !DROPPED_HEADERS.has(name)) kept[name] = value;
          }
          resolve({ status: answer.statusCode ?? 502, headers: kept, body });
        } catch (error) {
          reject(error);
        }
      },
    );
    call.on('error', reject);
    call.end(payload);
  });
}

function send(res: ServerResponse, answer: Upstream): void {
  if (res.destroyed) return;
  res.writeHead(answer.status, { ...answer.headers, 'content-length': String(answer.body.length) });
  res.end(answer.body);
}

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function parseJson(raw: Buffer): Body | undefined {
  try {
    const value: unknown = JSON.parse(raw.toString('utf8') || '{}');
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Body) : undefined;
  } catch {
    return undefined;
  }
}

function asArray(value: unknown): Body[] {
  return Array.isArray(value) ? (value as Body[]) : [];
}

function queueUrlOf(body: Body): string | undefined {
  return typeof body.QueueUrl === 'string' ? body.QueueUrl : undefined;
}
