import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent } from 'undici';
import AgentOnly from 'undici/lib/dispatcher/agent.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiFetch, DEFAULT_MAX_IDLE_MS } from '#shared/ecourtdate/connection.ts';
import { EcdTransportError } from '#shared/ecourtdate/errors.ts';
import { type FetchLike, httpRequest } from '#shared/ecourtdate/http.ts';
import { fakeClock } from '#test/helpers/unit-factories.ts';

/** A loopback server that records every connection it accepts. */
interface LoopbackServer {
  readonly url: URL;
  /** Connections accepted, in order. */
  readonly sockets: Socket[];
}

const servers: Server[] = [];
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<LoopbackServer> {
  const sockets: Socket[] = [];
  const server = createServer(handler);
  server.on('connection', (socket: Socket) => sockets.push(socket));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { url: new URL(`http://127.0.0.1:${port}/v1/messages/oneoffs`), sockets };
}

/**
 * Like a server or NAT gateway that has silently dropped an idle connection: it answers the first request on
 * each connection, and any later request on the same connection vanishes without an answer.
 */
function dropsReusedConnections(): Promise<LoopbackServer> {
  const used = new WeakSet<Socket>();
  return serve((req, res) => {
    if (used.has(req.socket)) return;
    used.add(req.socket);
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end('{"uuid":"3f0c9a52-7b1e-4d8a-9c6f-2e5b8d1a4c7e"}');
  });
}

function answersEverything(): Promise<LoopbackServer> {
  return serve((_req, res) => {
    res.writeHead(200);
    res.end('ok');
  });
}

function apiFetchWithClock() {
  const clock = fakeClock();
  const apiFetch = createApiFetch({ now: clock.now });
  closers.push(() => apiFetch.close());
  return { clock, apiFetch };
}

/**
 * One POST; resolves once the pool has taken the connection back (undici does so on the event loop's next
 * turn after the body is read), so that the next request can reuse it.
 */
async function post(fetchImpl: FetchLike, url: URL, timeoutMs = 2_000) {
  const answer = await httpRequest(fetchImpl, url, { method: 'POST', body: '{}' }, timeoutMs);
  await new Promise((resolve) => setImmediate(resolve));
  return answer;
}

describe('createApiFetch: the connection policy', () => {
  it("imports undici's own Agent class on its own, the one the package exports", () => {
    // connection.ts imports the module by its path to keep the rest of undici out of the bundle; an undici
    // release that moves or changes it must fail here, not in Lambda.
    expect(AgentOnly).toBe(Agent);
  });

  it('opens a fresh connection after an idle gap longer than the limit, so the request succeeds', async () => {
    const server = await dropsReusedConnections();
    const { clock, apiFetch } = apiFetchWithClock();
    await post(apiFetch, server.url);

    // Lambda froze the environment: no timer ran, only the wall clock moved.
    clock.advance(DEFAULT_MAX_IDLE_MS + 1);
    const second = await post(apiFetch, server.url);

    expect(second.status).toBe(201);
    expect(server.sockets).toHaveLength(2);
  });

  it('reuses the connection while it has been idle no longer than the limit', async () => {
    const server = await answersEverything();
    const { clock, apiFetch } = apiFetchWithClock();
    await post(apiFetch, server.url);

    clock.advance(DEFAULT_MAX_IDLE_MS);
    await post(apiFetch, server.url);

    expect(server.sockets).toHaveLength(1);
  });

  it('measures idleness from the last answer, not the first request', async () => {
    const server = await answersEverything();
    const { clock, apiFetch } = apiFetchWithClock();
    for (let i = 0; i < 3; i++) {
      await post(apiFetch, server.url);
      clock.advance(DEFAULT_MAX_IDLE_MS - 1);
    }

    expect(server.sockets).toHaveLength(1);
  });

  it('closes the connections of the replaced pool', async () => {
    const server = await answersEverything();
    const { clock, apiFetch } = apiFetchWithClock();
    await post(apiFetch, server.url);
    const first = server.sockets[0];
    if (!first) throw new Error('expected a first connection');
    const firstClosed = once(first, 'close');

    clock.advance(DEFAULT_MAX_IDLE_MS + 1);
    await post(apiFetch, server.url);

    await firstClosed;
    expect(first.destroyed).toBe(true);
  });

  it('follows a custom limit', async () => {
    const server = await answersEverything();
    const clock = fakeClock();
    const apiFetch = createApiFetch({ now: clock.now, maxIdleMs: 500 });
    closers.push(() => apiFetch.close());
    await post(apiFetch, server.url);

    clock.advance(501);
    await post(apiFetch, server.url);

    expect(server.sockets).toHaveLength(2);
  });

  // What the policy prevents: a plain keep-alive pool writes the second request on the dropped connection,
  // and the request vanishes until the timeout (on the messages endpoint, an unknown outcome).
  it('without the policy, a request on a silently dropped connection times out', async () => {
    const server = await dropsReusedConnections();
    const pool = new Agent();
    closers.push(() => pool.destroy());
    const plainFetch: FetchLike = (input, init) => fetch(input, { ...init, dispatcher: pool } as RequestInit);
    await post(plainFetch, server.url);

    const error = await post(plainFetch, server.url, 300).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(EcdTransportError);
    expect((error as EcdTransportError).failure).toBe('timeout');
    expect(server.sockets).toHaveLength(1);
  });

  it.each([0, -1, Number.NaN, 600_001])('refuses a maxIdleMs of %s', (maxIdleMs) => {
    expect(() => createApiFetch({ maxIdleMs })).toThrow(RangeError);
  });
});
