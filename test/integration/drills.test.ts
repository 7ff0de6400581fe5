import { afterEach, describe, expect, it } from 'vitest';
import { createThen } from '#local/ecourtdate-simulator/index.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { attr, CLIENT_ID, type Harness, SECRET_ID, startHarness } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
let h: Harness;

afterEach(async () => {
  await h?.close();
});

/** Lets time pass and polls until the send queue is empty; returns the number of polls. */
async function drain(limit = 100): Promise<number> {
  for (let polls = 0; polls < limit; polls++) {
    const state = await h.inspect();
    if (state.ready.length + state.inflight.length + state.delayed.length === 0) return polls;
    // Time passes as it would: only until the next retry is due, so the run stays true to the duplicate window.
    await h.fastForward('earliest');
    await h.invoke();
  }
  throw new Error(`the send queue did not drain in ${limit} polls`);
}

function jobs(count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) =>
    jobBody({ id: `drill-${i}` }, { content: `Drill reminder ${i}` }),
  );
}

/** The content of a message request's body (or of a dead letter's message): one per drill job. */
function contentOf(message: unknown): unknown {
  return (message as { content?: unknown } | undefined)?.content;
}

/** Messages in the simulator per job content: every value must be 1. */
function messagesPerJob(): number[] {
  const counts = new Map<unknown, number>();
  for (const m of h.sim.messages) counts.set(m.body.content, (counts.get(m.body.content) ?? 0) + 1);
  return [...counts.values()];
}

describe('drills', () => {
  it('outage: eCourtDate answers 503 everywhere for two hours: jobs are held, not dead-lettered; the API sees probes, not a flood; each job is delivered once afterwards', async () => {
    await start();
    for (const job of jobs(5)) await h.enqueue(job);
    await drain();
    const outageStart = Date.now();
    const outageEnd = outageStart + 2 * 60 * 60_000;
    const during = () => Date.now() < outageEnd;
    // The first request of the outage reached eCourtDate before its gateway gave up (created, then 504).
    h.sim.script({
      match: (req) => during() && req.path === ONEOFFS,
      times: 1,
      action: createThen({ kind: 'respond', status: 504 }),
    });
    h.sim.script({ match: () => during(), action: { kind: 'respond', status: 503 } });
    for (const job of jobs(35).slice(5)) await h.enqueue(job);

    await drain(1_000);

    const inOutage = h.sim.requests.filter((r) => r.at >= outageStart && r.at < outageEnd);
    const metOutage = new Set(inOutage.filter((r) => r.path === ONEOFFS).map((r) => contentOf(r.body)));
    // One batch met the outage; after it only probes (GET /v1/settings, and a token request once the token expired).
    expect(metOutage.size).toBeLessThanOrEqual(10);
    expect(inOutage.length).toBeLessThanOrEqual(40);
    expect(inOutage.filter((r) => r.path === '/v1/settings').length).toBeGreaterThan(5);
    // The batch that met it keeps the unknown-outcome rules (a 5xx may have created the message): held past
    // eCourtDate's duplicate window, those are dead-lettered unknown_outcome for a person to check. Nothing else is.
    const dead = await h.drainDeadLetters();
    const deadContents = dead.map((m) => contentOf(JSON.parse(m.Body ?? '{}').message));
    expect(deadContents.filter((content) => !metOutage.has(content))).toEqual([]);
    expect(new Set(dead.map((m) => attr(m, DLQ_ATTRIBUTE.reason)))).toEqual(
      new Set(dead.length > 0 ? ['unknown_outcome'] : []),
    );
    // Every job that was not in flight when it began is delivered, each created once.
    const created = new Set(h.sim.messages.map((m) => m.body.content));
    for (let i = 0; i < 35; i++) {
      const content = `Drill reminder ${i}`;
      if (!metOutage.has(content)) expect(created.has(content)).toBe(true);
    }
    expect(messagesPerJob().every((n) => n === 1)).toBe(true);
  });

  it('partial outage: the messages endpoint answers 503 while GET /v1/settings works: the probes cannot tell, so jobs spend their attempt budget as before and are dead-lettered, none sent twice', async () => {
    await start();
    // Some requests reach eCourtDate before the gateway gives up (created, then 504): these must not be doubled.
    h.sim.script({
      match: { contentIncludes: 'reminder 1' },
      times: 1,
      action: createThen({ kind: 'respond', status: 504 }),
    });
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 503 } });
    for (const job of jobs(30)) await h.enqueue(job);

    await drain(1_000);

    const dead = await h.drainDeadLetters();
    expect(dead).toHaveLength(30);
    // Every attempt met a 5xx, which may have created the message: unknown_outcome, for a person to check first.
    expect(new Set(dead.map((m) => attr(m, DLQ_ATTRIBUTE.reason)))).toEqual(new Set(['unknown_outcome']));
    // The breaker opened and probed between rounds, and no job went past its five attempts.
    expect(h.sim.requests.filter((r) => r.path === '/v1/settings').length).toBeGreaterThan(0);
    expect(h.sends().length).toBeLessThanOrEqual(30 * 5);
    expect(messagesPerJob().every((n) => n === 1)).toBe(true);
  });

  it('rotation: the client secret changes mid-run; the relay recovers through the 401 path and loses nothing', async () => {
    await start();
    const instances = [h.createInstance(), h.createInstance()];
    for (const job of jobs(40)) await h.enqueue(job);
    await h.invokeWith(instances[0] ?? h.handler);
    await h.invokeWith(instances[1] ?? h.handler);
    const readsBefore = h.secrets.calls.length;

    // The operator rotates the API client's secret in the Console (old one rejected, its tokens revoked) and
    // puts the new one in Secrets Manager.
    const rotated = 'rotated-client-secret-4f1c9a7e2b6d3f80';
    h.sim.setClientSecret(CLIENT_ID, rotated, { revokeTokens: true });
    h.secrets.setSecret(SECRET_ID, JSON.stringify({ client_id: CLIENT_ID, client_secret: rotated }));
    for (let i = 0; i < 6; i++) await h.invokeWith(instances[i % 2] ?? h.handler);
    await drain();

    expect(h.sim.messages).toHaveLength(40);
    expect(messagesPerJob().every((n) => n === 1)).toBe(true);
    expect(await h.drainDeadLetters()).toEqual([]);
    // Each instance re-read the secret on the 401 path rather than waiting for its cache to expire.
    expect(h.secrets.calls.length - readsBefore).toBeGreaterThanOrEqual(2);
    expect(h.sim.requests.some((r) => r.path === ONEOFFS && r.status === 401)).toBe(true);
  });
});

async function start(): Promise<Harness> {
  h = await startHarness();
  return h;
}
