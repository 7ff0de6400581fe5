import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type DynamoDbEmulator, startDynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import {
  API_CLIENT_ITEM_ID,
  type ApiClientItem,
  DynamoBudgetStore,
  sliceCap,
  WINDOW_SLICES,
} from '#shared/ecourtdate/shared-budget.ts';

/** The budget's store against dynalite (docs/pacing.md, "One budget for the API client"). */
let dynamodb: DynamoDbEmulator;
let table: string;
let tables = 0;
const NOW = Date.parse('2026-12-01T12:00:00Z');
const SLICE = Math.floor(NOW / 1000);
const LEASE = { budgetPerMinute: 620, fromSlice: SLICE, want: 15, horizonSlices: WINDOW_SLICES } as const;

beforeAll(async () => {
  dynamodb = await startDynamoDbEmulator();
});

afterAll(async () => {
  await dynamodb.stop();
});

beforeEach(async () => {
  tables += 1;
  table = `budget-${tables}`;
  await dynamodb.createLedgerTable(table);
});

async function item(): Promise<ApiClientItem | undefined> {
  const out = await dynamodb.client.send(
    new GetItemCommand({ TableName: table, Key: { id: { S: API_CLIENT_ITEM_ID } }, ConsistentRead: true }),
  );
  return out.Item === undefined ? undefined : unmarshall(out.Item);
}

function store(onItem?: (item: ApiClientItem, now: number) => void): DynamoBudgetStore {
  return new DynamoBudgetStore({ client: dynamodb.client, tableName: table, now: () => NOW, onItem });
}

describe('DynamoBudgetStore', () => {
  it('creates the api-client item with the first lease: the slices granted, version 1 and the budget', async () => {
    const answer = await store().lease(LEASE);

    expect(answer.grants).toEqual([
      { slice: SLICE, count: 10 },
      { slice: SLICE + 1, count: 5 },
    ]);
    expect(await item()).toEqual({
      id: API_CLIENT_ITEM_ID,
      budget_version: 1,
      budget_per_minute: 620,
      budget_slices: { [String(SLICE)]: 10, [String(SLICE + 1)]: 5 },
    });
  });

  it("plans again on the item a lost condition hands back: two instances' leases never share a slot", async () => {
    const first = store();
    const second = store();
    await second.lease({ ...LEASE, want: 1 });
    await first.lease(LEASE);
    // The second's view is stale (version 1): its write fails, and the ALL_OLD item tells it where the room is.
    const answer = await second.lease(LEASE);

    expect(answer.grants).toEqual([
      { slice: SLICE + 1, count: 4 },
      { slice: SLICE + 2, count: 10 },
      { slice: SLICE + 3, count: 1 },
    ]);
    const slices = (await item())?.budget_slices as Record<string, number>;
    for (const [slice, granted] of Object.entries(slices)) {
      expect(granted).toBeLessThanOrEqual(sliceCap(620, Number(slice)));
    }
    expect(Object.values(slices).reduce((a, b) => a + b, 0)).toBe(31);
    expect((await item())?.budget_version).toBe(3);
  });

  it("keeps the breaker's attributes and hands every item it sees to onItem", async () => {
    await dynamodb.client.send(
      new PutItemCommand({
        TableName: table,
        Item: { id: { S: API_CLIENT_ITEM_ID }, breaker_state: { S: 'open' } },
      }),
    );
    const seen: { item: ApiClientItem; now: number }[] = [];

    await store((it, now) => seen.push({ item: it, now })).lease(LEASE);

    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ now: NOW, item: { breaker_state: 'open', budget_version: 1 } });
    expect(await item()).toMatchObject({ breaker_state: 'open', budget_version: 1 });
  });

  it('records a 429 wait as blocked_until, never cutting a longer one, and a lease answers it', async () => {
    const budget = store();
    await budget.block(NOW + 60_000);
    await budget.block(NOW + 30_000);

    expect((await item())?.blocked_until).toBe(NOW + 60_000);
    expect((await store().lease(LEASE)).blockedUntil).toBe(NOW + 60_000);
  });

  it('reads the budget the last lease recorded', async () => {
    expect(await store().read()).toBeUndefined();
    await store().lease(LEASE);

    expect(await store().read()).toMatchObject({ budgetPerMinute: 620, version: 1 });
  });

  it('throws what DynamoDB throws, for the pacer to fall back', async () => {
    const missing = new DynamoBudgetStore({ client: dynamodb.client, tableName: 'no-such-table' });

    await expect(missing.lease(LEASE)).rejects.toThrow(/non-existent table|not found/i);
  });
});
