import {
  ChangeMessageVisibilityBatchCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listDeadLetters, listingNotes, redriveDeadLetters, renderDeadLetters } from '#cli/commands/dlq.ts';
import { closeTarget, resolveTarget } from '#cli/target.ts';
import type { EmulatedQueue, SqsEmulator } from '#local/emulators/sqs-emulator.ts';
import { startWorld, type World } from '#local/world.ts';
import type { DeadLetterReason } from '#shared/outcome.ts';
import { sendToDeadLetterQueue } from '#shared/sqs/settle.ts';
import { relay } from '#test/cli/run.ts';

const CONTENT = 'Reminder: you have court on Dec 3 at 9:00 AM, Room 4B.';

function body(id: string, to: string): string {
  return JSON.stringify({ id, message: { to, content: CONTENT } });
}

describe('dlq list and dlq redrive --reason, against the SQS emulator', () => {
  let world: World;
  let emulator: SqsEmulator;
  let sendQueue: EmulatedQueue;
  let dlq: EmulatedQueue;
  let target: string[];

  async function deadLetter(id: string, to: string, reason: DeadLetterReason, lastStatus?: number) {
    await sendToDeadLetterQueue(emulator.sqs, dlq.url, body(id, to), {
      reason,
      jobId: id,
      lastStatus,
      attempts: 1,
      firstAttemptAt: Date.parse('2026-12-01T12:00:00Z'),
    });
  }

  beforeEach(async () => {
    // The world's send queue redrives to its dead-letter queue, as the stack's does.
    world = await startWorld();
    emulator = world.sqs;
    dlq = world.deadLetterQueue;
    sendQueue = world.sendQueue;
    target = ['--endpoint-url', emulator.endpoint, '--send-queue-url', sendQueue.url, '--dlq-url', dlq.url];
    await deadLetter('job-403-a', '+15550100403', 'forbidden', 403);
    await deadLetter('job-500', '+15550100501', 'retries_exhausted', 500);
    await deadLetter('job-403-b', 'someone@example.com', 'forbidden', 403);
    // Moved by SQS itself after maxReceiveCount: no attributes at all.
    await emulator.sqs.send(
      new SendMessageCommand({ QueueUrl: dlq.url, MessageBody: body('job-crashed', '+15551234567') }),
    );
  });

  afterEach(async () => {
    await world.close();
  });

  it('dlq list: every dead-lettered job with reason, last status, attempts and first attempt; never text or recipient', async () => {
    const run = await relay('dlq', 'list', ...target);

    expect(run.status).toBe(0);
    const rows = run.stdout.split('\n');
    expect(rows.find((r) => r.startsWith('job-403-a'))).toMatch(
      /^job-403-a\s+forbidden\s+403\s+1\s+2026-12-01T12:00:00.000Z\s+\d{4}-/,
    );
    expect(rows.find((r) => r.startsWith('job-500'))).toMatch(/^job-500\s+retries_exhausted\s+500\s+1\s/);
    expect(rows.find((r) => r.startsWith('job-crashed'))).toMatch(
      /^job-crashed\s+\(moved by SQS: maxReceiveCount\)/,
    );
    expect(run.stdout).toContain('4 dead-lettered job(s): forbidden 2, retries_exhausted 1');
    for (const secret of [CONTENT, '+15550100403', 'someone@example.com', '0100403', 'someone']) {
      expect(run.stdout).not.toContain(secret);
    }
  });

  it('dlq list leaves every message on the queue, visible', async () => {
    await relay('dlq', 'list', ...target);

    const state = await emulator.inspect(dlq.name);
    expect(state.ready).toHaveLength(4);
    expect(state.inflight).toHaveLength(0);
  });

  it('dlq list --json: one object per job, snake_case keys as in the table, numbers as numbers', async () => {
    const run = await relay('dlq', 'list', '--json', ...target);

    const views = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(views.map((v) => v.job_id).sort()).toEqual(['job-403-a', 'job-403-b', 'job-500', 'job-crashed']);
    const job500 = views.find((v) => v.job_id === 'job-500');
    expect(job500).toEqual({
      job_id: 'job-500',
      reason: 'retries_exhausted',
      last_status: 500,
      attempts: 1,
      first_attempt_at: '2026-12-01T12:00:00.000Z',
      dead_lettered_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      detail: null,
      response_excerpt: null,
      message_id: expect.any(String),
    });
    expect(views.find((v) => v.job_id === 'job-crashed')).toMatchObject({
      reason: null,
      last_status: null,
      attempts: null,
    });
  });

  it("dlq list says why: the detail and eCourtDate's answer, in the table and in --json", async () => {
    await sendToDeadLetterQueue(emulator.sqs, dlq.url, body('job-400', '+15550100400'), {
      reason: 'bad_request',
      jobId: 'job-400',
      lastStatus: 400,
      attempts: 1,
      firstAttemptAt: Date.parse('2026-12-01T12:00:00Z'),
      detail: 'eCourtDate refused the body',
      responseExcerpt: '{"message":"The to field must be a valid phone number."}',
    });
    await emulator.sqs.send(new SendMessageCommand({ QueueUrl: dlq.url, MessageBody: '{not json' }));

    const table = await relay('dlq', 'list', ...target);
    const json = await relay('dlq', 'list', '--json', ...target);

    expect(table.stdout).toMatch(
      /^job-400\s+bad_request\s+400\s+1\s+\S+\s+\S+\s+eCourtDate refused the body; eCourtDate: \{"message":"The to field/m,
    );
    expect(table.stdout).toMatch(/^\(no id\)\s+\(moved by SQS: maxReceiveCount\)/m);
    const job400 = json.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((v) => v.job_id === 'job-400');
    expect(job400).toMatchObject({
      detail: 'eCourtDate refused the body',
      response_excerpt: '{"message":"The to field must be a valid phone number."}',
    });
  });

  it('dlq list at --max with more on the queue: says it stopped early, how many it listed and how to list more', async () => {
    const table = await relay('dlq', 'list', '--max', '2', ...target);
    const json = await relay('dlq', 'list', '--max', '2', '--json', ...target);

    expect(table.status).toBe(0);
    expect(table.stdout).toContain('2 dead-lettered job(s)');
    expect(table.stdout).toContain(
      'Stopped early at --max 2: listed 2 of about 4 visible when it began. Give a larger --max to list more',
    );
    const lines = json.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toEqual({
      stopped_early: { reason: 'max', listed: 2, visible_at_start: 4, not_visible_at_start: 0 },
    });
    expect(json.stderr).toContain('Stopped early at --max 2');
  });

  it('dlq list at --max with exactly that many on the queue: the whole queue, no note', async () => {
    const table = await relay('dlq', 'list', '--max', '4', ...target);
    const json = await relay('dlq', 'list', '--max', '4', '--json', ...target);

    expect(table.stdout).not.toContain('Stopped early');
    expect(json.stdout.trim().split('\n')).toHaveLength(4);
    expect(json.stderr).toBe('');
  });

  it('dlq list says about how many were in flight when it began, when it listed fewer than were on the queue', async () => {
    // A redrive or another listing running: 3 of the 4 received and hidden for a minute.
    await emulator.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlq.url, MaxNumberOfMessages: 3, VisibilityTimeout: 60 }),
    );

    const table = await relay('dlq', 'list', ...target);
    const json = await relay('dlq', 'list', '--json', ...target);

    expect(table.stdout).toContain('1 dead-lettered job(s)');
    expect(table.stdout).toContain(
      'About 3 were in flight when the listing began (received by another reader, e.g. a redrive or another ' +
        'listing running, and hidden): it listed 1 of about 4 on the queue then. Run dlq list again once they ' +
        'are visible.',
    );
    const lines = json.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[1] ?? '')).toEqual({ in_flight_at_start: 3 });
    expect(json.stderr).toContain('About 3 were in flight when the listing began');
  });

  it('dlq list --json: a listing that stopped early with messages in flight says both in one last line', async () => {
    await emulator.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlq.url, MaxNumberOfMessages: 2, VisibilityTimeout: 60 }),
    );

    const json = await relay('dlq', 'list', '--max', '1', '--json', ...target);

    const lines = json.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[1] ?? '')).toEqual({
      stopped_early: { reason: 'max', listed: 1, visible_at_start: 2, not_visible_at_start: 2 },
      in_flight_at_start: 2,
    });
  });

  it('dlq list while another listing holds every message and lets them go: lists all 4, and says nothing of in flight', async () => {
    // The other listing received all 4 (in flight when this one begins) and lets them go a moment later.
    const held = await emulator.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlq.url, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
    );
    expect(held.Messages).toHaveLength(4);
    const t = await resolveTarget({ endpointUrl: emulator.endpoint, dlqUrl: dlq.url }, process.cwd());
    // The other listing ends right after this one has read the queue's counts, before its first receive.
    t.sqs.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if ((context as { commandName?: string }).commandName === 'GetQueueAttributesCommand') {
          await emulator.sqs.send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: dlq.url,
              Entries: (held.Messages ?? []).map((m, index) => ({
                Id: String(index),
                ReceiptHandle: m.ReceiptHandle,
                VisibilityTimeout: 0,
              })),
            }),
          );
        }
        return out;
      },
      { step: 'initialize', name: 'otherListingEnds' },
    );

    const listing = await listDeadLetters(t, 100);
    closeTarget(t);

    expect(listing.visibleAtStart).toBe(0);
    expect(listing.notVisibleAtStart).toBe(4);
    expect(listing.views).toHaveLength(4);
    expect(listingNotes(listing)).toEqual([]);
    expect(renderDeadLetters(listing, true).split('\n')).toHaveLength(4);
  });

  it('dlq redrive --reason: sends exactly those jobs back with their bodies unchanged and deletes only them', async () => {
    const run = await relay('dlq', 'redrive', '--reason', 'forbidden', ...target);

    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Sent 2 job(s) with reason forbidden back to the send queue');
    expect(run.stdout).toContain('2 other dead-lettered job(s) left where they were');
    const sent = (await emulator.inspect(sendQueue.name)).ready.map((m) => m.body).sort();
    expect(sent).toEqual(
      [body('job-403-a', '+15550100403'), body('job-403-b', 'someone@example.com')].sort(),
    );
    const left = await emulator.inspect(dlq.name);
    expect(left.ready.map((m) => m.body).sort()).toEqual(
      [body('job-500', '+15550100501'), body('job-crashed', '+15551234567')].sort(),
    );
    expect(left.inflight).toHaveLength(0);
  });

  it('dlq redrive --reason leaves alone what was dead-lettered after it began (a job failing again meanwhile)', async () => {
    const t = await resolveTarget(
      { endpointUrl: emulator.endpoint, sendQueueUrl: sendQueue.url, dlqUrl: dlq.url },
      process.cwd(),
    );

    // As if every message had arrived after the redrive started.
    const result = await redriveDeadLetters(t, 'forbidden', { now: () => 0 });

    expect(result).toEqual({
      kind: 'resend',
      moved: 0,
      taken: [],
      left: 0,
      arrivedMeanwhile: 4,
      againOfTaken: 0,
      notFound: [],
      stoppedEarly: null,
    });
    expect((await emulator.inspect(sendQueue.name)).ready).toHaveLength(0);
    expect((await emulator.inspect(dlq.name)).ready).toHaveLength(4);
  });

  it('dlq redrive --reason with an unknown reason names the valid ones, exit 2', async () => {
    const run = await relay('dlq', 'redrive', '--reason', 'forbiden', ...target);

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--reason: expected one of invalid_job, bad_request, forbidden');
    expect((await emulator.inspect(dlq.name)).ready).toHaveLength(4);
  });

  it('dlq redrive without a reason against the emulator, which lacks StartMessageMoveTask: says to use --reason', async () => {
    const run = await relay('dlq', 'redrive', ...target);

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('StartMessageMoveTask failed');
    expect(run.stderr).toContain('--reason');
  });
});
