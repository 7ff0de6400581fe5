/**
 * What the relay publishes validates against its schema in `schemas/` (docs/contract.md, "The event contract"):
 * the events are built by the real handlers (the sender's `eCourtDate Job Settled`, the webhook receiver's
 * message status, inbound message, webhook and job delivery status events) and captured as PutEvents entries by
 * the EventBridge stand-in.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { EVENT_SCHEMA_FILES } from '#infra/event-schemas.ts';
import type { EventBridgeStub, PublishedEvent } from '#local/emulators/eventbridge-stub.ts';
import { STAGE_ENV } from '#shared/metric-names.ts';
import { errorsOf, schemaValidators } from '#test/helpers/event-schemas.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { type Harness, startHarness } from '#test/helpers/relay-harness.ts';
import { startWebhookHarness, type WebhookHarness } from '#test/helpers/webhook-harness.ts';

const validators = schemaValidators();
const ONEOFFS = '/v1/messages/oneoffs';

/** The published events that break their detail-type's schema, each with Ajv's errors; [] when all conform. */
function nonConforming(events: readonly PublishedEvent[]): string[] {
  return events.flatMap((event) => {
    const entry = EVENT_SCHEMA_FILES.find(
      (e) => e.describes === 'event' && e.detailType === event.detailType,
    );
    const validate = entry && validators.get(entry.file);
    if (!validate) return [`${event.detailType}: no schema for this detail-type`];
    const ok = validate({ source: event.source, 'detail-type': event.detailType, detail: event.detail });
    return ok
      ? []
      : [`${event.detailType}: ${errorsOf(validate).join('; ')} in ${JSON.stringify(event.detail)}`];
  });
}

describe('eCourtDate Job Settled, as the sender publishes it', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  async function settledEvents(run: (harness: Harness) => Promise<void>): Promise<readonly PublishedEvent[]> {
    h = await startHarness({ jobSettledEvents: true, eventBridge: true, env: { [STAGE_ENV]: 'staging' } });
    await run(h);
    return (h.world.events as EventBridgeStub).events;
  }

  it('conforms for a delivered job, and for its replay', async () => {
    const events = await settledEvents(async (harness) => {
      await harness.enqueue(jobBody());
      await harness.invoke();
      await harness.enqueue(jobBody());
      await harness.invoke();
    });
    expect(events.map((e) => (e.detail as { replayed?: true }).replayed)).toEqual([undefined, true]);
    expect(events.map((e) => (e.detail as { stage?: string }).stage)).toEqual(['staging', 'staging']);
    expect(nonConforming(events)).toEqual([]);
  });

  it('conforms for a duplicate (409 with no earlier unknown outcome)', async () => {
    const events = await settledEvents(async (harness) => {
      harness.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 409 } });
      await harness.enqueue(jobBody());
      await harness.invoke();
    });
    expect(events.map((e) => (e.detail as { outcome: string }).outcome)).toEqual(['duplicate']);
    expect(nonConforming(events)).toEqual([]);
  });

  it('conforms for a dead-lettered job, and for a body too broken to carry an id (job_id null)', async () => {
    const events = await settledEvents(async (harness) => {
      harness.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 403 } });
      await harness.enqueue(jobBody());
      await harness.enqueue('not a job');
      await harness.invoke();
    });
    expect(events.map((e) => e.detail)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ reason: 'forbidden' }),
        expect.objectContaining({ job_id: null, reason: 'invalid_job' }),
      ]),
    );
    expect(nonConforming(events)).toEqual([]);
  });

  it('conforms for an unknown outcome dead-lettered after a timeout-like 504', async () => {
    const events = await settledEvents(async (harness) => {
      harness.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 504 } });
      await harness.enqueue(jobBody({}, { skip_duplicate: true }));
      await harness.invoke();
    });
    expect(events.map((e) => e.detail)).toMatchObject([{ reason: 'unknown_outcome', last_status: 504 }]);
    expect(nonConforming(events)).toEqual([]);
  });
});

describe('the webhook receiver’s events', () => {
  let h: WebhookHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('conform for a status update of the relay’s message, a reply to it and any other webhook', async () => {
    h = await startWebhookHarness({ env: { [STAGE_ENV]: 'production' } });
    const messageUuid = randomUUID();
    await h.seedDeliveredJob('cms-48213-reminder-1', messageUuid);
    const posts = [
      {
        uuid: randomUUID(),
        direction: 'outbound',
        channel: 'text',
        message_uuid: messageUuid,
        last_status: 'undelivered',
      },
      { uuid: randomUUID(), direction: 'outbound', channel: 'email', last_status: 'opened by Jordan' },
      {
        uuid: randomUUID(),
        direction: 'inbound',
        channel: 'text',
        from: '+15551234567',
        content: 'YES',
        reply_to: messageUuid,
      },
      {
        uuid: randomUUID(),
        direction: 'inbound',
        channel: 'text',
        from: '+15551234567',
        content: 'Who is this?',
      },
      `{"uuid":"${randomUUID()}","type":"payment.created","amount":12345678901234567890,"created_at":"2026-12-01T16:00:00Z"}`,
      { no_uuid: true, nested: { deep: [1, 2, { x: null }] } },
    ];
    for (const body of posts) expect((await h.post(body)).status).toBe(200);

    const types = new Set(h.events.events.map((e) => e.detailType));
    expect([...types].sort()).toEqual([
      'eCourtDate Inbound Message',
      'eCourtDate Job Delivery Status',
      'eCourtDate Message Status',
      'eCourtDate Webhook',
    ]);
    expect(nonConforming(h.events.events)).toEqual([]);
  });
});
