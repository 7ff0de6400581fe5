/**
 * The ledger's conditional writes under DynamoDB's failures (docs/ledger.md): a write that
 * DynamoDB applied but whose answer was lost is still the writer's, and an answer eCourtDate gave is carried until
 * it is written, so a 201 stays a 201. The faults work inside the SDK's retry loop, as real ones do.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryLedger } from '#shared/ledger/delivery.ts';
import { JobLedger } from '#shared/ledger/ledger.ts';
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

describe('the event token of a settled job (JobLedger.claimEvent)', () => {
  async function settledEntry() {
    h = await startHarness();
    await h.enqueue(jobBody());
    await h.invoke();
    const entry = await h.ledger().get(JOB_ID);
    expect(entry).toMatchObject({ status: 'delivered' });
    expect(entry?.event_token).toEqual(expect.any(String));
    return entry as NonNullable<typeof entry>;
  }

  it('the holder takes it over once; its twin, a stale holder or a made-up token finds it taken', async () => {
    const entry = await settledEntry();
    const held = entry.event_token as string;
    const ledger = h.ledger();

    expect(await ledger.claimEvent({ entry, held, next: 'next-1' })).toBe('claimed');
    expect((await ledger.get(JOB_ID))?.event_token).toBe('next-1');
    // The twin read the entry before the take-over: its Put's condition fails, and the token moved on.
    expect(await ledger.claimEvent({ entry, held, next: 'next-2' })).toBe('taken');
    const now = (await ledger.get(JOB_ID)) as typeof entry;
    expect(await ledger.claimEvent({ entry: now, held, next: 'next-3' })).toBe('taken');
    expect(await ledger.claimEvent({ entry: now, held: 'made-up', next: 'next-4' })).toBe('taken');
    expect((await ledger.get(JOB_ID))?.event_token).toBe('next-1');
  });

  it('an entry that changed only in version is busy, not taken: the holder tries again', async () => {
    const entry = await settledEntry();
    const held = entry.event_token as string;
    const stale = { ...entry, version: entry.version - 1 };
    expect(await h.ledger().claimEvent({ entry: stale, held, next: 'next-1' })).toBe('busy');
    expect(await h.ledger().claimEvent({ entry, held, next: 'next-1' })).toBe('claimed');
  });

  it('a take-over DynamoDB applied but whose answer was lost is still the holder’s', async () => {
    const entry = await settledEntry();
    const held = entry.event_token as string;
    const client = new DynamoDBClient({
      endpoint: h.dynamodb.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const spoiled = injectDynamoFaults(client, { operation: 'PutItem', kind: 'lost_answer', calls: 1 });
    const ledger = new JobLedger({ client, tableName: String(h.env.LEDGER_TABLE_NAME), ttlSeconds: 86_400 });

    expect(await ledger.claimEvent({ entry, held, next: 'next-1' })).toBe('claimed');
    expect(spoiled()).toBe(1);
    client.destroy();
  });

  it('a new claim of the job (a redrive) clears the token, so no copy of the old settlement can claim the new one', async () => {
    h = await startHarness();
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 403 } });
    await h.enqueue(jobBody());
    await h.invoke();
    const dead = await h.ledger().get(JOB_ID);
    expect(dead?.event_token).toEqual(expect.any(String));
    const [letter] = await h.drainDeadLetters();
    await h.redrive(letter ?? {});
    await h.runUntilQuiet(4);
    const redriven = await h.ledger().get(JOB_ID);
    expect(redriven).toMatchObject({ status: 'delivered', generation: 2 });
    expect(redriven?.event_token).not.toBe(dead?.event_token);
    expect(
      await h.ledger().claimEvent({ entry: redriven as never, held: dead?.event_token as string, next: 'x' }),
    ).toBe('taken');
  });
});

describe('a sender write never overwrites a status the webhook receiver recorded meanwhile', () => {
  it('the event take-over and a settle, each made from an entry read before a status arrived, keep the status', async () => {
    h = await startHarness();
    await h.enqueue(jobBody());
    await h.invoke();
    const read = (await h.ledger().get(JOB_ID)) as NonNullable<Awaited<ReturnType<JobLedger['get']>>>;
    const delivery = new DeliveryLedger({
      client: h.dynamodb.client,
      tableName: String(h.env.LEDGER_TABLE_NAME),
      ttlSeconds: 86_400,
    });
    const now = Date.now();
    await delivery.recordDeliveryStatus(JOB_ID, { status: 'delivered', at: now, received_at: now });

    expect(await h.ledger().claimEvent({ entry: read, held: read.event_token as string, next: 'n' })).toBe(
      'claimed',
    );
    const after = await h.ledger().get(JOB_ID);
    expect(after).toMatchObject({ event_token: 'n', delivery_status: 'delivered', delivery_version: 1 });

    // A settle (here a stale redelivery of the same outcome) made from the read before the status.
    const stale = { ...(after as typeof read), delivery_status: undefined, delivery_version: undefined };
    await delivery.recordDeliveryStatus(JOB_ID, {
      status: 'replied',
      at: now + 1,
      received_at: now + 1,
    } as never);
    const written = await h.ledger().settle({
      entry: { ...stale, history: stale.history } as typeof read,
      now: now + 2,
      outcome: { type: 'delivered', uuid: String(read.uuid) },
    });
    expect(written.kind).toBe('written');
    const final = (await delivery.getDelivery(JOB_ID)) as NonNullable<
      Awaited<ReturnType<DeliveryLedger['getDelivery']>>
    >;
    expect(final.delivery_history?.map((event) => event.status)).toEqual(['delivered', 'replied']);
  });
});
