/**
 * Every wait inside an attempt comes out of the invocation's time (docs/pacing.md): pacing for the first request,
 * a token renewal after a 401 and the resend's slot all end by one deadline, the invocation's time left less the
 * worst-case chain of requests and AWS calls after them; a wait that would pass it is not made (the record comes
 * back), so a claimed attempt never outlives its lease. Each instance here has a pacer of a small share of its own,
 * so that a slot's distance is known.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Pacer } from '#shared/ecourtdate/pacer.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { type Harness, startHarness } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
// The harness's worst-case chain after the waits: 3 sends and 3 token requests at the 2 s HTTP timeout, then 5 AWS
// calls at the SDK's limits (25 s each: the claim's two puts, two secret reads, the settle), and a 5 s margin
// (shared/sender/handler.ts).
const CHAIN_MS = 2_000 * 3 * 2 + 5 * 25_000 + 5_000;
let h: Harness;

afterEach(async () => {
  await h?.close();
});

describe('waits inside an attempt', () => {
  it('after a 401, the token renewal whose pacing slot is a minute away is not waited for when 1 s is left to wait', async () => {
    // A pacer of two requests a minute: the token and the first send take both, so the renewal's slot is 61 s away.
    h = await startHarness();
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 401 } });
    await h.enqueue(jobBody());

    const result = await h.invokeWith(h.createInstance({ pacer: () => new Pacer(2) }), {
      functionTimeoutMs: CHAIN_MS + 1_000,
    });

    expect(result.error).toBeUndefined();
    expect(result.failed).toHaveLength(1);
    expect(h.sends().map((r) => r.status)).toEqual([401]);
    expect(await h.ledger().get('cms-48213-reminder-1')).toMatchObject({
      attempt_open: false,
      status: 'retrying',
      sends: 0,
    });
  });

  it('with time enough to wait, the same renewal waits for its slot and the resend is delivered', async () => {
    h = await startHarness({ env: { TIME_SCALE: '30' } });
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 401 } });
    await h.enqueue(jobBody());

    const pacer = () => new Pacer(2, { windowMs: 60_000 / 30 });
    // 3 s to wait beyond the chain and the api-client item's eight calls of 1 s: the renewal's slot is 61 s / 30 away.
    const result = await h.invokeWith(h.createInstance({ pacer }), { functionTimeoutMs: CHAIN_MS + 11_000 });

    expect(result.error).toBeUndefined();
    expect(h.sends().map((r) => r.status)).toEqual([401, 201]);
  });

  it('a record whose pacing slot would come after its last start time is handed back unsent: no request, no attempt, no ledger entry', async () => {
    // A pacer of four requests a minute: the token and three sends; the other seven records' slots are a minute away.
    h = await startHarness();
    const ids = Array.from({ length: 10 }, (_, i) => `paced-${i}`);
    for (const id of ids) await h.enqueue(jobBody({ id }));

    const result = await h.invokeWith(h.createInstance({ pacer: () => new Pacer(4) }), {
      functionTimeoutMs: CHAIN_MS + 1_000,
    });

    expect(result.error).toBeUndefined();
    expect(h.sends()).toHaveLength(3);
    expect(result.failed).toHaveLength(7);
    const entries = await Promise.all(ids.map((id) => h.ledger().get(id)));
    expect(entries.filter((entry) => entry === undefined)).toHaveLength(7);
    expect(entries.filter((entry) => entry !== undefined)).toHaveLength(3);
  });
});
