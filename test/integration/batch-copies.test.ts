/**
 * Copies of one job in one batch (docs/ledger.md, "One attempt at a time per job"; docs/contract.md, "When a
 * message changes"): exact duplicates go out once, and a changed version in the same batch is refused
 * `id_conflict`, whichever the batch holds first.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DLQ_ATTRIBUTE } from '#shared/sqs/attributes.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { attr, type Harness, startHarness } from '#test/helpers/relay-harness.ts';

let h: Harness;

afterEach(async () => {
  await h?.close();
});

const first = () => jobBody({}, { content: 'Reminder: court on Dec 3 at 9:00 AM.' });
const changed = () => jobBody({}, { content: 'Change: your hearing moved to 9:30 AM.' });

async function reasons(): Promise<(string | undefined)[]> {
  return (await h.drainDeadLetters()).map((m) => attr(m, DLQ_ATTRIBUTE.reason));
}

describe('two exact duplicates and a changed version in one batch', () => {
  it('duplicates first: one send, both duplicates acknowledged, the changed version dead-lettered id_conflict', async () => {
    h = await startHarness();
    await h.enqueue(first());
    await h.enqueue(first());
    await h.enqueue(changed());

    const result = await h.invoke();

    expect(result.received).toBe(3);
    expect(result.failed).toHaveLength(0);
    expect(h.sends()).toHaveLength(1);
    expect(await reasons()).toEqual(['id_conflict']);
  });

  it('the changed version first: it holds the id, is sent once, and both duplicates of the other are refused', async () => {
    h = await startHarness();
    await h.enqueue(changed());
    await h.enqueue(first());
    await h.enqueue(first());

    const result = await h.invoke();

    expect(result.received).toBe(3);
    expect(result.failed).toHaveLength(0);
    expect(h.sends()).toHaveLength(1);
    expect(await reasons()).toEqual(['id_conflict', 'id_conflict']);
  });
});
