/**
 * One job, one message, whatever happens around it (docs/contract.md; docs/ledger.md): instances killed
 * mid-record, copies of a job on two instances at once, clock skew between instances, 409s after a mix of known
 * and unknown outcomes, redrives, resends with another body, expiry. Each drives the real sender through the harness (strict SQS
 * layer, simulator, Secrets Manager stand-in, DynamoDB emulator).
 */
import type { Message } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { createThen } from '#local/ecourtdate-simulator/index.ts';
import { createAwsClients } from '#shared/clients/aws.ts';
import { loadSenderConfig } from '#shared/config.ts';
import type { FetchLike } from '#shared/ecourtdate/http.ts';
import { createSenderHandler, type SenderHandler } from '#shared/sender/handler.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { attr, type Harness, type HarnessOptions, startHarness } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
const JOB_ID = 'cms-48213-reminder-1';
let h: Harness;

afterEach(async () => {
  if (h) expect(h.emulator.refusals()).toEqual([]);
  await h?.close();
});

async function start(options: HarnessOptions = {}): Promise<Harness> {
  h = await startHarness(options);
  return h;
}

function deadLetters(messages: Message[]) {
  return messages.map((m) => ({
    reason: attr(m, DLQ_ATTRIBUTE.reason),
    lastStatus: attr(m, DLQ_ATTRIBUTE.lastStatus),
    attempts: attr(m, DLQ_ATTRIBUTE.attempts),
    jobId: attr(m, DLQ_ATTRIBUTE.jobId),
  }));
}

/** Polls until the send queue is empty, each poll by a fresh instance (a new Lambda container). */
function runUntilQuiet(max: number, invoke = () => h.invokeWith(h.createInstance())): Promise<number> {
  return h.runUntilQuiet(max, invoke);
}

const forever = <T>(): Promise<T> => new Promise<T>(() => undefined);

/**
 * An instance that dies on its first request to the messages endpoint, before it leaves (`before-send`) or
 * once eCourtDate has answered it (`after-send`): from then on none of its SQS or DynamoDB calls answer, so
 * nothing is settled, acknowledged or hidden, as after a crash or an out-of-memory.
 */
function killedInstance(mode: 'before-send' | 'after-send'): SenderHandler {
  const config = loadSenderConfig(h.env);
  const clients = createAwsClients(config);
  let dead = false;
  const freeze = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
    if (dead) return forever();
    const out = await next(args);
    return dead ? forever() : out;
  };
  const options = { step: 'initialize' as const, name: 'instanceKiller' };
  clients.sqs.middlewareStack.add(freeze as never, options);
  clients.dynamodb.middlewareStack.add(freeze as never, options);
  const fetchImpl: FetchLike = async (input, init) => {
    if (!String(input).includes(ONEOFFS)) return fetch(input, init);
    if (mode === 'after-send') await fetch(input, init);
    dead = true;
    return forever();
  };
  return createSenderHandler({ config, ...clients, fetch: fetchImpl });
}

/** An instance whose clock runs `skewMs` ahead of (or, negative, behind) the others'. */
function skewedInstance(skewMs: number): SenderHandler {
  const config = loadSenderConfig(h.env);
  return createSenderHandler({ config, ...createAwsClients(config), now: () => Date.now() + skewMs });
}

describe('an instance killed mid-record', () => {
  it('killed after eCourtDate created the message: the record returns after the visibility timeout, the resend answers 409, delivered once', async () => {
    await start();
    await h.enqueue(jobBody());

    const killed = await h.invokeWith(killedInstance('after-send'), { functionTimeoutMs: 1_500 });
    expect(killed.error).toBeDefined();
    expect(h.sim.messages).toHaveLength(1);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ attempt_open: true, sends: 0 });

    await h.fastForward();
    await runUntilQuiet(6);

    expect(h.sends().map((r) => r.status)).toEqual([201, 409]);
    expect(h.sim.messages).toHaveLength(1);
    expect(await h.drainDeadLetters()).toEqual([]);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', unknown_outcome: true });
  });

  it('killed after sending a skip_duplicate job: dead-lettered unknown_outcome with last_status lost, never resent', async () => {
    await start();
    await h.enqueue(jobBody({}, { skip_duplicate: true }));

    await h.invokeWith(killedInstance('after-send'), { functionTimeoutMs: 1_500 });
    await h.fastForward();
    await runUntilQuiet(6);

    expect(h.sends()).toHaveLength(1);
    expect(h.sim.messages).toHaveLength(1);
    const [letter] = deadLetters(await h.drainDeadLetters());
    expect(letter).toMatchObject({ reason: 'unknown_outcome', lastStatus: 'lost', jobId: JOB_ID });
  });

  it('killed before the request left, without skip_duplicate: the job is resent and delivered once', async () => {
    await start();
    await h.enqueue(jobBody());

    await h.invokeWith(killedInstance('before-send'), { functionTimeoutMs: 1_500 });
    expect(h.sends()).toHaveLength(0);
    await h.fastForward();
    await runUntilQuiet(6);

    expect(h.sends().map((r) => r.status)).toEqual([201]);
    expect(h.sim.messages).toHaveLength(1);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered' });
  });

  it('a copy of the job seen by another instance while the killed one still holds the lease waits, then resends inside the window', async () => {
    await start();
    await h.enqueue(jobBody());
    // The killed invocation is still within its function timeout (its lease) while the copy is handled.
    const killed = h.invokeWith(killedInstance('after-send'), { functionTimeoutMs: 4_000 });
    while (h.sends().length === 0) await new Promise((resolve) => setTimeout(resolve, 10));

    // An upstream resend of the same job arrives at once, before the lease of the killed attempt ends.
    const copy = await h.enqueue(jobBody());
    const early = await h.invokeWith(h.createInstance());
    expect(early.failed).toEqual([copy]);
    expect(h.sends()).toHaveLength(1);
    await killed;

    await runUntilQuiet(8);
    expect(h.sim.messages).toHaveLength(1);
    expect(await h.drainDeadLetters()).toEqual([]);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered' });
  });
});

describe('copies of one job on two instances at once', () => {
  it('two copies received at the same moment by two instances: one request, one message, both acknowledged', async () => {
    await start();
    await h.enqueue(jobBody());
    await h.enqueue(jobBody());

    const [a, b] = await Promise.all([
      h.invokeWith(h.createInstance(), { batchSize: 1 }),
      h.invokeWith(h.createInstance(), { batchSize: 1 }),
    ]);
    expect(a.received + b.received).toBe(2);
    await runUntilQuiet(6);

    expect(h.sends().map((r) => r.status)).toEqual([201]);
    expect(h.sim.messages).toHaveLength(1);
    expect(await h.drainDeadLetters()).toEqual([]);
  });

  it('a copy that arrives while a slow 500 is in flight elsewhere is not sent until the 500 has settled; the job ends with one message', async () => {
    await start();
    h.sim.script({
      match: { path: ONEOFFS },
      times: 1,
      delayMs: 800,
      action: { kind: 'respond', status: 500 },
    });
    await h.enqueue(jobBody());
    const slow = h.invokeWith(h.createInstance(), { batchSize: 1 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await h.enqueue(jobBody());
    await h.invokeWith(h.createInstance(), { batchSize: 1 });
    await slow;
    expect(h.sends()).toHaveLength(1);

    await runUntilQuiet(8);
    expect(h.sends().map((r) => r.status)).toEqual([500, 201]);
    expect(h.sim.messages).toHaveLength(1);
    expect(await h.drainDeadLetters()).toEqual([]);
  });
});

describe('clock skew of a few seconds between instances', () => {
  it.each([4_000, -4_000])(
    'after a 503, an instance whose clock is off by %i ms neither sends early nor twice',
    async (skew) => {
      await start();
      h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 503 } });
      await h.enqueue(jobBody());
      await h.invokeWith(h.createInstance());
      // A copy on the skewed instance right away: not due, whatever its clock says.
      await h.enqueue(jobBody());
      await h.invokeWith(skewedInstance(skew));
      expect(h.sends()).toHaveLength(1);

      await runUntilQuiet(8, () => h.invokeWith(skewedInstance(skew)));
      expect(h.sends().map((r) => r.status)).toEqual([503, 201]);
      expect(h.sim.messages).toHaveLength(1);
      expect(await h.drainDeadLetters()).toEqual([]);
    },
  );
});

describe('a 409 after a mix of known and unknown outcomes', () => {
  it('a 408 (known) then a created-then-503 (unknown) then a 409: delivered', async () => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 408 } });
    h.sim.script({
      match: { path: ONEOFFS },
      times: 1,
      action: createThen({ kind: 'respond', status: 503 }),
    });
    await h.enqueue(jobBody());
    await runUntilQuiet(8);

    expect(h.sends().map((r) => r.status)).toEqual([408, 503, 409]);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered' });
  });

  it("a 408 (known) then a 409 caused by someone else's message: a duplicate, not a delivery", async () => {
    await start();
    await h.enqueue(jobBody({ id: 'someone-else' }));
    await h.invoke();
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 408 } });
    await h.enqueue(jobBody());
    await runUntilQuiet(8);

    expect(h.sends().map((r) => r.status)).toEqual([201, 408, 409]);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'duplicate', unknown_outcome: false });
  });
});

describe('redrives and upstream resends', () => {
  it('a job dead-lettered unknown_outcome after a created-then-503 and four 503s is redriven inside the window: the 409 proves the delivery, still one message', async () => {
    await start();
    h.sim.script({
      match: { path: ONEOFFS },
      times: 1,
      action: createThen({ kind: 'respond', status: 503 }),
    });
    h.sim.script({ match: { path: ONEOFFS }, times: 4, action: { kind: 'respond', status: 503 } });
    await h.enqueue(jobBody());
    await runUntilQuiet(10);
    const [letter] = await h.drainDeadLetters();
    expect(letter && attr(letter, DLQ_ATTRIBUTE.reason)).toBe('unknown_outcome');

    if (letter) await h.redrive(letter);
    await runUntilQuiet(4);

    expect(h.sends().map((r) => r.status)).toEqual([503, 503, 503, 503, 503, 409]);
    expect(h.sim.messages).toHaveLength(1);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', generation: 2 });
  });

  it('an upstream resend with another body after delivery is dead-lettered id_conflict, never sent', async () => {
    await start();
    await h.enqueue(jobBody());
    await h.invoke();
    await h.enqueue(jobBody({}, { content: 'Reminder: your hearing moved to Room 5C.' }));
    await runUntilQuiet(4);

    expect(h.sends()).toHaveLength(1);
    expect(deadLetters(await h.drainDeadLetters())).toEqual([
      // This body was never sent: its dead letter does not borrow the delivered job's status or attempts.
      { reason: 'id_conflict', lastStatus: 'none', attempts: '0', jobId: JOB_ID },
    ]);
  });
});

describe('expiry and hostile input', () => {
  it('a job whose expires_at has passed is dead-lettered expired with nothing sent (attempts 0)', async () => {
    await start();
    await h.enqueue(jobBody({ expires_at: new Date(Date.now() - 1_000).toISOString() }));
    await runUntilQuiet(3);

    expect(h.sends()).toHaveLength(0);
    expect(deadLetters(await h.drainDeadLetters())).toEqual([
      { reason: 'expired', lastStatus: 'none', attempts: '0', jobId: JOB_ID },
    ]);
  });

  it('a job behind a byte order mark that breaks a rule is dead-lettered invalid_job and still names its job_id', async () => {
    await start();
    await h.enqueue(`\uFEFF${JSON.stringify(jobBody({}, { content: '' }))}`);
    await runUntilQuiet(2);

    expect(deadLetters(await h.drainDeadLetters())).toEqual([
      { reason: 'invalid_job', lastStatus: 'none', attempts: '0', jobId: JOB_ID },
    ]);
  });

  it('a 400 body full of control characters and an escaped echo of the recipient is dead-lettered bad_request with a clean excerpt', async () => {
    await start();
    h.sim.script({
      match: { path: ONEOFFS },
      action: {
        kind: 'respond',
        status: 400,
        contentType: 'application/json',
        body: '{"message":"bad\u0000\u001b[31m\u0007\uffff","to":"555\\u2010123\\u20104567"}',
      },
    });
    await h.enqueue(jobBody());
    await runUntilQuiet(3);

    const [letter] = await h.drainDeadLetters();
    expect(letter && attr(letter, DLQ_ATTRIBUTE.reason)).toBe('bad_request');
    const excerpt = (letter && attr(letter, DLQ_ATTRIBUTE.responseExcerpt)) ?? '';
    expect(excerpt.replace(/\D/g, '')).not.toContain('5551234567');
    // Only what SQS accepts in an attribute: no C0 control other than tab and line breaks, no U+FFFF.
    const refused = [...excerpt].filter((c) => {
      const code = c.codePointAt(0) ?? 0;
      return (code < 0x20 && code !== 0x9 && code !== 0xa && code !== 0xd) || code === 0xffff;
    });
    expect(refused).toEqual([]);
  });
});

describe('what the ledger counts, and when a job’s maximum age starts', () => {
  it('the maximum age counts from the first receipt, also when the first receipts were deferred without a claim', async () => {
    await start({ env: { MAX_AGE_SECONDS: '600' } });
    const instance = h.createInstance();
    h.sim.script({
      match: { path: ONEOFFS, contentIncludes: 'blocker' },
      times: 1,
      action: { kind: 'respond', status: 429, headers: { 'Retry-After': '300' } },
    });
    h.sim.script({
      match: { path: ONEOFFS, contentIncludes: 'victim' },
      action: { kind: 'respond', status: 429 },
    });
    await h.enqueue(jobBody({ id: 'blocker' }, { content: 'blocker reminder' }));
    await h.invokeWith(instance);
    const firstReceipt = Date.now();
    await h.enqueue(jobBody({ id: 'victim' }, { content: 'victim reminder' }));
    await h.invokeWith(instance);
    expect(await h.ledger().get('victim')).toBeUndefined();
    await h.fastForward();
    await runUntilQuiet(20);

    const victimSends = h.sends().filter((r) => JSON.stringify(r.body).includes('victim'));
    expect(victimSends.length).toBeGreaterThan(0);
    for (const send of victimSends) expect(send.at - firstReceipt).toBeLessThan(600_000);
    expect(deadLetters(await h.drainDeadLetters())).toEqual([
      { reason: 'expired', lastStatus: '429', attempts: String(victimSends.length), jobId: 'victim' },
    ]);
  });

  it('attempts counts a killed attempt that may have reached eCourtDate', async () => {
    await start();
    await h.enqueue(jobBody({}, { skip_duplicate: true }));
    await h.invokeWith(killedInstance('after-send'), { functionTimeoutMs: 1_500 });
    await h.fastForward();
    await runUntilQuiet(6);

    expect(h.sends()).toHaveLength(1);
    expect(deadLetters(await h.drainDeadLetters())).toEqual([
      { reason: 'unknown_outcome', lastStatus: 'lost', attempts: '1', jobId: JOB_ID },
    ]);
  });

  it('after a killed attempt and a 409 the ledger counts both requests', async () => {
    await start();
    await h.enqueue(jobBody());
    await h.invokeWith(killedInstance('after-send'), { functionTimeoutMs: 1_500 });
    await h.fastForward();
    await runUntilQuiet(6);

    expect(h.sends()).toHaveLength(2);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', sends: 2 });
  });
});
