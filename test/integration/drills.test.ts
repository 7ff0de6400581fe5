import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { redriveDeadLetters } from '#cli/commands/dlq.ts';
import type { Target } from '#cli/target.ts';
import { createThen } from '#local/ecourtdate-simulator/index.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { attr, CLIENT_ID, type Harness, SECRET_ID, startHarness } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
let h: Harness;

afterEach(async () => {
  await h?.close();
});

/** The operator CLI's view of the harness's queues and secret. */
function operatorTarget(): Target {
  const local = { region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
  return {
    description: 'the drill',
    sendQueueUrl: h.sendQueue.url,
    sendQueueArn: h.sendQueue.arn,
    deadLetterQueueUrl: h.deadLetterQueue.url,
    deadLetterQueueArn: h.deadLetterQueue.arn,
    secretId: SECRET_ID,
    sqs: h.sqs,
    secrets: new SecretsManagerClient({ ...local, endpoint: h.secrets.url }),
    events: new EventBridgeClient(local),
    dynamodb: h.dynamodb.client,
  };
}

/** Lets time pass and polls until the send queue is empty; returns the number of polls. */
async function drain(limit = 100): Promise<number> {
  for (let polls = 0; polls < limit; polls++) {
    const state = await h.inspect();
    if (state.ready.length + state.inflight.length + state.delayed.length === 0) return polls;
    // Time passes as it would: only until the next retry is due, so the run stays true to the duplicate window.
    await h.fastForward('earliest');
    await h.invoke();
  }
  throw new Error(`the send queue did not drain in ${limit} polls`);
}

function jobs(count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) =>
    jobBody({ id: `drill-${i}` }, { content: `Drill reminder ${i}` }),
  );
}

/** Messages in the simulator per job content: every value must be 1. */
function messagesPerJob(): number[] {
  const counts = new Map<unknown, number>();
  for (const m of h.sim.messages) counts.set(m.body.content, (counts.get(m.body.content) ?? 0) + 1);
  return [...counts.values()];
}

describe('drills', () => {
  it('outage: 503s outlast the retry budget, jobs are dead-lettered; after recovery a redrive delivers each exactly once', async () => {
    await start();
    // Some requests reach eCourtDate before the gateway gives up (created, then 504): these must not be doubled.
    h.sim.script({
      match: { contentIncludes: 'reminder 1' },
      times: 1,
      action: createThen({ kind: 'respond', status: 504 }),
    });
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 503 } });
    for (const job of jobs(30)) await h.enqueue(job);

    await drain();
    const dead = await h.drainDeadLetters();
    expect(dead).toHaveLength(30);
    // Every attempt met a 5xx, which may have created the message: unknown_outcome, for a person to check first.
    expect(new Set(dead.map((m) => attr(m, DLQ_ATTRIBUTE.reason)))).toEqual(new Set(['unknown_outcome']));
    await returnDeadLettersToSight(dead.length);
    const createdDuringOutage = h.sim.messages.length;
    expect(createdDuringOutage).toBeGreaterThan(0);

    // eCourtDate recovers; the operator checks Console > Logs (the redrive lands inside the duplicate window, so a
    // job created during the outage answers 409) and redrives what the outage dead-lettered.
    h.sim.clearScript();
    const redrive = await redriveDeadLetters(operatorTarget(), 'unknown_outcome', { waitTimeSeconds: 0 });
    expect(redrive).toMatchObject({ kind: 'resend', moved: 30 });
    await drain();

    expect(h.sim.messages).toHaveLength(30);
    expect(messagesPerJob().every((n) => n === 1)).toBe(true);
    expect(await h.drainDeadLetters()).toEqual([]);
    // The jobs created during the outage answered 409 on the redrive and counted as delivered, not sent again.
    expect(h.sends().filter((r) => r.status === 409)).toHaveLength(createdDuringOutage);
  });

  it('rotation: the client secret changes mid-run; the relay recovers through the 401 path and loses nothing', async () => {
    await start();
    const instances = [h.createInstance(), h.createInstance()];
    for (const job of jobs(40)) await h.enqueue(job);
    await h.invokeWith(instances[0] ?? h.handler);
    await h.invokeWith(instances[1] ?? h.handler);
    const readsBefore = h.secrets.calls.length;

    // The operator rotates the API client's secret in the Console (old one rejected, its tokens revoked) and
    // puts the new one in Secrets Manager.
    const rotated = 'rotated-client-secret-4f1c9a7e2b6d3f80';
    h.sim.setClientSecret(CLIENT_ID, rotated, { revokeTokens: true });
    h.secrets.setSecret(SECRET_ID, JSON.stringify({ client_id: CLIENT_ID, client_secret: rotated }));
    for (let i = 0; i < 6; i++) await h.invokeWith(instances[i % 2] ?? h.handler);
    await drain();

    expect(h.sim.messages).toHaveLength(40);
    expect(messagesPerJob().every((n) => n === 1)).toBe(true);
    expect(await h.drainDeadLetters()).toEqual([]);
    // Each instance re-read the secret on the 401 path rather than waiting for its cache to expire.
    expect(h.secrets.calls.length - readsBefore).toBeGreaterThanOrEqual(2);
    expect(h.sim.requests.some((r) => r.path === ONEOFFS && r.status === 401)).toBe(true);
  });
});

async function start(): Promise<Harness> {
  h = await startHarness();
  return h;
}

/** `drainDeadLetters` hides what it read; make it visible again for the operator's redrive. */
async function returnDeadLettersToSight(count: number): Promise<void> {
  const state = await h.emulator.inspect(h.deadLetterQueue.name);
  expect(state.inflight).toHaveLength(count);
  for (const entry of state.inflight) {
    await h.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: h.deadLetterQueue.url,
        ReceiptHandle: entry.receiptHandle,
        VisibilityTimeout: 0,
      }),
    );
  }
}
