import { randomUUID } from 'node:crypto';
import { formatTimeHint, isObject } from './faults.ts';
import { createRateLimiter, type RateDecision, type RateLimiter } from './rate-limit.ts';
import { createTokenStore, type IssuedToken, type TokenStore } from './tokens.ts';
import type { CreatedMessage, TimeHintForm } from './types.ts';
import {
  formatIso,
  formatScheduledAt,
  parseScheduledAt,
  validateOneoff,
  validationBody,
} from './validation.ts';

/** Options with defaults applied and every window converted to (scaled) milliseconds. */
export interface ApiConfig {
  readonly tokenStatus: number;
  readonly tokenExpiresInSeconds: number | null;
  readonly tokenLifetimeMs: number;
  readonly sendStatus: number;
  readonly responseShape: 'object' | 'array';
  readonly rateLimitPerMinute: number;
  readonly rateLimitWindow: 'fixed' | 'sliding';
  readonly rateLimitWindowMs: number;
  readonly rateLimitHeaders: 'none' | 'retry-after' | 'x-ratelimit';
  readonly rateLimitResetForm: TimeHintForm;
  readonly duplicateWindowMs: number;
  readonly duplicateKey: (message: Record<string, unknown>) => string;
  readonly knownAgencies: readonly string[] | null;
}

/** The request body as the API sees it. */
export type ParsedBody =
  | { kind: 'empty' }
  | { kind: 'json'; value: unknown }
  | { kind: 'malformed'; text: string };

export interface ApiRequest {
  readonly seq: number;
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  /** From the bearer token (live or not) or, on /oauth/token, from `client_id`. */
  readonly clientId: string | undefined;
  readonly bearer: string | undefined;
  readonly body: ParsedBody;
}

export interface ApiResult {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly createdUuid?: string;
}

export interface Api {
  /** Answers one request the way eCourtDate would; synchronous, so check-then-create cannot interleave. */
  handle(req: ApiRequest, now: number): ApiResult;
  readonly messages: CreatedMessage[];
  readonly clients: Map<string, string>;
  readonly tokens: TokenStore;
  /** Forgets messages, tokens and rate counters. */
  reset(): void;
}

type Handler = (req: ApiRequest, now: number) => ApiResult;

const UNAUTHENTICATED: ApiResult = { status: 401, body: { message: 'Unauthenticated.' } };

/** The simulated eCourtDate API behind the HTTP layer: routing, auth, rate limit, validation, dedup. */
export function createApi(config: ApiConfig, clients: Record<string, string>): Api {
  const messages: CreatedMessage[] = [];
  const clientSecrets = new Map(Object.entries(clients));
  const tokens = createTokenStore();
  const limiter: RateLimiter = createRateLimiter(
    config.rateLimitPerMinute,
    config.rateLimitWindowMs,
    config.rateLimitWindow,
  );
  // Effective send times of created messages per client and duplicate key, so a check is one lookup.
  const sent = new Map<string, number[]>();

  const authenticate = (req: ApiRequest, now: number): IssuedToken | undefined => {
    const issued = req.bearer === undefined ? undefined : tokens.find(req.bearer);
    return issued && !issued.revoked && now < issued.expiresAt ? issued : undefined;
  };

  const agencyNotFound = (req: ApiRequest): ApiResult | undefined => {
    const agency = req.query.agency_reference;
    if (config.knownAgencies === null || agency === undefined || config.knownAgencies.includes(agency)) {
      return undefined;
    }
    return { status: 404, body: { message: 'Agency Not Found' } };
  };

  const issueToken: Handler = (req, now) => {
    const body = objectBody(req.body);
    if ('status' in body) return body;
    const grant = body.value.grant_type;
    // The devs page example omits grant_type, so absent is accepted like the documented value.
    if (grant !== undefined && grant !== 'client_credentials') {
      return {
        status: 400,
        body: {
          error: 'unsupported_grant_type',
          message: 'The authorization grant type is not supported by the authorization server.',
        },
      };
    }
    const errors: Record<string, string[]> = {};
    for (const field of ['client_id', 'client_secret']) {
      const value = body.value[field];
      if (typeof value !== 'string' || value === '') errors[field] = [`The ${field} field is required.`];
    }
    if (Object.keys(errors).length > 0) {
      return { status: 400, body: { error: 'invalid_request', ...validationBody(errors) } };
    }
    const clientId = body.value.client_id as string;
    if (clientSecrets.get(clientId) !== body.value.client_secret) {
      return { status: 401, body: { error: 'invalid_client', message: 'Unauthenticated.' } };
    }
    const accessToken = tokens.issue(clientId, now + config.tokenLifetimeMs);
    const expiresIn =
      config.tokenExpiresInSeconds === null ? {} : { expires_in: config.tokenExpiresInSeconds };
    return {
      status: config.tokenStatus,
      body: { token_type: 'Bearer', ...expiresIn, access_token: accessToken },
    };
  };

  const createOneoff: Handler = (req, now) => {
    const issued = authenticate(req, now);
    if (issued === undefined) return UNAUTHENTICATED;
    const agency = agencyNotFound(req);
    if (agency) return agency;
    const body = objectBody(req.body);
    if ('status' in body) return body;
    const message = body.value;
    const errors = validateOneoff(message);
    if (Object.keys(errors).length > 0) return { status: 400, body: validationBody(errors) };

    const scheduledAt = typeof message.scheduled_at === 'string' ? message.scheduled_at : undefined;
    const effectiveAt = scheduledAt === undefined ? now : (parseScheduledAt(scheduledAt) ?? now);
    const dedupKey = JSON.stringify([issued.clientId, config.duplicateKey(message)]);
    const earlier = sent.get(dedupKey) ?? [];
    const duplicate = earlier.some((at) => Math.abs(at - effectiveAt) <= config.duplicateWindowMs);
    if (message.skip_duplicate !== true && duplicate) {
      return { status: 409, body: { message: 'Duplicate message detected.' } };
    }

    const uuid = randomUUID();
    sent.set(dedupKey, [...earlier, effectiveAt]);
    const agencyReference = req.query.agency_reference;
    messages.push({
      uuid,
      clientId: issued.clientId,
      ...(agencyReference === undefined ? {} : { agencyReference }),
      body: structuredClone(message),
      createdAt: now,
      requestSeq: req.seq,
    });
    const created = {
      uuid,
      to: message.to,
      channel: message.channel ?? 'text',
      subject: message.subject ?? null,
      content: message.content,
      scheduled_at: scheduledAt ?? formatScheduledAt(now),
      status: 'queued',
      created_at: formatIso(now),
    };
    const shaped = config.responseShape === 'array' ? [created] : created;
    return { status: config.sendStatus, body: shaped, createdUuid: uuid };
  };

  const settings: Handler = (req, now) => {
    const issued = authenticate(req, now);
    if (issued === undefined) return UNAUTHENTICATED;
    const agency = agencyNotFound(req);
    if (agency) return agency;
    const reference = req.query.agency_reference ?? config.knownAgencies?.[0] ?? 'sim-agency';
    return {
      status: 200,
      body: {
        agency: { reference, name: `Simulated agency ${reference}`, status: 'active' },
        client_id: issued.clientId,
      },
    };
  };

  const routes: Record<string, Record<string, Handler>> = {
    '/oauth/token': { POST: issueToken },
    '/v1/messages/oneoffs': { POST: createOneoff },
    '/v1/settings': { GET: settings },
  };

  const route: Handler = (req, now) => {
    const methods = routes[req.path];
    if (methods === undefined) return { status: 404, body: { message: 'Not Found' } };
    const handler = methods[req.method.toUpperCase()];
    if (handler === undefined) {
      return {
        status: 405,
        body: { message: `The ${req.method} method is not supported for route ${req.path}.` },
        headers: { allow: Object.keys(methods).join(', ') },
      };
    }
    return handler(req, now);
  };

  return {
    handle(req, now) {
      // Counted before auth and routing: the docs say every request counts, rejected ones included.
      const decision = req.clientId === undefined ? undefined : limiter.take(req.clientId, now);
      const result =
        decision?.allowed === false
          ? { status: 429, body: { message: 'Too Many Attempts.' } }
          : route(req, now);
      const headers = decision ? rateHeaders(config, decision, result.status, now) : {};
      return { ...result, headers: { ...result.headers, ...headers } };
    },
    messages,
    clients: clientSecrets,
    tokens,
    reset() {
      messages.length = 0;
      sent.clear();
      tokens.clear();
      limiter.clear();
    },
  };
}

function objectBody(body: ParsedBody): { value: Record<string, unknown> } | ApiResult {
  if (body.kind === 'empty') return { value: {} };
  if (body.kind === 'malformed') {
    const problem = 'The request body is not valid JSON.';
    return { status: 400, body: { message: problem, errors: { body: [problem] } } };
  }
  if (!isObject(body.value)) {
    const problem = 'The request body must be a JSON object.';
    return { status: 400, body: { message: problem, errors: { body: [problem] } } };
  }
  return { value: body.value };
}

function rateHeaders(
  config: Pick<ApiConfig, 'rateLimitHeaders' | 'rateLimitResetForm'>,
  decision: RateDecision,
  status: number,
  now: number,
): Record<string, string> {
  const mode = config.rateLimitHeaders;
  if (mode === 'x-ratelimit') {
    return {
      'x-ratelimit-limit': String(decision.limit),
      'x-ratelimit-remaining': String(decision.remaining),
      'x-ratelimit-reset': formatTimeHint(config.rateLimitResetForm, (decision.resetAt - now) / 1000, now),
    };
  }
  if (mode === 'retry-after' && status === 429) {
    // Whole seconds only; with a timeScale the true wait can be under a second, so never advertise 0.
    return { 'retry-after': String(Math.max(1, Math.ceil((decision.resetAt - now) / 1000))) };
  }
  return {};
}

/** The default duplicate key (the compared fields are UNKNOWN upstream): recipient, channel, subject, content. */
export function defaultDuplicateKey(message: Record<string, unknown>): string {
  return JSON.stringify([message.to, message.channel ?? 'text', message.subject ?? '', message.content]);
}
