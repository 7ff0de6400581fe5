/**
 * How the sender's batch adapter orders a batch's records (`settleByJob`, shared/sender/handler.ts): copies of one
 * job one after another, so that a twin is judged once the copy before it settled (docs/ledger.md, "One attempt
 * at a time per job"); every other record concurrently; settlements in the batch's order.
 */
import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { settleByJob } from '#shared/sender/handler.ts';
import { jobBody, sqsRecord } from '#test/helpers/factories.ts';

function recordOf(id: string, messageId: string): SQSRecord {
  return sqsRecord(JSON.stringify({ ...jobBody(), id }), { id: messageId });
}

/** A settle that records when each record starts and ends, and ends only when `release` is called for it. */
function gatedSettle() {
  const events: string[] = [];
  const releases = new Map<string, () => void>();
  const settle = (record: SQSRecord) => {
    events.push(`start ${record.messageId}`);
    return new Promise<string>((resolve) => {
      releases.set(record.messageId, () => {
        events.push(`end ${record.messageId}`);
        resolve(record.messageId);
      });
    });
  };
  const release = async (messageId: string) => {
    await new Promise((resolve) => setImmediate(resolve));
    releases.get(messageId)?.();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { events, settle, release };
}

describe('settleByJob', () => {
  it('starts a copy of a job only once the copy before it in the batch has settled', async () => {
    const { events, settle, release } = gatedSettle();
    const done = settleByJob([recordOf('same', 'first'), recordOf('same', 'twin')], settle);
    await release('first');
    await release('twin');
    await done;
    expect(events).toEqual(['start first', 'end first', 'start twin', 'end twin']);
  });

  it('settles records of different jobs, and bodies without a readable id, concurrently', async () => {
    const { events, settle, release } = gatedSettle();
    const invalid = sqsRecord('not json', { id: 'invalid' });
    const done = settleByJob([recordOf('a', 'a'), recordOf('b', 'b'), invalid], settle);
    await release('a');
    await release('b');
    await release('invalid');
    await done;
    // All three started before any ended.
    expect(events.slice(0, 3).sort()).toEqual(['start a', 'start b', 'start invalid']);
  });

  it('answers in the batch’s order, and a copy still runs when the one before it failed', async () => {
    let calls = 0;
    const settle = async (record: SQSRecord) => {
      calls += 1;
      if (record.messageId === 'first') throw new Error('a bug');
      return record.messageId;
    };
    await expect(settleByJob([recordOf('same', 'first'), recordOf('same', 'twin')], settle)).rejects.toThrow(
      'a bug',
    );
    expect(calls).toBe(2);
    expect(
      await settleByJob(
        [recordOf('x', 'one'), recordOf('y', 'two'), recordOf('x', 'three')],
        async (r) => r.messageId,
      ),
    ).toEqual(['one', 'two', 'three']);
  });
});
