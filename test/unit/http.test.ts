import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_VISIBILITY_TIMEOUT_SECONDS } from '#shared/config.ts';
import { EcdTransportError } from '#shared/ecourtdate/errors.ts';
import { apiUrl, extractUuid, httpRequest, retryAfterSeconds } from '#shared/ecourtdate/http.ts';
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

describe('retryAfterSeconds', () => {
  const wait = (headers: Record<string, string>) => retryAfterSeconds(new Headers(headers), T0);

  it('reads Retry-After in seconds', () => {
    expect(wait({ 'Retry-After': '120' })).toBe(120);
  });

  it('rounds fractional seconds up', () => {
    expect(wait({ 'Retry-After': '1.2' })).toBe(2);
  });

  it('reads Retry-After as an HTTP date, relative to now', () => {
    expect(wait({ 'Retry-After': new Date(T0 + 90_000).toUTCString() })).toBe(90);
  });

  it('ignores a Retry-After date in the past', () => {
    expect(wait({ 'Retry-After': new Date(T0 - 5_000).toUTCString() })).toBeUndefined();
  });

  it('reads X-RateLimit-Reset as an epoch time in seconds', () => {
    expect(wait({ 'X-RateLimit-Reset': String(T0 / 1000 + 45) })).toBe(45);
  });

  it('reads a small X-RateLimit-Reset as seconds from now', () => {
    expect(wait({ 'X-RateLimit-Reset': '30' })).toBe(30);
  });

  it('reads RateLimit-Reset as seconds from now', () => {
    expect(wait({ 'RateLimit-Reset': '20' })).toBe(20);
  });

  it('takes the largest wait when several headers are sent', () => {
    expect(wait({ 'Retry-After': '10', 'X-RateLimit-Reset': '30', 'RateLimit-Reset': '20' })).toBe(30);
  });

  it('caps the wait at the longest SQS visibility timeout', () => {
    expect(wait({ 'Retry-After': '999999' })).toBe(MAX_VISIBILITY_TIMEOUT_SECONDS);
  });

  it('is undefined with no rate-limit header', () => {
    expect(wait({ 'Content-Type': 'application/json' })).toBeUndefined();
  });

  it('is undefined when every header is unusable or zero', () => {
    expect(
      wait({ 'Retry-After': 'soon', 'X-RateLimit-Reset': '-5', 'RateLimit-Reset': '0' }),
    ).toBeUndefined();
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
    const started = Date.now();

    const error = await transportErrorOf(httpRequest(fetch, new URL(`${server.url}/slow`), {}, 40));

    expect(error.kind).toBe('timeout');
    expect(error.message).toBe(`timed out calling ${server.url}/slow`);
    expect(Date.now() - started).toBeLessThan(2_000);
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

    expect(error.kind).toBe('connection');
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('turns a refused connection into a connection error', async () => {
    const server = await serve(() => {});
    const url = new URL(`${server.url}/gone`);
    const last = servers.pop();
    last?.closeAllConnections();
    await new Promise<void>((resolve) => last?.close(() => resolve()));

    const error = await transportErrorOf(httpRequest(fetch, url, {}, 1_000));

    expect(error.kind).toBe('connection');
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
  });
});
