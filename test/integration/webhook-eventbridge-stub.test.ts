import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EventBridgeStub, startEventBridgeStub } from '#local/emulators/eventbridge-stub.ts';

const entry = (detail: object, detailType = 'eCourtDate Webhook') => ({
  EventBusName: 'relay-bus',
  Source: 'ecourtdate-relay',
  DetailType: detailType,
  Detail: JSON.stringify(detail),
});

describe('EventBridge stub, driven by the real SDK client', () => {
  let stub: EventBridgeStub;
  let client: EventBridgeClient;

  beforeEach(async () => {
    stub = await startEventBridgeStub();
    client = new EventBridgeClient({
      endpoint: stub.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
  });

  afterEach(async () => {
    client.destroy();
    await stub.close();
  });

  it('records the events of a PutEvents call and answers an EventId per entry', async () => {
    const out = await client.send(
      new PutEventsCommand({ Entries: [entry({ a: 1 }), entry({ b: 2 }, 'Other')] }),
    );

    expect(out.FailedEntryCount).toBe(0);
    expect(out.Entries?.map((e) => e.EventId)).toEqual(stub.events.map((e) => e.eventId));
    expect(stub.events.map((e) => [e.eventBusName, e.source, e.detailType, e.detail])).toEqual([
      ['relay-bus', 'ecourtdate-relay', 'eCourtDate Webhook', { a: 1 }],
      ['relay-bus', 'ecourtdate-relay', 'Other', { b: 2 }],
    ]);
    expect(stub.calls).toEqual([{ target: 'AWSEvents.PutEvents', entries: 2 }]);
  });

  it('fails a whole call with the modelled exception when told to', async () => {
    stub.failNext(1, 'InternalException');

    const error = await client.send(new PutEventsCommand({ Entries: [entry({})] })).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'InternalException', $metadata: { httpStatusCode: 500 } });
    expect(stub.events).toEqual([]);
  });

  it('refuses the chosen entries with a FailedEntryCount and accepts the others', async () => {
    stub.failEntriesNext(1, { select: (_, index) => index === 1 });

    const out = await client.send(new PutEventsCommand({ Entries: [entry({ a: 1 }), entry({ b: 2 })] }));

    expect(out.FailedEntryCount).toBe(1);
    expect(out.Entries?.[0]?.EventId).toBeDefined();
    expect(out.Entries?.[1]).toMatchObject({ ErrorCode: 'InternalFailure' });
    expect(stub.events.map((e) => e.detail)).toEqual([{ a: 1 }]);
  });

  it('refuses an entry whose Detail is not a JSON object, as EventBridge does', async () => {
    const out = await client.send(
      new PutEventsCommand({ Entries: [{ Source: 's', DetailType: 'd', Detail: '[1]' }] }),
    );

    expect(out.FailedEntryCount).toBe(1);
    expect(out.Entries?.[0]?.ErrorCode).toBe('MalformedDetail');
  });

  it('hands each accepted event to subscribers', async () => {
    const seen: unknown[] = [];
    stub.subscribe((event) => seen.push(event.detail));

    await client.send(new PutEventsCommand({ Entries: [entry({ a: 1 })] }));

    expect(seen).toEqual([{ a: 1 }]);
  });
});
