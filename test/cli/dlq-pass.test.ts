import { ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listDeadLetters, listingNotes, redriveDeadLetters, renderDeadLetters } from '#cli/commands/dlq.ts';
import { closeTarget, resolveTarget, type Target } from '#cli/target.ts';
import type { EmulatedQueue, SqsEmulator } from '#local/emulators/sqs-emulator.ts';
import { startWorld, type World } from '#local/world.ts';
import type { DeadLetterReason } from '#shared/outcome.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';

// Thousands of dead letters and a 1 s hide: every message a pass received comes round again while the pass is
// still running, as a 30 s hide does with a queue of real SQS's size. Each test ends within seconds, or hangs.
const DEAD_LETTERS = 3000;
const HIDE_SECONDS = 1;
const PASS_TIMEOUT_MS = 25_000;

function body(id: string): string {
  return JSON.stringify({ id, message: { to: '+15550100403', content: 'Reminder: court on Dec 3.' } });
}

describe('dlq list and dlq redrive --reason end after one pass over thousands of dead letters', () => {
  let world: World;
  let emulator: SqsEmulator;
  let sendQueue: EmulatedQueue;
  let dlq: EmulatedQueue;
  let target: Target;

  /** Dead-letters `count` jobs `job-0`..., every other one `forbidden`, the rest `retries_exhausted`. */
  async function deadLetterMany(count: number): Promise<void> {
    for (let start = 0; start < count; start += 10) {
      const entries = Array.from({ length: Math.min(10, count - start) }, (_, k) => {
        const id = `job-${start + k}`;
        const reason: DeadLetterReason = (start + k) % 2 === 0 ? 'forbidden' : 'retries_exhausted';
        return {
          Id: String(k),
          MessageBody: body(id),
          MessageAttributes: {
            [DLQ_ATTRIBUTE.reason]: { DataType: 'String', StringValue: reason },
            [DLQ_ATTRIBUTE.jobId]: { DataType: 'String', StringValue: id },
          },
        };
      });
      await emulator.sqs.send(new SendMessageBatchCommand({ QueueUrl: dlq.url, Entries: entries }));
    }
  }

  const ids = (from: number, step: number) =>
    Array.from({ length: Math.ceil((DEAD_LETTERS - from) / step) }, (_, k) => `job-${from + k * step}`);

  beforeEach(async () => {
    world = await startWorld();
    emulator = world.sqs;
    dlq = world.deadLetterQueue;
    sendQueue = world.sendQueue;
    target = await resolveTarget(
      { endpointUrl: emulator.endpoint, sendQueueUrl: sendQueue.url, dlqUrl: dlq.url },
      process.cwd(),
    );
    await deadLetterMany(DEAD_LETTERS);
  });

  afterEach(async () => {
    closeTarget(target);
    await world.close();
  });

  it(
    'dlq list: once the messages it listed come round again, stops and lists each of 3,000 dead letters once',
    async () => {
      const listing = await listDeadLetters(target, 10_000, { hideSeconds: HIDE_SECONDS, budgetMs: 60_000 });

      expect(listing.views.map((v) => v.jobId).sort()).toEqual(ids(0, 1).sort());
      expect(listing.stoppedEarly).toBe('seen_again');
      expect(listingNotes(listing).join('\n')).toContain(
        'Stopped early: the messages listed first were shown again (their 1 s hide ran out), so the listing ' +
          'had been round the queue once: listed 3000 of about 3000 visible when it began.',
      );
      const left = await emulator.inspect(dlq.name);
      expect(left.ready).toHaveLength(DEAD_LETTERS);
      expect(left.inflight).toHaveLength(0);
      expect(emulator.refusals()).toEqual([]);
    },
    PASS_TIMEOUT_MS,
  );

  it(
    'dlq list: stops when its time budget is spent, having listed no message twice, and leaves all visible',
    async () => {
      let clock = 0;
      // Each look at the clock is 100 ms later: the 1 s budget is spent after a handful of receives.
      const listing = await listDeadLetters(target, 10_000, {
        hideSeconds: 30,
        budgetMs: 1000,
        now: () => (clock += 100),
      });

      expect(listing.stoppedEarly).toBe('time_budget');
      expect(listing.views.length).toBeGreaterThan(0);
      expect(listing.views.length).toBeLessThan(DEAD_LETTERS);
      expect(new Set(listing.views.map((v) => v.messageId)).size).toBe(listing.views.length);
      expect(listing.visibleAtStart).toBe(DEAD_LETTERS);
      const listed = listing.views.length;
      expect(listingNotes(listing)).toEqual([
        `Stopped early after 1 s, before the first message listed is shown again (each is hidden 30 s): listed ${listed} ` +
          'of about 3000 visible when it began. SQS cannot page through a queue: run dlq list again for another ' +
          'sample, or act on every job of a reason with dlq redrive --reason R.',
      ]);
      const json = renderDeadLetters(listing, true).split('\n');
      expect(json).toHaveLength(listed + 1);
      expect(JSON.parse(json[listed] ?? '')).toEqual({
        stopped_early: { reason: 'time_budget', listed, visible_at_start: 3000, not_visible_at_start: 0 },
      });
      const left = await emulator.inspect(dlq.name);
      expect(left.ready).toHaveLength(DEAD_LETTERS);
      expect(left.inflight).toHaveLength(0);
    },
    PASS_TIMEOUT_MS,
  );

  it(
    'dlq redrive --reason: ends although the jobs it leaves keep coming round, and sends each matching one exactly once',
    async () => {
      const runs = [];
      // Run as the operator is told to: again while a run says it stopped before the end of the queue.
      for (let run = 0; run < 5; run++) {
        const result = await redriveDeadLetters(target, 'forbidden', {
          hideSeconds: HIDE_SECONDS,
          budgetMs: 60_000,
        });
        runs.push(result);
        if (result.stoppedEarly === null || result.moved === 0) break;
      }

      expect(runs[0]?.stoppedEarly).toBe('seen_again');
      expect(runs.reduce((sum, r) => sum + r.moved, 0)).toBe(DEAD_LETTERS / 2);
      const sent = (await emulator.inspect(sendQueue.name)).ready.map((m) => JSON.parse(m.body).id as string);
      expect(sent.sort()).toEqual(ids(0, 2).sort());
      const left = await emulator.inspect(dlq.name);
      expect(left.ready.map((m) => JSON.parse(m.body).id as string).sort()).toEqual(ids(1, 2).sort());
      expect(left.inflight).toHaveLength(0);
      expect(emulator.ignoredDeletes()).toEqual([]);
      expect(emulator.refusals()).toEqual([]);
    },
    PASS_TIMEOUT_MS,
  );

  it(
    'dlq redrive --reason: stops when its time budget is spent; the next run sends the rest, none twice',
    async () => {
      let clock = Date.now();
      const tick = () => (clock += 100);

      const first = await redriveDeadLetters(target, 'forbidden', { budgetMs: 1000, now: tick });
      const second = await redriveDeadLetters(target, 'forbidden', { budgetMs: 60_000 });

      expect(first.stoppedEarly).toBe('time_budget');
      expect(first.moved).toBeGreaterThan(0);
      expect(first.moved).toBeLessThan(DEAD_LETTERS / 2);
      expect(first.moved + second.moved).toBe(DEAD_LETTERS / 2);
      const sent = (await emulator.inspect(sendQueue.name)).ready.map((m) => JSON.parse(m.body).id as string);
      expect(sent.sort()).toEqual(ids(0, 2).sort());
      expect((await emulator.inspect(dlq.name)).ready).toHaveLength(DEAD_LETTERS / 2);
    },
    PASS_TIMEOUT_MS,
  );

  it(
    'dlq list counts the messages another reader holds (in flight) apart, as not listed',
    async () => {
      // Another reader (a redrive running, a second listing) holds 20 messages hidden.
      await emulator.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: dlq.url, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
      );
      await emulator.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: dlq.url, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
      );

      const listing = await listDeadLetters(target, 10_000, { hideSeconds: 30, budgetMs: 60_000 });

      expect(listing.notVisibleAtStart).toBe(20);
      expect(listing.visibleAtStart).toBe(DEAD_LETTERS - 20);
      expect(listing.views).toHaveLength(DEAD_LETTERS - 20);
      expect(listing.stoppedEarly).toBeNull();
    },
    PASS_TIMEOUT_MS,
  );
});
