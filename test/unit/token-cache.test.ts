import { describe, expect, it } from 'vitest';
import type { EcdTokenError } from '#shared/ecourtdate/errors.ts';
import type { TokenResult } from '#shared/ecourtdate/token-cache.ts';
import { CredentialsError } from '#shared/errors.ts';
import {
  BASE_URL,
  CLIENT_ID,
  CLIENT_SECRET,
  clientHarness,
  type FakeAnswer,
  hangUntilAborted,
  jsonResponse,
  ROTATED_CLIENT_SECRET,
  secretString,
  tokenOf,
  tokenResponse,
} from '#test/helpers/unit-factories.ts';

const RENEW_BEFORE_MS = 300_000;
const HOUR_MS = 3_600_000;

/** A token, as `get` resolves it. */
const issued = (token: string): TokenResult => ({ ok: true, token });

/** The token endpoint's failure `get` resolved to (it never rejects), or fails the test naming what came instead. */
async function tokenErrorOf(promise: Promise<TokenResult>): Promise<EcdTokenError> {
  const result = await promise;
  if (result.ok || result.failure !== 'token') {
    throw new Error(`expected a token failure, got ${JSON.stringify(result)}`);
  }
  return result.error;
}

/** A token endpoint that accepts only `secret`, answering 401 to any other client_secret. */
function acceptsOnly(secret: string): FakeAnswer {
  let issued = 0;
  return (request) => {
    const { client_secret } = JSON.parse(request.body) as { client_secret: string };
    if (client_secret !== secret) return jsonResponse(401, { message: 'Unauthenticated.' });
    issued += 1;
    return tokenResponse(`rotated-token-${issued}`);
  };
}

describe('TokenCache', () => {
  it('requests a token with the client credentials grant, as JSON, from {base}/oauth/token', async () => {
    const { tokens, api } = clientHarness();

    await tokens.get();

    const [request] = api.requests;
    expect(api.requests).toHaveLength(1);
    expect(request?.url.href).toBe(`${BASE_URL}/oauth/token`);
    expect(request?.method).toBe('POST');
    expect(request?.headers.get('content-type')).toBe('application/json');
    expect(JSON.parse(request?.body ?? '')).toEqual({
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_type: 'client_credentials',
    });
  });

  it('requests {base}/oauth/token for a base URL without a path, such as production', async () => {
    const { tokens, api } = clientHarness({ baseUrl: 'https://api.ecourtdate.test' });

    await tokens.get();

    expect(api.requests[0]?.url.href).toBe('https://api.ecourtdate.test/oauth/token');
  });

  it('returns the access token and serves it from cache afterwards', async () => {
    const { tokens, api } = clientHarness();

    expect(await tokens.get()).toEqual(issued('token-1'));
    expect(await tokens.get()).toEqual(issued('token-1'));
    expect(api.tokenRequests()).toHaveLength(1);
  });

  it('makes one token request for 50 concurrent callers', async () => {
    const { tokens, api } = clientHarness();

    const all = await Promise.all(Array.from({ length: 50 }, () => tokens.get()));

    expect(api.tokenRequests()).toHaveLength(1);
    expect(new Set(all.map(tokenOf))).toEqual(new Set(['token-1']));
  });

  it(`keeps the token until ${RENEW_BEFORE_MS / 1000} s before it expires`, async () => {
    const { tokens, api, clock } = clientHarness({ renewBeforeMs: RENEW_BEFORE_MS });
    await tokens.get();
    clock.advance(HOUR_MS - RENEW_BEFORE_MS - 1);

    expect(await tokens.get()).toEqual(issued('token-1'));
    expect(api.tokenRequests()).toHaveLength(1);
  });

  it(`renews the token ${RENEW_BEFORE_MS / 1000} s before it expires`, async () => {
    const { tokens, api, clock } = clientHarness({ renewBeforeMs: RENEW_BEFORE_MS });
    await tokens.get();
    clock.advance(HOUR_MS - RENEW_BEFORE_MS);

    expect(await tokens.get()).toEqual(issued('token-2'));
    expect(api.tokenRequests()).toHaveLength(2);
  });

  it('uses a short-lived token for at least half its lifetime, whatever renewBeforeMs says', async () => {
    const { tokens, clock } = clientHarness({
      renewBeforeMs: RENEW_BEFORE_MS,
      token: [tokenResponse('short', { expires_in: 120 }), tokenResponse('next')],
    });
    await tokens.get();

    clock.advance(59_999);
    expect(await tokens.get()).toEqual(issued('short'));
    clock.advance(1);
    expect(await tokens.get()).toEqual(issued('next'));
  });

  it('assumes 3600 s when expires_in is absent', async () => {
    const { tokens, clock } = clientHarness({
      renewBeforeMs: 0,
      token: [tokenResponse('no-expiry', { expires_in: undefined }), tokenResponse('next')],
    });
    await tokens.get();

    clock.advance(HOUR_MS - 1);
    expect(await tokens.get()).toEqual(issued('no-expiry'));
    clock.advance(1);
    expect(await tokens.get()).toEqual(issued('next'));
  });

  it.each([200, 201, 202])('accepts a token issued with status %i', async (status) => {
    const { tokens } = clientHarness({ token: [tokenResponse('any-2xx', undefined, status)] });

    expect(await tokens.get()).toEqual(issued('any-2xx'));
  });

  it('fetches once when 10 callers report the same rejected token at the same time', async () => {
    const { tokens, api } = clientHarness();
    const rejected = tokenOf(await tokens.get());

    const all = await Promise.all(Array.from({ length: 10 }, () => tokens.get({ rejected })));

    expect(api.tokenRequests()).toHaveLength(2);
    expect(new Set(all.map(tokenOf))).toEqual(new Set(['token-2']));
  });

  it('returns the current token without a request when the rejected one was already replaced', async () => {
    const { tokens, api } = clientHarness();
    const rejected = tokenOf(await tokens.get());
    await tokens.get({ rejected });

    expect(await tokens.get({ rejected })).toEqual(issued('token-2'));
    expect(api.tokenRequests()).toHaveLength(2);
  });

  it('re-reads the secret once and retries when the token endpoint answers 401 (a rotated secret)', async () => {
    const { tokens, api, credentials } = clientHarness({
      secrets: [secretString(), secretString({ client_secret: ROTATED_CLIENT_SECRET })],
      token: [acceptsOnly(ROTATED_CLIENT_SECRET)],
    });

    expect(await tokens.get()).toEqual(issued('rotated-token-1'));
    expect(credentials.reads).toBe(2);
    expect(api.tokenRequests().map((r) => JSON.parse(r.body).client_secret)).toEqual([
      CLIENT_SECRET,
      ROTATED_CLIENT_SECRET,
    ]);
  });

  it('gives up with a token failure (EcdTokenError 401) when the re-read secret is refused too, after one re-read', async () => {
    const { tokens, api, credentials } = clientHarness({ token: [acceptsOnly('never-issued')] });

    const error = await tokenErrorOf(tokens.get());

    expect(error.status).toBe(401);
    expect(credentials.reads).toBe(2);
    expect(api.tokenRequests()).toHaveLength(2);
  });

  it('re-reads the secret before the first request when asked to (rereadSecret)', async () => {
    const { tokens, credentials, api } = clientHarness({
      secrets: [secretString(), secretString({ client_secret: ROTATED_CLIENT_SECRET })],
    });
    await credentials.get();

    await tokens.get({ rereadSecret: true });

    expect(credentials.reads).toBe(2);
    expect(JSON.parse(api.tokenRequests()[0]?.body ?? '').client_secret).toBe(ROTATED_CLIENT_SECRET);
  });

  it.each([500, 502, 503])(
    'resolves a token failure (EcdTokenError) carrying status %i, without re-reading the secret',
    async (status) => {
      const { tokens, credentials } = clientHarness({
        token: [jsonResponse(status, { message: 'Server Error' })],
      });

      const error = await tokenErrorOf(tokens.get());

      expect(error.status).toBe(status);
      expect(error.message).toBe(`token request failed: HTTP ${status}`);
      expect(credentials.reads).toBe(1);
    },
  );

  it('resolves a token failure (EcdTokenError "timeout") when the token endpoint does not answer in time', async () => {
    const { tokens } = clientHarness({ token: [hangUntilAborted], timeoutMs: 20 });

    const error = await tokenErrorOf(tokens.get());

    expect(error.status).toBe('timeout');
  });

  it('passes on the Retry-After of a refused token request', async () => {
    const { tokens } = clientHarness({ token: [jsonResponse(429, {}, { 'Retry-After': '90' })] });

    expect((await tokenErrorOf(tokens.get())).retryAfterSeconds).toBe(90);
  });

  it('keeps the client secret out of the error excerpt even when the endpoint echoes it', async () => {
    const { tokens } = clientHarness({
      token: [
        jsonResponse(422, { message: 'invalid client', client_id: CLIENT_ID, client_secret: CLIENT_SECRET }),
      ],
    });

    const error = await tokenErrorOf(tokens.get());

    expect(error.excerpt).toContain('invalid client');
    expect(error.excerpt).not.toContain(CLIENT_SECRET);
    expect(error.message).not.toContain(CLIENT_SECRET);
  });

  it('fails when a 2xx answer carries no access_token', async () => {
    const { tokens } = clientHarness({ token: [jsonResponse(200, { token_type: 'Bearer' })] });

    expect((await tokenErrorOf(tokens.get())).excerpt).toBe('token response without access_token');
  });

  it('starts a fresh request after a failed one instead of repeating its failure', async () => {
    const { tokens, api } = clientHarness({ token: [jsonResponse(503, {}), tokenResponse('after-outage')] });
    await tokenErrorOf(tokens.get());

    expect(await tokens.get()).toEqual(issued('after-outage'));
    expect(api.tokenRequests()).toHaveLength(2);
  });

  it('reports the status of every token request to onAnswer', async () => {
    const { tokens, answers } = clientHarness({
      secrets: [secretString(), secretString({ client_secret: ROTATED_CLIENT_SECRET })],
      token: [acceptsOnly(ROTATED_CLIENT_SECRET)],
    });

    await tokens.get();

    expect(answers).toEqual([401, 200]);
  });

  it('reports a timed-out token request to onAnswer as "timeout"', async () => {
    const { tokens, answers } = clientHarness({ token: [hangUntilAborted], timeoutMs: 20 });

    await tokenErrorOf(tokens.get());

    expect(answers).toEqual(['timeout']);
  });

  it('defers instead of requesting while the pacer is blocked', async () => {
    const { tokens, api, pacer } = clientHarness();
    pacer.block(60_000);

    expect(await tokens.get()).toEqual({ ok: false, failure: 'deferred', retryInMs: 60_000 });
    expect(api.requests).toHaveLength(0);
  });

  describe("waitUntil: the latest time the token request may leave (the attempt's waits)", () => {
    it('does not request a token whose pacing slot lies beyond waitUntil: deferred until the slot', async () => {
      // A share of one request a minute, spent on the first token.
      const { tokens, api, clock } = clientHarness({ requestsPerMinute: 1 });
      const rejected = tokenOf(await tokens.get());

      const result = await tokens.get({ rejected, waitUntil: clock.now() + 30_000 });

      expect(result).toEqual({ ok: false, failure: 'deferred', retryInMs: 61_000 });
      expect(api.tokenRequests()).toHaveLength(1);
    });

    it('waits for a slot that comes by waitUntil', async () => {
      const { tokens, api, clock } = clientHarness({ requestsPerMinute: 1 });
      const rejected = tokenOf(await tokens.get());

      expect(await tokens.get({ rejected, waitUntil: clock.now() + 61_000 })).toEqual(issued('token-2'));
      expect(api.tokenRequests()).toHaveLength(2);
    });

    it('a waitUntil already past still lets a request go whose slot is free now', async () => {
      const { tokens, clock } = clientHarness({ requestsPerMinute: 1 });

      expect(await tokens.get({ waitUntil: clock.now() - 1 })).toEqual(issued('token-1'));
    });

    it('a cached token needs no slot, whatever waitUntil says', async () => {
      const { tokens, api, clock } = clientHarness({ requestsPerMinute: 1 });
      await tokens.get();

      expect(await tokens.get({ waitUntil: clock.now() })).toEqual(issued('token-1'));
      expect(api.tokenRequests()).toHaveLength(1);
    });

    it('bounds the re-read after a refused secret too: deferred when its slot lies beyond waitUntil', async () => {
      // One request a minute, spent on the refused one: the request with the re-read secret would have to wait.
      const { tokens, api, credentials, clock } = clientHarness({
        requestsPerMinute: 1,
        secrets: [secretString(), secretString({ client_secret: ROTATED_CLIENT_SECRET })],
        token: [acceptsOnly(ROTATED_CLIENT_SECRET)],
      });

      const result = await tokens.get({ waitUntil: clock.now() + 1_000 });

      expect(result).toEqual({ ok: false, failure: 'deferred', retryInMs: 61_000 });
      expect(credentials.reads).toBe(2);
      expect(api.tokenRequests()).toHaveLength(1);
    });
  });

  describe('a secret that cannot be read: resolved as a secret failure, no token request', () => {
    it('a secret without client_secret', async () => {
      const { tokens, api } = clientHarness({ secrets: [secretString({ client_secret: undefined })] });

      const result = await tokens.get();

      expect(result).toMatchObject({ ok: false, failure: 'secret' });
      expect(result.ok ? undefined : result.failure === 'secret' && result.error).toBeInstanceOf(
        CredentialsError,
      );
      expect(api.requests).toHaveLength(0);
    });

    it('a secret that can no longer be read when it is re-read after a 401', async () => {
      const { tokens, api } = clientHarness({
        secrets: [secretString(), undefined],
        token: [acceptsOnly('never-issued')],
      });

      expect(await tokens.get()).toMatchObject({ ok: false, failure: 'secret' });
      expect(api.tokenRequests()).toHaveLength(1);
    });

    it('when asked to re-read it (rereadSecret)', async () => {
      const { tokens, api, credentials } = clientHarness({ secrets: [secretString(), '{"client_id":'] });
      await credentials.get();

      expect(await tokens.get({ rereadSecret: true })).toMatchObject({ ok: false, failure: 'secret' });
      expect(api.requests).toHaveLength(0);
    });
  });

  it('never rejects: every failure resolves to a value', async () => {
    const failing = [
      clientHarness({ token: [jsonResponse(503, {})] }),
      clientHarness({ token: [hangUntilAborted], timeoutMs: 20 }),
      clientHarness({ secrets: [undefined] }),
    ];
    const blocked = clientHarness();
    blocked.pacer.block(1_000);

    const results = await Promise.allSettled([...failing, blocked].map((h) => h.tokens.get()));

    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(results.map((r) => (r.status === 'fulfilled' && !r.value.ok ? r.value.failure : r))).toEqual([
      'token',
      'token',
      'secret',
      'deferred',
    ]);
  });
});
