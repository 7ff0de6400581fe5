import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { createThen } from '#local/ecourtdate-simulator/index.ts';
import type { FetchLike } from '#shared/ecourtdate/http.ts';
import { API_CLIENT_ITEM_ID } from '#shared/ecourtdate/shared-budget.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';
import { jobBody } from '#test/helpers/factories.ts';
import {
  attr,
  type Harness,
  type HarnessOptions,
  LEDGER_TABLE,
  startHarness,
} from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
let h: Harness;

afterEach(async () => {
  await h?.close();
});

async function start(options: HarnessOptions = {}): Promise<Harness> {
  h = await startHarness(options);
  return h;
}

async function deadLetterReasons(): Promise<(string | undefined)[]> {
  return (await h.drainDeadLetters()).map((m) => attr(m, DLQ_ATTRIBUTE.reason));
}

/**
 * A fetch whose instance dies right after eCourtDate answered the first send: the answer never reaches the
 * sender, so nothing after the send (ledger, acknowledgement) happens, as when Lambda kills the instance.
 */
function dyingAfterFirstSend(): FetchLike {
  let died = false;
  return async (input, init) => {
    const response = await fetch(input, init);
    if (!died && String(input).includes(ONEOFFS)) {
      died = true;
      return new Promise<Response>(() => undefined);
    }
    return response;
  };
}

describe('job ledger: never lose a job, never send one twice', () => {
  it('a delivered job that comes again (an upstream resend) is acknowledged without a send', async () => {
    await start();
    await h.enqueue(jobBody());
    await h.invoke();
    await h.enqueue(jobBody());

    const again = await h.invoke();

    expect(again.deleted).toHaveLength(1);
    expect(h.sends()).toHaveLength(1);
    expect(h.sim.messages).toHaveLength(1);
    expect(await h.drainDeadLetters()).toEqual([]);
  });

  it('the same id with a different body is dead-lettered id_conflict, not sent, after the first settled', async () => {
    await start();
    await h.enqueue(jobBody());
    await h.invoke();
    await h.enqueue(jobBody({}, { content: 'A different text under the same id.' }));

    await h.invoke();

    expect(h.sends()).toHaveLength(1);
    expect(await deadLetterReasons()).toEqual(['id_conflict']);
  });

  it('the same id with a different body is dead-lettered id_conflict while the first is still retrying', async () => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 503 } });
    await h.enqueue(jobBody());
    await h.invoke();
    await h.enqueue(jobBody({}, { content: 'A different text under the same id.' }));

    await h.invoke();

    expect(h.sends()).toHaveLength(1);
    expect(await deadLetterReasons()).toEqual(['id_conflict']);
    expect((await h.ledger().get('cms-48213-reminder-1'))?.status).toBe('retrying');
  });

  it('a job delivered twice by SQS in one batch is sent once: the copy is judged after the first settles, without a send or a wait', async () => {
    await start();
    await h.enqueue(jobBody());
    await h.enqueue(jobBody());

    const first = await h.invoke();

    expect(first.received).toBe(2);
    expect(first.failed).toHaveLength(0);
    expect(first.deleted).toHaveLength(2);
    expect(h.sends()).toHaveLength(1);
    expect(h.sim.messages).toHaveLength(1);
  });

  it('429 waits do not spend the 5xx budget: four 429s, then 503s, still get all five 5xx attempts', async () => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, times: 4, action: { kind: 'respond', status: 429 } });
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 503 } });
    await h.enqueue(jobBody());

    // Each poll gets a fresh instance: a 429 holds back only the instance that saw it.
    for (let i = 0; i < 9; i++) {
      await h.invokeWith(h.createInstance());
      await h.fastForward();
    }

    expect(h.sends().map((r) => r.status)).toEqual([429, 429, 429, 429, 503, 503, 503, 503, 503]);
    // 503s may have created the message: the budget is spent, the reason stays an unknown outcome.
    expect(await deadLetterReasons()).toEqual(['unknown_outcome']);
    expect(await h.ledger().get('cms-48213-reminder-1')).toMatchObject({
      rate_limited: 4,
      retryable: 5,
      sends: 9,
    });
  });

  it('a 409 after attempts with known outcomes is a duplicate, not a delivery', async () => {
    await start();
    await h.enqueue(jobBody({ id: 'someone-else' }));
    await h.invoke();
    // A 408 says nothing was processed: a known outcome, unlike any 5xx.
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 408 } });
    await h.enqueue(jobBody({ id: 'ours' }));

    await h.invoke();
    await h.fastForward();
    await h.invoke();

    expect(h.sends().map((r) => r.status)).toEqual([201, 408, 409]);
    expect(await h.ledger().get('ours')).toMatchObject({ status: 'duplicate', unknown_outcome: false });
  });

  it('a job redriven from the dead-letter queue gets a fresh budget and is sent again', async () => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, times: 5, action: { kind: 'respond', status: 503 } });
    await h.enqueue(jobBody());
    for (let i = 0; i < 5; i++) {
      await h.invoke();
      await h.fastForward();
    }
    const [dead] = await h.drainDeadLetters();
    // Five 503s may each have created the message: never relabelled as a plain failure.
    expect(attr(dead ?? {}, DLQ_ATTRIBUTE.reason)).toBe('unknown_outcome');

    // The operator's redrive: the same body and dead-letter attributes, back on the send queue. The five 503s in a
    // row opened the circuit breaker: the job is held until its probe finds eCourtDate working again.
    await h.redrive(dead ?? {});
    await h.runUntilQuiet(5);

    expect(h.sim.messages).toHaveLength(1);
    const entry = await h.ledger().get('cms-48213-reminder-1');
    expect(entry).toMatchObject({ status: 'delivered', generation: 2, sends: 1, retryable: 0 });
    expect(entry?.history.map((e) => e.outcome)).toContain('redriven');
  });

  it('an instance killed after the send: the next attempt treats the outcome as unknown, and the 409 proves delivery', async () => {
    await start();
    await h.enqueue(jobBody());

    const dead = await h.invokeWith(h.createInstance({ fetch: dyingAfterFirstSend() }), {
      functionTimeoutMs: 300,
    });
    expect(dead.error).toBeDefined();
    expect(h.sim.messages).toHaveLength(1);

    await h.fastForward();
    const next = await h.invokeWith(h.createInstance());

    expect(next.deleted).toHaveLength(1);
    expect(h.sends().map((r) => r.status)).toEqual([201, 409]);
    expect(h.sim.messages).toHaveLength(1);
    expect(await h.ledger().get('cms-48213-reminder-1')).toMatchObject({
      status: 'delivered',
      unknown_outcome: true,
    });
  });

  it('an instance killed after sending a skip_duplicate job: dead-lettered unknown_outcome, never sent twice', async () => {
    await start();
    await h.enqueue(jobBody({}, { skip_duplicate: true }));

    await h.invokeWith(h.createInstance({ fetch: dyingAfterFirstSend() }), { functionTimeoutMs: 300 });
    await h.fastForward();
    await h.invokeWith(h.createInstance());

    expect(h.sends()).toHaveLength(1);
    expect(await deadLetterReasons()).toEqual(['unknown_outcome']);
  });

  it('created-then-504 on a skip_duplicate job is recorded as an unknown outcome in the ledger', async () => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, action: createThen({ kind: 'respond', status: 504 }) });
    await h.enqueue(jobBody({}, { skip_duplicate: true }));

    await h.invoke();

    expect(await h.ledger().get('cms-48213-reminder-1')).toMatchObject({
      status: 'dead_lettered',
      dead_letter_reason: 'unknown_outcome',
      unknown_outcome: true,
      last_status: '504',
    });
  });

  it('never resends after an unknown outcome once the duplicate window has passed: dead-letters unknown_outcome', async () => {
    // A 60 s window at time scale 1,000 is 60 ms: the resend comes after it closed.
    await start({ env: { DUPLICATE_WINDOW_SECONDS: '60', TIME_SCALE: '1000' } });
    h.sim.script({
      match: { path: ONEOFFS },
      times: 1,
      action: createThen({ kind: 'respond', status: 504 }),
    });
    await h.enqueue(jobBody());
    await h.invoke();
    await new Promise((resolve) => setTimeout(resolve, 100));

    await h.fastForward();
    await h.invoke();

    expect(h.sends()).toHaveLength(1);
    expect(await deadLetterReasons()).toEqual(['unknown_outcome']);
  });

  describe('after an unknown outcome was dead-lettered', () => {
    it('an upstream resend of the same job is not sent again: it could reach the person twice', async () => {
      await start();
      h.sim.script({
        match: { path: ONEOFFS },
        times: 1,
        action: createThen({ kind: 'respond', status: 504 }),
      });
      await h.enqueue(jobBody({}, { skip_duplicate: true }));
      await h.invoke();
      expect(await deadLetterReasons()).toEqual(['unknown_outcome']);

      await h.enqueue(jobBody({}, { skip_duplicate: true }));
      await h.invoke();

      expect(h.sends()).toHaveLength(1);
      expect(h.sim.messages).toHaveLength(1);
      expect(await deadLetterReasons()).toEqual(['unknown_outcome']);
      // The copy is dead-lettered again without touching the ledger: the job stays in its first generation.
      expect(await h.ledger().get('cms-48213-reminder-1')).toMatchObject({
        generation: 1,
        status: 'dead_lettered',
      });
    });

    it("an operator's redrive sends it again: a person checked Console > Logs and decided", async () => {
      await start();
      // 504 without creating: the message was in fact not sent.
      h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 504 } });
      await h.enqueue(jobBody({}, { skip_duplicate: true }));
      await h.invoke();
      const [dead] = await h.drainDeadLetters();

      await h.redrive(dead ?? {});
      await h.invoke();

      expect(h.sends().map((r) => r.status)).toEqual([504, 201]);
      expect(h.sim.messages).toHaveLength(1);
      expect(await h.ledger().get('cms-48213-reminder-1')).toMatchObject({
        status: 'delivered',
        generation: 2,
      });
    });
  });
});

describe('what a job costs in DynamoDB', () => {
  it("a first-attempt delivered job: two conditional writes of its entry, and no read of it; the api-client item: the circuit breaker's first look of the container and the budget's leases", async () => {
    await start();
    const before = h.dynamodb.requestCounts();
    await h.enqueue(jobBody());

    await h.invoke();

    const after = h.dynamodb.requestCounts();
    const delta = (op: string) => (after[op] ?? 0) - (before[op] ?? 0);
    expect(h.sim.messages).toHaveLength(1);
    // Every UpdateItem is a lease of the shared rate budget (docs/pacing.md), each one a new budget_version, but
    // the first: its atomic add found no slot counter yet, and the lease set it. None touched the job's entry.
    // The one GetItem is the circuit breaker's first look at the api-client item from a new container
    // (docs/pacing.md, "The circuit breaker"); later lease answers carry its state.
    const apiClient = await h.dynamodb.client.send(
      new GetItemCommand({ TableName: LEDGER_TABLE, Key: { id: { S: API_CLIENT_ITEM_ID } } }),
    );
    expect({ PutItem: delta('PutItem'), GetItem: delta('GetItem'), UpdateItem: delta('UpdateItem') }).toEqual(
      {
        PutItem: 2,
        GetItem: 1,
        UpdateItem: Number(apiClient.Item?.budget_version?.N) + 1,
      },
    );
  });

  it('a retry: three requests of its entry (the claim that finds the entry, the claim by version, the settle), no read of it', async () => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 503 } });
    await h.enqueue(jobBody());
    await h.invoke();
    await h.fastForward();
    const before = h.dynamodb.requestCounts();

    await h.invoke();

    const after = h.dynamodb.requestCounts();
    expect(h.sends().map((r) => r.status)).toEqual([503, 201]);
    expect((after.PutItem ?? 0) - (before.PutItem ?? 0)).toBe(3);
    // At most the circuit breaker's look at the api-client item, when no lease has shown it for a minute.
    expect((after.GetItem ?? 0) - (before.GetItem ?? 0)).toBeLessThanOrEqual(1);
  });

  it('with webhooks on, a delivered job also indexes its message uuid: one more write, nothing more', async () => {
    await start({ env: { WEBHOOKS_ENABLED: 'true' } });
    await h.enqueue(jobBody());

    await h.invoke();

    expect(h.dynamodb.requestCounts().PutItem).toBe(3);
    const uuid = (await h.ledger().get('cms-48213-reminder-1'))?.uuid;
    expect(uuid).toBeDefined();
    const out = await h.dynamodb.client.send(
      new GetItemCommand({ TableName: LEDGER_TABLE, Key: { id: { S: `uuid#${uuid}` } } }),
    );
    expect(out.Item?.job_id?.S).toBe('cms-48213-reminder-1');
  });

  it('with webhooks off, no uuid index is written', async () => {
    await start();
    await h.enqueue(jobBody());

    await h.invoke();

    const uuid = (await h.ledger().get('cms-48213-reminder-1'))?.uuid;
    const out = await h.dynamodb.client.send(
      new GetItemCommand({ TableName: LEDGER_TABLE, Key: { id: { S: `uuid#${uuid}` } } }),
    );
    expect(out.Item).toBeUndefined();
  });
});

describe('a copy of a dead-lettered job', () => {
  it('arriving right after a retry-once 500 dead letter is dead-lettered again, never sent a third time', async () => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 500 } });
    await h.enqueue(jobBody());
    await h.runUntilQuiet(4);
    expect(h.sends().map((r) => r.status)).toEqual([500, 500]);

    // SQS's second copy, or an upstream resend, of the same job.
    await h.enqueue(jobBody());
    await h.runUntilQuiet(4);

    expect(h.sends()).toHaveLength(2);
    expect(await deadLetterReasons()).toEqual(['unknown_outcome', 'unknown_outcome']);
  });
});
