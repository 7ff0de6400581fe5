import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { WEBHOOK_ROUTE_PATH } from '#infra/webhook-config.ts';
import { listenOnLoopback, writeJson } from '#local/emulators/loopback-server.ts';
import type { WebhookHandler } from '#shared/webhook/handler.ts';

/** The route the stack gives the receiver; the local gateway serves the same. */
export const WEBHOOK_PATH = WEBHOOK_ROUTE_PATH;

/** API Gateway HTTP APIs take request bodies up to 10 MB; the function applies its own, smaller, limit. */
const GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface WebhookGatewayOptions {
  /**
   * The receiver's Lambda containers: each request goes to the next one in turn, as API Gateway spreads requests
   * over warm instances.
   */
  readonly handlers: readonly WebhookHandler[];
  /** @default WEBHOOK_PATH */
  readonly path?: string;
  /**
   * `auto`: base64-encode bodies whose content type is not text, as API Gateway does; `always`: every body.
   * @default 'auto'
   */
  readonly base64?: 'auto' | 'always';
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 0 (ephemeral) */
  readonly port?: number;
}

export interface WebhookGateway {
  /** The webhook URL: base URL plus path. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A loopback stand-in for the stack's API Gateway HTTP API: it turns each HTTP request into a payload format 2.0
 * event (lower-cased headers, the TCP peer as `requestContext.http.sourceIp`, a base64 body when the content is
 * not text), invokes the real handler, and writes its answer back. Other paths answer 404, as the API does.
 *
 * @example
 * const gateway = await startWebhookGateway({ handlers: [handler] });
 * await fetch(gateway.url, { method: 'POST', headers, body });
 */
export async function startWebhookGateway(options: WebhookGatewayOptions): Promise<WebhookGateway> {
  if (options.handlers.length === 0) throw new RangeError('startWebhookGateway needs at least one handler');
  const path = options.path ?? WEBHOOK_PATH;
  let next = 0;
  const server = await listenOnLoopback(
    async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://gateway.local');
      if (url.pathname !== path) {
        writeJson(res, 404, { message: 'Not Found' });
        return;
      }
      const body = await readRaw(req);
      if (body === undefined) {
        writeJson(res, 413, { message: 'Request Entity Too Large' });
        return;
      }
      const handler = options.handlers[next++ % options.handlers.length] as WebhookHandler;
      const result = await handler(toEvent(req, url, body, options.base64 ?? 'auto'), lambdaContext());
      const headers = Object.fromEntries(
        Object.entries(result.headers ?? {}).map(([name, value]) => [name, String(value)]),
      );
      const payload = result.isBase64Encoded
        ? Buffer.from(result.body ?? '', 'base64')
        : Buffer.from(result.body ?? '');
      res.writeHead(result.statusCode ?? 200, { ...headers, 'content-length': String(payload.byteLength) });
      res.end(payload);
    },
    { host: options.host, port: options.port },
  );
  return { url: `${server.url}${path}`, close: () => server.close() };
}

function toEvent(
  req: IncomingMessage,
  url: URL,
  body: Buffer,
  base64: 'auto' | 'always',
): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const encode = base64 === 'always' || !isText(headers['content-type']);
  const method = req.method ?? 'GET';
  const now = Date.now();
  return {
    version: '2.0',
    routeKey: `ANY ${url.pathname}`,
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    headers,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: normaliseAddress(req.socket.remoteAddress),
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: `ANY ${url.pathname}`,
      stage: '$default',
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
    body: body.byteLength === 0 ? undefined : encode ? body.toString('base64') : body.toString('utf8'),
    isBase64Encoded: body.byteLength > 0 && encode,
  };
}

/** Text content as API Gateway passes it through unencoded: text/*, JSON, XML and form data. */
function isText(contentType: string | undefined): boolean {
  const type = contentType?.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  return (
    type.startsWith('text/') ||
    type === 'application/json' ||
    type.endsWith('+json') ||
    type === 'application/xml' ||
    type === 'application/x-www-form-urlencoded'
  );
}

/** `::ffff:127.0.0.1` as API Gateway would report it: `127.0.0.1`. */
function normaliseAddress(address: string | undefined): string {
  return address?.replace(/^::ffff:/, '') ?? '127.0.0.1';
}

async function readRaw(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size <= GATEWAY_MAX_BODY_BYTES) chunks.push(chunk as Buffer);
  }
  return size > GATEWAY_MAX_BODY_BYTES ? undefined : Buffer.concat(chunks);
}

function lambdaContext(): Context {
  const deadline = Date.now() + 10_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'ecourtdate-relay-webhook-local',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:ecourtdate-relay-webhook-local',
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/ecourtdate-relay-webhook-local',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
