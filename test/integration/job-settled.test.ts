/**
 * The optional `eCourtDate Job Settled` event (docs/webhooks.md, "Events on the bus"): with PUBLISH_JOB_SETTLED
 * the real sender handler puts the relay's verdict on each settled job on the bus, at least once, through the
 * real SDK talking to the loopback EventBridge stand-in.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBridgeStub } from '#local/emulators/eventbridge-stub.ts';
import { LOCAL_RESOURCE_NAMES } from '#local/resource-names.ts';
import { JOB_SETTLED } from '#shared/sender/settled-event.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { type Harness, startHarness } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
const JOB_ID = 'cms-48213-reminder-1';
let h: Harness;
let bus: EventBridgeStub;

afterEach(async () => {
  await h?.close();
});

/** A harness whose world has the EventBridge stand-in (`bus`); the sender publishes to it when `on`. */
function start(on = true): Promise<Harness> {
  return startHarness({ jobSettledEvents: on, eventBridge: true }).then((harness) => {
    h = harness;
    bus = h.world.events as EventBridgeStub;
    return h;
  });
}

describe('eCourtDate Job Settled', () => {
  it('is published for a delivered job with its uuid and attempts, on the configured bus', async () => {
    await start();
    await h.enqueue(jobBody());

    await h.invoke();

    expect(bus.events).toHaveLength(1);
    const [event] = bus.events;
    expect(event).toMatchObject({
      eventBusName: LOCAL_RESOURCE_NAMES.eventBus,
      source: JOB_SETTLED.source,
      detailType: JOB_SETTLED.detailType,
      detail: { job_id: JOB_ID, outcome: 'delivered', attempts: 1, last_status: 201 },
    });
    expect((event?.detail as { uuid?: string } | undefined)?.uuid).toBe(h.sim.messages[0]?.uuid);
  });

  it('is published for a dead-lettered job with its reason, and never carries the text or the recipient', async () => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 403 } });
    await h.enqueue(jobBody({}, { to: '+15559871234', content: 'Private: Room 4B at 9' }));

    await h.invoke();

    expect(bus.events.map((e) => e.detail)).toMatchObject([
      { job_id: JOB_ID, outcome: 'dead_lettered', reason: 'forbidden', last_status: 403 },
    ]);
    const raw = JSON.stringify(bus.events);
    expect(raw).not.toContain('Room 4B');
    expect(raw).not.toContain('5559871234');
  });

  it('is not published for a retry: only when the job settles', async () => {
    await start();
    h.sim.script({ match: { path: ONEOFFS }, times: 1, action: { kind: 'respond', status: 503 } });
    await h.enqueue(jobBody());

    await h.invoke();
    expect(bus.events).toHaveLength(0);
    await h.fastForward();
    await h.invoke();

    expect(bus.events.map((e) => (e.detail as { outcome: string }).outcome)).toEqual(['delivered']);
  });

  it('when EventBridge refuses, a fresh copy comes back and publishes the first event (not a replay), without a second send', async () => {
    await start();
    bus.failNext(3, 'InternalException');
    await h.enqueue(jobBody());

    const first = await h.invoke();
    // Re-queued as a fresh copy: no receive of the original is spent on the outage.
    expect(first.response?.batchItemFailures).toEqual([]);
    expect(bus.events).toHaveLength(0);
    await h.fastForward();
    await h.invoke();

    expect(h.sends()).toHaveLength(1);
    expect(bus.events.map((e) => e.detail)).toEqual([expect.not.objectContaining({ replayed: true })]);
    expect(bus.events[0]?.detail).toMatchObject({ job_id: JOB_ID, outcome: 'delivered' });

    // A later upstream resend of the same job is a replay.
    await h.enqueue(jobBody());
    await h.invoke();
    expect(bus.events.map((e) => e.detail)).toMatchObject([
      { job_id: JOB_ID, outcome: 'delivered' },
      { job_id: JOB_ID, outcome: 'delivered', replayed: true },
    ]);
    expect(h.sends()).toHaveLength(1);
    expect(await h.drainDeadLetters()).toEqual([]);
  });

  it('is off by default: nothing is published and no EventBridge call is made', async () => {
    await start(false);
    await h.enqueue(jobBody());

    await h.invoke();

    expect(h.sim.messages).toHaveLength(1);
    expect(bus.calls).toEqual([]);
  });
});
