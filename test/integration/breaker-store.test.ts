/**
 * The circuit breaker's shared state in the ledger table's `api-client` item (docs/ledger.md, "The api-client
 * item"), against DynamoDB's emulator: each write is conditional, so two instances never both open it, both take
 * a probe, or close an opening that came after theirs.
 */
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DynamoDbEmulator, startDynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import { CLOSED, openedBy, probeClaimed } from '#shared/ecourtdate/breaker.ts';
import { breakerViewOf, DynamoBreakerStore } from '#shared/ledger/breaker-store.ts';
import { API_CLIENT_ITEM_ID, LEDGER_TABLE_KEY } from '#shared/ledger/schema.ts';

let dynamo: DynamoDbEmulator;
let table = 0;

beforeAll(async () => {
  dynamo = await startDynamoDbEmulator();
});
afterAll(async () => {
  await dynamo?.stop();
});

async function store(): Promise<DynamoBreakerStore> {
  const tableName = `breaker-${++table}`;
  await dynamo.createLedgerTable(tableName);
  return new DynamoBreakerStore({ client: dynamo.client, tableName });
}

const T0 = 1_800_000_000_000;

describe('the breaker in the api-client item', () => {
  it('reads closed when the item does not exist yet', async () => {
    expect(await (await store()).read()).toEqual(CLOSED);
  });

  it('opens once: a second opening finds the first and keeps it', async () => {
    const s = await store();
    const first = openedBy({ kind: 'failure' }, T0, 1);
    const second = openedBy({ kind: 'auth' }, T0 + 5, 1);
    expect(await s.open(first)).toEqual(first);
    expect(await s.open(second)).toEqual(first);
    expect(await s.read()).toEqual(first);
  });

  it('one claim of a due probe wins; the other gets the state the winner wrote', async () => {
    const s = await store();
    const open = openedBy({ kind: 'failure' }, T0, 1);
    await s.open(open);
    const next = probeClaimed(open, open.probeAt, 1);
    const [a, b] = [
      await s.claimProbe(open, next),
      await s.claimProbe(open, probeClaimed(open, open.probeAt + 1, 1)),
    ];
    expect(a).toEqual({ claimed: true, view: next });
    expect(b).toEqual({ claimed: false, view: next });
  });

  it('closes the opening it probed, not one that came after', async () => {
    const s = await store();
    const open = openedBy({ kind: 'failure' }, T0, 1);
    await s.open(open);
    expect(await s.close(open, T0 + 60_000)).toEqual(CLOSED);
    const reopened = openedBy({ kind: 'failure' }, T0 + 70_000, 1);
    await s.open(reopened);
    expect(await s.close(open, T0 + 80_000)).toEqual(reopened);
  });

  it('does not open again for failures seen before the probe that closed it (a late opening of the outage that ended)', async () => {
    const s = await store();
    const open = openedBy({ kind: 'failure' }, T0, 1);
    await s.open(open);
    await s.close(open, T0 + 60_000);
    expect(await s.open(openedBy({ kind: 'failure' }, T0 + 30_000, 1))).toEqual(CLOSED);
    expect(await s.read()).toEqual(CLOSED);
    const fresh = openedBy({ kind: 'failure' }, T0 + 90_000, 1);
    expect(await s.open(fresh)).toEqual(fresh);
  });

  it('a damaged item never holds jobs: missing or malformed attributes read as closed', () => {
    expect(breakerViewOf({ breaker_state: 'open' })).toEqual(CLOSED);
    expect(
      breakerViewOf({
        breaker_state: 'open',
        breaker_reason: 'x',
        breaker_opened_at: 1,
        breaker_probe_at: 2,
        breaker_probe_step: 0,
      }),
    ).toEqual(CLOSED);
    expect(breakerViewOf(undefined)).toEqual(CLOSED);
  });
});

describe('a damaged api-client item', () => {
  async function damaged(attributes: Record<string, unknown>): Promise<DynamoBreakerStore> {
    const s = await store();
    const doc = DynamoDBDocumentClient.from(dynamo.client);
    await doc.send(
      new PutCommand({
        TableName: `breaker-${table}`,
        Item: { [LEDGER_TABLE_KEY]: API_CLIENT_ITEM_ID, ...attributes },
      }),
    );
    return s;
  }

  it('an item marked open without its other attributes does not stop an opening', async () => {
    const s = await damaged({ breaker_state: 'open' });
    const opening = openedBy({ kind: 'failure' }, T0, 1);
    expect(await s.open(opening)).toEqual(opening);
    expect(await s.read()).toEqual(opening);
  });

  it('an item marked open with a malformed attribute does not stop an opening', async () => {
    const s = await damaged({
      breaker_state: 'open',
      breaker_reason: 'unavailable',
      breaker_opened_at: 'yesterday',
      breaker_probe_at: T0,
      breaker_probe_step: 0,
    });
    const opening = openedBy({ kind: 'auth' }, T0, 1);
    expect(await s.open(opening)).toEqual(opening);
    expect(await s.read()).toEqual(opening);
  });
});
