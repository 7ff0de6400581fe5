import { describe, expect, it } from 'vitest';
import type { SendAttempt } from '#shared/ecourtdate/client.ts';
import type { PacerSlot } from '#shared/ecourtdate/pacer.ts';
import { decide, FIRST_ATTEMPT } from '#shared/policy.ts';
import { job, policy, T0 } from '#test/helpers/factories.ts';
import {
  BASE_URL,
  clientHarness,
  fakeClock,
  hangUntilAborted,
  jsonResponse,
  ROTATED_CLIENT_SECRET,
  secretString,
  tokenResponse,
} from '#test/helpers/unit-factories.ts';

const UUID = '3f0c9a52-7b1e-4d8a-9c6f-2e5b8d1a4c7e';
const CONTENT = 'Reminder: you have court on Dec 3 at 9:00 AM, Room 4B.';
const RECIPIENT = '+15551234567';

const created = () => jsonResponse(201, { uuid: UUID });
const unauthorized = () => jsonResponse(401, { message: 'Unauthenticated.' });

/** The attempt, asserting that something was sent. */
function attempted(attempt: SendAttempt): Extract<SendAttempt, { kind: 'attempted' }> {
  if (attempt.kind !== 'attempted')
    throw new Error(`expected an attempted send, got ${JSON.stringify(attempt)}`);
  return attempt;
}

describe('EcourtdateClient.send', () => {
  it('reports a 201 as an attempted send with the returned uuid', async () => {
    const { client } = clientHarness({ send: [created()] });

    const attempt = attempted(await client.send(job()));

    expect(attempt.result).toEqual({
      kind: 'response',
      stage: 'send',
      status: 201,
      uuid: UUID,
      retryAfterSeconds: undefined,
    });
    expect(attempt.authFailed).toBe(false);
    expect(attempt.sendStatuses).toEqual([201]);
  });

  it('POSTs to {base}/v1/messages/oneoffs', async () => {
    const { client, api } = clientHarness();

    await client.send(job());

    const [request] = api.sendRequests();
    expect(request?.method).toBe('POST');
    expect(request?.url.href).toBe(`${BASE_URL}/v1/messages/oneoffs`);
  });

  it('POSTs to {base}/v1/messages/oneoffs for a base URL without a path, such as production', async () => {
    const { client, api } = clientHarness({ baseUrl: 'https://api.ecourtdate.test' });

    await client.send(job());

    expect(api.sendRequests()[0]?.url.href).toBe('https://api.ecourtdate.test/v1/messages/oneoffs');
  });

  it('sends the bearer token, JSON content type and JSON accept headers', async () => {
    const { client, api } = clientHarness();

    await client.send(job());

    const headers = api.sendRequests()[0]?.headers;
    expect(headers?.get('authorization')).toBe('Bearer token-1');
    expect(headers?.get('content-type')).toBe('application/json');
    expect(headers?.get('accept')).toBe('application/json');
  });

  it("sends the job's message as the JSON body, exactly", async () => {
    const { client, api } = clientHarness();
    const sendJob = job(
      {},
      { scheduled_at: '2026-12-01T10:00:00-05:00', skip_duplicate: false, custom_field: { room: '4B' } },
    );

    await client.send(sendJob);

    const body = api.sendRequests()[0]?.body ?? '';
    expect(body).toBe(JSON.stringify(sendJob.message));
    expect(JSON.parse(body)).toEqual({
      to: RECIPIENT,
      content: CONTENT,
      subject: 'Court reminder',
      channel: 'text',
      scheduled_at: '2026-12-01 15:00:00',
      skip_duplicate: false,
      custom_field: { room: '4B' },
    });
  });

  it('sends agency_reference as a query parameter, not in the body', async () => {
    const { client, api } = clientHarness();

    await client.send(job({ agency_reference: 'county a&b' }));

    const [request] = api.sendRequests();
    expect(request?.url.searchParams.get('agency_reference')).toBe('county a&b');
    expect(JSON.parse(request?.body ?? '')).not.toHaveProperty('agency_reference');
  });

  it('sends no query string without agency_reference', async () => {
    const { client, api } = clientHarness();

    await client.send(job());

    expect(api.sendRequests()[0]?.url.search).toBe('');
  });

  it('reads the wait of a 429 from its headers', async () => {
    const { client } = clientHarness({ send: [jsonResponse(429, {}, { 'Retry-After': '120' })] });

    expect(attempted(await client.send(job())).result).toMatchObject({ status: 429, retryAfterSeconds: 120 });
  });

  describe('a 401', () => {
    it('renews the token once and resends at once: statuses [401, 201]', async () => {
      const { client, api, credentials } = clientHarness({ send: [unauthorized(), created()] });

      const attempt = attempted(await client.send(job()));

      expect(attempt.sendStatuses).toEqual([401, 201]);
      expect(attempt.result).toMatchObject({ status: 201, uuid: UUID });
      expect(attempt.authFailed).toBe(false);
      expect(api.tokenRequests()).toHaveLength(2);
      expect(api.sendRequests().map((r) => r.headers.get('authorization'))).toEqual([
        'Bearer token-1',
        'Bearer token-2',
      ]);
      expect(credentials.reads).toBe(1);
    });

    it('twice re-reads the secret (it may have been rotated) and resends once more: [401, 401, 201]', async () => {
      const { client, api, credentials } = clientHarness({
        secrets: [secretString(), secretString({ client_secret: ROTATED_CLIENT_SECRET })],
        send: [unauthorized(), unauthorized(), created()],
      });

      const attempt = attempted(await client.send(job()));

      expect(attempt.sendStatuses).toEqual([401, 401, 201]);
      expect(attempt.authFailed).toBe(false);
      expect(credentials.reads).toBe(2);
      expect(JSON.parse(api.tokenRequests()[2]?.body ?? '').client_secret).toBe(ROTATED_CLIENT_SECRET);
      expect(api.sendRequests()[2]?.headers.get('authorization')).toBe('Bearer token-3');
    });

    it('three times is an auth failure, after exactly 3 sends', async () => {
      const { client, api } = clientHarness({ send: [unauthorized()] });

      const attempt = attempted(await client.send(job()));

      expect(attempt.authFailed).toBe(true);
      expect(attempt.result).toMatchObject({ kind: 'response', stage: 'send', status: 401 });
      expect(attempt.sendStatuses).toEqual([401, 401, 401]);
      expect(api.sendRequests()).toHaveLength(3);
    });
  });

  it('reports a send that times out as a transport result, with its status', async () => {
    const { client } = clientHarness({ send: [hangUntilAborted], timeoutMs: 20 });

    const attempt = attempted(await client.send(job()));

    // A timeout after the request was written may have reached the server: the outcome is unknown.
    expect(attempt.result).toEqual({
      kind: 'transport',
      stage: 'send',
      error: 'timeout',
      mayHaveBeenSent: true,
    });
    expect(attempt.sendStatuses).toEqual(['timeout']);
    expect(attempt.excerpt).toBe('');
  });

  it('reports a fetch that failed without an answer as a transport result that may have reached the server', async () => {
    const { client } = clientHarness({
      send: [
        () => {
          throw new TypeError('fetch failed');
        },
      ],
    });

    const attempt = attempted(await client.send(job()));

    // No error code says the request never left (DNS, refused, TLS): it may have been processed.
    expect(attempt.result).toEqual({
      kind: 'transport',
      stage: 'send',
      error: 'connection',
      mayHaveBeenSent: true,
    });
  });

  it('keeps content, recipient and token out of the excerpt even when the server echoes them', async () => {
    const content = 'Reminder for "J. Doe":\nCourt on Dec 3 at 9:00 AM, Room 4B.';
    const sendJob = job({}, { content });
    const { client } = clientHarness({
      send: [
        (request) =>
          jsonResponse(422, {
            message: 'The given data was invalid.',
            echo: JSON.parse(request.body),
            authorization: request.headers.get('authorization'),
          }),
      ],
    });

    const attempt = attempted(await client.send(sendJob));

    expect(attempt.excerpt).toContain('The given data was invalid.');
    expect(attempt.excerpt).not.toContain('J. Doe');
    expect(attempt.excerpt).not.toContain('Court on Dec 3');
    expect(attempt.excerpt).not.toContain(RECIPIENT);
    expect(attempt.excerpt).not.toContain('5551234567');
    expect(attempt.excerpt).not.toContain('token-1');
  });

  describe('when the pacer is blocked (a 429 is being waited out)', () => {
    it('defers without any HTTP request when a token is cached', async () => {
      const { client, api, pacer, tokens } = clientHarness();
      await tokens.get();
      pacer.block(60_000);

      const attempt = await client.send(job());

      expect(attempt).toEqual({ kind: 'deferred', retryInMs: 60_000 });
      expect(api.sendRequests()).toHaveLength(0);
      expect(api.tokenRequests()).toHaveLength(1);
    });

    it('defers without requesting a token either', async () => {
      const { client, api, pacer } = clientHarness();
      pacer.block(60_000);

      expect(await client.send(job())).toEqual({ kind: 'deferred', retryInMs: 60_000 });
      expect(api.requests).toHaveLength(0);
    });
  });

  it('defers, sending nothing, when the instance has spent its share of the minute and waitUntil comes before its slot', async () => {
    // A share of two requests a minute: the token request and one send. The clock only moves when told to.
    const { client, api, clock } = clientHarness({ requestsPerMinute: 2 });

    const first = await client.send(job(), { waitUntil: clock.now() });
    clock.advance(1_000);
    const second = await client.send(job(), { waitUntil: clock.now() });

    expect(first.kind).toBe('attempted');
    expect(second).toMatchObject({ kind: 'deferred' });
    const { retryInMs } = second as { retryInMs: number };
    expect(retryInMs).toBeGreaterThan(58_000);
    expect(retryInMs).toBeLessThanOrEqual(60_000);
    expect(api.sendRequests()).toHaveLength(1);
  });

  describe('waitUntil: every pacing wait of the attempt is over by then, or the attempt is deferred', () => {
    it('sends at once when the slot is free, even with waitUntil now', async () => {
      const { client, clock } = clientHarness({ requestsPerMinute: 2 });

      expect(attempted(await client.send(job(), { waitUntil: clock.now() })).sendStatuses).toEqual([201]);
    });

    it('waits for a send slot that comes by waitUntil', async () => {
      // The pacer's sleep returns at once: the send goes in the slot a minute on.
      const { client, api, clock } = clientHarness({ requestsPerMinute: 2 });
      await client.send(job());

      const second = await client.send(job(), { waitUntil: clock.now() + 61_000 });

      expect(attempted(second).sendStatuses).toEqual([201]);
      expect(api.sendRequests()).toHaveLength(2);
    });

    it('does not request a token whose slot lies beyond waitUntil: deferred, nothing sent', async () => {
      const { client, api, pacer, clock } = clientHarness({ requestsPerMinute: 1 });
      await pacer.acquire();

      expect(await client.send(job(), { waitUntil: clock.now() + 30_000 })).toEqual({
        kind: 'deferred',
        retryInMs: 61_000,
      });
      expect(api.requests).toHaveLength(0);
    });

    it("after a 401, does not renew the token when the renewal's slot lies beyond waitUntil: deferred, the 401 created nothing", async () => {
      // Two a minute: the token and the first send, answered 401.
      const { client, api, clock } = clientHarness({
        requestsPerMinute: 2,
        send: [unauthorized(), created()],
      });

      const attempt = await client.send(job(), { waitUntil: clock.now() + 30_000 });

      expect(attempt).toEqual({ kind: 'deferred', retryInMs: 61_000 });
      expect(api.tokenRequests()).toHaveLength(1);
      expect(api.sendRequests()).toHaveLength(1);
    });

    it('after a 401 and a renewed token, does not wait for a resend slot beyond waitUntil: deferred', async () => {
      // Three a minute: the token, the first send (401) and the renewed token; the resend's slot is a minute on.
      const { client, api, clock } = clientHarness({
        requestsPerMinute: 3,
        send: [unauthorized(), created()],
      });

      const attempt = await client.send(job(), { waitUntil: clock.now() + 30_000 });

      expect(attempt).toEqual({ kind: 'deferred', retryInMs: 61_000 });
      expect(api.tokenRequests()).toHaveLength(2);
      expect(api.sendRequests()).toHaveLength(1);
    });

    it('resends after a 401 when the renewal and the resend slot both come by waitUntil', async () => {
      const { client, api, clock } = clientHarness({
        requestsPerMinute: 3,
        send: [unauthorized(), created()],
      });

      const attempt = attempted(await client.send(job(), { waitUntil: clock.now() + 61_000 }));

      expect(attempt.sendStatuses).toEqual([401, 201]);
      expect(api.sendRequests()).toHaveLength(2);
    });

    it('prepare and post take the same time: a prepared attempt whose resend cannot start in time is deferred', async () => {
      const { client, api, clock } = clientHarness({
        requestsPerMinute: 3,
        send: [unauthorized(), created()],
      });
      const time = { waitUntil: clock.now() + 30_000 };

      const prepared = await client.prepare(time);
      if (prepared.kind !== 'ready') throw new Error(`expected a token and a slot, got ${prepared.kind}`);
      const attempt = await client.post(job(), prepared, time);

      expect(attempt).toMatchObject({ kind: 'deferred' });
      expect(api.sendRequests()).toHaveLength(1);
    });
  });

  describe('a slot the ledger claim outlasted (docs/pacing.md, "The guarantee")', () => {
    /** A pacer whose slots must be used within a second, counting what it hands out. */
    function expiringPacer(now: () => number, refuseAfter = Number.POSITIVE_INFINITY) {
      const pacer = {
        acquired: 0,
        async acquire(): Promise<PacerSlot> {
          pacer.acquired += 1;
          return pacer.acquired > refuseAfter
            ? { ok: false, retryInMs: 5_000 }
            : { ok: true, sendBy: now() + 1_000 };
        },
        block() {},
        blockedForMs: () => 0,
      };
      return pacer;
    }

    /** A client on an expiring pacer (`refuseAfter` slots), with an attempt prepared: its token and its slot. */
    async function preparedOnExpiringPacer(refuseAfter?: number) {
      const clock = fakeClock();
      const pacer = expiringPacer(clock.now, refuseAfter);
      const { client, api } = clientHarness({ pacer, clock });
      const prepared = await client.prepare();
      if (prepared.kind !== 'ready') throw new Error(`expected a token and a slot, got ${prepared.kind}`);
      return { clock, pacer, client, api, prepared };
    }

    it('takes a fresh slot before the first request when its prepared one ran out meanwhile', async () => {
      const { clock, pacer, client, api, prepared } = await preparedOnExpiringPacer();
      const before = pacer.acquired;
      clock.advance(3_000);
      await client.post(job(), prepared);

      expect(pacer.acquired).toBe(before + 1);
      expect(api.sendRequests()).toHaveLength(1);
    });

    it('defers the job, sending nothing, when no fresh slot comes in time', async () => {
      // The token request's slot and the prepared one; none after.
      const { clock, client, api, prepared } = await preparedOnExpiringPacer(2);
      clock.advance(3_000);

      expect(await client.post(job(), prepared)).toEqual({ kind: 'deferred', retryInMs: 5_000 });
      expect(api.sendRequests()).toHaveLength(0);
    });

    it('uses the prepared slot while it still counts', async () => {
      const { clock, pacer, client, api, prepared } = await preparedOnExpiringPacer();
      const before = pacer.acquired;
      clock.advance(500);
      await client.post(job(), prepared);

      expect(pacer.acquired).toBe(before);
      expect(api.sendRequests()).toHaveLength(1);
    });
  });

  describe('deadline: no message request leaves at or after it', () => {
    it('sends nothing when the deadline has come', async () => {
      const { client, api, clock } = clientHarness();

      expect(await client.send(job(), { deadline: clock.now() })).toEqual({ kind: 'deferred', retryInMs: 0 });
      expect(api.sendRequests()).toHaveLength(0);
    });

    it('sends when the deadline is still ahead', async () => {
      const { client, clock } = clientHarness();

      expect((await client.send(job(), { deadline: clock.now() + 1 })).kind).toBe('attempted');
    });
  });

  describe('a secret that cannot be read', () => {
    it('is an attempt of stage secret that sent nothing, and an auth failure', async () => {
      const { client, api } = clientHarness({ secrets: [undefined] });

      const attempt = attempted(await client.send(job()));

      expect(attempt.result).toEqual({ kind: 'secret', stage: 'secret' });
      expect(attempt.authFailed).toBe(true);
      expect(attempt.sendStatuses).toEqual([]);
      expect(api.requests).toHaveLength(0);
    });

    it('after two 401s, a secret that can no longer be re-read ends the attempt at stage secret, keeping the statuses', async () => {
      const { client, api } = clientHarness({
        secrets: [secretString(), undefined],
        send: [unauthorized()],
      });

      const attempt = attempted(await client.send(job()));

      expect(attempt.result).toEqual({ kind: 'secret', stage: 'secret' });
      expect(attempt.sendStatuses).toEqual([401, 401]);
      expect(api.sendRequests()).toHaveLength(2);
    });
  });

  describe('token endpoint failures', () => {
    it('reports a 503 from the token endpoint as a token-stage response, sending nothing', async () => {
      const { client, api } = clientHarness({
        token: [jsonResponse(503, { message: 'Service Unavailable' })],
      });

      const attempt = attempted(await client.send(job()));

      expect(attempt.result).toMatchObject({ kind: 'response', stage: 'token', status: 503 });
      expect(attempt.sendStatuses).toEqual([]);
      expect(api.sendRequests()).toHaveLength(0);
    });

    it('reports a token endpoint that keeps refusing the credentials as an auth failure', async () => {
      const { client } = clientHarness({ token: [unauthorized()] });

      const attempt = attempted(await client.send(job()));

      expect(attempt.result).toMatchObject({ stage: 'token', status: 401 });
      expect(attempt.authFailed).toBe(true);
    });

    // Regression test for a fixed bug (shared/ecourtdate/token-cache.ts #request + client.ts tokenFailure + policy.ts decide): a 2xx token
    // answer without access_token throws EcdTokenError(200); the client turns it into
    // { kind: 'response', stage: 'token', status: 200 }, and decide() maps any 2xx to 'delivered' whatever
    // the stage. The job is reported delivered (and deleted) although nothing was sent.
    it('never reports a job as delivered when the token answer had no access_token', async () => {
      const { client, api } = clientHarness({ token: [jsonResponse(200, { token_type: 'Bearer' })] });

      const attempt = attempted(await client.send(job()));
      const outcome = decide({
        result: attempt.result,
        prior: FIRST_ATTEMPT,
        job: job(),
        firstReceivedAt: T0,
        now: T0,
        policy: policy(),
        random: () => 0,
      });

      expect(api.sendRequests()).toHaveLength(0);
      expect(outcome.type).not.toBe('delivered');
    });
  });

  it('renews a token about to expire before sending', async () => {
    const { client, api, clock } = clientHarness({ token: [tokenResponse('old'), tokenResponse('new')] });
    await client.send(job());
    clock.advance(3_600_000);

    await client.send(job());

    expect(api.sendRequests().map((r) => r.headers.get('authorization'))).toEqual([
      'Bearer old',
      'Bearer new',
    ]);
  });
});
