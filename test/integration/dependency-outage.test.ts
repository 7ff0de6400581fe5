/**
 * A dependency outage never spends SQS's receive budget (docs/contract.md; docs/sqs-limits.md, "Fresh copies"):
 * while DynamoDB or EventBridge refuses, each record is re-queued as a fresh copy after the first backoff step, so
 * SQS's own redrive (here at 4 receives) never moves a job to the dead-letter queue without a reason, and the
 * job is delivered once when the outage ends.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBridgeStub } from '#local/emulators/eventbridge-stub.ts';
import { injectDynamoFaults } from '#test/helpers/dynamo-faults.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { type Harness, startHarness } from '#test/helpers/relay-harness.ts';

const JOB_ID = 'cms-48213-reminder-1';
const MAX_RECEIVE_COUNT = 4;
const OUTAGE_MS = 10 * 60_000;
let h: Harness;
let bus: EventBridgeStub;

afterEach(async () => {
  if (h) expect(h.emulator.refusals()).toEqual([]);
  await h?.close();
});

/** Polls with `instance` and lets time pass until `ms` of (virtual) time have gone by; returns the polls' results. */
async function pollFor(ms: number, instance: () => Parameters<Harness['invokeWith']>[0]) {
  const until = Date.now() + ms;
  const results = [];
  while (Date.now() < until) {
    results.push(await h.invokeWith(instance()));
    await h.fastForward();
  }
  return results;
}

/** Every message on the send queue, with its receive count so far. */
async function receiveCounts(): Promise<number[]> {
  const state = await h.inspect();
  return [...state.ready, ...state.delayed, ...state.inflight.map((e) => e.message)].map(
    (m) => m.approximateReceiveCount ?? 0,
  );
}

describe('a ten-minute outage re-queues fresh copies and dead-letters nothing', () => {
  it('DynamoDB refuses every call: nothing is sent, no receive budget is spent; delivered once afterwards', async () => {
    h = await startHarness({ maxReceiveCount: MAX_RECEIVE_COUNT });
    await h.enqueue(jobBody({}, { skip_duplicate: true }));
    let spoiled = () => 0;
    const down = h.createInstance({
      clients: (clients) => {
        spoiled = injectDynamoFaults(clients.dynamodb, { operation: 'PutItem', kind: 'down', calls: 1_000 });
      },
    });

    const polls = await pollFor(OUTAGE_MS, () => down);

    expect(spoiled()).toBe(polls.length);
    expect(polls.length).toBeGreaterThanOrEqual(MAX_RECEIVE_COUNT);
    expect(polls.flatMap((p) => p.failed)).toEqual([]);
    expect(h.sends()).toHaveLength(0);
    expect(Math.max(...(await receiveCounts()))).toBeLessThan(MAX_RECEIVE_COUNT);
    expect(await h.drainDeadLetters()).toEqual([]);

    await h.runUntilQuiet(4, () => h.invokeWith(h.createInstance()));
    expect(h.sends().map((r) => r.status)).toEqual([201]);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', sends: 1 });
  });

  it('EventBridge refuses the Job Settled event: the delivered job is not resent, and its event goes out once, not as a replay', async () => {
    h = await startHarness({ maxReceiveCount: MAX_RECEIVE_COUNT, jobSettledEvents: true });
    bus = h.world.events as EventBridgeStub;
    await h.enqueue(jobBody());
    bus.failNext(1_000, 'InternalException');

    const instance = h.createInstance();
    const polls = await pollFor(OUTAGE_MS, () => instance);

    expect(polls.flatMap((p) => p.failed)).toEqual([]);
    expect(Math.max(...(await receiveCounts()))).toBeLessThan(MAX_RECEIVE_COUNT);
    expect(h.sends()).toHaveLength(1);
    expect(bus.events).toHaveLength(0);

    bus.recover();
    await h.runUntilQuiet(4);
    expect(h.sends()).toHaveLength(1);
    expect(bus.events.map((e) => e.detail)).toEqual([
      expect.objectContaining({ job_id: JOB_ID, outcome: 'delivered' }),
    ]);
    expect(bus.events[0]?.detail).not.toHaveProperty('replayed');
    expect(await h.drainDeadLetters()).toEqual([]);
  });
});
