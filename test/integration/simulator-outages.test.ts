import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Simulator, type SimulatorOptions, startSimulator } from '#local/ecourtdate-simulator/index.ts';

/**
 * The simulator's scheduled outages (docs/test-world.md, "Outages in the simulator"): a window in the API's own
 * seconds, divided by `timeScale`, during which every request meets the outage; counted inside and outside.
 */

const T0 = Date.UTC(2025, 2, 15, 14, 0, 0);
const SECOND = 1000;
const CREDENTIALS = {
  client_id: 'sim-client',
  client_secret: 'sim-secret',
  grant_type: 'client_credentials',
};
const ONEOFFS = '/v1/messages/oneoffs';

let clock = T0;
const started: Simulator[] = [];

beforeEach(() => {
  clock = T0;
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((sim) => sim.close()));
});

async function start(options: SimulatorOptions = {}): Promise<Simulator> {
  const sim = await startSimulator({ now: () => clock, ...options });
  started.push(sim);
  return sim;
}

function post(sim: Simulator, path: string, body: unknown, bearer?: string, signal?: AbortSignal) {
  return fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }),
    },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

async function token(sim: Simulator): Promise<string> {
  const response = await post(sim, '/oauth/token', CREDENTIALS);
  expect(response.status).toBe(201);
  return ((await response.json()) as { access_token: string }).access_token;
}

function send(sim: Simulator, bearer: string, to = '+15551230001', signal?: AbortSignal) {
  return post(sim, ONEOFFS, { to, content: `Reminder for ${to}` }, bearer, signal);
}

function probe(sim: Simulator, bearer: string) {
  return fetch(`${sim.url}/v1/settings`, { headers: { authorization: `Bearer ${bearer}` } });
}

describe('an unavailable outage', () => {
  it('answers 503 to the token endpoint, messages and GET /v1/settings inside its window and creates nothing', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.scheduleOutage({ kind: 'unavailable', start: T0 + 10 * SECOND, durationSeconds: 60 });
    clock = T0 + 10 * SECOND;

    const answers = [
      (await post(sim, '/oauth/token', CREDENTIALS)).status,
      (await send(sim, bearer)).status,
      (await probe(sim, bearer)).status,
    ];

    expect(answers).toEqual([503, 503, 503]);
    expect(sim.messages).toHaveLength(0);
  });

  it('serves as usual before the window opens and once it has closed', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.scheduleOutage({ kind: 'unavailable', start: T0 + 10 * SECOND, durationSeconds: 60 });

    clock = T0 + 10 * SECOND - 1;
    const before = (await send(sim, bearer, '+15551230001')).status;
    clock = T0 + 70 * SECOND;
    const after = (await send(sim, bearer, '+15551230002')).status;

    expect([before, after]).toEqual([201, 201]);
  });

  it('divides its duration by timeScale, like the simulator’s other windows', async () => {
    const sim = await start({ timeScale: 10 });
    const bearer = await token(sim);
    // Ten minutes of the API's time last one minute at 10x (the token, one hour, six minutes).
    sim.scheduleOutage({ kind: 'unavailable', start: T0, durationSeconds: 600 });

    clock = T0 + 60 * SECOND - 1;
    const inside = (await send(sim, bearer, '+15551230001')).status;
    clock = T0 + 60 * SECOND;
    const outside = (await send(sim, bearer, '+15551230002')).status;

    expect([inside, outside]).toEqual([503, 201]);
  });

  it('sends no Retry-After unless asked, as eCourtDate documents none', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.scheduleOutage({ kind: 'unavailable', start: T0, durationSeconds: 60 });

    const response = await send(sim, bearer);

    expect(response.headers.get('retry-after')).toBeNull();
  });

  it("retryAfter 'remaining': Retry-After states the seconds left in the window, in the API's own seconds", async () => {
    const sim = await start({ timeScale: 10 });
    const bearer = await token(sim);
    // 600 API seconds = 60 s on this clock; 15 s in, 45 s are left: 450 API seconds.
    sim.scheduleOutage({ kind: 'unavailable', start: T0, durationSeconds: 600, retryAfter: 'remaining' });
    clock = T0 + 15 * SECOND;

    const response = await send(sim, bearer);

    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('450');
  });

  it('retryAfter as a number: every 503 carries it', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.scheduleOutage({ kind: 'unavailable', start: T0, durationSeconds: 600, retryAfter: 120 });

    const response = await send(sim, bearer);

    expect(response.headers.get('retry-after')).toBe('120');
  });

  it('acts before a scripted rule that matches the same request', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 400 } });
    sim.scheduleOutage({ name: 'maintenance', kind: 'unavailable', start: T0, durationSeconds: 60 });

    const response = await send(sim, bearer);

    expect(response.status).toBe(503);
    expect(sim.requests.at(-1)?.faultApplied).toBe('maintenance');
  });

  it('opened by a request: the first request matching atRequest opens the window and is inside it', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.scheduleOutage({ kind: 'unavailable', start: { atRequest: { path: ONEOFFS } }, durationSeconds: 60 });

    const settingsBefore = (await probe(sim, bearer)).status;
    clock = T0 + 5 * SECOND;
    const first = (await send(sim, bearer)).status;
    clock = T0 + 65 * SECOND - 1;
    const last = (await probe(sim, bearer)).status;
    clock = T0 + 65 * SECOND;
    const after = (await probe(sim, bearer)).status;

    expect([settingsBefore, first, last, after]).toEqual([200, 503, 503, 200]);
    expect(sim.outages()[0]?.startedAt).toBe(T0 + 5 * SECOND);
  });

  it('refuses a duration that is not above 0 and a negative retryAfter', async () => {
    const sim = await start();

    expect(() => sim.scheduleOutage({ kind: 'unavailable', start: T0, durationSeconds: 0 })).toThrow(
      /durationSeconds must be a finite number > 0/,
    );
    expect(() =>
      sim.scheduleOutage({ kind: 'unavailable', start: T0, durationSeconds: 1, retryAfter: -1 }),
    ).toThrow(/retryAfter must be >= 0/);
  });
});

describe('hang and drop outages', () => {
  it('hang: no request inside the window is answered', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.scheduleOutage({ kind: 'hang', start: T0, durationSeconds: 60 });

    await expect(send(sim, bearer, '+15551230001', AbortSignal.timeout(50))).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect(sim.requests.at(-1)?.status).toBe('pending');
    expect(sim.messages).toHaveLength(0);
  });

  it('drop: every connection inside the window is closed without an answer', async () => {
    const sim = await start();
    sim.scheduleOutage({ kind: 'drop', start: T0, durationSeconds: 60 });

    await expect(post(sim, '/oauth/token', CREDENTIALS)).rejects.toThrow(TypeError);
    expect(sim.requests.at(-1)?.status).toBe('dropped');
  });
});

describe('an auth outage (the API client revoked)', () => {
  it('answers 401 invalid_client at the token endpoint and 401 to messages and the probe', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.scheduleOutage({ kind: 'auth', start: T0, durationSeconds: 60 });

    const tokenAnswer = await post(sim, '/oauth/token', CREDENTIALS);
    const message = await send(sim, bearer);
    const settings = await probe(sim, bearer);

    expect(tokenAnswer.status).toBe(401);
    expect(await tokenAnswer.json()).toEqual({ error: 'invalid_client', message: 'Unauthenticated.' });
    expect([message.status, settings.status]).toEqual([401, 401]);
    expect(sim.messages).toHaveLength(0);
  });

  it("tokenStatus: the token endpoint's answer is configurable, as eCourtDate's docs do not state it", async () => {
    const sim = await start();
    sim.scheduleOutage({ kind: 'auth', start: T0, durationSeconds: 60, tokenStatus: 400 });

    expect((await post(sim, '/oauth/token', CREDENTIALS)).status).toBe(400);
  });

  it('after the window, a token issued before it stays revoked and a new token works', async () => {
    const sim = await start();
    const old = await token(sim);
    sim.scheduleOutage({ kind: 'auth', start: T0 + SECOND, durationSeconds: 60 });
    clock = T0 + 30 * SECOND;
    await send(sim, old);

    clock = T0 + 61 * SECOND;
    const withOld = (await send(sim, old, '+15551230001')).status;
    const withNew = (await send(sim, await token(sim), '+15551230002')).status;

    expect([withOld, withNew]).toEqual([401, 201]);
  });

  it('revokeTokens false: a token issued before the window works again after it', async () => {
    const sim = await start();
    const old = await token(sim);
    sim.scheduleOutage({ kind: 'auth', start: T0, durationSeconds: 60, revokeTokens: false });
    const inside = (await send(sim, old, '+15551230001')).status;

    clock = T0 + 60 * SECOND;
    const after = (await send(sim, old, '+15551230002')).status;

    expect([inside, after]).toEqual([401, 201]);
  });

  it('clientId: only that client is revoked; another client is served', async () => {
    const sim = await start({ clients: { 'sim-client': 'sim-secret', other: 'other-secret' } });
    sim.scheduleOutage({ kind: 'auth', start: T0, durationSeconds: 60, clientId: 'sim-client' });

    const revoked = await post(sim, '/oauth/token', CREDENTIALS);
    const other = await post(sim, '/oauth/token', { client_id: 'other', client_secret: 'other-secret' });

    expect([revoked.status, other.status]).toEqual([401, 201]);
  });
});

describe('what the simulator counts of an outage', () => {
  it('counts requests by endpoint inside and outside the window', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.scheduleOutage({ kind: 'unavailable', start: T0 + 10 * SECOND, durationSeconds: 60 });
    await send(sim, bearer, '+15551230001');
    clock = T0 + 20 * SECOND;
    await probe(sim, bearer);
    await probe(sim, bearer);
    await send(sim, bearer, '+15551230002');
    await post(sim, '/oauth/token', CREDENTIALS);
    clock = T0 + 80 * SECOND;
    await send(sim, bearer, '+15551230003');

    const [record] = sim.outages();

    expect(record).toMatchObject({
      name: 'outage 1 (unavailable)',
      kind: 'unavailable',
      startedAt: T0 + 10 * SECOND,
      endsAt: T0 + 70 * SECOND,
      inside: { token: 1, messages: 1, settings: 2, other: 0 },
      outside: { token: 1, messages: 2, settings: 0, other: 0 },
    });
  });

  it('records which message requests arrived during the outage', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.scheduleOutage({ kind: 'unavailable', start: T0 + 10 * SECOND, durationSeconds: 60 });
    await send(sim, bearer, '+15551230001');
    clock = T0 + 30 * SECOND;
    await send(sim, bearer, '+15551230002');
    await send(sim, bearer, '+15551230003');

    const recipients = sim
      .outages()[0]
      ?.messageRequests.map((request) => (request.body as { to: string }).to);

    expect(recipients).toEqual(['+15551230002', '+15551230003']);
  });

  it('a request-started window that no request opened has no start, and every request is outside it', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.scheduleOutage({ kind: 'unavailable', start: { atRequest: { path: ONEOFFS } }, durationSeconds: 60 });
    await probe(sim, bearer);

    expect(sim.outages()[0]).toMatchObject({
      startedAt: undefined,
      endsAt: undefined,
      inside: { token: 0, messages: 0, settings: 0, other: 0 },
      outside: { token: 1, messages: 0, settings: 1, other: 0 },
    });
  });

  it('clearScript and reset forget the scheduled outages', async () => {
    const sim = await start();
    const bearer = await token(sim);
    sim.scheduleOutage({ kind: 'unavailable', start: T0, durationSeconds: 60 });
    sim.clearScript();

    expect((await send(sim, bearer)).status).toBe(201);
    expect(sim.outages()).toEqual([]);
  });
});
