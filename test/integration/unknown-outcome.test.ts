/**
 * An unknown outcome is never relabelled as a plain failure (docs/contract.md, "What each response does"): once any
 * attempt of a generation may have created the message and no 409 resolved it, the job is dead-lettered
 * `unknown_outcome`, with the Console > Logs advice, whatever ended it.
 */
import type { Message } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { createThen } from '#local/ecourtdate-simulator/index.ts';
import { Pacer } from '#shared/ecourtdate/pacer.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { attr, type Harness, startHarness } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
let h: Harness;

afterEach(async () => {
  if (h) expect(h.emulator.refusals()).toEqual([]);
  await h?.close();
});

const letters = (messages: Message[]) =>
  messages.map((m) => ({ reason: attr(m, DLQ_ATTRIBUTE.reason), detail: attr(m, DLQ_ATTRIBUTE.detail) }));

describe('a job that may have been created is dead-lettered unknown_outcome, whatever ended it', () => {
  it.each([500, 502, 503, 504])(
    'created-then-%i, then the same answer until the budget is spent: unknown_outcome with the Console > Logs advice',
    async (status) => {
      h = await startHarness();
      h.sim.script({ match: { path: ONEOFFS }, times: 1, action: createThen({ kind: 'respond', status }) });
      // A 409 would resolve the unknown outcome: the duplicate check is off, so only the budget ends the job.
      h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status } });
      await h.enqueue(jobBody());

      await h.runUntilQuiet(8);

      expect(h.sim.messages).toHaveLength(1);
      expect(letters(await h.drainDeadLetters())).toEqual([
        { reason: 'unknown_outcome', detail: expect.stringContaining('check Console > Logs') },
      ]);
      expect(await h.ledger().get('cms-48213-reminder-1')).toMatchObject({
        status: 'dead_lettered',
        dead_letter_reason: 'unknown_outcome',
      });
    },
  );

  it('408s alone (nothing processed) still end retries_exhausted: a known outcome', async () => {
    h = await startHarness();
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 408 } });
    await h.enqueue(jobBody());

    await h.runUntilQuiet(8);

    expect(h.sends()).toHaveLength(5);
    expect(letters(await h.drainDeadLetters())).toEqual([
      { reason: 'retries_exhausted', detail: expect.stringContaining('nothing was created') },
    ]);
  });

  it('a 503 and then 408s until the budget is spent: unknown_outcome, the 503 may have created it', async () => {
    h = await startHarness();
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 503 } });
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 408 } });
    await h.enqueue(jobBody());

    await h.runUntilQuiet(8);

    expect(h.sends().map((r) => r.status)).toEqual([503, 408, 408, 408, 408]);
    expect(letters(await h.drainDeadLetters())).toEqual([
      { reason: 'unknown_outcome', detail: expect.stringContaining('the attempts ran out') },
    ]);
  });
});

describe('a resend after an unknown outcome leaves only inside the duplicate window, however long its waits', () => {
  it('a resend whose token renewal waited for its pacing slot past the window is not sent: the check is made again as it leaves', async () => {
    // At time scale 120 the 30-minute window lasts 15 s, less the sender's margin (a quarter of it): 11.25 s after
    // the 503. The second attempt starts about a second after it, inside the window; its 401 sends it to a token
    // renewal whose slot is 12 s away (two requests per 12 s), past the window.
    h = await startHarness({ env: { TIME_SCALE: '120' } });
    h.sim.script({
      match: { path: ONEOFFS },
      times: 1,
      action: createThen({ kind: 'respond', status: 503 }),
    });
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 401 } });
    await h.enqueue(jobBody());
    await h.invoke();
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    const slow = h.createInstance({ pacer: () => new Pacer(2, { windowMs: 12_000 }) });
    const result = await h.invokeWith(slow, { functionTimeoutMs: 250_000 });

    expect(result.error).toBeUndefined();
    expect(h.sends().map((r) => r.status)).toEqual([503, 401]);
    expect(h.sim.messages).toHaveLength(1);
  }, 60_000);
});
