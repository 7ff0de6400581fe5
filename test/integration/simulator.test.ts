import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createThen,
  hostile,
  rateLimited,
  retryAfter,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from '#local/ecourtdate-simulator/index.ts';

const T0 = Date.UTC(2025, 2, 15, 14, 0, 0);
const MINUTE = 60_000;
const CREDENTIALS = {
  client_id: 'sim-client',
  client_secret: 'sim-secret',
  grant_type: 'client_credentials',
};

let clock = T0;
const started: Simulator[] = [];

beforeEach(() => {
  clock = T0;
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((sim) => sim.close()));
});

/** A simulator on the test clock, closed after the test. */
async function start(options: SimulatorOptions = {}): Promise<Simulator> {
  const sim = await startSimulator({ now: () => clock, ...options });
  started.push(sim);
  return sim;
}

function postJson(url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

function requestToken(sim: Simulator, credentials: Record<string, unknown> = CREDENTIALS) {
  return postJson(`${sim.url}/oauth/token`, credentials);
}

async function token(sim: Simulator, credentials: Record<string, unknown> = CREDENTIALS): Promise<string> {
  const response = await requestToken(sim, credentials);
  expect(response.status).toBe(201);
  const body = (await response.json()) as { access_token: string };
  return body.access_token;
}

function send(sim: Simulator, bearer: string | undefined, body: unknown, query = '', signal?: AbortSignal) {
  const auth: Record<string, string> = bearer === undefined ? {} : { authorization: `Bearer ${bearer}` };
  return postJson(`${sim.url}/v1/messages/oneoffs${query}`, body, auth, signal);
}

function message(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { to: '+15555550100', content: 'Reminder: your hearing is on 2025-04-01 at 09:00.', ...overrides };
}

describe('POST /oauth/token', () => {
  it('issues a JWT-looking Bearer token with status 201 and expires_in 3600', async () => {
    const sim = await start();

    const response = await requestToken(sim);

    expect(response.status).toBe(201);
    const body = await response.json();
    expect(body).toEqual({
      token_type: 'Bearer',
      expires_in: 3600,
      access_token: expect.stringMatching(/^eyJ/),
    });
  });

  it('omits expires_in when tokenExpiresInSeconds is null', async () => {
    const sim = await start({ tokenExpiresInSeconds: null });

    const body = await (await requestToken(sim)).json();

    expect(body).not.toHaveProperty('expires_in');
    expect(body).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String) });
  });

  it('accepts a request without grant_type, as the devs page example sends it', async () => {
    const sim = await start();

    const response = await requestToken(sim, { client_id: 'sim-client', client_secret: 'sim-secret' });

    expect(response.status).toBe(201);
  });

  it('answers 400 to a grant_type other than client_credentials', async () => {
    const sim = await start();

    const response = await requestToken(sim, { ...CREDENTIALS, grant_type: 'password' });

    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'unsupported_grant_type' });
  });

  it('answers 401 to a wrong client secret', async () => {
    const sim = await start();

    const response = await requestToken(sim, { ...CREDENTIALS, client_secret: 'wrong' });

    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ message: 'Unauthenticated.' });
  });

  it('answers 401 to an unknown client_id', async () => {
    const sim = await start();

    const response = await requestToken(sim, { ...CREDENTIALS, client_id: 'stranger' });

    expect(response.status).toBe(401);
  });

  it('counts token requests toward the client rate limit', async () => {
    const sim = await start({ rateLimitPerMinute: 2 });
    const bearer = await token(sim);
    await token(sim);

    const response = await send(sim, bearer, message());

    expect(response.status).toBe(429);
    expect(sim.messages).toHaveLength(0);
  });
});

describe('POST /v1/messages/oneoffs', () => {
  it('creates the message and answers 201 with its uuid, the echoed fields, status queued and an ISO created_at', async () => {
    const sim = await start();
    const bearer = await token(sim);

    const response = await send(sim, bearer, message({ subject: 'Court reminder' }));

    expect(response.status).toBe(201);
    const body = (await response.json()) as { uuid: string };
    expect(body).toEqual({
      uuid: expect.stringMatching(/^[0-9a-f-]{36}$/),
      to: '+15555550100',
      channel: 'text',
      subject: 'Court reminder',
      content: 'Reminder: your hearing is on 2025-04-01 at 09:00.',
      scheduled_at: '2025-03-15 14:00:00',
      status: 'queued',
      created_at: '2025-03-15T14:00:00Z',
    });
    expect(sim.messages).toEqual([
      {
        uuid: body.uuid,
        clientId: 'sim-client',
        body: message({ subject: 'Court reminder' }),
        createdAt: T0,
        requestSeq: 2,
      },
    ]);
  });

  it('answers an array of one message with status 200 when configured that way', async () => {
    const sim = await start({ responseShape: 'array', sendStatus: 200 });
    const bearer = await token(sim);

    const response = await send(sim, bearer, message());

    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body).toEqual([expect.objectContaining({ uuid: sim.messages[0]?.uuid, status: 'queued' })]);
  });

  it.each([
    ['content is missing', { to: '+15555550100' }, 'content', 'The content field is required.'],
    ['to is blank', message({ to: '  ' }), 'to', 'The to field is required.'],
    [
      'content is over 2,000 characters',
      message({ content: 'x'.repeat(2001) }),
      'content',
      'The content field must not be greater than 2000 characters.',
    ],
    [
      'subject is over 255 characters',
      message({ subject: 's'.repeat(256) }),
      'subject',
      'The subject field must not be greater than 255 characters.',
    ],
    [
      'scheduled_at is ISO 8601 instead of YYYY-MM-DD HH:mm:ss',
      message({ scheduled_at: '2025-03-15T14:30:00Z' }),
      'scheduled_at',
      'The scheduled at field must match the format Y-m-d H:i:s.',
    ],
    [
      'scheduled_at is not a real date',
      message({ scheduled_at: '2025-02-30 10:00:00' }),
      'scheduled_at',
      'The scheduled at field must match the format Y-m-d H:i:s.',
    ],
    [
      'skip_duplicate is not a boolean',
      message({ skip_duplicate: 'yes' }),
      'skip_duplicate',
      'The skip duplicate field must be true or false.',
    ],
  ])('answers 400 naming the field when %s, and creates nothing', async (_case, body, field, text) => {
    const sim = await start();
    const bearer = await token(sim);

    const response = await send(sim, bearer, body);

    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ message: text, errors: { [field]: [text] } });
    expect(sim.messages).toHaveLength(0);
  });

  it('accepts content of exactly 2,000 characters counted as code points', async () => {
    const sim = await start();
    const bearer = await token(sim);

    const response = await send(sim, bearer, message({ content: '😀'.repeat(2000) }));

    expect(response.status).toBe(201);
  });

  it('answers 400 naming the body when the JSON is malformed', async () => {
    const sim = await start();
    const bearer = await token(sim);

    const response = await send(sim, bearer, '{"to": "+1555",');

    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      errors: { body: ['The request body is not valid JSON.'] },
    });
  });

  it('answers 401 when the Authorization header is missing', async () => {
    const sim = await start();

    const response = await send(sim, undefined, message());

    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ message: 'Unauthenticated.' });
  });

  it('answers 401 to a token it never issued', async () => {
    const sim = await start();

    const response = await send(sim, 'eyJforged.token.value', message());

    expect(response.status).toBe(401);
  });

  it('honours a token until its lifetime ends and answers 401 from then on', async () => {
    const sim = await start();
    const bearer = await token(sim);

    clock = T0 + 3_599_000;
    const lastSecond = await send(sim, bearer, message({ content: 'a' }));
    clock = T0 + 3_600_000;
    const expired = await send(sim, bearer, message({ content: 'b' }));

    expect(lastSecond.status).toBe(201);
    expect(expired.status).toBe(401);
  });

  it('honours a token for tokenLifetimeSeconds even when expires_in says longer', async () => {
    const sim = await start({ tokenExpiresInSeconds: 3600, tokenLifetimeSeconds: 600 });
    const bearer = await token(sim);

    clock = T0 + 600_000;
    const response = await send(sim, bearer, message());

    expect(response.status).toBe(401);
  });

  it('answers 409 to an identical message inside the 30-minute window and creates nothing', async () => {
    const sim = await start();
    const bearer = await token(sim);
    await send(sim, bearer, message());

    clock = T0 + 30 * MINUTE;
    const response = await send(sim, bearer, message());

    expect(response.status).toBe(409);
    expect(await response.json()).toEqual({ message: 'Duplicate message detected.' });
    expect(sim.messages).toHaveLength(1);
  });

  it('creates an identical message once the first is more than 30 minutes away', async () => {
    const sim = await start();
    const bearer = await token(sim);
    await send(sim, bearer, message());

    clock = T0 + 30 * MINUTE + 1000;
    const response = await send(sim, bearer, message());

    expect(response.status).toBe(201);
    expect(sim.messages).toHaveLength(2);
  });

  it('measures the duplicate window between scheduled_at times, read as UTC', async () => {
    const sim = await start();
    const bearer = await token(sim);
    await send(sim, bearer, message({ scheduled_at: '2025-03-20 09:00:00' }));

    const within = await send(sim, bearer, message({ scheduled_at: '2025-03-20 08:30:00' }));
    const outside = await send(sim, bearer, message({ scheduled_at: '2025-03-20 09:30:01' }));

    expect(within.status).toBe(409);
    expect(outside.status).toBe(201);
  });

  it('does not treat the same content to another recipient as a duplicate', async () => {
    const sim = await start();
    const bearer = await token(sim);
    await send(sim, bearer, message());

    const response = await send(sim, bearer, message({ to: '+15555550199' }));

    expect(response.status).toBe(201);
  });

  it('uses the duplicateKey option to decide what counts as the same message', async () => {
    const sim = await start({ duplicateKey: (m) => String(m.to) });
    const bearer = await token(sim);
    await send(sim, bearer, message({ content: 'first' }));

    const response = await send(sim, bearer, message({ content: 'second' }));

    expect(response.status).toBe(409);
  });

  it('creates a duplicate when skip_duplicate is true', async () => {
    const sim = await start();
    const bearer = await token(sim);
    await send(sim, bearer, message());

    const response = await send(sim, bearer, message({ skip_duplicate: true }));

    expect(response.status).toBe(201);
    expect(sim.messages).toHaveLength(2);
  });

  it('answers 404 Agency Not Found to an agency_reference it does not know', async () => {
    const sim = await start({ knownAgencies: ['court-a'] });
    const bearer = await token(sim);

    const unknown = await send(sim, bearer, message(), '?agency_reference=court-b');
    const known = await send(sim, bearer, message(), '?agency_reference=court-a');

    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ message: 'Agency Not Found' });
    expect(known.status).toBe(201);
    expect(sim.messages.map((m) => m.agencyReference)).toEqual(['court-a']);
  });

  it('answers 429 once the client has used its requests for the minute, and serves it again after the window', async () => {
    const sim = await start({ rateLimitPerMinute: 3 });
    const bearer = await token(sim);
    await send(sim, bearer, message({ content: 'a' }));
    await send(sim, bearer, message({ content: 'b' }));

    clock = T0 + 59_999;
    const limited = await send(sim, bearer, message({ content: 'c' }));
    clock = T0 + MINUTE;
    const reset = await send(sim, bearer, message({ content: 'c' }));

    expect(limited.status).toBe(429);
    expect(reset.status).toBe(201);
  });

  it('with a sliding window, frees a slot only when the oldest request leaves the last minute', async () => {
    const sim = await start({ rateLimitPerMinute: 2, rateLimitWindow: 'sliding' });
    const bearer = await token(sim);
    clock = T0 + 30_000;
    await send(sim, bearer, message({ content: 'a' }));

    clock = T0 + MINUTE;
    const freed = await send(sim, bearer, message({ content: 'b' }));
    clock = T0 + MINUTE + 1000;
    const stillFull = await send(sim, bearer, message({ content: 'c' }));

    expect(freed.status).toBe(201);
    expect(stillFull.status).toBe(429);
  });

  it('adds Retry-After with the seconds left in the window to a 429 when rateLimitHeaders is retry-after', async () => {
    const sim = await start({ rateLimitPerMinute: 1, rateLimitHeaders: 'retry-after' });
    await token(sim);

    clock = T0 + 20_000;
    const response = await requestToken(sim);

    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('40');
  });

  it('adds X-RateLimit-Limit, -Remaining and -Reset (epoch seconds) to every answer when configured', async () => {
    const sim = await start({ rateLimitPerMinute: 2, rateLimitHeaders: 'x-ratelimit' });

    const first = await requestToken(sim);
    const denied = await requestToken(sim, { ...CREDENTIALS, client_secret: 'wrong' });

    expect(first.headers.get('x-ratelimit-limit')).toBe('2');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('1');
    expect(first.headers.get('x-ratelimit-reset')).toBe(String((T0 + MINUTE) / 1000));
    expect(denied.status).toBe(401);
    expect(denied.headers.get('x-ratelimit-remaining')).toBe('0');
  });

  it('sends no rate-limit headers by default', async () => {
    const sim = await start({ rateLimitPerMinute: 1 });
    await token(sim);

    const response = await requestToken(sim);

    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBeNull();
    expect(response.headers.get('x-ratelimit-limit')).toBeNull();
  });
});

describe('other routes', () => {
  it('answers GET /v1/settings with the agency and client_id for a valid token', async () => {
    const sim = await start();
    const bearer = await token(sim);

    const response = await fetch(`${sim.url}/v1/settings`, {
      headers: { authorization: `Bearer ${bearer}` },
    });

    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ client_id: 'sim-client', agency: { status: 'active' } });
  });

  it('answers 405 to a known path with the wrong method and 404 to an unknown path', async () => {
    const sim = await start();
    const bearer = await token(sim);
    const headers = { authorization: `Bearer ${bearer}` };

    const wrongMethod = await fetch(`${sim.url}/v1/messages/oneoffs`, { headers });
    const unknown = await postJson(`${sim.url}/v1/messages`, message(), headers);

    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect(unknown.status).toBe(404);
  });
});

describe('scripted faults', () => {
  it('respond: answers the scripted status and body and creates nothing', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({
      match: { path: '/v1/messages/oneoffs' },
      action: { kind: 'respond', status: 503, body: { message: 'Service Unavailable' } },
    });

    const response = await send(sim, bearer, message());

    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ message: 'Service Unavailable' });
    expect(sim.messages).toHaveLength(0);
    expect(sim.requests.at(-1)).toMatchObject({ status: 503, faultApplied: 'respond 503' });
  });

  it('drop: closes the connection without an answer, so fetch rejects, and creates nothing', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ match: { method: 'post', path: '/v1/messages/oneoffs' }, action: { kind: 'drop' } });

    await expect(send(sim, bearer, message())).rejects.toThrow(TypeError);

    expect(sim.messages).toHaveLength(0);
    expect(sim.requests.at(-1)?.status).toBe('dropped');
  });

  it('hang: never answers, so the client timeout fires, and creates nothing', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ match: { path: '/v1/messages/oneoffs' }, action: { kind: 'hang' } });

    const sending = send(sim, bearer, message(), '', AbortSignal.timeout(50));

    await expect(sending).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(sim.messages).toHaveLength(0);
    expect(sim.requests.at(-1)?.status).toBe('pending');
  });

  it('create-then: creates the message, shows the client a 504, and a resend answers 409', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({
      match: { path: '/v1/messages/oneoffs' },
      times: 1,
      action: createThen({ kind: 'respond', status: 504, body: { message: 'Gateway Timeout' } }),
    });

    const first = await send(sim, bearer, message());
    const resend = await send(sim, bearer, message());

    expect(first.status).toBe(504);
    expect(sim.messages).toHaveLength(1);
    expect(sim.requests.at(-2)).toMatchObject({ status: 504, createdUuid: sim.messages[0]?.uuid });
    expect(resend.status).toBe(409);
  });

  it('create-then: creates the message even when the connection is then dropped', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({
      action: createThen({ kind: 'drop' }),
      match: { path: '/v1/messages/oneoffs' },
    });

    await expect(send(sim, bearer, message())).rejects.toThrow(TypeError);

    expect(sim.messages).toHaveLength(1);
  });

  it('create-then: answers what the API would when the request cannot create anything', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ action: createThen({ kind: 'respond', status: 504 }) });

    const response = await send(sim, bearer, { to: '+15555550100' });

    expect(response.status).toBe(400);
    expect(sim.messages).toHaveLength(0);
  });

  it('uses a rule with times only that many times, then processes normally', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({
      match: { path: '/v1/messages/oneoffs' },
      times: 2,
      action: { kind: 'respond', status: 503 },
    });

    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await send(sim, bearer, message())).status);

    expect(statuses).toEqual([503, 503, 201]);
  });

  it('applies the first matching rule only, matching on recipient and content', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({
      match: { to: '+15555550111', contentIncludes: 'hearing' },
      action: { kind: 'respond', status: 500 },
    });
    sim.script({ match: { to: '+15555550111' }, action: { kind: 'respond', status: 503 } });

    const first = await send(sim, bearer, message({ to: '+15555550111' }));
    const second = await send(sim, bearer, message({ to: '+15555550111', content: 'Payment due' }));
    const other = await send(sim, bearer, message({ to: '+15555550122' }));

    expect([first.status, second.status, other.status]).toEqual([500, 503, 201]);
  });

  it('accepts a function as matcher, seeing the client that sent the request', async () => {
    const sim = await start({ clients: { 'sim-client': 'sim-secret', other: 'other-secret' } });
    sim.script({ match: (req) => req.clientId === 'other', action: { kind: 'respond', status: 403 } });

    const mine = await requestToken(sim);
    const theirs = await requestToken(sim, { client_id: 'other', client_secret: 'other-secret' });

    expect(mine.status).toBe(201);
    expect(theirs.status).toBe(403);
  });

  it('delays the answer by delayMs and then processes normally', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ delayMs: 80, action: { kind: 'pass' } });

    const startedAt = performance.now();
    const response = await send(sim, bearer, message());

    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(75);
    expect(response.status).toBe(201);
    expect(sim.requests.at(-1)?.faultApplied).toBe('pass after 80 ms');
  });

  it('closes promptly while a request hangs and another waits out a long delay', async () => {
    const sim = await startSimulator();
    sim.script({ match: { path: '/hang' }, action: { kind: 'hang' } });
    sim.script({ delayMs: 60_000, action: { kind: 'pass' } });
    const hanging = fetch(`${sim.url}/hang`).catch((error: unknown) => error);
    const delayed = requestToken(sim).catch((error: unknown) => error);
    await vi.waitFor(() => expect(sim.requests).toHaveLength(2));

    const startedAt = performance.now();
    await sim.close();

    expect(performance.now() - startedAt).toBeLessThan(1000);
    expect(await hanging).toBeInstanceOf(TypeError);
    expect(await delayed).toBeInstanceOf(TypeError);
    expect(sim.messages).toHaveLength(0);
  });
  it('never processes a delayed request after close', async () => {
    const sim = await startSimulator({ now: () => clock });
    sim.script({ delayMs: 50, action: { kind: 'pass' } });
    const delayed = requestToken(sim).catch((error: unknown) => error);
    await vi.waitFor(() => expect(sim.requests).toHaveLength(1));

    await sim.close();
    await delayed;
    await new Promise((resolve) => setTimeout(resolve, 80));

    expect(sim.requests[0]?.status).toBe('pending');
  });
});

describe('fault kinds that production integrations meet', () => {
  const ONEOFFS = { path: '/v1/messages/oneoffs' };

  it.each([500, 502, 503])(
    'created-then-%i: creates the message, answers the 5xx, and a resend answers 409',
    async (status) => {
      const sim = await start();
      const bearer = await token(sim);
      sim.script({ match: ONEOFFS, times: 1, action: createThen({ kind: 'respond', status }) });

      const first = await send(sim, bearer, message());
      const resend = await send(sim, bearer, message());

      expect(first.status).toBe(status);
      expect(sim.messages).toHaveLength(1);
      expect(sim.requests.at(-2)).toMatchObject({ status, createdUuid: sim.messages[0]?.uuid });
      expect(resend.status).toBe(409);
    },
  );

  it('created-then-5xx with skip_duplicate: the resend creates a second message, as eCourtDate would', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ match: ONEOFFS, times: 1, action: createThen({ kind: 'respond', status: 503 }) });

    await send(sim, bearer, message({ skip_duplicate: true }));
    const resend = await send(sim, bearer, message({ skip_duplicate: true }));

    expect(resend.status).toBe(201);
    expect(sim.messages).toHaveLength(2);
  });

  it('answers 408 Request Timeout and creates nothing', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({
      match: ONEOFFS,
      action: { kind: 'respond', status: 408, body: { message: 'Request Timeout' } },
    });

    const response = await send(sim, bearer, message());

    expect(response.status).toBe(408);
    expect(sim.messages).toHaveLength(0);
  });

  it('retryAfter: a 503 with Retry-After in seconds', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ match: ONEOFFS, action: retryAfter(600) });

    const response = await send(sim, bearer, message());

    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('600');
    expect(sim.messages).toHaveLength(0);
  });

  it('retryAfter: a Retry-After HTTP-date, rounded up to the next whole second of the simulator clock', async () => {
    const sim = await start();
    const bearer = await token(sim);
    clock = T0 + 400;
    sim.script({ match: ONEOFFS, action: retryAfter(120, { form: 'http-date' }) });

    const response = await send(sim, bearer, message());

    expect(response.headers.get('retry-after')).toBe(new Date(T0 + 121_000).toUTCString());
  });

  it('rateLimited: a 429 "Too Many Attempts." without any header by default', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ match: ONEOFFS, action: rateLimited() });

    const response = await send(sim, bearer, message());

    expect(response.status).toBe(429);
    expect(await response.json()).toEqual({ message: 'Too Many Attempts.' });
    expect([...response.headers.keys()].filter((name) => /retry|ratelimit/.test(name))).toEqual([]);
  });

  it.each([
    ['delta-seconds', '60'],
    ['epoch-seconds', String(T0 / 1000 + 60)],
    ['epoch-ms', String(T0 + 60_000)],
  ] as const)('rateLimited: X-RateLimit-Reset one minute ahead as %s', async (form, expected) => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ match: ONEOFFS, action: rateLimited({ header: 'x-ratelimit-reset', seconds: 60, form }) });

    const response = await send(sim, bearer, message());

    expect(response.status).toBe(429);
    expect(response.headers.get('x-ratelimit-reset')).toBe(expected);
    expect(response.headers.get('x-ratelimit-remaining')).toBe('0');
  });

  it('rateLimited: computes an epoch reset from the clock when it answers, not when it was scripted', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({
      match: ONEOFFS,
      action: rateLimited({ header: 'x-ratelimit-reset', seconds: 60, form: 'epoch-seconds' }),
    });

    clock = T0 + 10 * MINUTE;
    const response = await send(sim, bearer, message());

    expect(response.headers.get('x-ratelimit-reset')).toBe(String((T0 + 11 * MINUTE) / 1000));
  });

  it('rateLimited: refuses a Retry-After in an epoch form, which no server sends', () => {
    expect(() => rateLimited({ header: 'retry-after', seconds: 60, form: 'epoch-ms' })).toThrow(RangeError);
  });

  it.each([
    ['delta-seconds', '60'],
    ['epoch-ms', String(T0 + MINUTE)],
  ] as const)(
    'the rate limiter states X-RateLimit-Reset as %s when rateLimitResetForm says so',
    async (form, expected) => {
      const sim = await start({
        rateLimitPerMinute: 5,
        rateLimitHeaders: 'x-ratelimit',
        rateLimitResetForm: form,
      });

      const response = await requestToken(sim);

      expect(response.headers.get('x-ratelimit-reset')).toBe(expected);
    },
  );

  it('hostile control-characters: valid JSON whose strings hold NUL, ESC, BEL, U+FFFF and a lone surrogate', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ match: ONEOFFS, action: hostile('control-characters', 400) });

    const response = await send(sim, bearer, message());
    const body = (await response.json()) as { message: string };

    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/json');
    for (const ch of ['\u0000', '\u001b', '\u0007', '\uffff', '\ud800']) expect(body.message).toContain(ch);
  });

  it('hostile raw-control-characters: the characters raw in a body that is not valid JSON', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ match: ONEOFFS, action: hostile('raw-control-characters', 400) });

    const text = await (await send(sim, bearer, message())).text();

    for (const ch of ['\u0000', '\u001b', '\u0007', '\uffff']) expect(text).toContain(ch);
    expect(() => JSON.parse(text)).toThrow(SyntaxError);
  });

  it('hostile huge: a valid JSON body of the size asked, 5 MiB by default', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ match: ONEOFFS, times: 1, action: hostile('huge', 503) });
    sim.script({ match: ONEOFFS, times: 1, action: hostile('huge', 500, { sizeBytes: 1001 }) });

    const big = await (await send(sim, bearer, message())).text();
    const small = await (await send(sim, bearer, message())).text();

    expect(Buffer.byteLength(big)).toBe(5 * 1024 * 1024);
    expect(JSON.parse(big)).toMatchObject({ message: 'Server Error' });
    expect(Buffer.byteLength(small)).toBe(1001);
    expect(JSON.parse(small)).toMatchObject({ message: 'Server Error' });
  });

  it('hostile escaped-echo: the recipient and text come back only as JSON escapes', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ match: ONEOFFS, action: hostile('escaped-echo', 400) });
    const sent = message({ to: '+15550100401', content: 'Hello José, court is at 9:00.' });

    const text = await (await send(sim, bearer, sent)).text();

    expect(text).not.toContain('5550100401');
    expect(text).not.toContain('José');
    expect(text).not.toContain('court');
    expect(text).toContain('\\u0035\\u0035\\u0035');
    expect(JSON.parse(text)).toMatchObject({ received: { to: sent.to, content: sent.content } });
  });

  it('hostile unicode-echo: the recipient with U+2010 hyphens and fullwidth digits, the text in NFD, escaped as PHP does', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ match: ONEOFFS, action: hostile('unicode-echo', 400) });
    const sent = message({ to: '+15550100401', content: 'Hello José, see https://ecourtdate.com/x' });

    const text = await (await send(sim, bearer, sent)).text();
    const body = JSON.parse(text) as {
      message: string;
      errors: { to: string[] };
      received: { content: string };
    };

    expect(text).toContain('555\\u2010010\\u20100401');
    expect(text).toContain('Jose\\u0301');
    expect(text).toContain('https:\\/\\/ecourtdate.com');
    expect(text).not.toContain('5550100401');
    expect(body.errors.to[0]).toContain('５５５０１００４０１');
    expect(body.received.content).toBe(sent.content?.toString().normalize('NFD'));
  });

  it('onApply: runs once each time the rule is used, with the request, and not for requests it does not match', async () => {
    const sim = await start();
    const bearer = await token(sim);
    const applied: unknown[] = [];
    sim.script({
      match: { ...ONEOFFS, to: '+15550100401' },
      times: 2,
      action: { kind: 'respond', status: 503 },
      onApply: (request) => applied.push(request.body),
    });

    await send(sim, bearer, message({ to: '+15550100401' }));
    await send(sim, bearer, message({ to: '+15550100402' }));
    await send(sim, bearer, message({ to: '+15550100401' }));
    await send(sim, bearer, message({ to: '+15550100401' }));

    expect(applied).toEqual([
      expect.objectContaining({ to: '+15550100401' }),
      expect.objectContaining({ to: '+15550100401' }),
    ]);
  });

  it('a matcher sees the request headers, never the authorization header', async () => {
    const sim = await start();
    const bearer = await token(sim);
    const seen: Record<string, string>[] = [];
    sim.script({
      match: (request) => {
        seen.push(request.headers);
        return request.headers['x-test-fault'] === 'yes';
      },
      action: { kind: 'respond', status: 503 },
    });

    const plain = await send(sim, bearer, message());
    const tagged = await postJson(`${sim.url}/v1/messages/oneoffs`, message(), {
      authorization: `Bearer ${bearer}`,
      'x-test-fault': 'yes',
    });

    expect(plain.status).toBe(201);
    expect(tagged.status).toBe(503);
    expect(seen.at(-1)).toMatchObject({ 'x-test-fault': 'yes', 'content-type': 'application/json' });
    expect(seen.every((headers) => !('authorization' in headers))).toBe(true);
  });

  it('a respond body given as a function sees the request and the simulator clock', async () => {
    const sim = await start();
    const bearer = await token(sim);
    clock = T0 + 5_000;
    sim.script({
      match: ONEOFFS,
      action: {
        kind: 'respond',
        status: 400,
        body: ({ now, request }: { now: number; request: { body: unknown } }) => ({
          at: now,
          to: (request.body as { to?: string }).to,
        }),
      },
    });

    const response = await send(sim, bearer, message());

    expect(await response.json()).toEqual({ at: T0 + 5_000, to: '+15555550100' });
  });
});

describe('credential rotation and revocation', () => {
  it('rejects the old secret after setClientSecret and issues tokens for the new one', async () => {
    const sim = await start();
    const oldToken = await token(sim);

    sim.setClientSecret('sim-client', 'rotated-secret');
    const withOld = await requestToken(sim);
    const withNew = await requestToken(sim, { ...CREDENTIALS, client_secret: 'rotated-secret' });
    const oldTokenStillWorks = await send(sim, oldToken, message());

    expect(withOld.status).toBe(401);
    expect(withNew.status).toBe(201);
    expect(oldTokenStillWorks.status).toBe(201);
  });

  it('answers 401 to tokens issued before a rotation with revokeTokens', async () => {
    const sim = await start();
    const oldToken = await token(sim);

    sim.setClientSecret('sim-client', 'rotated-secret', { revokeTokens: true });
    const response = await send(sim, oldToken, message());

    expect(response.status).toBe(401);
  });

  it('answers 401 to every earlier token after revokeTokens, and serves a fresh one', async () => {
    const sim = await start();
    const oldToken = await token(sim);

    sim.revokeTokens();
    const withOld = await send(sim, oldToken, message());
    const withFresh = await send(sim, await token(sim), message());

    expect(withOld.status).toBe(401);
    expect(withFresh.status).toBe(201);
  });
});

describe('timeScale', () => {
  it('divides the duplicate window: 30 minutes become 30 seconds at timeScale 60', async () => {
    const sim = await start({ timeScale: 60 });
    const bearer = await token(sim);
    await send(sim, bearer, message());

    clock = T0 + 29_000;
    const inside = await send(sim, bearer, message());
    clock = T0 + 31_000;
    const outside = await send(sim, bearer, message());

    expect([inside.status, outside.status]).toEqual([409, 201]);
  });

  it('divides the token lifetime but reports expires_in unscaled', async () => {
    const sim = await start({ timeScale: 60 });
    const issued = (await (await requestToken(sim)).json()) as { access_token: string; expires_in: number };
    const { access_token: bearer, expires_in: expiresIn } = issued;

    clock = T0 + 59_999;
    const live = await send(sim, bearer, message({ content: 'a' }));
    clock = T0 + 60_000;
    const expired = await send(sim, bearer, message({ content: 'b' }));

    expect(expiresIn).toBe(3600);
    expect([live.status, expired.status]).toEqual([201, 401]);
  });

  it('divides the rate-limit minute: one second at timeScale 60', async () => {
    const sim = await start({ timeScale: 60, rateLimitPerMinute: 2 });
    const bearer = await token(sim);
    await send(sim, bearer, message({ content: 'a' }));

    clock = T0 + 999;
    const limited = await send(sim, bearer, message({ content: 'b' }));
    clock = T0 + 1000;
    const reset = await send(sim, bearer, message({ content: 'b' }));

    expect([limited.status, reset.status]).toEqual([429, 201]);
  });
});

describe('request records', () => {
  it('records every request in order with its client, status and created uuid', async () => {
    const sim = await start();
    const bearer = await token(sim);
    clock = T0 + 1000;
    await send(sim, bearer, message(), '?agency_reference=court-a');

    expect(sim.requests).toEqual([
      expect.objectContaining({
        seq: 1,
        at: T0,
        method: 'POST',
        path: '/oauth/token',
        clientId: 'sim-client',
      }),
      expect.objectContaining({
        seq: 2,
        at: T0 + 1000,
        path: '/v1/messages/oneoffs',
        query: { agency_reference: 'court-a' },
        clientId: 'sim-client',
        body: message(),
        status: 201,
        createdUuid: sim.messages[0]?.uuid,
      }),
    ]);
  });

  it('never contains the client secret or the bearer token', async () => {
    const sim = await start();
    const bearer = await token(sim);
    await send(sim, bearer, message());
    await requestToken(sim, { ...CREDENTIALS, client_secret: 'wrong-secret' });
    await postJson(`${sim.url}/oauth/token`, '{"client_secret": "sim-secret", broken');

    const recorded = JSON.stringify([sim.requests, sim.messages]);

    expect(recorded).not.toContain('sim-secret');
    expect(recorded).not.toContain('wrong-secret');
    expect(recorded).not.toContain(bearer);
    expect(sim.requests[0]?.body).toMatchObject({ client_id: 'sim-client', client_secret: '[redacted]' });
  });

  it('forgets requests, messages, rules and tokens on reset', async () => {
    const sim = await start();
    const bearer = await token(sim);
    await send(sim, bearer, message());
    sim.script({ action: { kind: 'respond', status: 500 } });

    sim.reset();
    const withOldToken = await send(sim, bearer, message());

    expect(withOldToken.status).toBe(401);
    expect(sim.messages).toHaveLength(0);
    expect(sim.requests).toEqual([expect.objectContaining({ seq: 1, status: 401 })]);
  });
});
