import { randomUUID } from 'node:crypto';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebhookDedupe } from '#shared/webhook/dedupe.ts';
import { DETAIL_TYPE } from '#shared/webhook/events.ts';
import type { WebhookHandler } from '#shared/webhook/handler.ts';
import { normaliseWebhook } from '#shared/webhook/payload.ts';
import { SECURITY_HEADERS } from '#shared/webhook/responses.ts';
import { signBody } from '#shared/webhook/signature.ts';
import { captureLogs, type LogCapture } from '#test/helpers/log-capture.ts';
import {
  bodyBytes,
  startWebhookHarness,
  WEBHOOK_LEDGER_TABLE,
  WEBHOOK_SECRET,
  WEBHOOK_SECRET_ID,
  type WebhookHarness,
} from '#test/helpers/webhook-harness.ts';

/*
 * The webhook receiver's defences (docs/webhooks.md): each test states a behaviour that an attacker, a
 * misbehaving sender or a failing dependency must not be able to change.
 */

/** An inbound text as eCourtDate's webhook guide shows one. */
function inboundText(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    uuid: randomUUID(),
    channel: 'text',
    direction: 'inbound',
    // Its own time: a delivery older than the replay horizon is refused (docs/webhooks.md, "Replays").
    created_at: new Date().toISOString(),
    from: '+15557654321',
    to: '+15550001111',
    content: 'Yes I will be there',
    last_status: 'received',
    ...overrides,
  };
}

/** The AWS SDK's default attempts per call. */
const SDK_ATTEMPTS = 3;

let h: WebhookHarness;

beforeAll(async () => {
  h = await startWebhookHarness();
});

afterAll(async () => {
  await h?.close();
});

afterEach(() => {
  h.events.clear();
});

function eventsOf(uuid: string) {
  return h.events.events.filter((e) => (e.detail as { webhook_uuid?: string }).webhook_uuid === uuid);
}

function context(): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'webhook-defences',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:webhook-defences',
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/webhook-defences',
    logStreamName: 'test',
    getRemainingTimeInMillis: () => 10_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Invokes a handler with a hand-made payload format 2.0 event, as API Gateway would. */
function invoke(
  handler: WebhookHandler,
  request: {
    method?: string;
    sourceIp?: string | undefined;
    headers?: Record<string, string>;
    body?: string;
    isBase64Encoded?: boolean;
  },
): Promise<APIGatewayProxyStructuredResultV2> {
  const now = Date.now();
  const event = {
    version: '2.0',
    routeKey: 'ANY /ecourtdate/webhook',
    rawPath: '/ecourtdate/webhook',
    rawQueryString: '',
    headers: request.headers ?? {},
    requestContext: {
      accountId: '000000000000',
      apiId: 'test',
      domainName: 'test',
      domainPrefix: 'test',
      http: {
        method: request.method ?? 'POST',
        path: '/ecourtdate/webhook',
        protocol: 'HTTP/1.1',
        sourceIp: request.sourceIp,
        userAgent: 'test',
      },
      requestId: randomUUID(),
      routeKey: 'ANY /ecourtdate/webhook',
      stage: '$default',
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
    body: request.body,
    isBase64Encoded: request.isBase64Encoded ?? false,
  } as APIGatewayProxyEventV2;
  return handler(event, context());
}

/** Signed JSON headers for `body`. */
function signed(body: Uint8Array, secret = WEBHOOK_SECRET): Record<string, string> {
  return { 'content-type': 'application/json', 'x-ecd-signature': signBody(secret, body) };
}

function expectSecurityHeaders(headers: Headers | Record<string, unknown> | undefined): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    const got = headers instanceof Headers ? headers.get(name) : headers?.[name];
    expect(got, name).toBe(value);
  }
}

describe('signature over the exact bytes', () => {
  it('rejects a body with a trailing newline added after signing', async () => {
    const payload = inboundText();
    const signature = signBody(WEBHOOK_SECRET, bodyBytes(payload));

    const res = await h.post(`${JSON.stringify(payload)}\n`, { signature });

    expect(res.status).toBe(401);
    expect(eventsOf(payload.uuid as string)).toEqual([]);
  });

  it('rejects a body with a byte order mark added after signing', async () => {
    const payload = inboundText();
    const signature = signBody(WEBHOOK_SECRET, bodyBytes(payload));

    const res = await h.post(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bodyBytes(payload)]), {
      signature,
    });

    expect(res.status).toBe(401);
  });

  it('rejects a body whose non-ASCII text was re-escaped as \\u sequences after signing', async () => {
    const uuid = randomUUID();
    const literal = `{"uuid":"${uuid}","direction":"inbound","content":"Sí"}`;
    const escaped = `{"uuid":"${uuid}","direction":"inbound","content":"S\\u00ed"}`;

    const res = await h.post(escaped, { signature: signBody(WEBHOOK_SECRET, Buffer.from(literal)) });

    expect(res.status).toBe(401);
  });

  it('verifies non-ASCII and escaped text over the bytes exactly as signed', async () => {
    const uuid = randomUUID();
    const body = `{ "uuid" : "${uuid}", "direction":"inbound", "content":"S\\u00ed — 👍 \\ud83d\\udc4d" }`;

    const res = await h.post(body);

    expect(res.status).toBe(200);
    expect(eventsOf(uuid)).toHaveLength(1);
  });

  it('rejects a valid signature of another body (a signature cannot be reused)', async () => {
    const original = inboundText();
    const tampered = { ...original, content: 'No' };

    const res = await h.post(tampered, { signature: signBody(WEBHOOK_SECRET, bodyBytes(original)) });

    expect(res.status).toBe(401);
  });

  it.each([
    ['an empty header', ''],
    ['63 hex characters', 'a'.repeat(63)],
    ['65 hex characters', 'a'.repeat(65)],
    ['64 characters that are not hex', 'g'.repeat(64)],
    ['the base64 form of a correct digest', 'base64'],
    ['two signatures joined with a comma', 'two'],
  ])('answers 401 with no body for %s', async (_, kind) => {
    const payload = inboundText();
    const good = signBody(WEBHOOK_SECRET, bodyBytes(payload));
    const signature =
      kind === 'base64'
        ? Buffer.from(good, 'hex').toString('base64')
        : kind === 'two'
          ? `${good}, ${'0'.repeat(64)}`
          : kind;

    const res = await h.post(payload, { signature });

    // An empty header is no header: still 401.
    expect(res.status).toBe(401);
    expect(await res.text()).toBe('');
    expectSecurityHeaders(res.headers);
    expect(eventsOf(payload.uuid as string)).toEqual([]);
  });

  it('verifies a body API Gateway passed base64-encoded, over the decoded bytes, surrounding whitespace included', async () => {
    const gateway = await h.gateway([h.handler], { base64: 'always' });
    const payload = inboundText();
    const bytes = Buffer.concat([Buffer.from('\r\n  '), bodyBytes(payload), Buffer.from('\n')]);

    const res = await h.post(bytes, { url: gateway.url });

    expect(res.status).toBe(200);
    expect(eventsOf(payload.uuid as string)).toHaveLength(1);
  });

  it('rejects a base64 body signed over its base64 text instead of its bytes', async () => {
    const payload = inboundText();
    const bytes = bodyBytes(payload);
    const res = await invoke(h.createInstance(), {
      sourceIp: '127.0.0.1',
      headers: {
        'content-type': 'application/json',
        'x-ecd-signature': signBody(WEBHOOK_SECRET, Buffer.from(bytes.toString('base64'))),
      },
      body: bytes.toString('base64'),
      isBase64Encoded: true,
    });

    expect(res.statusCode).toBe(401);
  });
});

describe('the shared secret', () => {
  it('verifies with a 24-character secret holding non-ASCII characters, keyed by its UTF-8 bytes', async () => {
    const unicodeSecret = 'clé-sécrète-ñandú-🔑-123';
    expect([...unicodeSecret]).toHaveLength(23);
    h.secrets.setSecret(WEBHOOK_SECRET_ID, JSON.stringify({ secret: unicodeSecret }));
    try {
      const handler = h.createInstance();
      const payload = inboundText();
      const bytes = bodyBytes(payload);

      const good = await invoke(handler, {
        sourceIp: '127.0.0.1',
        headers: signed(bytes, unicodeSecret),
        body: bytes.toString('utf8'),
      });
      // The same characters as Latin-1 bytes are another key.
      const latin1 = await invoke(handler, {
        sourceIp: '127.0.0.1',
        headers: {
          'content-type': 'application/json',
          'x-ecd-signature': signBody(
            Buffer.from(unicodeSecret, 'latin1').toString('utf8'),
            Buffer.from(JSON.stringify(inboundText())),
          ),
        },
        body: JSON.stringify(inboundText()),
      });

      expect(good.statusCode).toBe(200);
      expect(latin1.statusCode).toBe(401);
    } finally {
      h.secrets.setSecret(WEBHOOK_SECRET_ID, JSON.stringify({ secret: WEBHOOK_SECRET }));
    }
  });

  it('uses a secret longer than 24 characters in full, never a truncated copy', async () => {
    const long = 'abcdefghijklmnopqrstuvwxyz0123456789';
    h.secrets.setSecret(WEBHOOK_SECRET_ID, JSON.stringify({ secret: long }));
    try {
      const handler = h.createInstance();
      const bytes = bodyBytes(inboundText());
      const truncated = await invoke(handler, {
        sourceIp: '127.0.0.1',
        headers: signed(bytes, long.slice(0, 24)),
        body: bytes.toString('utf8'),
      });
      const full = await invoke(handler, {
        sourceIp: '127.0.0.1',
        headers: signed(bytes, long),
        body: bytes.toString('utf8'),
      });

      expect(truncated.statusCode).toBe(401);
      expect(full.statusCode).toBe(200);
    } finally {
      h.secrets.setSecret(WEBHOOK_SECRET_ID, JSON.stringify({ secret: WEBHOOK_SECRET }));
    }
  });
});

describe('the shared secret when Secrets Manager fails', () => {
  it('answers a forged signature 401 even when the secret re-read fails', async () => {
    let clock = Date.now();
    const handler = h.createInstance({ now: () => clock });
    const ok = bodyBytes(inboundText());
    const first = await invoke(handler, { sourceIp: '127.0.0.1', headers: signed(ok), body: ok.toString() });
    expect(first.statusCode).toBe(200);
    // Older than the 30 s re-read interval, within the 5 min cache.
    clock += 60_000;
    h.secrets.failNext(SDK_ATTEMPTS, 'InternalServiceError');

    const body = bodyBytes(inboundText());
    const res = await invoke(handler, {
      sourceIp: '127.0.0.1',
      headers: { 'content-type': 'application/json', 'x-ecd-signature': 'a'.repeat(64) },
      body: body.toString(),
    });

    expect(res.statusCode).toBe(401);
  });

  it('checks signatures against the secret read before while the cache has expired and a read fails', async () => {
    let clock = Date.now();
    const handler = h.createInstance({ now: () => clock });
    const ok = bodyBytes(inboundText());
    await invoke(handler, { sourceIp: '127.0.0.1', headers: signed(ok), body: ok.toString() });
    // Past the 5 min cache.
    clock += 10 * 60_000;
    h.secrets.failNext(SDK_ATTEMPTS, 'InternalServiceError');
    const forged = await invoke(handler, {
      sourceIp: '127.0.0.1',
      headers: { 'content-type': 'application/json', 'x-ecd-signature': 'b'.repeat(64) },
      body: bodyBytes(inboundText()).toString(),
    });
    h.secrets.failNext(SDK_ATTEMPTS, 'InternalServiceError');
    const next = bodyBytes(inboundText());
    const valid = await invoke(handler, {
      sourceIp: '127.0.0.1',
      headers: signed(next),
      body: next.toString(),
    });

    expect([forged.statusCode, valid.statusCode]).toEqual([401, 200]);
  });

  it('takes a plain-text secret without the trailing newline a file gave it', async () => {
    h.secrets.setSecret(WEBHOOK_SECRET_ID, `${WEBHOOK_SECRET}\n`);
    try {
      const bytes = bodyBytes(inboundText());

      const res = await invoke(h.createInstance(), {
        sourceIp: '127.0.0.1',
        headers: signed(bytes),
        body: bytes.toString('utf8'),
      });

      expect(res.statusCode).toBe(200);
    } finally {
      h.secrets.setSecret(WEBHOOK_SECRET_ID, JSON.stringify({ secret: WEBHOOK_SECRET }));
    }
  });
});

describe('request limits', () => {
  const LIMIT = 2048;

  /** A JSON body of exactly `size` bytes, padded with a two-byte character where it can. */
  function bodyOfSize(size: number): Buffer {
    const base = `{"uuid":"${randomUUID()}","direction":"inbound","content":""}`;
    const room = size - Buffer.byteLength(base);
    const pad = 'é'.repeat(Math.floor(room / 2)) + 'x'.repeat(room % 2);
    const body = Buffer.from(base.replace('"content":""', `"content":"${pad}"`));
    expect(body.byteLength).toBe(size);
    return body;
  }

  it('takes a body of exactly the limit in bytes and answers 413 to one byte more', async () => {
    const gateway = await h.gateway([h.createInstance({ env: { WEBHOOK_MAX_BODY_BYTES: String(LIMIT) } })]);

    const atLimit = await h.post(bodyOfSize(LIMIT), { url: gateway.url });
    const over = await h.post(bodyOfSize(LIMIT + 1), { url: gateway.url });

    expect(atLimit.status).toBe(200);
    expect(over.status).toBe(413);
    expectSecurityHeaders(over.headers);
  });

  it('measures a base64 body by its decoded bytes', async () => {
    const handler = h.createInstance({ env: { WEBHOOK_MAX_BODY_BYTES: String(LIMIT) } });
    const atLimit = bodyOfSize(LIMIT);
    const over = bodyOfSize(LIMIT + 1);

    const ok = await invoke(handler, {
      sourceIp: '127.0.0.1',
      headers: signed(atLimit),
      body: atLimit.toString('base64'),
      isBase64Encoded: true,
    });
    const tooBig = await invoke(handler, {
      sourceIp: '127.0.0.1',
      headers: signed(over),
      body: over.toString('base64'),
      isBase64Encoded: true,
    });

    expect(ok.statusCode).toBe(200);
    expect(tooBig.statusCode).toBe(413);
  });

  it.each(['GET', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'])(
    'answers %s with 405, Allow: POST and the security headers, publishing nothing',
    async (method) => {
      const payload = inboundText();

      const res =
        method === 'HEAD'
          ? await fetch(h.url, { method, headers: signed(bodyBytes(payload)) })
          : await h.post(payload, { method });

      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      expectSecurityHeaders(res.headers);
      expect(h.events.events).toEqual([]);
    },
  );

  it.each(['TRACE', 'CONNECT', 'PROPFIND'])('answers %s with 405', async (method) => {
    const bytes = bodyBytes(inboundText());

    const res = await invoke(h.handler, {
      method,
      sourceIp: '127.0.0.1',
      headers: signed(bytes),
      body: bytes.toString('utf8'),
    });

    expect(res.statusCode).toBe(405);
    expect(res.headers?.allow).toBe('POST');
    expectSecurityHeaders(res.headers);
  });

  it.each([
    'application/json; charset=utf-8',
    'application/json;charset=UTF-8',
    'Application/JSON; Charset="utf-8"',
    'application/json ; charset=utf-8',
    'application/vnd.ecourtdate+json',
  ])('accepts the JSON content type %s', async (contentType) => {
    const payload = inboundText();

    const res = await h.post(payload, { headers: { 'content-type': contentType } });

    expect(res.status).toBe(200);
    expect(eventsOf(payload.uuid as string)).toHaveLength(1);
  });

  it.each([
    'text/plain',
    'text/json',
    'application/jsonp',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/json, text/plain',
    'json',
  ])('answers 415 to the content type %s', async (contentType) => {
    const payload = inboundText();

    const res = await h.post(payload, { headers: { 'content-type': contentType } });

    expect(res.status).toBe(415);
    expectSecurityHeaders(res.headers);
    expect(eventsOf(payload.uuid as string)).toEqual([]);
  });

  it('answers 415 to a request without a content type', async () => {
    const bytes = bodyBytes(inboundText());

    const res = await invoke(h.handler, {
      sourceIp: '127.0.0.1',
      headers: { 'x-ecd-signature': signBody(WEBHOOK_SECRET, bytes) },
      body: bytes.toString('utf8'),
    });

    expect(res.statusCode).toBe(415);
  });
});

describe('IP allowlist', () => {
  const allowed = '203.0.113.10';

  it('ignores X-Forwarded-For and X-Real-IP naming an allowed address', async () => {
    const gateway = await h.gateway([h.createInstance({ env: { WEBHOOK_ALLOWED_IPS: allowed } })]);
    const payload = inboundText();

    const res = await h.post(payload, {
      url: gateway.url,
      headers: { 'x-forwarded-for': allowed, 'x-real-ip': allowed, forwarded: `for=${allowed}` },
    });

    expect(res.status).toBe(403);
    expectSecurityHeaders(res.headers);
    expect(eventsOf(payload.uuid as string)).toEqual([]);
  });

  it.each([
    [allowed, true],
    [`::ffff:${allowed}`, true],
    ['203.0.113.11', false],
    ['203.0.113.9', false],
    ['203.0.113.010', false],
    ['', false],
    ['not-an-ip', false],
    [undefined, false],
    ['198.51.100.0', true],
    ['198.51.100.255', true],
    ['198.51.101.0', false],
    ['198.51.99.255', false],
    ['2001:db8::', true],
    ['2001:db8::3', true],
    ['2001:db8::4', false],
    ['2001:DB8:0:0:0:0:0:2', true],
    ['::1', false],
  ])('source IP %s is allowed: %s', async (sourceIp, expected) => {
    const handler = h.createInstance({
      env: { WEBHOOK_ALLOWED_IPS: `${allowed}, 198.51.100.0/24, 2001:db8::/126` },
    });

    const res = await invoke(handler, { method: 'GET', sourceIp });

    // Allowed sources go on to the method check (405); others stop at 403.
    expect(res.statusCode).toBe(expected ? 405 : 403);
  });
});

describe('deduplication and loss', () => {
  it('publishes once when 20 copies of one delivery arrive at once on four instances', async () => {
    const gateway = await h.gateway([1, 2, 3, 4].map(() => h.createInstance()));
    const payload = inboundText();

    const answers = await Promise.all(
      Array.from({ length: 20 }, () => h.post(payload, { url: gateway.url })),
    );
    const busy = answers.filter((res) => res.status === 409);
    const retry = await h.post(payload, { url: gateway.url });

    expect(answers.filter((res) => res.status === 200)).toHaveLength(20 - busy.length);
    for (const res of busy) expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(retry.status).toBe(200);
    expect(eventsOf(payload.uuid as string)).toHaveLength(1);
  });

  it('does not let a claim left by an instance that died before publishing block the retry past its lease', async () => {
    const payload = inboundText();
    const dedupe = new WebhookDedupe({
      client: h.dynamodb.client,
      tableName: WEBHOOK_LEDGER_TABLE,
      ttlSeconds: 86_400,
      leaseMs: 30_000,
    });
    // What the dead instance left: a pending claim under a live lease, nothing published.
    const claim = await dedupe.claim(normaliseWebhook(payload, bodyBytes(payload)).dedupeKey);
    expect(claim.kind).toBe('claimed');
    const later = h.createInstance({ now: () => Date.now() + 31_000 });

    const during = await h.post(payload);
    const after = await invoke(later, {
      sourceIp: '127.0.0.1',
      headers: signed(bodyBytes(payload)),
      body: bodyBytes(payload).toString('utf8'),
    });

    expect(during.status).toBe(409);
    expect(after.statusCode).toBe(200);
    expect(eventsOf(payload.uuid as string)).toHaveLength(1);
  });

  it('answers 503 to every attempt while PutEvents keeps failing, and publishes once when it recovers', async () => {
    const payload = inboundText();
    h.events.failNext(SDK_ATTEMPTS * 3, 'ThrottlingException');

    const failures = [await h.post(payload), await h.post(payload), await h.post(payload)];
    const recovered = await h.post(payload);
    const replay = await h.post(payload);

    expect(failures.map((res) => res.status)).toEqual([503, 503, 503]);
    for (const res of failures) expectSecurityHeaders(res.headers);
    expect(recovered.status).toBe(200);
    expect(await replay.json()).toEqual({ status: 'duplicate' });
    expect(eventsOf(payload.uuid as string)).toHaveLength(1);
  });

  it('answers 503, not 200, when the ledger table cannot be used, and publishes nothing', async () => {
    const handler = h.createInstance({ env: { LEDGER_TABLE_NAME: 'no-such-table' } });
    const payload = inboundText();
    const bytes = bodyBytes(payload);

    const res = await invoke(handler, {
      sourceIp: '127.0.0.1',
      headers: signed(bytes),
      body: bytes.toString('utf8'),
    });

    // A table the role has no grant on: the stack's IAM refuses it (AccessDeniedException), as AWS would.
    expect(h.iam.gate.takeDenials()).toMatchObject([
      { action: 'dynamodb:PutItem', resource: 'arn:aws:dynamodb:us-east-1:000000000000:table/no-such-table' },
    ]);
    expect(res.statusCode).toBe(503);
    expectSecurityHeaders(res.headers);
    expect(eventsOf(payload.uuid as string)).toEqual([]);
  });
});

describe('payload shapes', () => {
  it('deduplicates a payload without uuid on its exact bytes', async () => {
    const body = `{"direction":"inbound","content":"no uuid ${randomUUID()}"}`;

    const first = await h.post(body);
    const replay = await h.post(body);
    const other = await h.post(`${body} `);

    expect([first.status, replay.status, other.status]).toEqual([200, 200, 200]);
    expect(await replay.json()).toEqual({ status: 'duplicate' });
    expect(h.events.events).toHaveLength(2);
    expect(h.events.events[0]?.detail).toMatchObject({ webhook_uuid: null });
  });

  it.each([
    ['a number', 12345, '12345'],
    ['an object', { id: 'x' }, null],
    ['an array', ['a'], null],
    ['null', null, null],
    ['a string with spaces', 'not an id', null],
    ['a 129-character string', 'a'.repeat(129), null],
  ])('publishes a payload whose uuid is %s, with the raw payload', async (_, uuid, expected) => {
    const payload = { uuid, direction: 'inbound', content: randomUUID() };

    const res = await h.post(payload);

    expect(res.status).toBe(200);
    expect(h.events.events).toHaveLength(1);
    expect(h.events.events[0]?.detail).toMatchObject({ webhook_uuid: expected, payload });
  });

  it.each([
    ['an array', [{ uuid: 'a' }, { uuid: 'b' }]],
    ['a string', 'hello'],
    ['a number', 42],
    ['null', null],
    ['an empty object', {}],
  ])('publishes a top-level %s as a generic webhook event', async (_, payload) => {
    const body = JSON.stringify(payload);
    // Bytes that no other test sends, so the dedupe key (a hash of the bytes) is fresh.
    const res = await h.post(`${body}${' '.repeat(1 + Math.floor(Math.random() * 1000))}`);

    expect(res.status).toBe(200);
    expect(h.events.events).toHaveLength(1);
    expect(h.events.events[0]).toMatchObject({
      detailType: DETAIL_TYPE.webhook,
      detail: { kind: 'webhook', payload },
    });
  });

  it('ties a status update wrapped around a nested message object to the job that sent it', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-nested', messageUuid);
    const payload = {
      uuid: randomUUID(),
      type: 'message.delivered',
      data: { uuid: messageUuid, direction: 'outbound', channel: 'text', to: '+15557654321' },
    };

    const res = await h.post(payload);

    expect(res.status).toBe(200);
    expect(h.events.events.map((e) => e.detailType)).toEqual([
      DETAIL_TYPE.messageStatus,
      DETAIL_TYPE.jobDeliveryStatus,
    ]);
    expect(h.events.events[1]?.detail).toMatchObject({ job_id: 'job-nested', status: 'delivered' });
  });

  it('does not tie an update to a job through a message uuid nested deeper than it reads', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-deep', messageUuid);
    const payload = {
      uuid: randomUUID(),
      direction: 'outbound',
      last_status: 'failed',
      data: { meta: { message_uuid: messageUuid } },
    };

    const res = await h.post(payload);

    expect(res.status).toBe(200);
    expect(h.events.events.map((e) => e.detailType)).toEqual([DETAIL_TYPE.messageStatus]);
  });

  it('publishes a payload close to the 64 KB default limit whole', async () => {
    const payload = inboundText({ content: 'é'.repeat(31 * 1024) });

    const res = await h.post(payload);

    expect(res.status).toBe(200);
    expect(eventsOf(payload.uuid as string)[0]?.detail).toMatchObject({ payload });
  });

  it('keeps a job’s delivery history bounded however many distinct updates arrive', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-flood', messageUuid);
    for (let i = 0; i < 30; i++) {
      const res = await h.post({
        uuid: randomUUID(),
        direction: 'outbound',
        message_uuid: messageUuid,
        last_status: i % 2 ? 'retried' : 'failed',
        status_at: Date.now() - 60_000 + i * 1000,
      });
      expect(res.status).toBe(200);
    }

    const delivery = await h.delivery.getDelivery('job-flood');

    expect(delivery?.delivery_history).toHaveLength(20);
    expect(delivery?.delivery_status).toBe('retried');
  }, 60_000);

  it('records an update on the job named by its message, never on another job', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    await h.seedDeliveredJob('job-a', a);
    await h.seedDeliveredJob('job-b', b);

    await h.post({ uuid: randomUUID(), direction: 'outbound', message_uuid: a, last_status: 'failed' });

    expect((await h.delivery.getDelivery('job-a'))?.delivery_status).toBe('failed');
    expect((await h.delivery.getDelivery('job-b'))?.delivery_status).toBeUndefined();
  });
});

/** The `Detail` text of each entry of the next `PutEvents` call, as EventBridge receives it. */
function captureNextDetails(): string[] {
  const details: string[] = [];
  h.events.failEntriesNext(1, {
    select: (entry) => {
      details.push(entry.Detail ?? '');
      return false;
    },
  });
  return details;
}

describe('hostile values in a signed payload', () => {
  it.each([8.7e15, 1e20])(
    'publishes an update whose status_at is %s, out of Date range',
    async (statusAt) => {
      const m = randomUUID();
      await h.seedDeliveredJob(`job-far-${statusAt}`, m);
      const body = bodyBytes({
        uuid: randomUUID(),
        direction: 'outbound',
        message_uuid: m,
        last_status: 'delivered',
        status_at: statusAt,
      });

      const res = await invoke(h.createInstance(), {
        sourceIp: '127.0.0.1',
        headers: signed(body),
        body: body.toString('utf8'),
      });

      expect(res.statusCode).toBe(200);
      expectSecurityHeaders(res.headers);
    },
  );

  it('records a status_at far in the future at the receive time instead', async () => {
    const m = randomUUID();
    await h.seedDeliveredJob('job-future', m);
    const before = Date.now();

    await h.post({
      uuid: randomUUID(),
      direction: 'outbound',
      message_uuid: m,
      last_status: 'delivered',
      status_at: '2999-01-01T00:00:00Z',
    });
    const delivery = await h.delivery.getDelivery('job-future');

    expect(delivery?.delivery_status_at).toBeGreaterThanOrEqual(before);
    expect(delivery?.delivery_status_at).toBeLessThanOrEqual(Date.now());
  });

  it.each(['constructor', '__proto__'])(
    'records an unknown status such as "%s" as other, not as a member of Object.prototype',
    async (status) => {
      const m = randomUUID();
      await h.seedDeliveredJob(`job-${status}`, m);
      const p = { uuid: randomUUID(), direction: 'outbound', message_uuid: m, last_status: status };

      expect((await h.post(p)).status).toBe(200);
      expect(h.events.events[0]?.detail).toMatchObject({ status: 'other', raw_status: status });
      expect((await h.delivery.getDelivery(`job-${status}`))?.delivery_status).toBe('other');
    },
  );

  it('records and publishes no phone number carried in an unrecognised status', async () => {
    const m = randomUUID();
    await h.seedDeliveredJob('job-status-number', m);

    const res = await h.post({
      uuid: randomUUID(),
      direction: 'outbound',
      message_uuid: m,
      last_status: 'Undelivered to 5557654321',
    });
    const delivery = await h.delivery.getDelivery('job-status-number');

    expect(res.status).toBe(200);
    expect(JSON.stringify(delivery)).not.toContain('5557654321');
    expect(delivery?.delivery_status).toBe('failed');
    const published = h.events.events.map(({ detail }) => {
      const { payload: _payload, ...fields } = detail as Record<string, unknown>;
      return fields;
    });
    expect(published).toHaveLength(2);
    expect(JSON.stringify(published)).not.toContain('5557654321');
  });

  it('publishes a signed payload nested 6,000 deep', async () => {
    const d = 6000;
    const body = `{"uuid":"${randomUUID()}","direction":"inbound","x":${'['.repeat(d)}${']'.repeat(d)}}`;

    expect((await h.post(body)).status).toBe(200);
    expect(h.events.events).toHaveLength(1);
  });

  it('keeps large integers of the payload exact', async () => {
    const details = captureNextDetails();

    await h.post(`{"uuid":"${randomUUID()}","direction":"inbound","id":12345678901234567890}`);

    expect(details).toHaveLength(1);
    expect(details[0]).toContain('"payload":{"uuid":');
    expect(details[0]).toContain('"id":12345678901234567890}');
  });

  it('accepts a signed body that starts with a byte order mark', async () => {
    const uuid = randomUUID();
    const res = await h.post(
      Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from(`{"uuid":"${uuid}","direction":"inbound"}`),
      ]),
    );

    expect(res.status).toBe(200);
    expect(eventsOf(uuid)[0]?.detail).toMatchObject({ payload: { uuid, direction: 'inbound' } });
  });
});

describe('security headers', () => {
  it('are on every answer the receiver gives', async () => {
    const payload = inboundText();
    const deny = h.createInstance({ env: { WEBHOOK_ALLOWED_IPS: '203.0.113.10' } });
    const answers = [
      await h.post(payload),
      await h.post(payload),
      await h.post(payload, { signature: null }),
      await h.post('not json'),
      await h.post(payload, { method: 'PUT' }),
      await h.post(payload, { headers: { 'content-type': 'text/plain' } }),
      await h.post(inboundText({ content: 'x'.repeat(70 * 1024) })),
    ];
    const denied = await invoke(deny, { sourceIp: '198.51.100.1' });

    expect(answers.map((res) => res.status)).toEqual([200, 200, 401, 400, 405, 415, 413]);
    for (const res of answers) expectSecurityHeaders(res.headers);
    expect(denied.statusCode).toBe(403);
    expectSecurityHeaders(denied.headers);
  });
});

describe('logs', () => {
  let logs: LogCapture;

  beforeAll(() => {
    logs = captureLogs();
  });

  afterAll(() => {
    logs?.stop();
  });

  it('never logs the request, whatever POWERTOOLS_LOGGER_LOG_EVENT says', async () => {
    logs.clear();
    const h2 = await startWebhookHarness({ env: { POWERTOOLS_LOGGER_LOG_EVENT: 'true' } });
    const res = await h2.post({
      uuid: randomUUID(),
      direction: 'inbound',
      from: '+15557654321',
      content: 'Private hearing text here',
    });
    await h2.close();

    expect(res.status).toBe(200);
    expect(logs.text()).not.toContain('Private hearing text');
    expect(logs.text()).not.toContain('5557654321');
  });

  it('logs no number carried in an unrecognised status', async () => {
    logs.clear();

    const res = await h.post({
      uuid: randomUUID(),
      direction: 'outbound',
      last_status: 'Undelivered to 5557654321',
    });

    expect(res.status).toBe(200);
    expect(logs.text()).not.toContain('5557654321');
  });

  it('logs an unrecognised status as other', async () => {
    logs.clear();

    await h.post({ uuid: randomUUID(), direction: 'outbound', last_status: 'opened by Jordan' });

    expect(logs.text()).toMatch(/"delivery_status": ?"other"/);
    expect(logs.text()).not.toContain('Jordan');
  });

  it('warns once, without the secret, when the secret is longer than eCourtDate accepts', async () => {
    const long = 'abcdefghijklmnopqrstuvwxyz0123456789';
    h.secrets.setSecret(WEBHOOK_SECRET_ID, JSON.stringify({ secret: long }));
    logs.clear();
    try {
      const handler = h.createInstance();
      for (let i = 0; i < 2; i++) {
        const bytes = bodyBytes(inboundText());
        await invoke(handler, {
          sourceIp: '127.0.0.1',
          headers: signed(bytes, long),
          body: bytes.toString(),
        });
      }
    } finally {
      h.secrets.setSecret(WEBHOOK_SECRET_ID, JSON.stringify({ secret: WEBHOOK_SECRET }));
    }

    expect(logs.text().match(/longer than eCourtDate accepts/g)).toHaveLength(1);
    expect(logs.text()).not.toContain(long);
  });

  it('logs an unexpected error by its name, with the security headers on the answer', async () => {
    logs.clear();
    const handler = h.createInstance();

    // No request context at all: nothing API Gateway sends, but the handler must not throw out of it.
    const res = await handler(null as unknown as APIGatewayProxyEventV2, context());

    expect(res.statusCode).toBeGreaterThanOrEqual(500);
    expectSecurityHeaders(res.headers);
    expect(logs.text()).toMatch(/"outcome": ?"internal_error"/);
    expect(logs.text()).toMatch(/"error_name": ?"TypeError"/);
  });

  it('hold no message text, number, e-mail or secret when the personal data sits in unusual fields', async () => {
    logs.clear();
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-log-shapes', messageUuid);
    const answers = [
      // Personal data under the field names the receiver reads for its normalised fields.
      await h.post({
        uuid: randomUUID(),
        type: 'jordan.private@example.org',
        direction: 'outbound',
        channel: '5557654321',
        message_uuid: messageUuid,
        created_at: 'Private hearing text here',
      }),
      await h.post({ uuid: randomUUID(), direction: 'inbound', message: 'Private hearing text here' }),
      await h.post({ uuid: 'jordan.private@example.org', direction: 'inbound' }),
      await h.post(['Private hearing text here', '+15557654321']),
    ].map((res) => res.status);

    expect(answers).toEqual([200, 200, 200, 200]);
    for (const leak of ['Private hearing text', '5557654321', 'jordan.private', WEBHOOK_SECRET]) {
      expect(logs.text()).not.toContain(leak);
    }
  });
});

/** The ledger entry of a job, as stored. */
async function jobEntry(jobId: string): Promise<Record<string, unknown> | undefined> {
  const doc = DynamoDBDocumentClient.from(h.dynamodb.client);
  const out = await doc.send(
    new GetCommand({ TableName: WEBHOOK_LEDGER_TABLE, Key: { id: `job#${jobId}` }, ConsistentRead: true }),
  );
  return out.Item;
}

describe('the sender’s job entry', () => {
  it('keeps its own attributes when a status is recorded', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-untouched', messageUuid);
    const before = await jobEntry('job-untouched');

    await h.post({
      uuid: randomUUID(),
      direction: 'outbound',
      message_uuid: messageUuid,
      last_status: 'sent',
    });
    const after = await jobEntry('job-untouched');

    expect(after).toMatchObject({
      status: before?.status,
      uuid: before?.uuid,
      version: before?.version,
      expiration: before?.expiration,
    });
  });
});
