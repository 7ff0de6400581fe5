/**
 * What the chaos suite found in the sender, each reduced to the smallest reproduction against the real handler
 * (test/helpers/relay-harness.ts): fixed findings as regression tests, and the one documented limit (DynamoDB and
 * SQS refusing at once) as a test of what the relay does then. The last finding (a Job Settled event published
 * twice unmarked by two twins of one copy) is reproduced in test/integration/fault-combinations.test.ts. No
 * finding is open: the chaos checks tolerate none.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBridgeStub } from '#local/emulators/eventbridge-stub.ts';
import { JOB_SETTLED } from '#shared/sender/settled-event.ts';
import { injectDynamoFaults } from '#test/helpers/dynamo-faults.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { attr, type Harness, startHarness } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
let h: Harness | undefined;
let bus: EventBridgeStub | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
  bus = undefined;
});

async function start(): Promise<{ h: Harness; bus: EventBridgeStub }> {
  h = await startHarness({ jobSettledEvents: true });
  bus = h.world.events as EventBridgeStub;
  return { h, bus };
}

/** `replayed` of each Job Settled event published so far, in order. */
function replayedFlags(stub: EventBridgeStub): (boolean | undefined)[] {
  return stub.events
    .filter((event) => event.detailType === JOB_SETTLED.detailType)
    .map((event) => (event.detail as { replayed?: boolean }).replayed);
}

describe('sender findings of the chaos suite', () => {
  it('a copy of a dead-lettered job, dead-lettered again, publishes its Job Settled event as replayed', async () => {
    const { h, bus } = await start();
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 403 } });
    await h.enqueue(jobBody());
    await h.invoke();
    // An upstream resend of the same job: dead-lettered again without a send, its verdict already published.
    await h.enqueue(jobBody());
    await h.invoke();

    expect(h.sends()).toHaveLength(1);
    expect((await h.drainDeadLetters()).length).toBe(2);
    expect(replayedFlags(bus)).toEqual([undefined, true]);
  });

  it('a fresh copy made because a replayed Job Settled event could not go out publishes it as replayed', async () => {
    const { h, bus } = await start();
    await h.enqueue(jobBody());
    await h.invoke();
    expect(replayedFlags(bus)).toEqual([undefined]);
    // An upstream resend of the delivered job meets an EventBridge outage: its replay is re-queued as a copy.
    bus.failNext(3, 'InternalException');
    await h.enqueue(jobBody());
    await h.invoke();
    await h.fastForward();
    await h.invoke();

    expect(h.sends()).toHaveLength(1);
    expect(replayedFlags(bus)).toEqual([undefined, true]);
  });

  it('a Job Settled event whose fresh copy is re-queued again (its claim refused) still goes out unmarked once', async () => {
    const { h, bus } = await start();
    bus.failNext(3, 'InternalException');
    await h.enqueue(jobBody());
    // Delivered; the event cannot go out: a fresh copy is to publish it.
    await h.invoke();
    expect(replayedFlags(bus)).toEqual([]);
    // That copy's claim is refused (DynamoDB throttles it on every try): it is re-queued as a copy again.
    await h.fastForward();
    const refused = h.createInstance({
      clients: (clients) =>
        injectDynamoFaults(clients.dynamodb, { operation: 'PutItem', kind: 'down', calls: 1 }),
    });
    await h.invokeWith(refused);
    await h.fastForward();
    await h.invoke();

    expect(h.sends()).toHaveLength(1);
    // The event's first (and only) publication: not a replay.
    expect(replayedFlags(bus)).toEqual([undefined]);
  });

  // A documented limit (docs/contract.md): with DynamoDB and SQS both refusing, the answer lives only in the
  // invocation's memory. The record comes back without it after the queue's visibility timeout, the attempt counts
  // as lost, and the resend meets 409: delivered without its uuid (or dead-lettered unknown_outcome with
  // skip_duplicate), never sent twice. The chaos figures count these jobs (`lost_to_double_faults`).
  it('a 201 whose settle is throttled and whose carrying copy SQS refuses is delivered once, its uuid lost with both dependencies down', async () => {
    ({ h } = await start());
    const harness = h;
    const instance = harness.createInstance({
      clients: (clients) => {
        injectDynamoFaults(clients.dynamodb, {
          operation: 'PutItem',
          match: (body) => body.includes('"delivered"'),
          kind: 'throttled',
          calls: 1,
        });
        // SQS refuses this instance's SendMessage and ChangeMessageVisibility (an outage): the copy carrying the
        // answer cannot be made, nor the record hidden.
        clients.sqs.middlewareStack.add(
          (next, context) => async (args) => {
            const command = (context as { commandName?: string }).commandName ?? '';
            if (command === 'SendMessageCommand' || command === 'ChangeMessageVisibilityCommand') {
              throw Object.assign(new Error('Service unavailable'), {
                name: 'ServiceUnavailable',
                $fault: 'server',
                $metadata: { httpStatusCode: 503 },
              });
            }
            return next(args);
          },
          { step: 'initialize', name: 'findingSqsOutage' },
        );
      },
    });
    await harness.enqueue(jobBody());
    await harness.invokeWith(instance);
    // The record was left on the queue; it comes back after the queue's visibility timeout, to a sound instance.
    await harness.runUntilQuiet(5);

    expect(harness.sim.messages).toHaveLength(1);
    expect(harness.sends().map((r) => r.status)).toEqual([201, 409]);
    expect(await harness.ledger().get('cms-48213-reminder-1')).toMatchObject({ status: 'delivered' });
  });

  // Found when the copy of a refused claim carried only that claim's token, in place of the attempt the record
  // carried (nothing sent, its settle not written): the attempt still open was no longer anyone's once its lease
  // ended, so it counted as lost, an unknown outcome, though no request ever left.
  it('a job that never sent anything is never dead-lettered unknown_outcome, whichever of its ledger writes DynamoDB refuses', async () => {
    ({ h } = await start());
    const harness = h;
    await harness.enqueue(jobBody({ expires_at: new Date(Date.now() - 60_000).toISOString() }));
    // Expired before it arrives: claimed, then settled dead-lettered `expired`, a settle DynamoDB throttles.
    const settleThrottled = harness.createInstance({
      clients: (clients) =>
        injectDynamoFaults(clients.dynamodb, {
          operation: 'PutItem',
          match: (body) => body.includes('"dead_lettered"'),
          kind: 'throttled',
          calls: 1,
        }),
    });
    await harness.invokeWith(settleThrottled);
    await harness.fastForward();
    // The fresh copy carrying that attempt meets DynamoDB refusing its claim.
    const claimRefused = harness.createInstance({
      clients: (clients) =>
        injectDynamoFaults(clients.dynamodb, { operation: 'PutItem', kind: 'down', calls: 1 }),
    });
    await harness.invokeWith(claimRefused);
    await harness.runUntilQuiet(10);

    expect(harness.sends()).toHaveLength(0);
    const letters = await harness.drainDeadLetters();
    expect(letters.map((letter) => attr(letter, 'reason'))).toEqual(['expired']);
  });

  // Fixed: the copy of a refused claim carries the chain's earlier unanswered claim tokens (up to
  // CLAIM_TOKENS_CARRIED, half an hour of refusals a minute apart), so the attempt still open in the ledger stays
  // the chain's own through a 10-minute outage, and is never counted lost though nothing was sent.
  it('a job that never sent anything is never dead-lettered unknown_outcome, however often DynamoDB refuses its claim', async () => {
    ({ h } = await start());
    const harness = h;
    await harness.enqueue(jobBody({ expires_at: new Date(Date.now() - 60_000).toISOString() }));
    const settleThrottled = harness.createInstance({
      clients: (clients) =>
        injectDynamoFaults(clients.dynamodb, {
          operation: 'PutItem',
          match: (body) => body.includes('"dead_lettered"'),
          kind: 'throttled',
          calls: 1,
        }),
    });
    await harness.invokeWith(settleThrottled);
    // DynamoDB stays down: each fresh copy's claim is refused, five times in a row.
    for (let refusal = 0; refusal < 5; refusal++) {
      await harness.fastForward();
      const claimRefused = harness.createInstance({
        clients: (clients) =>
          injectDynamoFaults(clients.dynamodb, { operation: 'PutItem', kind: 'down', calls: 1 }),
      });
      await harness.invokeWith(claimRefused);
    }
    await harness.runUntilQuiet(10);

    expect(harness.sends()).toHaveLength(0);
    const letters = await harness.drainDeadLetters();
    expect(letters.map((letter) => attr(letter, 'reason'))).toEqual(['expired']);
  });
});
