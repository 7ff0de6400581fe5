/**
 * The relay's promises under the faults production integrations meet, within real SQS limits (docs/sqs-limits.md):
 * each test drives the real sender handler against the strict SQS layer, the simulator, the Secrets
 * Manager stand-in and the DynamoDB emulator, and checks what eCourtDate received, what the ledger holds and
 * what reached the dead-letter queue.
 */
import type { Message } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { createThen } from '#local/ecourtdate-simulator/index.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { attr, type Harness, type HarnessOptions, startHarness } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
const JOB_ID = 'cms-48213-reminder-1';
let h: Harness;

afterEach(async () => {
  // The strict SQS layer refused nothing the relay asked of it, in every test.
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
    jobId: attr(m, DLQ_ATTRIBUTE.jobId),
  }));
}

function failedIds(result: Awaited<ReturnType<Harness['invoke']>>): string[] {
  return (result.response?.batchItemFailures ?? []).map((f) => f.itemIdentifier);
}

describe('any 5xx on the messages endpoint may have created the message', () => {
  it.each([500, 502, 503])(
    'created-then-%i with skip_duplicate: dead-lettered unknown_outcome, never resent',
    async (status) => {
      await start();
      h.sim.script({ match: { path: ONEOFFS }, action: createThen({ kind: 'respond', status }) });
      await h.enqueue(jobBody({}, { skip_duplicate: true }));

      await h.runUntilQuiet(5);

      expect(h.sends()).toHaveLength(1);
      expect(h.sim.messages).toHaveLength(1);
      expect(deadLetters(await h.drainDeadLetters())).toEqual([
        { reason: 'unknown_outcome', lastStatus: String(status), jobId: JOB_ID },
      ]);
    },
  );

  it.each([500, 502, 503])(
    'created-then-%i without skip_duplicate: the resend inside the window answers 409, which is a delivery',
    async (status) => {
      await start();
      h.sim.script({ match: { path: ONEOFFS }, times: 1, action: createThen({ kind: 'respond', status }) });
      await h.enqueue(jobBody());

      await h.runUntilQuiet(5);

      expect(h.sends().map((r) => r.status)).toEqual([status, 409]);
      expect(h.sim.messages).toHaveLength(1);
      expect(await h.drainDeadLetters()).toEqual([]);
      expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', unknown_outcome: true });
    },
  );

  it('two 500s dead-letter after the one retry, as unknown_outcome: either may have created the message', async () => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 500 } });
    await h.enqueue(jobBody());

    await h.runUntilQuiet(5);

    expect(h.sends().map((r) => r.status)).toEqual([500, 500]);
    expect(deadLetters(await h.drainDeadLetters())).toEqual([
      { reason: 'unknown_outcome', lastStatus: '500', jobId: JOB_ID },
    ]);
  });
});

describe('a failure before the request leaves is not a possible send', () => {
  it('a Secrets Manager throttle (every SDK try of one invocation) backs off; the job is then sent once', async () => {
    await start();
    h.secrets.failNext(3, 'ThrottlingException');
    await h.enqueue(jobBody({}, { skip_duplicate: true }));

    const first = await h.invoke();
    expect(failedIds(first)).toHaveLength(1);
    expect(h.sends()).toHaveLength(0);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({
      status: 'retrying',
      sends: 0,
      retryable: 0,
      not_sent: 1,
      unknown_outcome: false,
      attempt_open: false,
    });

    await h.runUntilQuiet(5);
    expect(h.sends().map((r) => r.status)).toEqual([201]);
    expect(await h.drainDeadLetters()).toEqual([]);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', unknown_outcome: false });
  });

  it('six secret outages in a row never spend the 5xx budget: the job is still retried, not dead-lettered', async () => {
    await start();
    await h.enqueue(jobBody({}, { skip_duplicate: true }));
    for (let i = 0; i < 6; i++) {
      h.secrets.failNext(3, 'InternalServiceError');
      // A fresh instance each time: the secret is cached per container.
      await h.invokeWith(h.createInstance());
      await h.fastForward();
    }

    expect(h.sends()).toHaveLength(0);
    expect(await h.drainDeadLetters()).toEqual([]);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'retrying', not_sent: 6, retryable: 0 });
  });

  it('after a secret outage, a 409 caused by someone else is a duplicate, not a delivery', async () => {
    await start();
    await h.enqueue(jobBody({ id: 'someone-else' }));
    await h.invoke();
    h.secrets.failNext(3, 'ThrottlingException');
    await h.enqueue(jobBody({ id: 'ours' }));
    await h.invokeWith(h.createInstance());

    await h.runUntilQuiet(5);

    expect(h.sends().map((r) => r.status)).toEqual([201, 409]);
    expect(await h.ledger().get('ours')).toMatchObject({ status: 'duplicate', unknown_outcome: false });
  });

  it('a token endpoint outage backs off without spending the 5xx budget and without an unknown outcome', async () => {
    await start();
    h.sim.script({ match: { path: '/oauth/token' }, times: 6, action: { kind: 'respond', status: 503 } });
    await h.enqueue(jobBody({}, { skip_duplicate: true }));

    await h.runUntilQuiet(12, () => h.invokeWith(h.createInstance()));

    expect(h.sends().map((r) => r.status)).toEqual([201]);
    expect(await h.drainDeadLetters()).toEqual([]);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({
      status: 'delivered',
      retryable: 0,
      unknown_outcome: false,
    });
  });
});

describe('a backoff survives duplicate copies', () => {
  it.each([
    [500, 'a copy enqueued during the 60 s after a 500 is hidden until then, without a request'],
    [429, 'a copy enqueued during the wait after a 429 is hidden until then, without a request'],
  ])('%i: %s', async (status) => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status } });
    await h.enqueue(jobBody());
    await h.invokeWith(h.createInstance());

    // The same job again (an upstream resend, or SQS's second copy), on another instance, 0.2 s later.
    const copy = await h.enqueue(jobBody());
    const early = await h.invokeWith(h.createInstance());
    expect(early.failed).toEqual([copy]);
    expect(h.sends()).toHaveLength(1);
    const hidden = (await h.hiddenFor()).get(copy) ?? 0;
    expect(hidden).toBeGreaterThan(55);

    await h.runUntilQuiet(6, () => h.invokeWith(h.createInstance()));

    expect(h.sends().map((r) => r.status)).toEqual([status, 201]);
    expect(h.sim.messages).toHaveLength(1);
    expect(await h.drainDeadLetters()).toEqual([]);
  });
});

describe('a long 429 storm or outage never burns the SQS receive budget', () => {
  it('twenty jobs through a storm of 429s well past the receive limit are each delivered once, none dead-lettered', async () => {
    await start({ maxReceiveCount: 6 });
    let storm = true;
    h.sim.script({ match: () => storm, action: { kind: 'respond', status: 429 } });
    for (let i = 0; i < 20; i++) await h.enqueue(jobBody({ id: `storm-${i}` }, { content: `Reminder ${i}` }));

    // Each job is received far more often than maxReceiveCount (6) while the storm lasts.
    for (let i = 0; i < 20; i++) {
      await h.invokeWith(h.createInstance());
      await h.fastForward();
    }
    storm = false;
    await h.runUntilQuiet(40, () => h.invokeWith(h.createInstance()));

    expect(await h.drainDeadLetters()).toEqual([]);
    expect(h.sim.messages).toHaveLength(20);
    for (let i = 0; i < 20; i++) {
      expect(await h.ledger().get(`storm-${i}`)).toMatchObject({ status: 'delivered' });
    }
  });

  it('a storm that outlasts the job ends in a dead letter with the relay reason expired, not a bare redrive', async () => {
    await start({ maxReceiveCount: 6, env: { MAX_AGE_SECONDS: '3600' } });
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 429 } });
    await h.enqueue(jobBody());

    await h.runUntilQuiet(80, () => h.invokeWith(h.createInstance()));

    expect(h.sim.messages).toHaveLength(0);
    expect(deadLetters(await h.drainDeadLetters())).toEqual([
      { reason: 'expired', lastStatus: '429', jobId: JOB_ID },
    ]);
  });

  it("honours a 503's Retry-After (a maintenance window) rather than the first backoff step", async () => {
    await start();
    h.sim.script({
      match: { path: ONEOFFS },
      times: 1,
      action: { kind: 'respond', status: 503, headers: { 'Retry-After': '900' } },
    });
    const id = await h.enqueue(jobBody());

    await h.invoke();

    const hidden = (await h.hiddenFor()).get(id) ?? 0;
    expect(hidden).toBeGreaterThan(898);
    expect(hidden).toBeLessThanOrEqual(900.1);
  });
});

describe('rate-limit hints within reason; 408', () => {
  it('X-RateLimit-Reset in epoch milliseconds one minute ahead waits about a minute, not 12 h', async () => {
    await start();
    h.sim.script({
      match: { path: ONEOFFS },
      times: 1,
      action: {
        kind: 'respond',
        status: 429,
        headers: () => ({ 'X-RateLimit-Reset': String(Date.now() + 60_000) }),
      },
    });
    const id = await h.enqueue(jobBody());
    const instance = h.createInstance();

    await h.invokeWith(instance);
    const hidden = (await h.hiddenFor()).get(id) ?? 0;
    expect(hidden).toBeGreaterThan(55);
    expect(hidden).toBeLessThan(130);

    // The instance sends again once the minute has passed.
    await h.fastForward();
    await h.invokeWith(instance);
    expect(h.sends().map((r) => r.status)).toEqual([429, 201]);
  });

  it('a hint of a whole day is capped: the job and the instance wait at most RATE_LIMIT_HINT_MAX_SECONDS', async () => {
    await start();
    h.sim.script({
      match: { path: ONEOFFS },
      times: 1,
      action: { kind: 'respond', status: 429, headers: { 'Retry-After': '86400' } },
    });
    const id = await h.enqueue(jobBody());
    const instance = h.createInstance();

    await h.invokeWith(instance);
    const hidden = (await h.hiddenFor()).get(id) ?? 0;
    expect(hidden).toBeLessThanOrEqual(300.1);
    expect(hidden).toBeGreaterThan(250);

    await h.fastForward(301_000);
    await h.invokeWith(instance);
    expect(h.sends().map((r) => r.status)).toEqual([429, 201]);
  });

  it('408 means nothing was processed: retried with backoff, then delivered once', async () => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 408 } });
    const id = await h.enqueue(jobBody({}, { skip_duplicate: true }));

    const first = await h.invoke();
    expect(failedIds(first)).toEqual([id]);
    await h.runUntilQuiet(4);

    expect(h.sends().map((r) => r.status)).toEqual([408, 201]);
    expect(await h.drainDeadLetters()).toEqual([]);
  });
});

describe('log hygiene', () => {
  it('POWERTOOLS_LOGGER_LOG_EVENT=true never logs the SQS event: no message text, no recipient', async () => {
    const lines: string[] = [];
    const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
    const originals = methods.map((m) => console[m]);
    for (const m of methods) {
      console[m] = (...args: unknown[]) => {
        lines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      };
    }
    try {
      await start({ env: { POWERTOOLS_LOGGER_LOG_EVENT: 'true', POWERTOOLS_LOG_LEVEL: 'DEBUG' } });
      await h.enqueue(jobBody({}, { to: '+15559871234', content: 'Private: your hearing is in Room 4B.' }));
      await h.invoke();
    } finally {
      methods.forEach((m, i) => {
        console[m] = originals[i] as (typeof console)[typeof m];
      });
    }
    const output = lines.join('\n');
    expect(output).toContain('job settled');
    expect(output).not.toContain('Room 4B');
    expect(output).not.toContain('5559871234');
    expect(output).not.toContain('"Records"');
  });
});
