/**
 * The sender's promises under combined faults (docs/contract.md: "An unknown outcome is never relabelled…", "One
 * redrive per dead letter", "A known answer is kept until it is written", "A failure nobody decided spends no
 * receive"; docs/sqs-limits.md, "Fresh copies"): combinations and races of DynamoDB writes that were applied but
 * reported as failed, carried answers racing SQS duplicates, SQS refusing the dead-letter send, producer
 * attributes at SQS's 10-attribute limit, forged relay attributes, redrives of jobs mid-generation, the Job
 * Settled event's `replayed` flag and log hygiene. Each drives the real sender handler through the relay harness
 * (strict SQS layer, simulator, Secrets Manager stand-in, dynalite).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Message, MessageAttributeValue, SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createThen } from '#local/ecourtdate-simulator/index.ts';
import type { EventBridgeStub } from '#local/emulators/eventbridge-stub.ts';
import { deleteSucceeded, invokeBatch, receiveBatch } from '#local/lambda/event-source.ts';
import type { AwsClients } from '#shared/clients/aws.ts';
import { createApiFetch } from '#shared/ecourtdate/connection.ts';
import type { FetchLike } from '#shared/ecourtdate/http.ts';
import { API_CLIENT_ITEM_ID } from '#shared/ledger/schema.ts';
import type { SenderHandler } from '#shared/sender/handler.ts';
import { DLQ_ATTRIBUTE, REQUEUE_ATTRIBUTE } from '#shared/sqs/settle.ts';
import { injectDynamoFaults } from '#test/helpers/dynamo-faults.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { captureLogs } from '#test/helpers/log-capture.ts';
import {
  attr,
  CLIENT_SECRET,
  type Harness,
  type HarnessOptions,
  startHarness,
} from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
const JOB_ID = 'cms-48213-reminder-1';
const BAD_REQUEST_BODY = {
  message: 'The to field must be a valid phone number.',
  errors: { to: ['The to field must be a valid phone number.'] },
};
let h: Harness | undefined;
let bus: EventBridgeStub | undefined;

afterEach(async () => {
  if (h) expect(h.emulator.refusals()).toEqual([]);
  await h?.close();
  h = undefined;
  bus = undefined;
});

async function start(options: HarnessOptions = {}): Promise<Harness> {
  h = await startHarness(options);
  return h;
}

/** A harness whose sender publishes `eCourtDate Job Settled` to the world's loopback EventBridge. */
async function startWithBus(options: HarnessOptions = {}): Promise<Harness> {
  const started = await start({ ...options, jobSettledEvents: true });
  bus = started.world.events;
  return started;
}

function harness(): Harness {
  if (!h) throw new Error('no harness');
  return h;
}

// The claim writes the entry with an open attempt; the settle closes it.
const claimWrite = (body: string) => body.includes('"attempt_open":{"BOOL":true}');
const settleWrite = (body: string) => body.includes('"attempt_open":{"BOOL":false}');
/** A claim of a job that has an entry (the first claim's put is conditional on there being none). */
const nextClaimWrite = (body: string) => claimWrite(body) && !body.includes('attribute_not_exists(id)');

let middlewareCount = 0;

function throttling(): Error {
  return Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), {
    name: 'ThrottlingException',
    $metadata: { httpStatusCode: 400 },
  });
}

/**
 * DynamoDB applies the first try of the first `calls` matching PutItem calls, but the answer is lost and every
 * retry of that call is throttled, so the SDK gives up with `ThrottlingException`: the write is in the table, and
 * the writer was told it failed.
 */
function appliedThenRefused(
  client: DynamoDBClient,
  match: (body: string) => boolean,
  calls = 1,
): () => number {
  const spoiled = new Set<string>();
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      const headers = request.headers ?? {};
      const call = headers['amz-sdk-invocation-id'] ?? '';
      const body = request.body instanceof Uint8Array ? Buffer.from(request.body).toString('utf8') : '';
      if (spoiled.has(call)) throw throttling();
      const isPut = (headers['x-amz-target'] ?? '').endsWith('.PutItem');
      if (!isPut || !match(body) || spoiled.size >= calls) return next(args);
      spoiled.add(call);
      await next(args);
      throw throttling();
    },
    { step: 'deserialize', name: `injectedFault${++middlewareCount}` },
  );
  return () => spoiled.size;
}

/** SQS refuses the next `calls` calls of `command` (e.g. `SendMessageCommand`) that `pick` selects, as in an outage. */
function sqsRefuses(
  client: SQSClient,
  command: string,
  calls: number,
  pick: (input: Record<string, unknown>) => boolean = () => true,
): () => number {
  let refused = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? '';
      const input = args.input as Record<string, unknown>;
      if (name !== command || refused >= calls || !pick(input)) return next(args);
      refused += 1;
      throw Object.assign(new Error('Service is unavailable.'), {
        name: 'ServiceUnavailable',
        $metadata: { httpStatusCode: 503 },
      });
    },
    { step: 'initialize', name: `injectedSqsFault${++middlewareCount}` },
  );
  return () => refused;
}

function deadLetters(messages: Message[]) {
  return messages.map((m) => ({
    reason: attr(m, DLQ_ATTRIBUTE.reason),
    lastStatus: attr(m, DLQ_ATTRIBUTE.lastStatus),
    detail: attr(m, DLQ_ATTRIBUTE.detail),
    excerpt: attr(m, DLQ_ATTRIBUTE.responseExcerpt),
  }));
}

/** Receives the send queue's messages and invokes `handler` with them, deleting what succeeded. */
async function pollInto(handler: SenderHandler, functionTimeoutMs = 60_000) {
  const t = harness();
  const messages = await receiveBatch({ sqs: t.sqs, queueUrl: t.sendQueue.url, waitTimeSeconds: 0 });
  const outcome = await invokeBatch({ handler, queueArn: t.sendQueue.arn, functionTimeoutMs }, messages);
  const result = await deleteSucceeded({ sqs: t.sqs, queueUrl: t.sendQueue.url }, outcome);
  return { messages, result };
}

const healthy = () => harness().createInstance();

/** Makes the first settle write through `dynamodb` refused on every SDK try (throttled). */
function throttleFirstSettle(dynamodb: AwsClients['dynamodb']): void {
  injectDynamoFaults(dynamodb, { operation: 'PutItem', match: settleWrite, kind: 'throttled', calls: 1 });
}

/** An instance whose first settle write DynamoDB refuses on every SDK try (throttled), with `fetch` if given. */
function settleThrottledInstance(t: Harness, options: { fetch?: FetchLike } = {}) {
  return t.createInstance({ ...options, clients: (clients) => throttleFirstSettle(clients.dynamodb) });
}

/** An instance whose DynamoDB PutItems matching `match` are applied, then every SDK try reported failed. */
function appliedThenRefusedInstance(t: Harness, match: (body: string) => boolean) {
  let spoiled = () => 0;
  const handler = t.createInstance({
    clients: (clients) => {
      spoiled = appliedThenRefused(clients.dynamodb, match);
    },
  });
  return { handler, spoiled: () => spoiled() };
}

/** The copy the first invocation left on the queue, handed to two instances at once (SQS's at-least-once). */
async function twinsOfTheCopy(t: Harness) {
  await t.fastForward();
  const copies = await receiveBatch({ sqs: t.sqs, queueUrl: t.sendQueue.url, waitTimeSeconds: 0 });
  expect(copies).toHaveLength(1);
  const results = await Promise.all([
    invokeBatch({ handler: healthy(), queueArn: t.sendQueue.arn }, copies),
    invokeBatch({ handler: healthy(), queueArn: t.sendQueue.arn }, copies),
  ]);
  expect(results.flatMap((r) => r.failed)).toEqual([]);
  await deleteSucceeded({ sqs: t.sqs, queueUrl: t.sendQueue.url }, results[0] as never);
}

describe('a conditional write DynamoDB applied, whose every SDK try then failed', () => {
  it('a claim applied but reported failed is not counted later as a request that may have reached eCourtDate: a skip_duplicate job is delivered once, not dead-lettered unknown_outcome', async () => {
    const t = await start();
    await t.enqueue(jobBody({}, { skip_duplicate: true }));
    const { handler: faulty, spoiled } = appliedThenRefusedInstance(t, claimWrite);

    const first = await t.invokeWith(faulty);
    expect(spoiled()).toBe(1);
    // Nothing was sent: the claim "failed", so the record was re-queued before any request.
    expect(first.failed).toEqual([]);
    expect(t.sends()).toHaveLength(0);

    await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

    // docs/contract.md: "a failure of ... the ledger before that is a known outcome (nothing was sent)".
    expect(deadLetters(await t.drainDeadLetters())).toEqual([]);
    expect(t.sends().map((r) => r.status)).toEqual([201]);
    expect(await t.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', unknown_outcome: false });
  });

  it("a record whose carried 429 was written claims again, and that claim is applied but reported failed: the claim is the chain's own, not a lost attempt, and a skip_duplicate job is delivered once", async () => {
    const t = await start();
    t.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 429 } });
    await t.enqueue(jobBody({}, { skip_duplicate: true }));
    // A 429 whose settle DynamoDB refused: a fresh copy carries it.
    await t.invokeWith(settleThrottledInstance(t));
    await t.fastForward();
    // The copy's carried 429 is written; the record is hidden for the wait, still holding the (used) answer.
    await t.invokeWith(healthy());
    expect(await t.ledger().get(JOB_ID)).toMatchObject({ status: 'retrying', attempt_open: false });
    await t.fastForward();
    // It comes back and claims the next attempt; DynamoDB applies the claim but every SDK try reports it failed.
    const { handler: faulty, spoiled } = appliedThenRefusedInstance(t, nextClaimWrite);
    await t.invokeWith(faulty);
    expect(spoiled()).toBe(1);
    expect(await t.ledger().get(JOB_ID)).toMatchObject({ attempt_open: true });

    await t.runUntilQuiet(8, () => t.invokeWith(healthy()));

    // Counted lost, that claim would make a skip_duplicate job unknown_outcome: it sent nothing.
    expect(deadLetters(await t.drainDeadLetters())).toEqual([]);
    expect(t.sends().map((r) => r.status)).toEqual([429, 201]);
    expect(await t.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', unknown_outcome: false });
  });

  it("a claim applied but reported failed, then a 409 caused by someone else's message: a duplicate, not a delivery", async () => {
    const t = await start();
    await t.enqueue(jobBody({ id: 'someone-else' }));
    await t.invoke();
    await t.enqueue(jobBody({ id: 'ours' }));
    const faulty = t.createInstance({
      clients: (clients) => {
        appliedThenRefused(clients.dynamodb, claimWrite);
      },
    });
    await t.invokeWith(faulty);

    await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

    expect(t.sends().map((r) => r.status)).toEqual([201, 409]);
    expect(await t.ledger().get('ours')).toMatchObject({ status: 'duplicate', unknown_outcome: false });
  });

  it('the settle after a 201, applied but reported failed: the first Job Settled event is not marked replayed', async () => {
    const t = await startWithBus();
    await t.enqueue(jobBody());
    const { handler: faulty, spoiled } = appliedThenRefusedInstance(t, settleWrite);

    await t.invokeWith(faulty);
    expect(spoiled()).toBe(1);
    expect(bus?.events).toHaveLength(0);
    await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

    expect(t.sends()).toHaveLength(1);
    expect(await t.ledger().get(JOB_ID)).toMatchObject({
      status: 'delivered',
      uuid: t.sim.messages[0]?.uuid,
    });
    // The only event of the job: consumers that skip replays must still see it.
    expect(bus?.events.map((e) => e.detail)).toEqual([
      expect.objectContaining({ job_id: JOB_ID, outcome: 'delivered' }),
    ]);
    expect(bus?.events[0]?.detail).not.toHaveProperty('replayed');
  });

  it('the settle of a 400 dead letter, applied but reported failed: the dead letter still names the field (response_excerpt) and says why', async () => {
    const t = await start();
    t.sim.script({
      match: { path: ONEOFFS },
      action: { kind: 'respond', status: 400, body: BAD_REQUEST_BODY },
    });
    await t.enqueue(jobBody());
    const faulty = t.createInstance({
      clients: (clients) => {
        appliedThenRefused(clients.dynamodb, settleWrite);
      },
    });

    await t.invokeWith(faulty);
    await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

    expect(t.sends()).toHaveLength(1);
    expect(deadLetters(await t.drainDeadLetters())).toEqual([
      {
        reason: 'bad_request',
        lastStatus: '400',
        detail: expect.stringContaining('HTTP 400'),
        excerpt: expect.stringContaining('valid phone number'),
      },
    ]);
  });
});

/** Both kinds of job: with `skip_duplicate` (never resent after an unknown outcome) and without. */
const WITH_AND_WITHOUT_SKIP_DUPLICATE = [
  ['with skip_duplicate', true],
  ['without skip_duplicate', false],
] as const;

/**
 * A 201 whose settle DynamoDB refused (the answer carried on a fresh copy, due in 60 s), then SQS's second copy of
 * the original (at-least-once) after the invocation's lease, just before the carried copy is due: it counts the
 * 201's attempt lost and claims its own (dead-lettered unknown_outcome unsent with skip_duplicate; resent and
 * answered 409 without).
 */
async function carried201CountedLost(t: Harness, skip: boolean): Promise<void> {
  await t.enqueue(jobBody({}, { skip_duplicate: skip }));
  const { messages, result } = await pollInto(settleThrottledInstance(t));
  expect(result.failed).toEqual([]);
  expect(t.sends().map((r) => r.status)).toEqual([201]);
  vi.setSystemTime(Date.now() + 60_500);
  await invokeBatch({ handler: healthy(), queueArn: t.sendQueue.arn }, messages);
}

/** The job ended delivered with its one message's uuid: sent once, or resent once and answered 409. */
async function expectDeliveredOnce(t: Harness, skip: boolean): Promise<void> {
  expect(t.sim.messages).toHaveLength(1);
  expect(t.sends().map((r) => r.status)).toEqual(skip ? [201] : [201, 409]);
  expect(await t.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', uuid: t.sim.messages[0]?.uuid });
}

describe('a known answer is carried until it is written', () => {
  it.each(WITH_AND_WITHOUT_SKIP_DUPLICATE)(
    '%s: a 201 whose settle failed, and an SQS duplicate of the original that arrives after the lease, before the carried copy: delivered with its uuid, one message',
    async (_, skip) => {
      const t = await start();
      await carried201CountedLost(t, skip);
      await t.runUntilQuiet(6, () => t.invokeWith(healthy()));
      // The carried 201 arrived after the duplicate had counted the attempt lost and settled the job
      // dead-lettered (or duplicate-proven by its 409): it settled the job delivered with its uuid, and a redrive
      // of that dead letter is acknowledged, never sent.
      await expectDeliveredOnce(t, skip);
    },
  );

  it.each(WITH_AND_WITHOUT_SKIP_DUPLICATE)(
    '%s: a 201 whose settle failed, counted lost by a duplicate after the lease, and whose carried copy failed its settle too: the next copy still carries that attempt, and the job ends delivered with its uuid',
    async (_, skip) => {
      const t = await start();
      await carried201CountedLost(t, skip);
      expect((await t.ledger().get(JOB_ID))?.lost_attempt_tokens).toHaveLength(1);
      // The carried copy comes while DynamoDB refuses its settle: it is carried on again. The entry it read holds
      // the duplicate's attempt, not the one the 201 answered; the new copy must still name the 201's.
      vi.setSystemTime(Date.now() + 120_000);
      await t.invokeWith(settleThrottledInstance(t));
      await t.runUntilQuiet(6, () => t.invokeWith(healthy()));
      await expectDeliveredOnce(t, skip);
    },
  );

  it.each(WITH_AND_WITHOUT_SKIP_DUPLICATE)(
    '%s: a 201 whose settle failed, on a message with ten producer attributes (no room for carried_answer): delivered with its uuid, never dead-lettered',
    async (_, skip) => {
      const t = await start();
      const producer: Record<string, MessageAttributeValue> = {};
      for (let i = 0; i < 10; i++)
        producer[`tenant_attr_${i}`] = { DataType: 'String', StringValue: `v${i}` };
      await t.enqueue(jobBody({}, { skip_duplicate: skip }), producer);
      const faulty = settleThrottledInstance(t);

      await t.invokeWith(faulty);
      await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

      expect(t.sim.messages).toHaveLength(1);
      expect(deadLetters(await t.drainDeadLetters())).toEqual([]);
      expect(await t.ledger().get(JOB_ID)).toMatchObject({
        status: 'delivered',
        uuid: t.sim.messages[0]?.uuid,
        unknown_outcome: false,
      });
    },
  );

  it('a skip_duplicate 201 whose settle failed and whose carried copy SQS refused (the record is hidden instead): the answer is lost with both, but the job is never sent twice', async () => {
    const t = await start();
    await t.enqueue(jobBody({}, { skip_duplicate: true }));
    let refused = () => 0;
    const faulty = t.createInstance({
      clients: (clients) => {
        throttleFirstSettle(clients.dynamodb);
        refused = sqsRefuses(
          clients.sqs,
          'SendMessageCommand',
          1,
          (input) => input.QueueUrl === t.sendQueue.url,
        );
      },
    });

    const first = await t.invokeWith(faulty);
    expect(refused()).toBe(1);
    expect(first.failed).toHaveLength(1);
    await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

    // DynamoDB and SQS both refused: nothing holds the answer, so the attempt is lost (docs/contract.md).
    expect(t.sim.messages).toHaveLength(1);
    expect(t.sends()).toHaveLength(1);
    expect(deadLetters(await t.drainDeadLetters()).map((l) => l.reason)).toEqual(['unknown_outcome']);
  });

  it('nine producer attributes (not copied: nothing reads them) leave room for carried_answer: the carried 201 is written with its uuid', async () => {
    const t = await start();
    const producer: Record<string, MessageAttributeValue> = {};
    for (let i = 0; i < 9; i++) producer[`tenant_attr_${i}`] = { DataType: 'String', StringValue: `v${i}` };
    await t.enqueue(jobBody({}, { skip_duplicate: true }), producer);
    const faulty = settleThrottledInstance(t);

    await t.invokeWith(faulty);
    const copy = (await t.inspect()).delayed[0];
    expect(copy?.messageAttributes?.[REQUEUE_ATTRIBUTE.carriedAnswer]).toBeDefined();
    await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

    expect(t.sends()).toHaveLength(1);
    expect(await t.drainDeadLetters()).toEqual([]);
    expect(await t.ledger().get(JOB_ID)).toMatchObject({
      status: 'delivered',
      uuid: t.sim.messages[0]?.uuid,
    });
  });

  it('a 400 whose settle failed is dead-lettered from the carried answer with the excerpt that names the field', async () => {
    const t = await start();
    t.sim.script({
      match: { path: ONEOFFS },
      action: { kind: 'respond', status: 400, body: BAD_REQUEST_BODY },
    });
    await t.enqueue(jobBody());
    const faulty = settleThrottledInstance(t);

    await t.invokeWith(faulty);
    await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

    expect(t.sends()).toHaveLength(1);
    expect(deadLetters(await t.drainDeadLetters())).toEqual([
      {
        reason: 'bad_request',
        lastStatus: '400',
        detail: expect.stringContaining('HTTP 400'),
        excerpt: expect.stringContaining('valid phone number'),
      },
    ]);
  });

  it('a 403 whose settle failed and whose dead-letter send SQS then refused: dead-lettered forbidden once, one request', async () => {
    const t = await start();
    t.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 403 } });
    await t.enqueue(jobBody());
    const faulty = settleThrottledInstance(t);
    await t.invokeWith(faulty);
    // The carried copy settles the 403 on an instance whose dead-letter send SQS refuses.
    let refused = () => 0;
    await t.fastForward();
    await t.invokeWith(
      t.createInstance({
        clients: (clients) => {
          refused = sqsRefuses(
            clients.sqs,
            'SendMessageCommand',
            1,
            (input) => input.QueueUrl === t.deadLetterQueue.url,
          );
        },
      }),
    );
    expect(refused()).toBe(1);
    await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

    expect(t.sends()).toHaveLength(1);
    const letters = await t.drainDeadLetters();
    expect(letters.map((m) => attr(m, DLQ_ATTRIBUTE.reason))).toEqual(['forbidden']);
    expect(attr(letters[0] as Message, DLQ_ATTRIBUTE.deadLetterId)).toBe(
      (await t.ledger().get(JOB_ID))?.dead_letter_token,
    );
  });
});

describe('copies racing copies', () => {
  it('an SQS duplicate of the carried copy, received by two instances at once: one settle wins, the 201 and its uuid are kept, nothing is resent', async () => {
    const t = await start();
    await t.enqueue(jobBody({}, { skip_duplicate: true }));
    const faulty = settleThrottledInstance(t);
    await t.invokeWith(faulty);
    await twinsOfTheCopy(t);

    expect(t.sends()).toHaveLength(1);
    expect(await t.drainDeadLetters()).toEqual([]);
    expect(await t.ledger().get(JOB_ID)).toMatchObject({
      status: 'delivered',
      uuid: t.sim.messages[0]?.uuid,
      attempt_open: false,
    });
  });

  it('an invalid_job whose dead-letter send SQS refused is dead-lettered invalid_job later, with the field named', async () => {
    const t = await start();
    await t.enqueue(jobBody({}, { content: 'x'.repeat(2001) }));
    const faulty = t.createInstance({
      clients: (clients) => {
        sqsRefuses(clients.sqs, 'SendMessageCommand', 1, (input) => input.QueueUrl === t.deadLetterQueue.url);
      },
    });
    await t.invokeWith(faulty);
    await t.runUntilQuiet(4, () => t.invokeWith(healthy()));

    expect(t.sends()).toHaveLength(0);
    expect(deadLetters(await t.drainDeadLetters())).toEqual([
      {
        reason: 'invalid_job',
        lastStatus: 'none',
        detail: expect.stringContaining('message.content'),
        excerpt: undefined,
      },
    ]);
  });
});

describe('a dead letter that goes out through a fallback keeps why', () => {
  it('a 400 whose dead-letter send SQS refused once: the dead letter made later still names the field and says why', async () => {
    const t = await start();
    t.sim.script({
      match: { path: ONEOFFS },
      action: { kind: 'respond', status: 400, body: BAD_REQUEST_BODY },
    });
    await t.enqueue(jobBody());
    const faulty = t.createInstance({
      clients: (clients) => {
        sqsRefuses(clients.sqs, 'SendMessageCommand', 1, (input) => input.QueueUrl === t.deadLetterQueue.url);
      },
    });

    const first = await t.invokeWith(faulty);
    expect(first.failed).toEqual([]);
    await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

    expect(t.sends()).toHaveLength(1);
    expect(deadLetters(await t.drainDeadLetters())).toEqual([
      {
        reason: 'bad_request',
        lastStatus: '400',
        detail: expect.stringContaining('HTTP 400'),
        excerpt: expect.stringContaining('valid phone number'),
      },
    ]);
  });

  it('a 400 whose Job Settled event EventBridge refused (every SDK try): the dead letter made by the fresh copy still names the field', async () => {
    const t = await startWithBus();
    t.sim.script({
      match: { path: ONEOFFS },
      action: { kind: 'respond', status: 400, body: BAD_REQUEST_BODY },
    });
    bus?.failNext(3, 'InternalException');
    await t.enqueue(jobBody());

    await t.runUntilQuiet(6);

    expect(t.sends()).toHaveLength(1);
    expect(deadLetters(await t.drainDeadLetters())).toEqual([
      {
        reason: 'bad_request',
        lastStatus: '400',
        detail: expect.stringContaining('HTTP 400'),
        excerpt: expect.stringContaining('valid phone number'),
      },
    ]);
  });

  it('SQS refuses every call for a while (dead-letter send, copy, visibility): the record is left, then dead-lettered once with its reason', async () => {
    const t = await start();
    t.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 403 } });
    await t.enqueue(jobBody());
    const calls: Record<string, () => number> = {};
    const down = t.createInstance({
      clients: (clients) => {
        for (const command of ['SendMessageCommand', 'ChangeMessageVisibilityCommand']) {
          calls[command] = sqsRefuses(clients.sqs, command, 100);
        }
      },
    });

    const first = await t.invokeWith(down);
    // Dead letter refused, then the copy refused, then the visibility change refused: left on the queue.
    expect(calls.SendMessageCommand?.()).toBe(2);
    expect(calls.ChangeMessageVisibilityCommand?.()).toBe(1);
    expect(first.failed).toHaveLength(1);
    await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

    expect(t.sends()).toHaveLength(1);
    expect(deadLetters(await t.drainDeadLetters()).map((l) => l.reason)).toEqual(['forbidden']);
  });
});

describe('the eCourtDate Job Settled event', () => {
  it('an upstream resend of a dead-lettered job is dead-lettered again and its event is marked replayed', async () => {
    const t = await startWithBus();
    t.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 403 } });
    await t.enqueue(jobBody());
    await t.invoke();
    await t.enqueue(jobBody());
    await t.invoke();

    expect(t.sends()).toHaveLength(1);
    expect(deadLetters(await t.drainDeadLetters()).map((l) => l.reason)).toEqual(['forbidden', 'forbidden']);
    expect(bus?.events.map((e) => e.detail)).toMatchObject([
      { job_id: JOB_ID, outcome: 'dead_lettered', reason: 'forbidden' },
      { job_id: JOB_ID, outcome: 'dead_lettered', reason: 'forbidden', replayed: true },
    ]);
    expect(bus?.events[0]?.detail).not.toHaveProperty('replayed');
  });

  it('an upstream resend of a delivered job is a replay; a producer-forged settled_event_pending cannot add a second first event', async () => {
    const t = await startWithBus();
    await t.enqueue(jobBody());
    await t.invoke();
    await t.enqueue(jobBody(), {
      [REQUEUE_ATTRIBUTE.settledEventPending]: { DataType: 'String', StringValue: 'true' },
    });
    await t.invoke();

    expect(t.sends()).toHaveLength(1);
    const details = bus?.events.map((e) => e.detail as Record<string, unknown>) ?? [];
    expect(details).toHaveLength(2);
    expect(details.filter((d) => d.replayed !== true)).toHaveLength(1);
  });
});

describe('one unmarked Job Settled event per settlement, however many twins of a copy SQS hands out', () => {
  /** The `replayed` flags of the Job Settled events published so far. */
  const flags = () => (bus?.events ?? []).map((e) => (e.detail as { replayed?: true }).replayed === true);

  it('EventBridge refused the event after the settle: of two twins of the copy left to publish it, one publishes it unmarked', async () => {
    const t = await startWithBus();
    await t.enqueue(jobBody());
    bus?.failNext(10, 'InternalException');
    await t.invoke();
    expect(t.sends()).toHaveLength(1);
    expect(flags()).toEqual([]);
    bus?.recover();

    await twinsOfTheCopy(t);

    expect(t.sends()).toHaveLength(1);
    expect(flags().sort()).toEqual([false, true]);
    expect(bus?.events.map((e) => e.detail)).toEqual([
      expect.objectContaining({ job_id: JOB_ID, outcome: 'delivered', uuid: t.sim.messages[0]?.uuid }),
      expect.objectContaining({ job_id: JOB_ID, outcome: 'delivered', uuid: t.sim.messages[0]?.uuid }),
    ]);
  });

  it('a settle DynamoDB applied but reported failed: of two twins of the copy carrying the 201, one publishes the event unmarked', async () => {
    const t = await startWithBus();
    await t.enqueue(jobBody({}, { skip_duplicate: true }));
    const { handler: faulty, spoiled } = appliedThenRefusedInstance(t, settleWrite);
    await t.invokeWith(faulty);
    expect(spoiled()).toBe(1);
    expect(flags()).toEqual([]);

    await twinsOfTheCopy(t);

    expect(t.sends()).toHaveLength(1);
    expect(await t.ledger().get(JOB_ID)).toMatchObject({
      status: 'delivered',
      uuid: t.sim.messages[0]?.uuid,
    });
    expect(flags().sort()).toEqual([false, true]);
  });

  it('the take-over DynamoDB applied but reported failed: the next copy holds both tokens, and the event still goes out unmarked once', async () => {
    const t = await startWithBus();
    await t.enqueue(jobBody());
    bus?.failNext(10, 'InternalException');
    await t.invoke();
    bus?.recover();
    await t.fastForward();
    let spoiled = () => 0;
    const faulty = t.createInstance({
      clients: (clients) => {
        spoiled = appliedThenRefused(clients.dynamodb, (body) => body.includes('event_token = :held'));
      },
    });
    await t.invokeWith(faulty);
    expect(spoiled()).toBe(1);

    await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

    expect(t.sends()).toHaveLength(1);
    expect(flags()).toEqual([false]);
  });

  it('a 409-delivered settlement whose event EventBridge refused, then superseded by the carried 201: its event still goes out unmarked once', async () => {
    const t = await startWithBus();
    await t.enqueue(jobBody());
    const faulty = settleThrottledInstance(t);
    // The 201's settle is refused: copy C carries it. SQS hands the original out again after the lease: the
    // attempt counts as lost, the resend meets 409 (delivered, no uuid), and EventBridge refuses that event.
    const messages = await receiveBatch({ sqs: t.sqs, queueUrl: t.sendQueue.url, waitTimeSeconds: 0 });
    const first = await invokeBatch(
      { handler: faulty, queueArn: t.sendQueue.arn, functionTimeoutMs: 60_000 },
      messages,
    );
    await deleteSucceeded({ sqs: t.sqs, queueUrl: t.sendQueue.url }, first);
    vi.setSystemTime(Date.now() + 60_500);
    bus?.failNext(10, 'InternalException');
    await invokeBatch({ handler: healthy(), queueArn: t.sendQueue.arn }, messages);
    bus?.recover();
    expect(t.sends().map((r) => r.status)).toEqual([201, 409]);

    await t.runUntilQuiet(6, () => t.invokeWith(healthy()));

    expect(await t.ledger().get(JOB_ID)).toMatchObject({
      status: 'delivered',
      uuid: t.sim.messages[0]?.uuid,
    });
    expect(flags().filter((replayed) => !replayed)).toHaveLength(1);
  });

  it('a dead letter whose event EventBridge refused: of two twins of the copy, one publishes it unmarked', async () => {
    const t = await startWithBus();
    t.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 403 } });
    await t.enqueue(jobBody());
    bus?.failNext(10, 'InternalException');
    await t.invoke();
    bus?.recover();

    await twinsOfTheCopy(t);

    expect(t.sends()).toHaveLength(1);
    expect(flags().sort()).toEqual([false, true]);
    expect(bus?.events.map((e) => e.detail)).toMatchObject([
      { outcome: 'dead_lettered', reason: 'forbidden' },
      { outcome: 'dead_lettered', reason: 'forbidden' },
    ]);
  });
});

describe('the eCourtDate Job Settled event of a message that is not the job', () => {
  it.each([['id_conflict (the same id with another text)', { content: 'Another text' }, 'id_conflict']])(
    'a delivered job, then a message with its id that is dead-lettered %s: no first verdict on the job contradicts its delivery',
    async (_, message, reason) => {
      const t = await startWithBus();
      await t.enqueue(jobBody());
      await t.invoke();
      await t.enqueue(jobBody({}, message));
      await t.invoke();

      expect(deadLetters(await t.drainDeadLetters()).map((l) => l.reason)).toEqual([reason]);
      expect(await t.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered' });
      const verdicts = (bus?.events ?? [])
        .map((e) => e.detail as { job_id: string; outcome: string; replayed?: true })
        .filter((d) => d.job_id === JOB_ID && d.replayed !== true);
      expect(verdicts.map((d) => d.outcome)).toEqual(['delivered']);
    },
  );
});

describe('a forged carried_answer', () => {
  it('a producer-forged carried_answer claiming a 201 cannot settle a job in backoff: the job is sent and the real uuid is kept', async () => {
    const t = await start();
    t.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 408 } });
    await t.enqueue(jobBody());
    await t.invoke();
    const forged = JSON.stringify({
      token: 'guessed-token',
      result: { kind: 'response', stage: 'send', status: 201, uuid: 'forged-uuid' },
      last_status: 201,
      detail: 'forged',
    });
    await t.enqueue(jobBody(), {
      [REQUEUE_ATTRIBUTE.carriedAnswer]: { DataType: 'String', StringValue: forged },
    });

    await t.runUntilQuiet(8, () => t.invokeWith(healthy()));

    expect(t.sends().map((r) => r.status)).toEqual([408, 201]);
    expect(await t.ledger().get(JOB_ID)).toMatchObject({
      status: 'delivered',
      uuid: t.sim.messages[0]?.uuid,
    });
  });

  it('a forged carried_answer with a made-up token claiming a 400 cannot dead-letter a fresh job', async () => {
    const t = await start();
    const forged = JSON.stringify({
      token: '00000000-0000-4000-8000-000000000000',
      result: { kind: 'response', stage: 'send', status: 400 },
      last_status: 400,
    });
    await t.enqueue(jobBody(), {
      [REQUEUE_ATTRIBUTE.carriedAnswer]: { DataType: 'String', StringValue: forged },
    });

    await t.runUntilQuiet(4);

    expect(t.sends().map((r) => r.status)).toEqual([201]);
    expect(await t.drainDeadLetters()).toEqual([]);
  });
});

describe('redrives', () => {
  it('a redriven message deferred twice by a 429-blocked instance and re-queued as a copy still starts its one generation', async () => {
    // Re-queue from the second receive (maxReceiveCount 4).
    const t = await start({ maxReceiveCount: 4 });
    t.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 403 } });
    await t.enqueue(jobBody());
    await t.invoke();
    const [letter] = await t.drainDeadLetters();

    // An instance blocked for five minutes by a 429 on another job.
    t.sim.script({
      match: { path: ONEOFFS },
      times: 1,
      action: { kind: 'respond', status: 429, headers: { 'Retry-After': '300' } },
    });
    const blocked = t.createInstance();
    await t.enqueue(jobBody({ id: 'other' }, { content: 'Another reminder' }));
    await t.invokeWith(blocked);
    const redriven = await t.redrive(letter ?? {});
    // First receive: deferred and hidden; second receive: deferred and re-queued as a fresh copy.
    await t.invokeWith(blocked);
    await t.fastForward(1);
    const second = await t.invokeWith(blocked);
    expect(second.deleted).toContain(redriven);
    const copy = (await t.inspect()).delayed.find((m) => JSON.parse(m.body).id === JOB_ID);
    expect(copy?.messageAttributes?.[DLQ_ATTRIBUTE.deadLetterId]?.StringValue).toBe(
      attr(letter ?? {}, DLQ_ATTRIBUTE.deadLetterId),
    );
    expect(t.sends()).toHaveLength(2);

    await t.runUntilQuiet(10, () => t.invokeWith(healthy()));

    expect(await t.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', generation: 2 });
    expect(t.sim.messages).toHaveLength(2);
    // Only the first dead letter (visible again by now): the redrive was not dead-lettered.
    expect((await t.drainDeadLetters()).map((m) => m.MessageId)).toEqual([letter?.MessageId]);
  });

  it('two copies of one dead letter redriven while the first generation of the redrive is still backing off: one more message at most, one generation', async () => {
    const t = await start();
    await t.enqueue(jobBody({}, { skip_duplicate: true }));
    t.sim.script({ match: { path: ONEOFFS }, times: 5, action: { kind: 'respond', status: 408 } });
    await t.runUntilQuiet(8);
    // A second copy of the dead letter (an upstream resend, dead-lettered again with the same token).
    await t.enqueue(jobBody({}, { skip_duplicate: true }));
    await t.runUntilQuiet(2);
    const letters = await t.drainDeadLetters();
    expect(letters.map((m) => attr(m, DLQ_ATTRIBUTE.reason))).toEqual([
      'retries_exhausted',
      'retries_exhausted',
    ]);

    // The redrive's first request answers 408 (nothing created): the generation backs off.
    t.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 408 } });
    await t.redrive(letters[0] as Message);
    await t.invoke();
    expect(await t.ledger().get(JOB_ID)).toMatchObject({ status: 'retrying', generation: 2 });
    // The operator redrives the other copy too, mid-generation.
    await t.redrive(letters[1] as Message);
    await t.runUntilQuiet(8);

    expect(t.sim.messages).toHaveLength(1);
    expect(await t.ledger().get(JOB_ID)).toMatchObject({ status: 'delivered', generation: 2 });
  });
});

describe('id_conflict and invalid_job', () => {
  it('a job dead-lettered bad_request and resent fixed under the same id is dead-lettered id_conflict, never sent, and says to give it its own id', async () => {
    const t = await start();
    t.sim.script({
      match: { path: ONEOFFS },
      times: 1,
      action: { kind: 'respond', status: 400, body: BAD_REQUEST_BODY },
    });
    await t.enqueue(jobBody({}, { to: '+1555123' }));
    await t.invoke();
    expect(deadLetters(await t.drainDeadLetters()).map((l) => l.reason)).toEqual(['bad_request']);

    await t.enqueue(jobBody({}, { to: '+15551234567' }));
    await t.runUntilQuiet(4);

    expect(deadLetters(await t.drainDeadLetters())).toEqual([
      expect.objectContaining({ reason: 'id_conflict', detail: expect.stringContaining('its own id') }),
    ]);
    expect(t.sends()).toHaveLength(1);
  });

  it("an id_conflict or invalid_job copy of a delivered job leaves the job's state in its ledger entry as it was, noting only the refused body", async () => {
    const t = await start();
    await t.enqueue(jobBody());
    await t.invoke();
    const before = await t.ledger().get(JOB_ID);
    await t.enqueue(jobBody({}, { content: 'Another text' }));
    await t.enqueue(jobBody({}, { content: 'x'.repeat(2001) }));
    await t.runUntilQuiet(4);

    expect(
      deadLetters(await t.drainDeadLetters())
        .map((l) => l.reason)
        .sort(),
    ).toEqual(['id_conflict', 'invalid_job']);
    const { refused_count, refused_body_hash, refused_at, refused_token, ...after } =
      (await t.ledger().get(JOB_ID)) ?? {};
    expect(after).toEqual(before);
    expect(refused_count).toBe(1);
    expect(t.sends()).toHaveLength(1);
  });
});

describe('log hygiene on the carried and fallback paths', () => {
  it('no message text, full phone number, bearer token or client secret in logs, copies or dead letters', async () => {
    const PHONE = '+15559871234';
    const CONTENT = 'Private: Jordan, Room 4B at 9';
    const tokens = new Set<string>();
    const base = createApiFetch();
    const fetch: FetchLike = async (input, init) => {
      const auth = new Headers(init?.headers).get('authorization');
      if (auth) tokens.add(auth.replace(/^Bearer /, ''));
      const response = await base(input, init);
      if (String(input).endsWith('/oauth/token')) {
        const text = await response.clone().text();
        const token = (JSON.parse(text) as { access_token?: string }).access_token;
        if (token) tokens.add(token);
      }
      return response;
    };
    const logs = captureLogs();
    try {
      const t = await start({ env: { POWERTOOLS_LOG_LEVEL: 'DEBUG' } });
      const echo = { message: `Rejected: ${CONTENT}`, to: PHONE };
      t.sim.script({
        match: { path: ONEOFFS },
        times: 1,
        action: createThen({ kind: 'respond', status: 503, body: echo }),
      });
      t.sim.script({
        match: { path: ONEOFFS },
        times: 1,
        action: { kind: 'respond', status: 400, body: echo },
      });
      await t.enqueue(jobBody({}, { to: PHONE, content: CONTENT }));
      const faulty = settleThrottledInstance(t, { fetch });
      await t.invokeWith(faulty);
      const copies = (await t.inspect()).delayed;
      expect(copies).toHaveLength(1);
      await t.runUntilQuiet(8, () => t.invokeWith(t.createInstance({ fetch })));
      const letters = await t.drainDeadLetters();
      expect(letters.map((m) => attr(m, DLQ_ATTRIBUTE.reason))).toEqual(['unknown_outcome']);

      const surfaces = [
        logs.text(),
        JSON.stringify(copies.map((c) => c.messageAttributes)),
        JSON.stringify(letters.map((m) => m.MessageAttributes)),
      ];
      expect(tokens.size).toBeGreaterThan(0);
      for (const text of surfaces) {
        expect(text).not.toContain('Room 4B');
        expect(text).not.toContain('5559871234');
        expect(text).not.toContain(CLIENT_SECRET);
        for (const token of tokens) expect(text).not.toContain(token);
      }
    } finally {
      logs.stop();
    }
  });
});

describe("a job's life across fresh copies", () => {
  it.each([
    ['nine producer attributes', 9],
    ['ten producer attributes', 10],
  ])(
    '%s: a job whose claim DynamoDB refuses for longer than MAX_AGE_SECONDS is dead-lettered expired, not sent, when DynamoDB recovers',
    async (_, count) => {
      const t = await start({ env: { MAX_AGE_SECONDS: '600' } });
      const producer: Record<string, MessageAttributeValue> = {};
      for (let i = 0; i < count; i++)
        producer[`tenant_attr_${i}`] = { DataType: 'String', StringValue: `v${i}` };
      await t.enqueue(jobBody(), producer);
      const down = t.createInstance({
        clients: (clients) => {
          injectDynamoFaults(clients.dynamodb, { operation: 'PutItem', kind: 'down', calls: 1_000 });
        },
      });
      // Fifteen minutes of outage: a fresh copy every minute or so.
      const until = Date.now() + 15 * 60_000;
      while (Date.now() < until) {
        await t.invokeWith(down);
        await t.fastForward();
      }

      await t.runUntilQuiet(4, () => t.invokeWith(healthy()));

      expect(t.sends()).toHaveLength(0);
      expect(deadLetters(await t.drainDeadLetters()).map((l) => l.reason)).toEqual(['expired']);
    },
  );
});

describe('waits and calls inside an attempt', () => {
  // The harness's worst-case chain after the waits (shared/sender/handler.ts): 3 sends and 3 token requests at the
  // 2 s HTTP timeout, 3 AWS calls at the SDK's limits (25 s each), and a 5 s margin.
  const AWS_CALL_MS = 25_000;
  // The sender's chain after its waits: 3 sends and 3 token requests at 2 s, the claim's two puts, two secret
  // re-reads and the settle at the SDK's limit, and a 5 s margin (shared/sender/handler.ts).
  // The api-client item's calls (the breaker's, the budget's leases) are abandoned after 1 s: 8 of them.
  const API_CLIENT_CALL_MS = 1_000;
  const CHAIN_MS = 2_000 * 3 * 2 + 5 * AWS_CALL_MS + 8 * API_CLIENT_CALL_MS + 5_000;

  it.each([
    ['the token endpoint accepts the cached secret', false],
    ['the token endpoint refuses the cached secret once (a rotation in flight)', true],
  ])(
    'the 401 path at its worst (every request at the HTTP timeout, every AWS call at its limit), %s: the attempt settles before its lease ends',
    async (_, refuseCachedSecret) => {
      const t = await start();
      // Token requests: the warm-up's, then the renewal's (refused when asked: the secret was rotated), then more.
      let tokenRequests = 0;
      t.sim.script({
        match: (req) => req.path === '/oauth/token' && ++tokenRequests === 2 && refuseCachedSecret,
        action: { kind: 'respond', status: 401 },
      });
      let leaseUntil = 0;
      let settledAt = 0;
      const base = createApiFetch();
      // Virtual time: every request takes the whole HTTP timeout, every AWS call the SDK's worst case.
      const fetch: FetchLike = async (input, init) => {
        const response = await base(input, init);
        vi.setSystemTime(Date.now() + 2_000);
        return response;
      };
      const slow = t.createInstance({
        fetch,
        clients: (clients) => {
          clients.secrets.middlewareStack.add(
            (next) => async (args) => {
              vi.setSystemTime(Date.now() + AWS_CALL_MS);
              return next(args);
            },
            { step: 'initialize', name: `slowSecrets${++middlewareCount}` },
          );
          clients.dynamodb.middlewareStack.add(
            (next) => async (args) => {
              const key = (args.input as { Key?: { id?: unknown } }).Key?.id;
              // Each at its limit: a call to the api-client item is abandoned after 1 s, any other at the SDK's.
              vi.setSystemTime(Date.now() + (key === API_CLIENT_ITEM_ID ? API_CLIENT_CALL_MS : AWS_CALL_MS));
              // The ledger's writes: the claim opens the attempt (with its lease), the settle closes it.
              const item = (args.input as { Item?: Record<string, unknown> }).Item ?? {};
              if (item.job_id === JOB_ID) {
                if (item.attempt_open === true) leaseUntil = Number(item.lease_until);
                else settledAt = Date.now();
              }
              return next(args);
            },
            { step: 'initialize', name: `slowDynamo${++middlewareCount}` },
          );
        },
      });
      // Warm the instance: its secret and token are cached.
      await t.enqueue(jobBody({ id: 'warm-up' }, { content: 'Warm-up reminder' }));
      await t.invokeWith(slow, { functionTimeoutMs: 10 * CHAIN_MS });
      t.sim.script({ match: { path: ONEOFFS }, times: 2, action: { kind: 'respond', status: 401 } });
      await t.enqueue(jobBody());

      await t.invokeWith(slow, { functionTimeoutMs: CHAIN_MS + 1_000 });

      expect(t.sends().map((r) => r.status)).toEqual([201, 401, 401, 201]);
      expect(leaseUntil).toBeGreaterThan(0);
      expect(settledAt).toBeGreaterThan(0);
      expect(settledAt).toBeLessThanOrEqual(leaseUntil);
    },
  );
});
