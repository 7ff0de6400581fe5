/**
 * Jobs the circuit breaker holds (docs/pacing.md, "The circuit breaker"): a hold spends no attempt and no SQS
 * receive budget, however long it lasts, and the job's deadline still rules: a job whose deadline passes while it
 * is held is dead-lettered `expired`, with the ledger saying so and no request sent.
 */
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { API_CLIENT_ITEM_ID, LEDGER_TABLE_KEY } from '#shared/ledger/schema.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { attr, type Harness, LEDGER_TABLE, startHarness } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
const MAX_RECEIVE_COUNT = 4;
let h: Harness;

afterEach(async () => {
  await h?.close();
});

/** Opens the stage's breaker for an outage, as an instance would, its first probe a minute from now. */
async function openBreaker(): Promise<void> {
  const now = Date.now();
  await DynamoDBDocumentClient.from(h.dynamodb.client).send(
    new PutCommand({
      TableName: LEDGER_TABLE,
      Item: {
        [LEDGER_TABLE_KEY]: API_CLIENT_ITEM_ID,
        breaker_state: 'open',
        breaker_reason: 'unavailable',
        breaker_opened_at: now,
        breaker_probe_at: now + 60_000,
        breaker_probe_step: 0,
      },
    }),
  );
}

/** Every message on the send queue, with its receive count so far. */
async function receiveCounts(): Promise<number[]> {
  const state = await h.inspect();
  return [...state.ready, ...state.delayed, ...state.inflight.map((e) => e.message)].map(
    (m) => m.approximateReceiveCount ?? 0,
  );
}

/** Polls, letting time pass only until the next message is due, while `more` says so (at most `limit` polls). */
async function pollWhile(more: () => boolean, limit: number): Promise<number[]> {
  const seen: number[] = [];
  for (let polls = 0; polls < limit && more(); polls++) {
    await h.invoke();
    seen.push(...(await receiveCounts()));
    await h.fastForward('earliest');
  }
  return seen;
}

describe('jobs held by the circuit breaker', () => {
  it('a job whose expires_at passes while held is dead-lettered expired, the ledger says so, and nothing was sent', async () => {
    h = await startHarness({ maxReceiveCount: MAX_RECEIVE_COUNT });
    // eCourtDate is down for the whole test: every probe fails and the breaker stays open.
    h.sim.script({ match: () => true, action: { kind: 'respond', status: 503 } });
    await openBreaker();
    const expiresAt = new Date(Date.now() + 10 * 60_000).toISOString();
    await h.enqueue(jobBody({ expires_at: expiresAt }));

    let dead: Awaited<ReturnType<Harness['drainDeadLetters']>> = [];
    await pollWhile(() => dead.length === 0, 200);
    dead = await h.drainDeadLetters();

    expect(dead.map((m) => attr(m, DLQ_ATTRIBUTE.reason))).toEqual(['expired']);
    expect(h.sends().filter((r) => r.path === ONEOFFS)).toEqual([]);
    expect(await h.ledger().get('cms-48213-reminder-1')).toMatchObject({
      status: 'dead_lettered',
      dead_letter_reason: 'expired',
      sends: 0,
    });
  });

  it("a hold of two hours never brings a record to the queue's maxReceiveCount, and the job is delivered once after it", async () => {
    h = await startHarness({ maxReceiveCount: MAX_RECEIVE_COUNT });
    const outageEnd = Date.now() + 2 * 60 * 60_000;
    h.sim.script({ match: () => Date.now() < outageEnd, action: { kind: 'respond', status: 503 } });
    await openBreaker();
    await h.enqueue(jobBody());

    const counts = await pollWhile(() => Date.now() < outageEnd, 500);

    expect(Date.now()).toBeGreaterThanOrEqual(outageEnd);
    expect(Math.max(...counts)).toBeLessThan(MAX_RECEIVE_COUNT);
    expect(h.sends().filter((r) => r.path === ONEOFFS)).toEqual([]);
    await h.runUntilQuiet(20);
    expect(await h.drainDeadLetters()).toEqual([]);
    expect(h.sim.messages).toHaveLength(1);
  });
});
