import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createSimulatorWebhooks,
  type SimulatorWebhooks,
  WEBHOOK_FAILED_RECIPIENT,
  WEBHOOK_REPLY_RECIPIENT,
} from '#local/ecourtdate-simulator/webhooks.ts';
import { describeDelivery, type LocalWebhooks, startLocalWebhooks } from '#local/pipeline/webhook-local.ts';
import { DeliveryLedger } from '#shared/ledger/delivery.ts';
import { DETAIL_TYPE } from '#shared/webhook/events.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { type Harness, LEDGER_TABLE, startHarness } from '#test/helpers/relay-harness.ts';

/**
 * The whole loop on loopback: the real sender delivers jobs to the simulated eCourtDate, which sends signed
 * webhooks for the messages it created to the real receiver, which records each job's delivery status.
 */
let h: Harness;
let webhooks: SimulatorWebhooks;
let receiver: LocalWebhooks;
/** Closed until the uuid index is written, as an endpoint eCourtDate cannot reach yet: its deliveries retry. */
let open = false;

const JOBS = [
  jobBody({ id: 'reached' }, { to: '+15551230001' }),
  jobBody({ id: 'carrier-failed' }, { to: WEBHOOK_FAILED_RECIPIENT }),
  jobBody({ id: 'answered' }, { to: WEBHOOK_REPLY_RECIPIENT }),
];

beforeAll(async () => {
  webhooks = createSimulatorWebhooks({
    url: () => (open ? receiver?.url : undefined),
    secret: 'relay-local-webhook-0001',
    stepMs: 10,
    retryDelayMs: 100,
    maxAttempts: 20,
  });
  h = await startHarness({ simulator: { onMessageCreated: webhooks.onMessageCreated }, webhooks: true });
  receiver = await startLocalWebhooks({ world: h.world });
  for (const job of JOBS) await h.enqueue(job);
  await h.invoke();
  // What the sender does at settle time when webhooks are on: one index item per delivered job.
  const doc = DynamoDBDocumentClient.from(h.dynamodb.client);
  const index = new DeliveryLedger({
    client: h.dynamodb.client,
    tableName: LEDGER_TABLE,
    ttlSeconds: 86_400,
  });
  for (const job of JOBS) {
    const entry = await doc.send(new GetCommand({ TableName: LEDGER_TABLE, Key: { id: `job#${job.id}` } }));
    await index.putUuidIndex(entry.Item?.uuid as string, job.id as string);
  }
  open = true;
  await webhooks.idle();
}, 60_000);

afterAll(async () => {
  webhooks?.stop();
  await receiver?.close();
  await h?.close();
});

it('records sent then delivered on a job whose message reached the person', async () => {
  const delivery = await receiver.deliveryOf('reached');

  expect(delivery?.delivery_status).toBe('delivered');
  expect(describeDelivery(delivery)).toBe('delivered (sent → delivered)');
});

it('records failed on a job whose message the carrier refused', async () => {
  expect(describeDelivery(await receiver.deliveryOf('carrier-failed'))).toBe('failed (sent → failed)');
});

it('records replied on a job whose recipient answered', async () => {
  expect(describeDelivery(await receiver.deliveryOf('answered'))).toBe(
    'replied (sent → delivered → replied)',
  );
});

it('answers the redelivered update 200 and the forged copy 401', () => {
  const repeat = webhooks.deliveries.find((d) => d.repeat);
  const forged = webhooks.deliveries.find((d) => d.forged);

  expect(repeat?.attempts.at(-1)).toBe(200);
  expect(forged?.attempts).toEqual([401]);
});

it('puts each delivery on the bus once, with a job delivery status for each update of the relay’s messages', () => {
  const genuine = webhooks.deliveries.filter((d) => !d.forged && !d.repeat);
  const published = receiver.events.events.filter((e) => e.detailType !== DETAIL_TYPE.jobDeliveryStatus);
  const jobStatuses = receiver.events.events.filter((e) => e.detailType === DETAIL_TYPE.jobDeliveryStatus);

  expect(published.map((e) => (e.detail as { webhook_uuid: string }).webhook_uuid).sort()).toEqual(
    genuine.map((d) => d.uuid).sort(),
  );
  expect(
    jobStatuses
      .map((e) => e.detail as { job_id: string; status: string })
      .map((d) => `${d.job_id}:${d.status}`)
      .sort(),
  ).toEqual([
    'answered:delivered',
    'answered:replied',
    'answered:sent',
    'carrier-failed:failed',
    'carrier-failed:sent',
    'reached:delivered',
    'reached:sent',
  ]);
});
