/**
 * The ledger's conditional writes under DynamoDB's failures (README, "Reliability: the job ledger"): a write that
 * DynamoDB applied but whose answer was lost is still the writer's, and an answer eCourtDate gave is carried until
 * it is written, so a 201 stays a 201. The faults work inside the SDK's retry loop, as real ones do.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type DynamoFault, injectDynamoFaults } from '#test/helpers/dynamo-faults.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { type Harness, startHarness } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
const JOB_ID = 'cms-48213-reminder-1';
let h: Harness;

afterEach(async () => {
  if (h) expect(h.emulator.refusals()).toEqual([]);
  await h?.close();
});

// The claim writes the entry with an open attempt; the settle closes it.
const claimWrite = (body: string) => body.includes('"attempt_open":{"BOOL":true}');
const settleWrite = (body: string) => body.includes('"attempt_open":{"BOOL":false}');

/** An instance whose DynamoDB client meets `fault`; every other instance of the harness is healthy. */
function faultyInstance(fault: DynamoFault) {
  let spoiled: () => number = () => 0;
  const handler = h.createInstance({
    clients: (clients) => (spoiled = injectDynamoFaults(clients.dynamodb, fault)),
  });
  return { handler, spoiled: () => spoiled() };
}

describe('a conditional write whose answer was lost is still ours', () => {
  it('the first claim, applied and then retried by the SDK: the job is sent once at once, not held as in flight', async () => {
    h = await startHarness();
    await h.enqueue(jobBody({}, { skip_duplicate: true }));
    const instance = faultyInstance({
      operation: 'PutItem',
      match: claimWrite,
      kind: 'lost_answer',
      calls: 1,
    });

    const result = await h.invokeWith(instance.handler);

    expect(instance.spoiled()).toBe(1);
    expect(result.deleted).toHaveLength(1);
    expect(h.sends().map((r) => r.status)).toEqual([201]);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({
      status: 'delivered',
      sends: 1,
      unknown_outcome: false,
    });
  });

  it('a later claim (on the entry a 503 left), applied and then retried: no lost attempt is counted', async () => {
    h = await startHarness();
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 503 } });
    await h.enqueue(jobBody());
    await h.invoke();
    await h.fastForward();
    const instance = faultyInstance({
      operation: 'PutItem',
      match: claimWrite,
      kind: 'lost_answer',
      calls: 1,
    });

    await h.runUntilQuiet(6, () => h.invokeWith(instance.handler));

    expect(instance.spoiled()).toBe(1);
    expect(h.sends().map((r) => r.status)).toEqual([503, 201]);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', sends: 2, retryable: 1 });
  });

  it('the settle after a 201, applied and then retried: delivered with its uuid, acknowledged at once', async () => {
    h = await startHarness();
    await h.enqueue(jobBody());
    const instance = faultyInstance({
      operation: 'PutItem',
      match: settleWrite,
      kind: 'lost_answer',
      calls: 1,
    });

    const result = await h.invokeWith(instance.handler);

    expect(instance.spoiled()).toBe(1);
    expect(result.deleted).toHaveLength(1);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({
      status: 'delivered',
      uuid: h.sim.messages[0]?.uuid,
    });
  });
});

describe('a known answer is never turned into an unknown one', () => {
  it.each([
    ['with skip_duplicate', true],
    ['without skip_duplicate', false],
  ])(
    '%s: the settle after a 201 fails (every SDK try throttled): the copy carries the 201 and its uuid',
    async (_, skip) => {
      h = await startHarness();
      await h.enqueue(jobBody({}, { skip_duplicate: skip }));
      const instance = faultyInstance({
        operation: 'PutItem',
        match: settleWrite,
        kind: 'throttled',
        calls: 1,
      });

      const first = await h.invokeWith(instance.handler);
      expect(instance.spoiled()).toBeGreaterThan(0);
      // Acknowledged: a fresh copy carries the attempt and its answer; no receive of the original is spent.
      expect(first.failed).toEqual([]);
      await h.runUntilQuiet(6, () => h.invokeWith(h.createInstance()));

      expect(h.sends().map((r) => r.status)).toEqual([201]);
      expect(h.sim.messages).toHaveLength(1);
      expect(await h.drainDeadLetters()).toEqual([]);
      expect(await h.ledger().get(JOB_ID)).toMatchObject({
        status: 'delivered',
        uuid: h.sim.messages[0]?.uuid,
        sends: 1,
        unknown_outcome: false,
      });
    },
  );

  it('a 503 whose settle fails is carried too: counted once, then the retry delivers', async () => {
    h = await startHarness();
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 503 } });
    await h.enqueue(jobBody());
    const instance = faultyInstance({
      operation: 'PutItem',
      match: settleWrite,
      kind: 'throttled',
      calls: 1,
    });

    await h.invokeWith(instance.handler);
    await h.runUntilQuiet(8, () => h.invokeWith(h.createInstance()));

    expect(h.sends().map((r) => r.status)).toEqual([503, 201]);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', sends: 2, retryable: 1 });
  });
});
