import type { Message } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { createThen } from '#local/ecourtdate-simulator/index.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';
import { jobBody } from '#test/helpers/factories.ts';
import {
  attr,
  type Harness,
  type HarnessOptions,
  SECRET_ID,
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

function failedIds(result: Awaited<ReturnType<Harness['invoke']>>): string[] {
  return (result.response?.batchItemFailures ?? []).map((f) => f.itemIdentifier);
}

/** Everything the dead-letter queue says about one dead-lettered job. */
function deadLetter(message: Message) {
  return {
    body: message.Body,
    reason: attr(message, DLQ_ATTRIBUTE.reason),
    lastStatus: attr(message, DLQ_ATTRIBUTE.lastStatus),
    attempts: attr(message, DLQ_ATTRIBUTE.attempts),
    jobId: attr(message, DLQ_ATTRIBUTE.jobId),
    detail: attr(message, DLQ_ATTRIBUTE.detail),
    excerpt: attr(message, DLQ_ATTRIBUTE.responseExcerpt),
    firstAttemptAt: attr(message, DLQ_ATTRIBUTE.firstAttemptAt),
  };
}

async function expectSendQueueEmpty(): Promise<void> {
  const state = await h.inspect();
  expect(state.ready.length + state.inflight.length + state.delayed.length).toBe(0);
}

/** Asserts the one in-flight record is hidden for `seconds` (the backoff), within a second of slack. */
async function expectHiddenFor(messageId: string, seconds: number): Promise<void> {
  const hidden = (await h.hiddenFor()).get(messageId);
  expect(hidden).toBeDefined();
  expect(hidden).toBeGreaterThan(seconds - 1.5);
  expect(hidden).toBeLessThanOrEqual(seconds + 0.1);
}

describe('sender against SQS (fauxqs), the eCourtDate simulator and Secrets Manager, row by row', () => {
  it('2xx: sends once, acknowledges the record, and creates exactly one message in eCourtDate', async () => {
    await start();
    const body = jobBody({ agency_reference: 'county-a' });
    await h.enqueue(body);

    const result = await h.invoke();

    expect(failedIds(result)).toEqual([]);
    expect(h.sim.requests.map((r) => r.path)).toEqual(['/oauth/token', ONEOFFS]);
    expect(h.sim.messages).toHaveLength(1);
    expect(h.sim.messages[0]?.body).toEqual((body as { message: unknown }).message);
    expect(h.sim.messages[0]?.agencyReference).toBe('county-a');
    await expectSendQueueEmpty();
    expect(await h.drainDeadLetters()).toEqual([]);
  });

  it('2xx: converts an ISO scheduled_at to UTC "YYYY-MM-DD HH:mm:ss" and passes unknown fields through', async () => {
    await start();
    await h.enqueue(
      jobBody({}, { scheduled_at: '2026-12-01T10:00:00-05:00', language: 'es', future_field: { x: 1 } }),
    );

    await h.invoke();

    expect(h.sim.messages[0]?.body).toMatchObject({
      scheduled_at: '2026-12-01 15:00:00',
      language: 'es',
      future_field: { x: 1 },
    });
  });

  it('400: dead-letters bad_request at once with the original body and the field-naming response excerpt', async () => {
    await start();
    h.sim.script({
      match: { path: ONEOFFS },
      action: {
        kind: 'respond',
        status: 400,
        body: { message: 'The channel field is invalid.', errors: { channel: ['invalid'] } },
      },
    });
    const body = JSON.stringify(jobBody());
    await h.enqueue(body);

    const result = await h.invoke();

    expect(failedIds(result)).toEqual([]);
    expect(h.sends()).toHaveLength(1);
    const [dead, ...rest] = (await h.drainDeadLetters()).map(deadLetter);
    expect(rest).toEqual([]);
    expect(dead).toMatchObject({
      body,
      reason: 'bad_request',
      lastStatus: '400',
      attempts: '1',
      jobId: 'cms-48213-reminder-1',
    });
    expect(dead?.excerpt).toContain('The channel field is invalid.');
    expect(Date.parse(dead?.firstAttemptAt ?? '')).not.toBeNaN();
    await expectSendQueueEmpty();
  });

  describe('401', () => {
    it('renews the token and resends in the same invocation, without re-reading the secret', async () => {
      await start();
      h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 401 } });
      await h.enqueue(jobBody());

      const result = await h.invoke();

      expect(failedIds(result)).toEqual([]);
      expect(h.sim.requests.map((r) => [r.path, r.status])).toEqual([
        ['/oauth/token', 201],
        [ONEOFFS, 401],
        ['/oauth/token', 201],
        [ONEOFFS, 201],
      ]);
      expect(h.secrets.calls).toHaveLength(1);
      expect(h.sim.messages).toHaveLength(1);
    });

    it('re-reads the secret after a second 401, and recovers when the secret was rotated', async () => {
      await start();
      await h.enqueue(jobBody());
      await h.invoke(); // warm: token and secret cached
      // Rotation: eCourtDate accepts only the new secret and revokes old tokens; the secret store has it.
      h.sim.setClientSecret('relay-test-client', 'rotated-secret-0123456789abcdef', { revokeTokens: true });
      h.secrets.setSecret(
        SECRET_ID,
        JSON.stringify({ client_id: 'relay-test-client', client_secret: 'rotated-secret-0123456789abcdef' }),
      );
      await h.enqueue(jobBody({ id: 'after-rotation' }, { content: 'A different reminder.' }));

      const result = await h.invoke();

      expect(failedIds(result)).toEqual([]);
      expect(h.secrets.calls).toHaveLength(2);
      expect(h.sim.messages).toHaveLength(2);
    });

    it('after three 401s retries later with backoff, counting an auth failure', async () => {
      await start();
      h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 401 } });
      const id = await h.enqueue(jobBody());

      const result = await h.invoke();

      expect(failedIds(result)).toEqual([id]);
      expect(h.sends()).toHaveLength(3);
      expect(h.secrets.calls).toHaveLength(2);
      await expectHiddenFor(id, 60);
      expect(await h.drainDeadLetters()).toEqual([]);
    });
  });

  it('403: dead-letters forbidden without a retry', async () => {
    await start();
    h.sim.script({
      match: { path: ONEOFFS },
      action: { kind: 'respond', status: 403, body: { message: 'Agency is inactive.' } },
    });
    await h.enqueue(jobBody());

    const result = await h.invoke();

    expect(failedIds(result)).toEqual([]);
    expect(h.sends()).toHaveLength(1);
    expect((await h.drainDeadLetters()).map(deadLetter)).toMatchObject([
      { reason: 'forbidden', lastStatus: '403' },
    ]);
    await expectSendQueueEmpty();
  });

  it('404: an unknown agency_reference dead-letters not_found, keeping "Agency Not Found"', async () => {
    await start({ simulator: { knownAgencies: ['county-a'] } });
    await h.enqueue(jobBody({ agency_reference: 'county-b' }));

    await h.invoke();

    expect(h.sends()[0]?.query).toEqual({ agency_reference: 'county-b' });
    const [dead] = (await h.drainDeadLetters()).map(deadLetter);
    expect(dead).toMatchObject({ reason: 'not_found', lastStatus: '404' });
    expect(dead?.excerpt).toContain('Agency Not Found');
  });

  it.each([405, 422])('%i: dead-letters client_error', async (status) => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status } });
    await h.enqueue(jobBody());

    await h.invoke();

    expect((await h.drainDeadLetters()).map(deadLetter)).toMatchObject([
      { reason: 'client_error', lastStatus: String(status) },
    ]);
    expect(h.sends()).toHaveLength(1);
  });

  it('409 on the first attempt: a duplicate someone else sent; acknowledged, not sent again, not dead-lettered', async () => {
    await start();
    await h.enqueue(jobBody({ id: 'other-system' }));
    await h.invoke();
    await h.enqueue(jobBody({ id: 'ours' }));

    const result = await h.invoke();

    expect(failedIds(result)).toEqual([]);
    expect(h.sends().map((r) => r.status)).toEqual([201, 409]);
    expect(h.sim.messages).toHaveLength(1);
    expect(await h.drainDeadLetters()).toEqual([]);
    await expectSendQueueEmpty();
  });

  describe('504 / timeout / connection error: outcome unknown', () => {
    it('created-then-504 is retried after 60 s; the resend answers 409 and counts as delivered: one message, not two', async () => {
      await start();
      h.sim.script({
        match: { path: ONEOFFS },
        times: 1,
        action: createThen({ kind: 'respond', status: 504 }),
      });
      const id = await h.enqueue(jobBody());

      const first = await h.invoke();
      expect(failedIds(first)).toEqual([id]);
      await expectHiddenFor(id, 60);
      expect(h.sim.messages).toHaveLength(1);

      await h.fastForward();
      const second = await h.invoke();

      expect(failedIds(second)).toEqual([]);
      expect(h.sends().map((r) => r.status)).toEqual([504, 409]);
      expect(h.sim.messages).toHaveLength(1);
      expect(await h.drainDeadLetters()).toEqual([]);
      await expectSendQueueEmpty();
    });

    it('a request that times out is retried with backoff', async () => {
      await start({ env: { HTTP_TIMEOUT_MS: '300' } });
      h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'hang' } });
      const id = await h.enqueue(jobBody());

      const first = await h.invoke();
      expect(failedIds(first)).toEqual([id]);
      await expectHiddenFor(id, 60);

      await h.fastForward();
      await h.invoke();
      expect(h.sim.messages).toHaveLength(1);
      await expectSendQueueEmpty();
    });

    it('a dropped connection is retried with backoff', async () => {
      await start();
      h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'drop' } });
      const id = await h.enqueue(jobBody());

      expect(failedIds(await h.invoke())).toEqual([id]);
      await expectHiddenFor(id, 60);
    });

    it('with skip_duplicate: true, dead-letters unknown_outcome instead of risking a second message', async () => {
      await start();
      h.sim.script({ match: { path: ONEOFFS }, action: createThen({ kind: 'respond', status: 504 }) });
      await h.enqueue(jobBody({}, { skip_duplicate: true }));

      const result = await h.invoke();

      expect(failedIds(result)).toEqual([]);
      expect(h.sends()).toHaveLength(1);
      expect(h.sim.messages).toHaveLength(1);
      expect((await h.drainDeadLetters()).map(deadLetter)).toMatchObject([
        { reason: 'unknown_outcome', lastStatus: '504' },
      ]);
    });
  });

  describe('429', () => {
    it('waits at least 60 s, and the instance sends nothing else until the window has reset', async () => {
      await start();
      const instance = h.createInstance();
      h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 429 } });
      const first = await h.enqueue(jobBody({ id: 'job-0' }, { content: 'Reminder 0' }));

      await h.invokeWith(instance);
      await expectHiddenFor(first, 60);

      // The rest of the traffic on this instance is deferred without a request (and without ledger writes).
      const ids = [];
      for (let i = 1; i < 5; i++)
        ids.push(await h.enqueue(jobBody({ id: `job-${i}` }, { content: `Reminder ${i}` })));
      const writesBefore = h.dynamodb.requestCounts().PutItem ?? 0;
      const held = await h.invokeWith(instance);
      expect(failedIds(held).sort()).toEqual([...ids].sort());
      expect(h.sends()).toHaveLength(1);
      expect(h.dynamodb.requestCounts().PutItem ?? 0).toBe(writesBefore);
      for (const id of ids) expect((await h.hiddenFor()).get(id)).toBeGreaterThan(50);

      // Once the window has passed, the same instance sends them all.
      await h.fastForward();
      const again = await h.invokeWith(instance);
      expect(again.received).toBe(5);
      expect(h.sends()).toHaveLength(6);
      expect(await h.drainDeadLetters()).toEqual([]);
    });

    it('honours a longer Retry-After', async () => {
      await start();
      h.sim.script({
        match: { path: ONEOFFS },
        times: 1,
        action: { kind: 'respond', status: 429, headers: { 'Retry-After': '150' } },
      });
      const id = await h.enqueue(jobBody());

      await h.invoke();

      await expectHiddenFor(id, 150);
    });
  });

  describe('500', () => {
    it('is retried once after 60 s; the second 500 dead-letters unknown_outcome (either may have created the message)', async () => {
      await start();
      h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 500 } });
      const id = await h.enqueue(jobBody());

      expect(failedIds(await h.invoke())).toEqual([id]);
      await expectHiddenFor(id, 60);
      await h.fastForward();
      expect(failedIds(await h.invoke())).toEqual([]);

      expect(h.sends()).toHaveLength(2);
      expect((await h.drainDeadLetters()).map(deadLetter)).toMatchObject([
        { reason: 'unknown_outcome', lastStatus: '500', attempts: '2' },
      ]);
      await expectSendQueueEmpty();
    });

    it('a 500 followed by success is delivered', async () => {
      await start();
      h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 500 } });
      await h.enqueue(jobBody());

      await h.invoke();
      await h.fastForward();
      await h.invoke();

      expect(h.sim.messages).toHaveLength(1);
      await expectSendQueueEmpty();
    });
  });

  it('503: backs off 60, 120, 240, 480 s, then dead-letters unknown_outcome after the fifth attempt', async () => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 503 } });
    const id = await h.enqueue(jobBody());

    for (const seconds of [60, 120, 240, 480]) {
      expect(failedIds(await h.invoke())).toEqual([id]);
      await expectHiddenFor(id, seconds);
      await h.fastForward();
    }
    expect(failedIds(await h.invoke())).toEqual([]);

    expect(h.sends()).toHaveLength(5);
    expect((await h.drainDeadLetters()).map(deadLetter)).toMatchObject([
      { reason: 'unknown_outcome', lastStatus: '503', attempts: '5' },
    ]);
    await expectSendQueueEmpty();
  });

  describe('expiry', () => {
    it('a job past its expires_at is dead-lettered expired and never sent', async () => {
      await start();
      await h.enqueue(jobBody({ expires_at: '2020-01-01T00:00:00Z' }));

      await h.invoke();

      expect(h.sends()).toHaveLength(0);
      expect((await h.drainDeadLetters()).map(deadLetter)).toMatchObject([
        { reason: 'expired', lastStatus: 'none' },
      ]);
    });

    it('a retry that would land after the maximum age dead-letters expired instead', async () => {
      await start({ env: { MAX_AGE_SECONDS: '30' } });
      h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 408 } });
      await h.enqueue(jobBody());

      await h.invoke();

      expect(h.sends()).toHaveLength(1);
      expect((await h.drainDeadLetters()).map(deadLetter)).toMatchObject([
        { reason: 'expired', lastStatus: '408' },
      ]);
    });

    it('after an answer that may have created the message, the deadline dead-letters unknown_outcome, not expired', async () => {
      await start({ env: { MAX_AGE_SECONDS: '30' } });
      h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 503 } });
      await h.enqueue(jobBody());

      await h.invoke();

      expect(h.sends()).toHaveLength(1);
      expect((await h.drainDeadLetters()).map(deadLetter)).toMatchObject([
        { reason: 'unknown_outcome', lastStatus: '503' },
      ]);
    });
  });

  describe('invalid jobs', () => {
    it.each([
      ['not JSON', 'this is not json', 'body'],
      ['no content', JSON.stringify(jobBody({}, { content: undefined })), 'message.content'],
      [
        'content over 2,000 characters',
        JSON.stringify(jobBody({}, { content: 'x'.repeat(2001) })),
        'message.content',
      ],
      ['a bad id', JSON.stringify(jobBody({ id: 'has spaces' })), 'id'],
    ])(
      '%s: dead-lettered invalid_job at once, naming the field, body unchanged',
      async (_name, body, field) => {
        await start();
        await h.enqueue(body);

        const result = await h.invoke();

        expect(failedIds(result)).toEqual([]);
        expect(h.sim.requests).toHaveLength(0);
        const [dead] = (await h.drainDeadLetters()).map(deadLetter);
        expect(dead).toMatchObject({ body, reason: 'invalid_job', lastStatus: 'none' });
        expect(dead?.detail?.startsWith(`${field}:`)).toBe(true);
      },
    );
  });

  it('a mixed batch of ten settles each record on its own', async () => {
    await start();
    h.sim.script({ match: { to: '+15550000403' }, action: { kind: 'respond', status: 403 } });
    h.sim.script({ match: { to: '+15550000503' }, action: { kind: 'respond', status: 503 } });
    h.sim.script({
      match: { to: '+15550000400' },
      action: { kind: 'respond', status: 400, body: { errors: { to: ['bad'] } } },
    });
    const good = [];
    for (let i = 0; i < 6; i++)
      good.push(await h.enqueue(jobBody({ id: `good-${i}` }, { content: `Reminder number ${i}` })));
    const forbidden = await h.enqueue(jobBody({ id: 'forbidden' }, { to: '+15550000403' }));
    const unavailable = await h.enqueue(jobBody({ id: 'unavailable' }, { to: '+15550000503' }));
    const bad = await h.enqueue(jobBody({ id: 'bad' }, { to: '+15550000400' }));
    const invalid = await h.enqueue('{"id":"invalid","message":{"to":"+15551234567"}}');

    const result = await h.invoke();

    expect(result.received).toBe(10);
    expect(failedIds(result)).toEqual([unavailable]);
    expect(h.sim.messages.map((m) => m.body.content).sort()).toEqual(
      good.map((_, i) => `Reminder number ${i}`).sort(),
    );
    const dead = (await h.drainDeadLetters()).map(deadLetter);
    expect(Object.fromEntries(dead.map((d) => [d.jobId, d.reason]))).toEqual({
      forbidden: 'forbidden',
      bad: 'bad_request',
      invalid: 'invalid_job',
    });
    const state = await h.inspect();
    expect(state.inflight.map((e) => e.message.messageId)).toEqual([unavailable]);
    expect(
      [forbidden, bad, invalid, ...good].every(
        (id) => !state.inflight.some((e) => e.message.messageId === id),
      ),
    ).toBe(true);
  });

  it('a dead-letter queue that refuses the job puts a fresh copy back on the send queue: nothing is lost, no receive spent', async () => {
    // A queue the role has no grant on: the stack's IAM refuses the send (AccessDenied), as AWS would.
    await start({
      env: { DEAD_LETTER_QUEUE_URL: 'http://sqs.us-east-1.localhost/000000000000/does-not-exist' },
    });
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 403 } });
    const id = await h.enqueue(jobBody());

    const result = await h.invoke();

    expect(h.iam.gate.takeDenials()).toMatchObject([
      { action: 'sqs:SendMessage', resource: 'arn:aws:sqs:us-east-1:000000000000:does-not-exist' },
    ]);
    expect(failedIds(result)).toEqual([]);
    const { delayed, inflight } = await h.inspect();
    expect(inflight).toEqual([]);
    // The same job, back after the first backoff step; the ledger already holds it dead-lettered, so the copy is
    // dead-lettered again (never sent) once the dead-letter queue takes it.
    expect(delayed.map((m) => [m.body, m.messageId === id])).toEqual([[JSON.stringify(jobBody()), false]]);
    expect(h.sends()).toHaveLength(1);
    expect(await h.ledger().get('cms-48213-reminder-1')).toMatchObject({
      status: 'dead_lettered',
      dead_letter_reason: 'forbidden',
    });
  });

  it('a ledger outage re-queues a fresh copy before anything is sent; it comes back after the first backoff step', async () => {
    await start();
    const id = await h.enqueue(jobBody());
    await h.dynamodb.stop();

    const result = await h.invoke();

    expect(failedIds(result)).toEqual([]);
    expect(h.sends()).toHaveLength(0);
    const { delayed } = await h.inspect();
    expect(delayed).toHaveLength(1);
    expect(delayed[0]?.messageId).not.toBe(id);
    expect(((delayed[0]?.delayUntil ?? 0) - Date.now()) / 1000).toBeGreaterThan(55);
  });

  it('a retried record reappears on the queue after its backoff, not before', async () => {
    // Time scale 30: the 60 s backoff is 2 s of real time.
    await start({ env: { TIME_SCALE: '30' } });
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 503 } });
    const id = await h.enqueue(jobBody());
    await h.invoke();
    const hiddenAt = Date.now();

    expect((await h.invoke()).received).toBe(0);
    let second = await h.invoke();
    while (second.received === 0) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      second = await h.invoke();
    }

    expect(Date.now() - hiddenAt).toBeGreaterThanOrEqual(1_900);
    expect(second.deleted).toEqual([id]);
    expect(h.sim.messages).toHaveLength(1);
  });
});
