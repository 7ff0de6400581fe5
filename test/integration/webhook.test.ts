import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DETAIL_TYPE, EVENT_SOURCE } from '#shared/webhook/events.ts';
import { SECURITY_HEADERS } from '#shared/webhook/responses.ts';
import { signBody } from '#shared/webhook/signature.ts';
import {
  bodyBytes,
  startWebhookHarness,
  WEBHOOK_EVENT_BUS,
  WEBHOOK_SECRET,
  WEBHOOK_SECRET_ID,
  type WebhookHarness,
} from '#test/helpers/webhook-harness.ts';

/** An inbound text as eCourtDate's webhook guide shows one (fields of wiki.ecourtdate.com/webhooks/event-types). */
function inboundText(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    uuid: randomUUID(),
    channel: 'text',
    direction: 'inbound',
    // Its own time: a delivery older than the replay horizon is refused (docs/webhooks.md, "Replays").
    created_at: new Date().toISOString(),
    from: '+15557654321',
    to: '+15550001111',
    content: 'Yes I will be there',
    token: 'tok_inbound',
    last_status: 'received',
    ...overrides,
  };
}

/** The AWS SDK's default attempts per call: a failure injected fewer times is retried away inside the SDK. */
const SDK_ATTEMPTS = 3;

let h: WebhookHarness;

beforeAll(async () => {
  h = await startWebhookHarness();
});

afterAll(async () => {
  await h?.close();
});

afterEach(() => {
  h.events.clear();
});

/** The events on the bus for one webhook uuid. */
function eventsOf(uuid: string) {
  return h.events.events.filter((e) => (e.detail as { webhook_uuid?: string }).webhook_uuid === uuid);
}

describe('signature', () => {
  it('accepts a delivery signed with the shared secret over the raw body and puts one event on the bus', async () => {
    const payload = inboundText();

    const res = await h.post(payload);

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'accepted' });
    expect(h.events.events).toHaveLength(1);
    expect(h.events.events[0]).toMatchObject({
      eventBusName: WEBHOOK_EVENT_BUS,
      source: EVENT_SOURCE,
      detailType: DETAIL_TYPE.inboundMessage,
      detail: { webhook_uuid: payload.uuid, kind: 'inbound_message', channel: 'text', payload },
    });
  });

  it('answers 401 with no body and publishes nothing for a signature made with another secret', async () => {
    const payload = inboundText();

    const res = await h.post(payload, { signature: signBody('not-the-shared-secret', bodyBytes(payload)) });

    expect(res.status).toBe(401);
    expect(await res.text()).toBe('');
    expect(h.events.events).toEqual([]);
  });

  it('answers 401 for a delivery without X-ECD-Signature', async () => {
    const res = await h.post(inboundText(), { signature: null });

    expect(res.status).toBe(401);
    expect(await res.text()).toBe('');
    expect(h.events.events).toEqual([]);
  });

  it('answers 401 when the signature was computed over re-serialised JSON rather than the bytes sent', async () => {
    const payload = inboundText();
    const sent = JSON.stringify(payload, null, 2);
    // What the wiki's Express example does: hash JSON.stringify(req.body), which drops the whitespace.
    const overReserialised = signBody(WEBHOOK_SECRET, Buffer.from(JSON.stringify(JSON.parse(sent))));

    const res = await h.post(sent, { signature: overReserialised });

    expect(res.status).toBe(401);
    expect(h.events.events).toEqual([]);
  });

  it('verifies a body API Gateway passed base64-encoded over its decoded bytes, non-ASCII text included', async () => {
    const gateway = await h.gateway([h.handler], { base64: 'always' });
    const payload = inboundText({ content: 'Sí, estaré allí — gracias' });
    const bytes = Buffer.from(JSON.stringify(payload, null, 1), 'utf8');

    const res = await h.post(bytes, { url: gateway.url });

    expect(res.status).toBe(200);
    expect(eventsOf(payload.uuid as string)).toHaveLength(1);
    expect(eventsOf(payload.uuid as string)[0]?.detail).toMatchObject({ payload });
  });

  it('accepts a signature in upper-case hex', async () => {
    const payload = inboundText();

    const res = await h.post(payload, {
      signature: signBody(WEBHOOK_SECRET, bodyBytes(payload)).toUpperCase(),
    });

    expect(res.status).toBe(200);
  });
});

describe('deduplication', () => {
  it('answers a replayed delivery 200 and publishes nothing the second time', async () => {
    const payload = inboundText();

    const first = await h.post(payload);
    const replay = await h.post(payload);

    expect(first.status).toBe(200);
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual({ status: 'duplicate' });
    expect(eventsOf(payload.uuid as string)).toHaveLength(1);
  });

  it('publishes exactly one event per uuid from 1,000 concurrent deliveries with 10 % repeats', async () => {
    const unique = Array.from({ length: 900 }, () => inboundText());
    const repeats = Array.from({ length: 100 }, (_, i) => unique[(i * 7) % unique.length] as object);
    const deliveries = [...unique, ...repeats].sort(() => Math.random() - 0.5);

    const answers = await Promise.all(deliveries.map((payload) => h.post(payload).then((r) => r.status)));
    // A copy that met its twin in flight got 409; eCourtDate retries it, as it retries any non-2xx.
    const retried = deliveries.filter((_, i) => answers[i] === 409);
    const retryAnswers = await Promise.all(retried.map((payload) => h.post(payload).then((r) => r.status)));

    expect(answers.filter((status) => status !== 200 && status !== 409)).toEqual([]);
    expect(retryAnswers.every((status) => status === 200)).toBe(true);
    const perUuid = new Map<string, number>();
    for (const event of h.events.events) {
      const uuid = (event.detail as { webhook_uuid: string }).webhook_uuid;
      perUuid.set(uuid, (perUuid.get(uuid) ?? 0) + 1);
    }
    expect(perUuid.size).toBe(900);
    expect([...perUuid.values()].every((count) => count === 1)).toBe(true);
    expect(new Set(perUuid.keys())).toEqual(new Set(unique.map((p) => (p as { uuid: string }).uuid)));
  }, 120_000);

  it('answers 503 when PutEvents fails, so eCourtDate retries, and publishes once on the retry', async () => {
    const payload = inboundText();
    h.events.failNext(SDK_ATTEMPTS, 'InternalException');

    const failed = await h.post(payload);
    const retry = await h.post(payload);
    const again = await h.post(payload);

    expect(failed.status).toBe(503);
    expect(retry.status).toBe(200);
    expect(await again.json()).toEqual({ status: 'duplicate' });
    expect(eventsOf(payload.uuid as string)).toHaveLength(1);
  });

  it('answers 503 on a partial FailedEntryCount and republishes only the refused entry on the retry', async () => {
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('job-partial', messageUuid);
    const update = {
      uuid: randomUUID(),
      direction: 'outbound',
      channel: 'text',
      message_uuid: messageUuid,
      last_status: 'delivered',
    };
    h.events.failEntriesNext(1, { select: (entry) => entry.DetailType === DETAIL_TYPE.jobDeliveryStatus });

    const failed = await h.post(update);
    const retry = await h.post(update);

    expect(failed.status).toBe(503);
    expect(retry.status).toBe(200);
    expect(h.events.events.map((e) => e.detailType)).toEqual([
      DETAIL_TYPE.messageStatus,
      DETAIL_TYPE.jobDeliveryStatus,
    ]);
  });
});

describe('request limits and headers', () => {
  it('answers 413 for a body above the size limit, before looking at its signature', async () => {
    const payload = inboundText({ content: 'x'.repeat(70 * 1024) });

    const res = await h.post(payload);

    expect(res.status).toBe(413);
    expect(h.events.events).toEqual([]);
  });

  it('answers 405 with Allow: POST for another method', async () => {
    const res = await h.post(undefined, { method: 'GET', signature: null });

    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });

  it('answers 415 for a body that is not JSON by its content type', async () => {
    const res = await h.post('uuid=1', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });

    expect(res.status).toBe(415);
    expect(h.events.events).toEqual([]);
  });

  it('accepts a JSON content type with a charset parameter', async () => {
    const res = await h.post(inboundText(), {
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });

    expect(res.status).toBe(200);
  });

  it('answers 400 for a signed body that is not JSON', async () => {
    const res = await h.post('{"uuid": ');

    expect(res.status).toBe(400);
    expect(h.events.events).toEqual([]);
  });

  it.each([
    ['200', () => h.post(inboundText())],
    ['401', () => h.post(inboundText(), { signature: null })],
    ['405', () => h.post(undefined, { method: 'GET', signature: null })],
  ])('sends the recommended security headers on a %s', async (_, send) => {
    const res = await send();

    for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(res.headers.get(name)).toBe(value);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('strict-transport-security')).toMatch(/^max-age=\d+/);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
  });
});

describe('IP allowlist', () => {
  it('answers 403 to a source address that is not on the list, signature or not', async () => {
    const gateway = await h.gateway([
      h.createInstance({ env: { WEBHOOK_ALLOWED_IPS: '203.0.113.10, 203.0.113.11' } }),
    ]);

    const res = await h.post(inboundText(), { url: gateway.url });

    expect(res.status).toBe(403);
    expect(h.events.events).toEqual([]);
  });

  it('accepts a source address inside a listed CIDR range', async () => {
    const gateway = await h.gateway([
      h.createInstance({ env: { WEBHOOK_ALLOWED_IPS: '203.0.113.10,127.0.0.0/8' } }),
    ]);

    const res = await h.post(inboundText(), { url: gateway.url });

    expect(res.status).toBe(200);
  });

  it('is off when the list is empty', async () => {
    const gateway = await h.gateway([h.createInstance({ env: { WEBHOOK_ALLOWED_IPS: '' } })]);

    const res = await h.post(inboundText(), { url: gateway.url });

    expect(res.status).toBe(200);
  });
});

describe('secret', () => {
  it('picks up a rotated secret when a signature fails and the cached copy is older than 30 s', async () => {
    let clock = Date.now();
    const gateway = await h.gateway([h.createInstance({ now: () => clock })]);
    expect((await h.post(inboundText(), { url: gateway.url })).status).toBe(200);
    h.secrets.setSecret(WEBHOOK_SECRET_ID, JSON.stringify({ secret: 'rotated-secret-24-chars!' }));
    const payload = inboundText();
    const signature = signBody('rotated-secret-24-chars!', bodyBytes(payload));

    const early = await h.post(payload, { url: gateway.url, signature });
    clock += 31_000;
    const later = await h.post(payload, { url: gateway.url, signature });

    expect(early.status).toBe(401);
    expect(later.status).toBe(200);
    h.secrets.setSecret(WEBHOOK_SECRET_ID, JSON.stringify({ secret: WEBHOOK_SECRET }));
  });

  it('accepts signatures made with previous_secret while a rotation is under way', async () => {
    h.secrets.setSecret(
      WEBHOOK_SECRET_ID,
      JSON.stringify({ secret: 'the-new-secret', previous_secret: WEBHOOK_SECRET }),
    );
    const gateway = await h.gateway([h.createInstance()]);
    const payload = inboundText();

    const old = await h.post(payload, { url: gateway.url });
    const next = inboundText();
    const fresh = await h.post(next, {
      url: gateway.url,
      signature: signBody('the-new-secret', bodyBytes(next)),
    });

    expect(old.status).toBe(200);
    expect(fresh.status).toBe(200);
    h.secrets.setSecret(WEBHOOK_SECRET_ID, JSON.stringify({ secret: WEBHOOK_SECRET }));
  });

  it('answers 503 when the secret cannot be read, so eCourtDate retries', async () => {
    const gateway = await h.gateway([h.createInstance()]);
    h.secrets.failNext(SDK_ATTEMPTS, 'InternalServiceError');

    const res = await h.post(inboundText(), { url: gateway.url });

    expect(res.status).toBe(503);
    expect(h.events.events).toEqual([]);
  });
});
