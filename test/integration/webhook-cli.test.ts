import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import { LOCAL_RESOURCE_NAMES, startWorld, type World } from '#local/world.ts';
import { DeliveryLedger } from '#shared/ledger/delivery.ts';
import { JobLedger } from '#shared/ledger/ledger.ts';
import { relay } from '#test/cli/run.ts';

/** The world's ledger table (local/resource-names.ts). */
const TABLE = LOCAL_RESOURCE_NAMES.ledgerTable;
/** 2026-12-01T15:00:00.000Z */
const T0 = Date.UTC(2026, 11, 1, 15, 0, 0);
const UUID = '9e4f1c2a-7b3d-4c5e-8f6a-0b1c2d3e4f5a';

let world: World;
let db: DynamoDbEmulator;

/** A job the sender delivered (claim, then settle with the 201's uuid), as the ledger holds it. */
async function deliveredJob(jobId: string): Promise<void> {
  const ledger = new JobLedger({ client: db.client, tableName: TABLE, ttlSeconds: 86_400 });
  const claim = await ledger.claim({
    jobId,
    bodyHash: `hash-${jobId}`,
    messageId: `msg-${jobId}`,
    now: T0,
    leaseUntil: T0 + 60_000,
  });
  if (claim.kind !== 'claimed') throw new Error(`expected a claim, got ${claim.kind}`);
  await ledger.settle({
    entry: claim.entry,
    now: T0 + 500,
    messageId: `msg-${jobId}`,
    attempt: {
      sent: true,
      retryable: false,
      serverError500: false,
      rateLimited: false,
      notSent: false,
      unknownOutcome: false,
    },
    lastStatus: '201',
    outcome: { type: 'delivered', uuid: UUID },
  });
}

function job(id: string, ...extra: string[]) {
  return relay('job', id, '--ledger-table', TABLE, '--dynamodb-endpoint', db.endpoint, ...extra);
}

beforeAll(async () => {
  world = await startWorld({ webhooks: true });
  db = world.dynamodb;
  const delivery = new DeliveryLedger({ client: db.client, tableName: TABLE, ttlSeconds: 86_400 });
  await deliveredJob('cms-failed');
  await delivery.recordDeliveryStatus('cms-failed', {
    status: 'sent',
    at: T0 + 2_000,
    received_at: T0 + 2_100,
    webhook_uuid: 'w-sent',
    message_uuid: UUID,
  });
  await delivery.recordDeliveryStatus('cms-failed', {
    status: 'failed',
    raw_status: 'undelivered',
    at: T0 + 9_000,
    received_at: T0 + 9_100,
    webhook_uuid: 'w-failed',
    message_uuid: UUID,
  });
  await deliveredJob('cms-quiet');
});

afterAll(async () => {
  await world?.close();
});

describe('relay job ID with webhooks', () => {
  it('shows the delivery status and its history, oldest first', async () => {
    const run = await job('cms-failed');

    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^delivery status\s+failed$/m);
    expect(run.stdout).toContain('Delivery (eCourtDate webhooks), oldest first:');
    expect(run.stdout).toMatch(/^2026-12-01T15:00:02\.000Z\s+sent\s+w-sent$/m);
    expect(run.stdout).toMatch(/^2026-12-01T15:00:09\.000Z\s+failed\s+undelivered\s+w-failed$/m);
  });

  it('prints them in --json as delivery_status and delivery_history', async () => {
    const run = await job('cms-failed', '--json');

    expect(JSON.parse(run.stdout)).toMatchObject({
      status: 'delivered',
      uuid: UUID,
      delivery_status: 'failed',
      delivery_history: [
        { at: '2026-12-01T15:00:02.000Z', status: 'sent', raw_status: null, webhook_uuid: 'w-sent' },
        {
          at: '2026-12-01T15:00:09.000Z',
          status: 'failed',
          raw_status: 'undelivered',
          webhook_uuid: 'w-failed',
        },
      ],
    });
  });

  it('says so when no webhook has named the job’s message', async () => {
    const run = await job('cms-quiet');

    expect(run.stdout).toMatch(/^delivery status\s+- \(no webhook has named the message\)$/m);
    expect(run.stdout).not.toContain('Delivery (eCourtDate webhooks)');
  });
});
