import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { listenOnLoopback, readBody, writeJson } from '#local/emulators/loopback-server.ts';
import { type ApiConfig, type ApiResult, createApi, defaultDuplicateKey, type ParsedBody } from './api.ts';
import { createFaultScript, describeRule, isObject } from './faults.ts';
import type {
  DropAction,
  FaultRequestView,
  HangAction,
  RecordedRequest,
  RespondAction,
  Simulator,
  SimulatorOptions,
} from './types.ts';

export {
  createThen,
  endpointOf,
  formatTimeHint,
  type HostileBody,
  hostile,
  type RateLimitHint,
  rateLimited,
  retryAfter,
} from './faults.ts';
export type * from './types.ts';

const DEFAULT_CLIENTS = { 'sim-client': 'sim-secret' };

/**
 * Starts an eCourtDate API simulator on loopback: `/oauth/token`, `POST /v1/messages/oneoffs` and
 * `GET /v1/settings`, faithful to the documented behaviour, plus scripted faults.
 *
 * Order of processing for each request:
 * 1. read and parse the body, identify the client (bearer token, even an expired one, or `client_id`),
 *    record the request;
 * 2. match the scheduled outages (a window holding the request's arrival acts first), then the scripted rules
 *    (first match wins, `times` used up);
 * 3. wait the rule's `delayMs`;
 *    (the rule's `onApply` runs here);
 * 4. `respond`, `drop` and `hang` act at once: they stand for failures in front of the API (gateway,
 *    network), so they need no valid token, do not count toward the rate limit and create nothing; a
 *    `respond` body or headers given as a function are computed now, from the clock and the request;
 * 5. otherwise (`pass`, `create-then`, or no rule) the API path runs: rate limit (429) -> route (404/405)
 *    -> token check (401) -> agency (404) -> body (400) -> duplicate check (409) -> create (201);
 *    `create-then` then swaps a 2xx answer for its `then` fault.
 *
 * @example
 * const sim = await startSimulator({ now: () => clock });
 * sim.script({ match: { path: '/v1/messages/oneoffs' }, times: 1, action: { kind: 'respond', status: 503 } });
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const config = resolveConfig(options);
  const now = options.now ?? Date.now;
  const api = createApi(config, options.clients ?? DEFAULT_CLIENTS);
  const script = createFaultScript({ timeScale: options.timeScale ?? 1 });
  const requests: RecordedRequest[] = [];
  const delays = createDelays();
  let seq = 0;

  const server = await listenOnLoopback(
    async (req, res) => {
      const text = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://simulator');
      const method = req.method ?? 'GET';
      const path = url.pathname;
      const query = Object.fromEntries(url.searchParams);
      const body = parseBody(text ?? '');
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
      const clientId = identify(
        path,
        body,
        bearer === undefined ? undefined : api.tokens.find(bearer)?.clientId,
      );
      const record: RecordedRequest = {
        seq: ++seq,
        at: now(),
        method,
        path,
        query,
        ...(clientId === undefined ? {} : { clientId }),
        body: redact(path, body),
        status: 'pending',
      };
      requests.push(record);

      const answer = (result: ApiResult) => {
        record.status = result.status;
        writeJson(res, result.status, result.body, result.headers);
      };
      const fault = (action: RespondAction | DropAction | HangAction, request: FaultRequestView) => {
        if (action.kind === 'respond') {
          record.status = action.status;
          const context = { now: now(), request };
          const body = typeof action.body === 'function' ? action.body(context) : action.body;
          const headers = typeof action.headers === 'function' ? action.headers(context) : action.headers;
          const contentType =
            typeof body === 'string' ? (action.contentType ?? 'text/plain') : 'application/json';
          writeJson(res, action.status, body, headers, contentType);
        } else if (action.kind === 'drop') {
          record.status = 'dropped';
          destroy(res);
        }
        // 'hang': leave the response open; close() destroys the socket.
      };

      if (text === undefined) {
        answer({ status: 413, body: { message: 'The request body is too large.' } });
        return;
      }
      const view: FaultRequestView = {
        method,
        path,
        query,
        headers: plainHeaders(req.headers),
        body: bodyValue(body),
        ...(clientId === undefined ? {} : { clientId }),
      };
      const rule = script.take(view, record.at);
      if (rule !== undefined) record.faultApplied = describeRule(rule);
      rule?.onApply?.(view);
      if (rule?.delayMs && !(await delays.wait(rule.delayMs))) return;
      const action = rule?.action ?? { kind: 'pass' };
      if (action.kind === 'respond' || action.kind === 'drop' || action.kind === 'hang') {
        fault(action, view);
        return;
      }
      const result = api.handle({ seq: record.seq, method, path, query, clientId, bearer, body }, now());
      if (result.createdUuid !== undefined) {
        record.createdUuid = result.createdUuid;
        // From the end: the message was just created (a scan from the start grows with every message).
        const created = api.messages.findLast((message) => message.uuid === result.createdUuid);
        if (created) options.onMessageCreated?.(created);
      }
      if (action.kind === 'create-then' && result.status >= 200 && result.status < 300)
        fault(action.then, view);
      else answer(result);
    },
    { host: options.host, port: options.port, onClose: () => delays.cancelAll() },
  );

  return {
    url: server.url,
    get requests() {
      return requests;
    },
    get messages() {
      return api.messages;
    },
    script: (rule) => script.add(rule),
    scheduleOutage(outage) {
      const revoke = outage.kind === 'auth' && outage.revokeTokens !== false;
      script.schedule(outage, revoke ? () => api.tokens.revoke(outage.clientId) : undefined);
    },
    outages: () => script.outages(requests),
    clearScript: () => script.clear(),
    setClientSecret(clientId, secret, rotation = {}) {
      api.clients.set(clientId, secret);
      if (rotation.revokeTokens) api.tokens.revoke(clientId);
    },
    revokeTokens: () => api.tokens.revoke(),
    reset() {
      requests.length = 0;
      seq = 0;
      script.clear();
      api.reset();
    },
    close: () => server.close(),
  };
}

function resolveConfig(options: SimulatorOptions): ApiConfig {
  const scale = options.timeScale ?? 1;
  positive('timeScale', scale);
  const expiresIn = options.tokenExpiresInSeconds === undefined ? 3600 : options.tokenExpiresInSeconds;
  if (expiresIn !== null) positive('tokenExpiresInSeconds', expiresIn);
  const lifetime = options.tokenLifetimeSeconds ?? expiresIn ?? 3600;
  positive('tokenLifetimeSeconds', lifetime);
  const limit = options.rateLimitPerMinute ?? 1000;
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`rateLimitPerMinute must be an integer >= 1`);
  const duplicateWindow = options.duplicateWindowSeconds ?? 1800;
  if (!(duplicateWindow >= 0)) throw new RangeError('duplicateWindowSeconds must be >= 0');
  const tokenStatus = options.tokenStatus ?? 201;
  if (!Number.isInteger(tokenStatus) || tokenStatus < 200 || tokenStatus > 299) {
    throw new RangeError(`tokenStatus must be a 2xx status, got ${tokenStatus}`);
  }
  return {
    tokenStatus,
    tokenExpiresInSeconds: expiresIn,
    tokenLifetimeMs: (lifetime * 1000) / scale,
    sendStatus: options.sendStatus ?? 201,
    responseShape: options.responseShape ?? 'object',
    rateLimitPerMinute: limit,
    rateLimitWindow: options.rateLimitWindow ?? 'fixed',
    rateLimitWindowMs: 60_000 / scale,
    rateLimitHeaders: options.rateLimitHeaders ?? 'none',
    rateLimitResetForm: options.rateLimitResetForm ?? 'epoch-seconds',
    duplicateWindowMs: (duplicateWindow * 1000) / scale,
    duplicateKey: options.duplicateKey ?? defaultDuplicateKey,
    knownAgencies: options.knownAgencies ?? null,
  };
}

function positive(name: string, value: number): void {
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be a finite number > 0`);
}

function parseBody(text: string): ParsedBody {
  if (text.trim() === '') return { kind: 'empty' };
  try {
    return { kind: 'json', value: JSON.parse(text) as unknown };
  } catch {
    return { kind: 'malformed', text };
  }
}

function bodyValue(body: ParsedBody): unknown {
  return body.kind === 'json' ? body.value : body.kind === 'malformed' ? body.text : undefined;
}

function identify(path: string, body: ParsedBody, tokenClient: string | undefined): string | undefined {
  if (tokenClient !== undefined) return tokenClient;
  if (path !== '/oauth/token' || body.kind !== 'json' || !isObject(body.value)) return undefined;
  return typeof body.value.client_id === 'string' ? body.value.client_id : undefined;
}

/** The body as recorded: tests and logs may print records, so the client secret never enters them. */
function redact(path: string, body: ParsedBody): unknown {
  if (body.kind === 'malformed') return path === '/oauth/token' ? '[redacted]' : body.text;
  const value = bodyValue(body);
  if (!isObject(value) || !('client_secret' in value)) return structuredClone(value);
  return { ...structuredClone(value), client_secret: '[redacted]' };
}

/** Header values as strings; `authorization` left out, so no rule or log can see a token. */
function plainHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const plain: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name === 'authorization' || value === undefined) continue;
    plain[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return plain;
}

function destroy(res: ServerResponse): void {
  res.socket?.destroy();
  res.destroy();
}

/** Real-time waits for `delayMs`, all cut short by close() so no timer keeps a test process alive. */
function createDelays() {
  const pending = new Map<ReturnType<typeof setTimeout>, (finished: boolean) => void>();
  let closed = false;
  return {
    /** Resolves true after `ms`, or false at once when the simulator closes first. */
    wait(ms: number): Promise<boolean> {
      if (closed) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(timer);
          resolve(true);
        }, ms);
        pending.set(timer, resolve);
      });
    },
    cancelAll() {
      closed = true;
      for (const [timer, resolve] of pending) {
        clearTimeout(timer);
        resolve(false);
      }
      pending.clear();
    },
  };
}
