import { describe, expect, it } from 'vitest';
import { FairQueueLoad, fairOrder, noisyGroups } from '#local/emulators/fair-queue.ts';
import { checkMessageGroupId } from '#local/emulators/strict-sqs-rules.ts';

const load = (inFlight: number, processingMs = 0) => ({ inFlight, processingMs });

describe('the fair queue of the test world', () => {
  it('counts a group noisy with more than 10 % of the in-flight messages and at least 30 of its own', () => {
    expect(
      noisyGroups(
        new Map([
          ['a', load(30)],
          ['b', load(5)],
        ]),
      ),
    ).toEqual(new Set(['a']));
    expect(
      noisyGroups(
        new Map([
          ['a', load(29)],
          ['b', load(5)],
        ]),
      ),
    ).toEqual(new Set());
  });

  it('counts a group noisy with more than 10 % of the recent processing time', () => {
    expect(
      noisyGroups(
        new Map([
          ['a', load(1, 950)],
          ['b', load(1, 50)],
        ]),
      ),
    ).toEqual(new Set(['a']));
  });

  it('hands out quiet groups first, then noisy ones with the fewest in flight first, queue order within', () => {
    const loads = new Map([
      ['a', load(40)],
      ['c', load(35)],
      ['b', load(0)],
    ]);
    const ready = ['a1', 'a2', 'c1', 'b1', 'x1', 'b2'];
    const order = fairOrder(ready, (m) => (m.startsWith('x') ? undefined : m[0]), loads);
    expect(order).toEqual(['b1', 'x1', 'b2', 'c1', 'a1', 'a2']);
  });

  it('keeps queue order when no group is noisy', () => {
    expect(fairOrder(['a1', 'b1'], (m) => m[0], new Map([['a', load(1)]]))).toEqual(['a1', 'b1']);
  });

  it("counts a message's time in flight, received to gone, as its group's recent processing time", () => {
    const queue = new FairQueueLoad(60_000);
    queue.received(0, 'm1', 'a');
    expect(queue.observe(1_000, [{ messageId: 'm1', group: 'a' }]).get('a')).toEqual(load(1, 1_000));
    expect(queue.observe(3_000, []).get('a')).toEqual(load(0, 3_000));
    expect(queue.observe(70_000, []).get('a')).toBeUndefined();
  });
});

describe("the strict layer's MessageGroupId rule", () => {
  it('accepts 1 to 128 alphanumeric and punctuation characters, or none', () => {
    expect(checkMessageGroupId(undefined)).toBeUndefined();
    expect(checkMessageGroupId('county-a')).toBeUndefined();
    expect(checkMessageGroupId('Cook%20County!~')).toBeUndefined();
    expect(checkMessageGroupId('x'.repeat(128))).toBeUndefined();
  });

  it('refuses an empty, too long, spaced or non-ASCII group, naming the parameter, never the value', () => {
    for (const bad of ['', 'x'.repeat(129), 'Cook County', 'comté', 7]) {
      const violation = checkMessageGroupId(bad);
      expect(violation?.code).toBe('InvalidParameterValue');
      expect(violation?.message).toContain('MessageGroupId');
      expect(violation?.message).not.toContain('Cook');
    }
  });
});
