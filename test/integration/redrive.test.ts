/**
 * A redrive is one decision, tied to one dead letter (docs/contract.md; docs/ledger.md, "Redrives"): whatever number of
 * copies carry a dead letter's redrive token, at most one starts a new generation; every other copy is
 * dead-lettered again without a send, and copies the sender makes itself never redrive a job. Driven through the
 * real sender handler against the strict SQS layer, the simulator, the Secrets Manager stand-in and dynalite.
 */
import type { Message } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { createThen } from '#local/ecourtdate-simulator/index.ts';
import { invokeBatch, receiveBatch } from '#local/lambda/event-source.ts';
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

const reasons = (messages: Message[]) => messages.map((m) => attr(m, DLQ_ATTRIBUTE.reason));

/** A skip_duplicate job whose first request answers 503 (nothing created): dead-lettered unknown_outcome. */
async function deadLetterOnce(): Promise<void> {
  h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 503 } });
  await h.enqueue(jobBody({}, { skip_duplicate: true }));
  await h.runUntilQuiet(4);
}

describe('a redrive starts at most one generation per dead letter', () => {
  it('two copies of one dead letter redriven together: one new generation, the other copy dead-lettered again, one message', async () => {
    await start();
    await deadLetterOnce();
    // An upstream resend of the dead-lettered job: the relay puts a second copy on the dead-letter queue itself.
    await h.enqueue(jobBody({}, { skip_duplicate: true }));
    await h.runUntilQuiet(4);
    const letters = await h.drainDeadLetters();
    expect(reasons(letters)).toEqual(['unknown_outcome', 'unknown_outcome']);
    expect(new Set(letters.map((m) => attr(m, DLQ_ATTRIBUTE.deadLetterId))).size).toBe(1);

    // The redriven generation's request creates the message, then answers 503: with skip_duplicate it is
    // dead-lettered unknown_outcome at once. The second copy must not start yet another generation.
    h.sim.script({ match: { path: ONEOFFS }, action: createThen({ kind: 'respond', status: 503 }) });
    for (const letter of letters) await h.redrive(letter);
    await h.runUntilQuiet(6);

    expect(h.sends()).toHaveLength(2);
    expect(h.sim.messages).toHaveLength(1);
    expect(reasons(await h.drainDeadLetters())).toEqual(['unknown_outcome', 'unknown_outcome']);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'dead_lettered', generation: 2 });
  });

  it('a redriven message whose acknowledgement was lost comes back after its own fresh copy dead-lettered the job again: not sent', async () => {
    // The fresh copy is made on the second receive (maxReceiveCount 4: re-queue from 2 receives).
    await start({ maxReceiveCount: 4 });
    await deadLetterOnce();
    const [letter] = await h.drainDeadLetters();
    h.sim.script({ match: { path: ONEOFFS }, times: 2, action: { kind: 'respond', status: 429 } });
    h.sim.script({ match: { path: ONEOFFS }, action: createThen({ kind: 'respond', status: 503 }) });
    const redriven = await h.redrive(letter ?? {});

    // First receive: a 429, hidden for the wait.
    await h.invokeWith(h.createInstance());
    await h.fastForward();
    // Second receive: a 429 again, re-queued as a fresh copy; the redriven message's acknowledgement is lost.
    const messages = await receiveBatch({ sqs: h.sqs, queueUrl: h.sendQueue.url, waitTimeSeconds: 0 });
    expect(messages.map((m) => m.MessageId)).toEqual([redriven]);
    const second = await invokeBatch({ handler: h.createInstance(), queueArn: h.sendQueue.arn }, messages);
    expect(second.failed).toEqual([]);
    const copy = (await h.inspect()).delayed[0];
    expect(copy?.messageId).not.toBe(redriven);
    // The copy the sender made carries no authority to redrive.
    expect(copy?.messageAttributes?.[DLQ_ATTRIBUTE.deadLetterId]).toBeUndefined();

    // The copy's attempt creates the message and answers 503: dead-lettered again (skip_duplicate).
    await h.fastForward('earliest');
    await h.invokeWith(h.createInstance());
    expect(h.sim.messages).toHaveLength(1);
    // Then the redriven message comes back, its acknowledgement lost.
    await h.runUntilQuiet(4, () => h.invokeWith(h.createInstance()));

    expect(h.sim.messages).toHaveLength(1);
    expect(h.sends().map((r) => r.status)).toEqual([503, 429, 429, 503]);
    // Every dead letter (the first one is visible again by now) says why; the job stays in generation 2.
    expect(new Set(reasons(await h.drainDeadLetters()))).toEqual(new Set(['unknown_outcome']));
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'dead_lettered', generation: 2 });
  });

  it('a forged marker (a dead_letter_id the ledger never issued) is dead-lettered again, never sent', async () => {
    await start();
    await deadLetterOnce();
    await h.drainDeadLetters();

    await h.enqueue(jobBody({}, { skip_duplicate: true }), {
      [DLQ_ATTRIBUTE.reason]: { DataType: 'String', StringValue: 'unknown_outcome' },
      [DLQ_ATTRIBUTE.deadLetteredAt]: { DataType: 'String', StringValue: new Date().toISOString() },
      [DLQ_ATTRIBUTE.deadLetterId]: { DataType: 'String', StringValue: 'forged-token' },
    });
    await h.runUntilQuiet(4);

    expect(h.sends()).toHaveLength(1);
    expect(reasons(await h.drainDeadLetters())).toEqual(['unknown_outcome']);
  });

  it('the redrive of a dead letter starts a new generation with a fresh budget; redriving the same dead letter again does not', async () => {
    await start();
    await deadLetterOnce();
    const [letter] = await h.drainDeadLetters();

    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 503 } });
    await h.redrive(letter ?? {});
    await h.runUntilQuiet(4);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'dead_lettered', generation: 2 });
    await h.drainDeadLetters();

    // The operator redrives the first dead letter a second time (an old copy kept aside).
    await h.redrive(letter ?? {});
    await h.runUntilQuiet(4);

    expect(h.sends()).toHaveLength(2);
    expect(await h.ledger().get(JOB_ID)).toMatchObject({ status: 'dead_lettered', generation: 2 });
    expect(reasons(await h.drainDeadLetters())).toEqual(['unknown_outcome']);
  });
});
