/**
 * What the circuit breaker's hold does to a job (docs/pacing.md, "The circuit breaker"): nothing written to its
 * ledger item, no attempt spent, SQS's receive count kept under maxReceiveCount by fresh copies, its deadline
 * still ruling (`expired`), and the metrics on-call's alarms read; an auth outage holds jobs until a probe with a
 * fresh read of the secret gets through.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { captureLogs, type LogCapture } from '#test/helpers/log-capture.ts';
import { attr, CLIENT_ID, type Harness, SECRET_ID, startHarness } from '#test/helpers/relay-harness.ts';

const MAX_RECEIVE_COUNT = 4;
let h: Harness;
let logs: LogCapture | undefined;

afterEach(async () => {
  logs?.stop();
  logs = undefined;
  if (h) expect(h.emulator.refusals()).toEqual([]);
  await h?.close();
});

/**
 * Polls until `ms` of (virtual) time have passed or the send queue is empty: each poll jumps to the next due
 * message.
 */
async function pollFor(ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (let polls = 0; Date.now() < until; polls++) {
    if (polls > 200) throw new Error(`still polling after 200 polls, ${until - Date.now()} ms short`);
    await h.invoke();
    const state = await h.inspect();
    if (state.ready.length + state.inflight.length + state.delayed.length === 0) return;
    await h.fastForward('earliest');
  }
}

/** Every message on the send queue, with its receive count so far. */
async function receiveCounts(): Promise<number[]> {
  const state = await h.inspect();
  return [...state.ready, ...state.delayed, ...state.inflight.map((e) => e.message)].map(
    (m) => m.approximateReceiveCount ?? 0,
  );
}

/** Opens the breaker as five failed requests in a row do: a warm-up batch meets 503s. */
async function openWithFailures(): Promise<void> {
  h.sim.script({
    match: { path: '/v1/messages/oneoffs' },
    times: 5,
    action: { kind: 'respond', status: 503 },
  });
  h.sim.script({ match: { path: '/v1/settings' }, action: { kind: 'respond', status: 503 } });
  for (let i = 0; i < 5; i++) await h.enqueue(jobBody({ id: `warm-${i}` }, { content: `Warm-up ${i}` }));
  await h.invoke();
}

describe('a job held by the open circuit breaker', () => {
  it('is not claimed or sent: no ledger item, no attempt, and its receive count stays under maxReceiveCount for an hour', async () => {
    h = await startHarness({ maxReceiveCount: MAX_RECEIVE_COUNT });
    await openWithFailures();
    const sendsBefore = h.sends().length;
    await h.enqueue(jobBody({ id: 'held-1' }));

    await pollFor(60 * 60_000);

    expect(h.sends().length).toBe(sendsBefore);
    expect(await h.ledger().get('held-1')).toBeUndefined();
    const counts = await receiveCounts();
    expect(counts.length).toBeGreaterThan(0);
    expect(Math.max(...counts)).toBeLessThan(MAX_RECEIVE_COUNT);
    expect((await h.drainDeadLetters()).filter((m) => m.Body?.includes('held-1'))).toEqual([]);
  });

  it('is dead-lettered expired when its expires_at passes while it is held, and the ledger says so', async () => {
    h = await startHarness({ maxReceiveCount: MAX_RECEIVE_COUNT });
    await openWithFailures();
    const expiresAt = new Date(Date.now() + 20 * 60_000).toISOString();
    await h.enqueue(jobBody({ id: 'held-2', expires_at: expiresAt }));

    await pollFor(40 * 60_000);

    const letters = (await h.drainDeadLetters()).filter((m) => m.Body?.includes('held-2'));
    expect(letters.map((m) => attr(m, DLQ_ATTRIBUTE.reason))).toEqual(['expired']);
    expect(await h.ledger().get('held-2')).toMatchObject({
      status: 'dead_lettered',
      dead_letter_reason: 'expired',
      sends: 0,
    });
  });

  it('counts JobsHeld and JobsHeld_unavailable, which EcourtdateUnavailable reads, and logs the opening without personal data', async () => {
    logs = captureLogs();
    h = await startHarness({ maxReceiveCount: MAX_RECEIVE_COUNT });
    await openWithFailures();
    await h.enqueue(jobBody({ id: 'held-3' }, { to: '+15557654321' }));
    await h.invoke();

    expect(logs.text()).toMatch(/"JobsHeld_unavailable"/);
    expect(logs.text()).toMatch(/"cause":\s*"held_unavailable"/);
    expect(logs.text()).toMatch(/eCourtDate circuit breaker opened/);
    expect(logs.text()).not.toContain('5557654321');
  });
});

describe('an auth outage', () => {
  it('holds jobs after a 401 survives a renewal and a secret re-read, and delivers them once a probe reads the fixed secret', async () => {
    h = await startHarness({ maxReceiveCount: MAX_RECEIVE_COUNT });
    // The API client's secret was regenerated in the Console; the relay's secret still holds the old one.
    h.sim.setClientSecret(CLIENT_ID, 'regenerated-secret-7c1d2e3f4a5b6c7d', { revokeTokens: true });
    for (let i = 0; i < 3; i++)
      await h.enqueue(jobBody({ id: `auth-${i}` }, { content: `Auth reminder ${i}` }));
    await pollFor(10 * 60_000);
    expect(h.sim.messages).toHaveLength(0);
    expect(await h.drainDeadLetters()).toEqual([]);
    const tokenRequestsHeld = h.sim.requests.filter((r) => r.path === '/oauth/token').length;

    // On-call puts the new secret in Secrets Manager: the next probe re-reads it.
    h.secrets.setSecret(
      SECRET_ID,
      JSON.stringify({ client_id: CLIENT_ID, client_secret: 'regenerated-secret-7c1d2e3f4a5b6c7d' }),
    );
    await pollFor(30 * 60_000);

    expect(h.sim.messages).toHaveLength(3);
    expect(await h.drainDeadLetters()).toEqual([]);
    // While held, only probes asked for tokens: a few, not one per job per retry.
    expect(tokenRequestsHeld).toBeLessThanOrEqual(12);
  });
});
