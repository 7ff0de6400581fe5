import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiFetch } from '#shared/ecourtdate/connection.ts';
import { EcdTransportError } from '#shared/ecourtdate/errors.ts';
import {
  apiUrl,
  classifyTransportFailure,
  extractUuid,
  httpRequest,
  MAX_BODY_BYTES,
  waitHint,
} from '#shared/ecourtdate/http.ts';
import { T0 } from '#test/helpers/factories.ts';
import { fakeClock } from '#test/helpers/unit-factories.ts';

const UUID = '3f0c9a52-7b1e-4d8a-9c6f-2e5b8d1a4c7e';

describe('apiUrl', () => {
  it.each([
    ['https://api.ecourtdate.com', 'https://api.ecourtdate.com/oauth/token'],
    ['https://api.ecourtdate.com/', 'https://api.ecourtdate.com/oauth/token'],
    ['https://api.ecourtdate.com/county-a', 'https://api.ecourtdate.com/county-a/oauth/token'],
    ['https://api.ecourtdate.com/county-a/', 'https://api.ecourtdate.com/county-a/oauth/token'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080/oauth/token'],
  ])('joins %s and /oauth/token into %s', (base, expected) => {
    expect(apiUrl(new URL(base), '/oauth/token').href).toBe(expected);
  });
});

describe('waitHint', () => {
  const hint = (headers: Record<string, string>, capSeconds?: number) =>
    waitHint(new Headers(headers), T0, capSeconds === undefined ? {} : { capSeconds });
  const seconds = (headers: Record<string, string>) => hint(headers)?.seconds;

  it('reads Retry-After in seconds', () => {
    expect(hint({ 'Retry-After': '120' })).toEqual({
      seconds: 120,
      cappedSeconds: 120,
      suspect: false,
      header: 'retry-after',
      form: 'delta-seconds',
    });
  });

  it('rounds fractional seconds up', () => {
    expect(seconds({ 'Retry-After': '1.2' })).toBe(2);
  });

  it('reads Retry-After as an HTTP date, relative to now', () => {
    expect(hint({ 'Retry-After': new Date(T0 + 90_000).toUTCString() })).toMatchObject({
      seconds: 90,
      form: 'http-date',
    });
  });

  it('ignores a Retry-After date in the past', () => {
    expect(hint({ 'Retry-After': new Date(T0 - 5_000).toUTCString() })).toBeUndefined();
  });

  it('reads X-RateLimit-Reset as an epoch time in seconds', () => {
    expect(hint({ 'X-RateLimit-Reset': String(T0 / 1000 + 45) })).toMatchObject({
      seconds: 45,
      header: 'x-ratelimit-reset',
      form: 'epoch-seconds',
    });
  });

  // Regression: an epoch in milliseconds was read as epoch seconds far in the future, and
  // the job and the whole instance waited 12 h.
  it('reads X-RateLimit-Reset as an epoch time in milliseconds', () => {
    expect(hint({ 'X-RateLimit-Reset': String(T0 + 60_000) })).toMatchObject({
      seconds: 60,
      suspect: false,
      form: 'epoch-ms',
    });
  });

  it('reads RateLimit-Reset as an epoch time in milliseconds too', () => {
    expect(hint({ 'RateLimit-Reset': String(T0 + 30_000) })).toMatchObject({
      seconds: 30,
      header: 'ratelimit-reset',
      form: 'epoch-ms',
    });
  });

  it('reads a small X-RateLimit-Reset as seconds from now', () => {
    expect(hint({ 'X-RateLimit-Reset': '30' })).toMatchObject({ seconds: 30, form: 'delta-seconds' });
  });

  it('reads RateLimit-Reset as seconds from now', () => {
    expect(hint({ 'RateLimit-Reset': '20' })).toMatchObject({ seconds: 20, header: 'ratelimit-reset' });
  });

  it('ignores a reset epoch (seconds or ms) that has already passed', () => {
    expect(hint({ 'X-RateLimit-Reset': String(T0 / 1000 - 10) })).toBeUndefined();
    expect(hint({ 'X-RateLimit-Reset': String(T0 - 10_000) })).toBeUndefined();
  });

  it('takes the largest wait when several headers are sent, and names its header', () => {
    expect(hint({ 'Retry-After': '10', 'X-RateLimit-Reset': '30', 'RateLimit-Reset': '20' })).toMatchObject({
      seconds: 30,
      header: 'x-ratelimit-reset',
    });
  });

  it("caps a wait beyond the caller's cap and marks it suspect, keeping the asked wait", () => {
    expect(hint({ 'Retry-After': '86400' }, 300)).toEqual({
      seconds: 86_400,
      cappedSeconds: 300,
      suspect: true,
      header: 'retry-after',
      form: 'delta-seconds',
    });
  });

  it('is not suspect at exactly the cap', () => {
    expect(hint({ 'Retry-After': '300' }, 300)).toMatchObject({ cappedSeconds: 300, suspect: false });
  });

  it('caps nothing without a cap: a long 503 maintenance Retry-After is kept whole', () => {
    expect(hint({ 'Retry-After': new Date(T0 + 6 * 3_600_000).toUTCString() })).toMatchObject({
      seconds: 21_600,
      cappedSeconds: 21_600,
      suspect: false,
    });
  });

  it('is undefined with no rate-limit header', () => {
    expect(hint({ 'Content-Type': 'application/json' })).toBeUndefined();
  });

  it('is undefined when every header is unusable or zero', () => {
    expect(
      hint({ 'Retry-After': 'soon', 'X-RateLimit-Reset': '-5', 'RateLimit-Reset': '0' }),
    ).toBeUndefined();
  });

  it('ignores a number too large to be finite', () => {
    expect(hint({ 'Retry-After': '9'.repeat(400) })).toBeUndefined();
  });
});

describe('extractUuid', () => {
  it('reads the uuid of an object', () => {
    expect(extractUuid(JSON.stringify({ uuid: UUID, status: 'scheduled' }))).toBe(UUID);
  });

  it('reads the uuid of the first object of an array', () => {
    expect(extractUuid(JSON.stringify([{ uuid: UUID }, { uuid: 'other' }]))).toBe(UUID);
  });

  it('reads { data: { uuid } }', () => {
    expect(extractUuid(JSON.stringify({ data: { uuid: UUID } }))).toBe(UUID);
  });

  it.each([
    ['a body that is not JSON', '<html>Created</html>'],
    ['an empty body', ''],
    ['an object without uuid', '{"message":"Created"}'],
    ['a uuid that is not a string', '{"uuid":42}'],
    ['an empty array', '[]'],
    ['JSON null', 'null'],
  ])('is undefined for %s', (_case, body) => {
    expect(extractUuid(body)).toBeUndefined();
  });
});

interface TestServer {
  readonly url: string;
  /** Paths requested, in order. */
  readonly paths: string[];
}

describe('httpRequest against a loopback server', () => {
  const servers: ReturnType<typeof createServer>[] = [];

  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      handler(req, res);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, paths };
  }

  async function transportErrorOf(promise: Promise<unknown>): Promise<EcdTransportError> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(error instanceof EcdTransportError)) throw new Error(`expected an EcdTransportError, got ${error}`);
    return error;
  }

  it('returns status, headers, body and latency of an answer', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-request-id': 'r-1' });
      res.end(JSON.stringify({ uuid: UUID }));
    });
    const clock = fakeClock();

    const answer = await httpRequest(
      fetch,
      new URL(`${server.url}/v1/messages/oneoffs`),
      { method: 'POST', body: '{}' },
      1_000,
      () => {
        const t = clock.now();
        clock.advance(42);
        return t;
      },
    );

    expect(answer).toMatchObject({ status: 201, body: JSON.stringify({ uuid: UUID }), latencyMs: 42 });
    expect(answer.headers.get('x-request-id')).toBe('r-1');
  });

  it('turns a server that never answers into a timeout', async () => {
    const server = await serve(() => {
      // holds the request open
    });

    const error = await transportErrorOf(httpRequest(fetch, new URL(`${server.url}/slow`), {}, 40));

    expect(error).toMatchObject({ kind: 'timeout', failure: 'timeout', mayHaveBeenSent: true });
    expect(error.message).toBe(`timed out calling ${server.url}/slow`);
  });

  it('turns a body that stops half way into a timeout too', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"uuid":');
    });

    const error = await transportErrorOf(httpRequest(fetch, new URL(`${server.url}/stall`), {}, 40));

    expect(error.kind).toBe('timeout');
  });

  it('turns a destroyed socket into a connection error', async () => {
    const server = await serve((req) => {
      req.socket.destroy();
    });

    const error = await transportErrorOf(httpRequest(fetch, new URL(`${server.url}/drop`), {}, 1_000));

    expect(error).toMatchObject({ kind: 'connection', failure: 'reset', mayHaveBeenSent: true });
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('turns a refused connection into a connection error', async () => {
    const server = await serve(() => {});
    const url = new URL(`${server.url}/gone`);
    const last = servers.pop();
    last?.closeAllConnections();
    await new Promise<void>((resolve) => last?.close(() => resolve()));

    const error = await transportErrorOf(httpRequest(fetch, url, {}, 1_000));

    expect(error).toMatchObject({
      kind: 'connection',
      failure: 'refused',
      code: 'ECONNREFUSED',
      host: url.host,
      mayHaveBeenSent: false,
    });
    expect(error.describe()).toBe(
      `Could not reach ${url.host}: the connection was refused (ECONNREFUSED). Check the API base URL and this network.`,
    );
  });

  it('ends the description with the command the caller names, and with none when it names none', async () => {
    const server = await serve(() => {});
    const url = new URL(`${server.url}/gone`);
    const last = servers.pop();
    await new Promise<void>((resolve) => last?.close(() => resolve()));

    const error = await transportErrorOf(httpRequest(fetch, url, {}, 1_000));

    expect(error.describe('npm run relay -- check-credentials --stage staging')).toBe(
      `Could not reach ${url.host}: the connection was refused (ECONNREFUSED). Check the API base URL and this network, then run \`npm run relay -- check-credentials --stage staging\`.`,
    );
    expect(error.describe()).not.toContain('check-credentials');
  });

  it.each(['http', 'https'])(
    "names a closed loopback port refused over %s, through the relay's own fetch (undici Agent)",
    async (scheme) => {
      const server = await serve(() => {});
      const port = new URL(server.url).port;
      const last = servers.pop();
      await new Promise<void>((resolve) => last?.close(() => resolve()));
      const apiFetch = createApiFetch();

      const error = await transportErrorOf(
        httpRequest(apiFetch, new URL(`${scheme}://127.0.0.1:${port}/oauth/token`), {}, 1_000),
      );
      await apiFetch.close();

      expect(error).toMatchObject({ failure: 'refused', code: 'ECONNREFUSED', mayHaveBeenSent: false });
      expect(error.describe()).toContain(`Could not reach 127.0.0.1:${port}: the connection was refused`);
    },
  );

  it.each(['https://127.0.0.1:9/oauth/token', 'http://127.0.0.1:6000/oauth/token'])(
    "names a port fetch refuses outright (the Fetch standard's bad ports) as such: %s",
    async (href) => {
      const url = new URL(href);
      const apiFetch = createApiFetch();

      const error = await transportErrorOf(httpRequest(apiFetch, url, {}, 1_000));
      await apiFetch.close();

      expect(error).toMatchObject({ kind: 'connection', failure: 'bad_port', code: undefined });
      expect(error.mayHaveBeenSent).toBe(false);
      expect(error.describe()).toBe(
        `Could not reach ${url.host}: fetch refuses to connect to port ${url.port} (a "bad port" of the Fetch standard, blocked for every request; nothing was sent). Check the API base URL and this network.`,
      );
    },
  );

  it('names a TLS handshake failure, with the host', async () => {
    const server = await serve((_req, res) => res.end('plain HTTP'));
    const url = new URL(server.url.replace('http:', 'https:'));

    const error = await transportErrorOf(httpRequest(fetch, url, {}, 1_000));

    expect(error).toMatchObject({ kind: 'connection', failure: 'tls' });
    expect(error.describe()).toContain(`Could not reach ${url.host}: the TLS handshake failed`);
  });

  it('names a host that does not resolve as a DNS failure', async () => {
    const apiFetch = createApiFetch({
      agent: {
        connect: {
          lookup: (hostname: string, _options: unknown, callback: (error: Error) => void) => {
            callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
          },
        } as never,
      },
    });

    const error = await transportErrorOf(
      httpRequest(apiFetch, new URL('http://api.ecourtdate.invalid/v1/messages/oneoffs'), {}, 1_000),
    );
    await apiFetch.close();

    expect(error).toMatchObject({ failure: 'dns', code: 'ENOTFOUND', mayHaveBeenSent: false });
    expect(error.describe()).toBe(
      'Could not reach api.ecourtdate.invalid: its name did not resolve in DNS (ENOTFOUND). Check the API base URL and this network.',
    );
  });

  it('never puts the query string or URL credentials in the message or the description', async () => {
    const server = await serve(() => {});
    const url = new URL(`${server.url}/v1/messages/oneoffs?agency_reference=county-a&token=abc123`);
    url.username = 'relay';
    url.password = 'pa55word';
    const last = servers.pop();
    last?.closeAllConnections();
    await new Promise<void>((resolve) => last?.close(() => resolve()));

    const error = await transportErrorOf(httpRequest(fetch, url, {}, 1_000));

    for (const text of [error.message, error.describe()]) {
      expect(text).not.toContain('county-a');
      expect(text).not.toContain('abc123');
      expect(text).not.toContain('pa55word');
      expect(text).not.toContain('relay@');
    }
  });

  it('returns a 302 as it came, without following it', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/start') {
        res.writeHead(302, { location: '/elsewhere' });
        res.end();
      } else {
        res.writeHead(200);
        res.end('followed');
      }
    });

    const answer = await httpRequest(fetch, new URL(`${server.url}/start`), {}, 1_000);

    expect(answer.status).toBe(302);
    expect(answer.headers.get('location')).toBe('/elsewhere');
    expect(server.paths).toEqual(['/start']);
  });

  it('keeps at most 64 KiB of a large body', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200);
      res.end('x'.repeat(100_000));
    });

    const answer = await httpRequest(fetch, new URL(`${server.url}/big`), {}, 1_000);

    expect(answer.body).toHaveLength(64 * 1024);
    expect(answer.truncated).toBe(true);
  });

  it('reads a small body whole and says it was not cut', async () => {
    const server = await serve((_req, res) => res.end('{"message":"The given data was invalid."}'));

    const answer = await httpRequest(fetch, new URL(`${server.url}/small`), {}, 1_000);

    expect(answer).toMatchObject({ body: '{"message":"The given data was invalid."}', truncated: false });
  });

  // Regression: the whole body was read into memory before it was cut, so a huge error
  // body could run the function out of memory.
  it('stops downloading a multi-megabyte body at the limit', async () => {
    const total = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    let written = 0;
    const server = await serve((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain', 'content-length': String(total) });
      const pump = () => {
        while (written < total && !res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        if (written >= total) res.end();
      };
      pump();
    });

    const answer = await httpRequest(fetch, new URL(`${server.url}/huge`), {}, 10_000);

    expect(answer.status).toBe(500);
    expect(answer.body).toHaveLength(MAX_BODY_BYTES);
    expect(answer.truncated).toBe(true);
    // The socket buffers hold a few MB at most; the rest of the body is never sent.
    expect(written).toBeLessThan(total / 4);
  });

  it('drops a character cut in half at the limit instead of showing U+FFFD', async () => {
    const server = await serve((_req, res) => res.end(`x${'é'.repeat(40_000)}`));

    const answer = await httpRequest(fetch, new URL(`${server.url}/accents`), {}, 1_000);

    // 1 byte, then 32,767 two-byte characters: 65,535 bytes; the next "é" straddles the 65,536-byte limit.
    expect(answer.body).toBe(`x${'é'.repeat(32_767)}`);
  });
});

describe('classifyTransportFailure', () => {
  // undici wraps the socket's error: TypeError('fetch failed', { cause }).
  const fetchFailed = (code: string) =>
    new TypeError('fetch failed', { cause: Object.assign(new Error('socket error'), { code }) });

  it.each([
    ['ENOTFOUND', 'dns'],
    ['EAI_AGAIN', 'dns'],
    ['ECONNREFUSED', 'refused'],
    ['CERT_HAS_EXPIRED', 'tls'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'tls'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls'],
    ['EPROTO', 'tls'],
    ['ECONNRESET', 'reset'],
    ['EPIPE', 'reset'],
    ['UND_ERR_SOCKET', 'reset'],
    ['ETIMEDOUT', 'timeout'],
    ['UND_ERR_CONNECT_TIMEOUT', 'timeout'],
    ['UND_ERR_HEADERS_TIMEOUT', 'timeout'],
    ['EHOSTUNREACH', 'network'],
  ])('names %s as %s', (code, failure) => {
    expect(classifyTransportFailure(fetchFailed(code), false)).toMatchObject({ failure, code });
  });

  it('finds the code inside an AggregateError (several addresses tried)', () => {
    const error = new TypeError('fetch failed', {
      cause: new AggregateError([
        Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
        Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
      ]),
    });

    expect(classifyTransportFailure(error, false)).toMatchObject({
      failure: 'refused',
      code: 'ECONNREFUSED',
    });
  });

  it("calls it a timeout when the request's own timeout fired, whatever the error says", () => {
    expect(classifyTransportFailure(new Error('aborted'), true).failure).toBe('timeout');
  });

  it.each([
    ['ENOTFOUND', true],
    ['ECONNREFUSED', true],
    ['CERT_HAS_EXPIRED', true],
    ['ERR_TLS_CERT_ALTNAME_INVALID', true],
    ['UND_ERR_CONNECT_TIMEOUT', true],
    ['ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC', false],
    ['ECONNRESET', false],
    ['UND_ERR_HEADERS_TIMEOUT', false],
    ['EHOSTUNREACH', false],
  ])('knows whether %s came before the request was written: %s', (code, beforeSend) => {
    expect(classifyTransportFailure(fetchFailed(code), false).beforeSend).toBe(beforeSend);
  });

  it('counts a connect timeout as before anything was sent, a reply timeout as possibly sent', () => {
    expect(classifyTransportFailure(fetchFailed('UND_ERR_CONNECT_TIMEOUT'), false).beforeSend).toBe(true);
    expect(classifyTransportFailure(fetchFailed('UND_ERR_HEADERS_TIMEOUT'), false).beforeSend).toBe(false);
  });

  it("names undici's bad port error (no code) bad_port, before anything was sent", () => {
    const error = new TypeError('fetch failed', { cause: new Error('bad port') });

    expect(classifyTransportFailure(error, false)).toEqual({
      failure: 'bad_port',
      code: undefined,
      beforeSend: true,
    });
  });

  it('names an error without a code a network failure', () => {
    expect(classifyTransportFailure(new TypeError('fetch failed'), false)).toEqual({
      failure: 'network',
      code: undefined,
      beforeSend: false,
    });
  });
});
