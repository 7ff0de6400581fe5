import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A started HTTP server: its base URL and a close that never waits for a client. */
export interface LoopbackServer {
  /** `http://host:port`, no trailing slash. */
  readonly url: string;
  /** Stops listening and destroys every open socket, held or kept-alive; safe to call more than once. */
  close(): Promise<void>;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/**
 * Listens on `host:port` (port 0 = ephemeral) and runs `handler` for each request. A handler that throws
 * gets a 500, or a destroyed socket when the answer had already started, so a bug never leaves a client
 * waiting and never crashes the test process.
 */
export async function listenOnLoopback(
  handler: RequestHandler,
  options: { host?: string | undefined; port?: number | undefined; onClose?: () => void } = {},
): Promise<LoopbackServer> {
  const host = options.host ?? '127.0.0.1';
  // Tracked by hand: server.close() alone waits for kept-alive and deliberately held connections.
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handler(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `simulator bug: ${message}` }));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        options.onClose?.();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

/** The whole request body as text, or `undefined` when it exceeds `limitBytes` (the rest is discarded). */
export async function readBody(req: IncomingMessage, limitBytes = 1024 * 1024): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limitBytes) tooLarge = true;
    if (!tooLarge) chunks.push(buffer);
  }
  return tooLarge ? undefined : Buffer.concat(chunks).toString('utf8');
}

/** Writes a JSON answer; `undefined` body means an empty one. Headers given win over the defaults. */
export function writeJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  contentType = 'application/json',
): void {
  if (res.destroyed) return;
  const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const base: Record<string, string> = body === undefined ? {} : { 'content-type': contentType };
  res.writeHead(status, { ...base, 'content-length': String(Buffer.byteLength(payload)), ...lower(headers) });
  res.end(payload);
}

function lower(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}
