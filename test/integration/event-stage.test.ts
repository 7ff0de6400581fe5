/**
 * Outbound events say which stage they come from (docs/webhooks.md, "Events on the bus"): a deployed function's
 * `RELAY_STAGE` goes into every detail as `stage`, through the real SDK to a loopback EventBridge.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type EventBridgeStub, startEventBridgeStub } from '#local/emulators/eventbridge-stub.ts';
import { createEventBridgeClient } from '#shared/clients/aws.ts';
import { JobSettledPublisher } from '#shared/sender/settled-event.ts';
import { DETAIL_TYPE, PayloadText } from '#shared/webhook/events.ts';
import { EventPublisher } from '#shared/webhook/publish.ts';

let bus: EventBridgeStub | undefined;

afterEach(async () => {
  await bus?.close();
  bus = undefined;
});

async function client() {
  bus = await startEventBridgeStub();
  return createEventBridgeClient(
    { endpoints: { eventBridge: bus.url } },
    { region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } },
  );
}

const SETTLED = {
  job_id: 'cms-48213-reminder-1',
  outcome: 'delivered' as const,
  attempts: 1,
  settled_at: '2026-12-07T08:00:00.000Z',
};

describe('the stage in outbound events', () => {
  it.each([
    ['production', { stage: 'production' }],
    [undefined, {}],
  ])('eCourtDate Job Settled from stage %s', async (stage, expected) => {
    const events = await client();
    const publisher = new JobSettledPublisher({ client: async () => events, busName: 'relay-bus', stage });

    expect(await publisher.publish(SETTLED)).toEqual({ ok: true });

    expect(bus?.events.map((e) => e.detail)).toEqual([{ ...SETTLED, ...expected }]);
    events.destroy();
  });

  it('the webhook receiver’s events, the raw payload kept as written', async () => {
    const events = await client();
    const publisher = new EventPublisher({ client: events, eventBusName: 'relay-bus', stage: 'staging' });
    const detail = {
      webhook_uuid: 'w-1',
      kind: 'message_status' as never,
      type: null,
      direction: 'outbound' as const,
      channel: 'text',
      status: 'delivered' as const,
      raw_status: 'delivered',
      message_uuid: 'm-1',
      created_at: null,
      received_at: '2026-12-07T08:00:00.000Z',
      payload: new PayloadText('{"id":12345678901234567890}'),
    };

    const outcome = await publisher.publish([
      { key: 'webhook', detailType: DETAIL_TYPE.messageStatus, detail },
    ]);

    expect(outcome.ok).toBe(true);
    expect(bus?.events[0]?.detail).toMatchObject({ webhook_uuid: 'w-1', stage: 'staging' });
    events.destroy();
  });
});
