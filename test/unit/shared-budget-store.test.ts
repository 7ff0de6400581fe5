import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type DynamoDbEmulator, startDynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import {
  API_CLIENT_ITEM_ID,
  type ApiClientItem,
  DynamoBudgetStore,
  firstSlotOf,
  type SliceGrant,
} from '#shared/ecourtdate/shared-budget.ts';

/** The budget's store against dynalite (docs/pacing.md, "One budget for the API client"). */
let dynamodb: DynamoDbEmulator;
let table: string;
let tables = 0;
const NOW = Date.parse('2026-12-01T12:00:00Z');
const SLICE = Math.floor(NOW / 1000);
const LEASE = { budgetPerMinute: 600, sliceMs: 1000, fromSlice: SLICE, want: 15, horizonSlices: 20 } as const;

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
  it('creates the api-client item with the first lease: the slot counter, version 1 and the budget', async () => {
    const answer = await store().lease(LEASE);

    // 600 a minute: 10 slots a slice.
    expect(answer.grants).toEqual([
      { slice: SLICE, count: 10 },
      { slice: SLICE + 1, count: 5 },
    ]);
    expect(await item()).toEqual({
      id: API_CLIENT_ITEM_ID,
      budget_version: 1,
      budget_per_minute: 600,
      budget_slice_ms: 1000,
      budget_next_slot: firstSlotOf(600, SLICE) + 15,
    });
  });

  it('adds to the counter atomically: leases of instances on stale views never share a slot nor lose a condition', async () => {
    await store().lease({ ...LEASE, want: 1 });
    const stores = Array.from({ length: 5 }, () => store());
    const before = dynamodb.requestCounts().UpdateItem ?? 0;

    const answers = await Promise.all(stores.map((s) => s.lease(LEASE)));

    expect((dynamodb.requestCounts().UpdateItem ?? 0) - before).toBe(5);
    const slots = answers.flatMap((a) =>
      a.grants.flatMap((g: SliceGrant) => Array.from({ length: g.count }, () => g.slice)),
    );
    expect(slots).toHaveLength(75);
    // Every slot of the slices from SLICE on, the first lease's one included, granted once: 76 slots in all.
    expect((await item())?.budget_next_slot).toBe(firstSlotOf(600, SLICE) + 76);
    expect((await item())?.budget_version).toBe(6);
  });

  it('restarts a counter an idle while left behind at the current slice, on the item a lost condition shows', async () => {
    await store().lease(LEASE);
    const later = SLICE + 100;

    const answer = await store().lease({ ...LEASE, fromSlice: later, want: 3 });

    expect(answer.grants).toEqual([{ slice: later, count: 3 }]);
    expect((await item())?.budget_next_slot).toBe(firstSlotOf(600, later) + 3);
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

    // The first write's lost condition (no counter yet) hands back the item too.
    expect(seen).toHaveLength(2);
    expect(seen[1]).toMatchObject({ now: NOW, item: { breaker_state: 'open', budget_version: 1 } });
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

    expect(await store().read()).toMatchObject({
      budgetPerMinute: 600,
      nextSlot: firstSlotOf(600, SLICE) + 15,
    });
  });

  it.each([
    ['budget_version', { S: 'seven' }],
    ['budget_next_slot', { S: 'x' }],
    ['budget_per_minute', { S: '600' }],
  ])(
    'leases again from an item whose %s is malformed: a damaged item never stops the budget',
    async (name, value) => {
      await store().lease(LEASE);
      const damaged = { ...(await item()) } as Record<string, unknown>;
      delete damaged[name];
      await dynamodb.client.send(
        new PutItemCommand({
          TableName: table,
          Item: {
            ...Object.fromEntries(
              Object.entries(damaged).map(([k, v]) => [
                k,
                typeof v === 'number' ? { N: String(v) } : { S: String(v) },
              ]),
            ),
            [name]: value,
          },
        }),
      );
      // The counter (slot 15 from SLICE's first) lies inside the next slice: a lease there takes none of its
      // slots again.
      const next = SLICE + 1;

      const answer = await store().lease({ ...LEASE, fromSlice: next, want: 3 });

      const from = name === 'budget_version' ? firstSlotOf(600, SLICE) + 15 : firstSlotOf(600, next);
      expect(answer.grants).toEqual([{ slice: next, count: 3 }]);
      expect(await item()).toMatchObject({ budget_next_slot: from + 3, budget_per_minute: 600 });
    },
  );

  it('throws what DynamoDB throws, for the pacer to fall back', async () => {
    const missing = new DynamoBudgetStore({ client: dynamodb.client, tableName: 'no-such-table' });

    await expect(missing.lease(LEASE)).rejects.toThrow(/non-existent table|not found/i);
  });
});
