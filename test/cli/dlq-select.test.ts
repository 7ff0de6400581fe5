import { randomUUID } from 'node:crypto';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { redriveDeadLetters, renderRedrive } from '#cli/commands/dlq.ts';
import { closeTarget, resolveTarget, type Target } from '#cli/target.ts';
import type { EmulatedQueue, SqsEmulator } from '#local/emulators/sqs-emulator.ts';
import { startWorld, type World } from '#local/world.ts';
import type { DeadLetterReason } from '#shared/outcome.ts';
import { DLQ_ATTRIBUTE, sendToDeadLetterQueue } from '#shared/sqs/settle.ts';
import { relay } from '#test/cli/run.ts';

const CONTENT = 'Reminder: you have court on Dec 3 at 9:00 AM, Room 4B.';

function body(id: string): string {
  return JSON.stringify({ id, message: { to: '+15550100503', content: CONTENT } });
}

const jobIdOf = (message: { readonly body: string }) => (JSON.parse(message.body) as { id: string }).id;

describe('dlq redrive --job-id and dlq delete: the dead letters of the jobs named, against the SQS emulator', () => {
  let world: World;
  let emulator: SqsEmulator;
  let sendQueue: EmulatedQueue;
  let dlq: EmulatedQueue;
  let target: string[];

  /** Dead-letters a job as the sender does: every attribute, a redrive token of its own. */
  async function deadLetter(id: string, reason: DeadLetterReason, lastStatus?: number) {
    await sendToDeadLetterQueue(emulator.sqs, dlq.url, body(id), {
      reason,
      jobId: id,
      lastStatus,
      attempts: 2,
      firstAttemptAt: Date.parse('2026-12-01T12:00:00Z'),
      detail: 'the attempts ran out (last HTTP 503) after an attempt that may have created the message',
      responseExcerpt: '{"message":"Service Unavailable"}',
      deadLetterId: `token-${id}`,
    });
  }

  /** The attributes of each message of a queue, by job id. */
  async function attributesByJob(queue: string) {
    const state = await emulator.inspect(queue);
    return new Map(state.ready.map((m) => [jobIdOf(m), m.messageAttributes]));
  }

  beforeEach(async () => {
    world = await startWorld();
    emulator = world.sqs;
    dlq = world.deadLetterQueue;
    sendQueue = world.sendQueue;
    target = ['--endpoint-url', emulator.endpoint, '--send-queue-url', sendQueue.url, '--dlq-url', dlq.url];
    await deadLetter('created-1', 'unknown_outcome', 503);
    await deadLetter('not-created-1', 'unknown_outcome', 504);
    await deadLetter('created-2', 'unknown_outcome', 500);
    await deadLetter('not-created-2', 'unknown_outcome', 503);
    await deadLetter('refused', 'forbidden', 403);
  });

  afterEach(async () => {
    expect(emulator.refusals()).toEqual([]);
    await world.close();
  });

  it('redrive --job-id: sends exactly those jobs back, each with every attribute it had (dead_letter_id too), and leaves the rest', async () => {
    const before = await attributesByJob(dlq.name);

    const run = await relay(
      'dlq',
      'redrive',
      '--job-id',
      'not-created-1',
      '--job-id',
      'not-created-2',
      ...target,
    );

    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(
      /^Sent 2 job\(s\) back to the send queue of .* \(not-created-\d, not-created-\d\); /,
    );
    expect(run.stdout).toContain('3 other dead-lettered job(s) left where they were.');
    const sent = await emulator.inspect(sendQueue.name);
    expect(sent.ready.map((m) => m.body).sort()).toEqual([body('not-created-1'), body('not-created-2')]);
    const sentAttributes = await attributesByJob(sendQueue.name);
    for (const id of ['not-created-1', 'not-created-2']) {
      expect(Object.keys(before.get(id) ?? {})).toHaveLength(9);
      expect(sentAttributes.get(id)).toEqual(before.get(id));
      expect(sentAttributes.get(id)?.[DLQ_ATTRIBUTE.deadLetterId]?.StringValue).toBe(`token-${id}`);
    }
    const left = await emulator.inspect(dlq.name);
    expect(left.ready.map(jobIdOf).sort()).toEqual(['created-1', 'created-2', 'refused']);
    expect(left.inflight).toHaveLength(0);
  });

  it('redrive --job-id sends every dead letter of the job, each once (two copies of one dead letter: both go, the sender keeps one)', async () => {
    await deadLetter('not-created-1', 'unknown_outcome', 504);

    const run = await relay('dlq', 'redrive', '--job-id', 'not-created-1', ...target);

    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Sent 2 job(s) back to the send queue');
    expect(run.stdout).toContain('(not-created-1); 4 other');
    const sent = (await emulator.inspect(sendQueue.name)).ready;
    expect(sent.map(jobIdOf)).toEqual(['not-created-1', 'not-created-1']);
    expect(new Set(sent.map((m) => m.messageAttributes?.[DLQ_ATTRIBUTE.deadLetterId]?.StringValue))).toEqual(
      new Set(['token-not-created-1']),
    );
  });

  it('redrive --job-id names the ids the pass did not find, exit 1, and still sends the ones it found', async () => {
    const run = await relay(
      'dlq',
      'redrive',
      '--job-id',
      'not-created-1',
      '--job-id',
      'no-such-job',
      ...target,
    );

    expect(run.status).toBe(1);
    expect(run.stdout).toContain('Sent 1 job(s) back to the send queue');
    expect(run.stderr).toBe(
      'relay: no dead letter of job(s) no-such-job was found in this pass. Check the ids with dlq list.\n',
    );
    expect((await emulator.inspect(sendQueue.name)).ready.map(jobIdOf)).toEqual(['not-created-1']);
  });

  it('redrive --job-id with --reason: only the dead letters that match both; a job with another reason is named', async () => {
    const run = await relay(
      'dlq',
      'redrive',
      '--reason',
      'unknown_outcome',
      '--job-id',
      'not-created-1',
      '--job-id',
      'refused',
      ...target,
    );

    expect(run.status).toBe(1);
    expect(run.stdout).toContain('Sent 1 job(s) with reason unknown_outcome back to the send queue');
    expect(run.stdout).toContain('(not-created-1); 4 other dead-lettered job(s) left where they were.');
    expect(run.stderr).toContain(
      'no dead letter with reason unknown_outcome of job(s) refused was found in this pass; refused is ' +
        'dead-lettered with reason forbidden.',
    );
    expect((await emulator.inspect(sendQueue.name)).ready.map(jobIdOf)).toEqual(['not-created-1']);
    expect((await emulator.inspect(dlq.name)).ready).toHaveLength(4);
  });

  it('delete --job-id: deletes exactly those dead letters, prints job id, reason and dead-letter time, never the body', async () => {
    const before = new Map(
      (await emulator.inspect(dlq.name)).ready.map((m) => [
        jobIdOf(m),
        m.messageAttributes?.[DLQ_ATTRIBUTE.deadLetteredAt]?.StringValue,
      ]),
    );

    const run = await relay('dlq', 'delete', '--job-id', 'created-1', '--job-id', 'created-2', ...target);

    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(/^job_id\s+reason\s+dead_lettered_at$/);
    for (const id of ['created-1', 'created-2']) {
      expect(lines.find((l) => l.startsWith(id))).toMatch(
        new RegExp(`^${id}\\s+unknown_outcome\\s+${before.get(id)}$`),
      );
    }
    expect(run.stdout).toContain(
      'Deleted 2 dead letter(s) from the dead-letter queue of the resources given on the command line; ' +
        '3 other dead-lettered job(s) left where they were.',
    );
    for (const secret of [CONTENT, '+15550100503', 'Service Unavailable'])
      expect(run.stdout).not.toContain(secret);
    const left = await emulator.inspect(dlq.name);
    expect(left.ready.map(jobIdOf).sort()).toEqual(['not-created-1', 'not-created-2', 'refused']);
    expect(left.inflight).toHaveLength(0);
    expect((await emulator.inspect(sendQueue.name)).ready).toHaveLength(0);
  });

  it('delete --job-id of a job with no dead letter: says so, exit 1, deletes nothing', async () => {
    const run = await relay('dlq', 'delete', '--job-id', 'no-such-job', ...target);

    expect(run.status).toBe(1);
    expect(run.stdout).toContain('Deleted 0 dead letter(s)');
    expect(run.stderr).toContain('no dead letter of job(s) no-such-job was found in this pass');
    expect((await emulator.inspect(dlq.name)).ready).toHaveLength(5);
  });

  it('delete --reason without --yes deletes nothing and says how to confirm, exit 2', async () => {
    const run = await relay('dlq', 'delete', '--reason', 'unknown_outcome', ...target);

    expect(run.status).toBe(2);
    expect(run.stderr).toContain(
      'dlq delete --reason unknown_outcome deletes every dead letter with that reason, for good: add --yes',
    );
    expect((await emulator.inspect(dlq.name)).ready).toHaveLength(5);
  });

  it('delete --reason --yes deletes every dead letter of that reason and no other', async () => {
    const run = await relay('dlq', 'delete', '--reason', 'unknown_outcome', '--yes', ...target);

    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Deleted 4 dead letter(s)');
    expect(run.stdout).toContain('1 other dead-lettered job(s) left where they were.');
    expect((await emulator.inspect(dlq.name)).ready.map(jobIdOf)).toEqual(['refused']);
  });

  it('delete with neither --job-id nor --reason deletes nothing, exit 2', async () => {
    const run = await relay('dlq', 'delete', ...target);

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('dlq delete needs --job-id ID');
    expect((await emulator.inspect(dlq.name)).ready).toHaveLength(5);
  });
});

describe('dlq redrive --reason counts each dead letter once, and jobs that fail again while it runs apart', () => {
  let world: World;
  let emulator: SqsEmulator;
  let sendQueue: EmulatedQueue;
  let dlq: EmulatedQueue;
  let target: Target;
  /** How many times each job reached the send queue. */
  let sends: Map<string, number>;

  async function deadLetter(id: string, reason: DeadLetterReason) {
    await sendToDeadLetterQueue(emulator.sqs, dlq.url, body(id), {
      reason,
      jobId: id,
      attempts: 1,
      firstAttemptAt: Date.parse('2026-12-01T12:00:00Z'),
      deadLetterId: randomUUID(),
    });
  }

  beforeEach(async () => {
    world = await startWorld();
    emulator = world.sqs;
    dlq = world.deadLetterQueue;
    sendQueue = world.sendQueue;
    target = await resolveTarget(
      { endpointUrl: emulator.endpoint, sendQueueUrl: sendQueue.url, dlqUrl: dlq.url },
      process.cwd(),
    );
    sends = new Map();
    // The sender, still refused: each job sent back is taken off the send queue at once and dead-lettered again,
    // as a new message, before the redrive's next receive.
    target.sqs.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        const input = args.input as { QueueUrl?: string; MessageBody?: string };
        if ((context as { commandName?: string }).commandName === 'SendMessageCommand') {
          if (input.QueueUrl === sendQueue.url) await failAgain();
        }
        return out;
      },
      { step: 'initialize', name: 'senderStillRefused' },
    );
    for (let k = 0; k < 25; k++) await deadLetter(`refused-${k}`, 'forbidden');
    for (let k = 0; k < 7; k++) await deadLetter(`late-${k}`, 'expired');
  });

  async function failAgain() {
    const out = await emulator.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: sendQueue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    for (const message of out.Messages ?? []) {
      const id = jobIdOf({ body: message.Body ?? '' });
      sends.set(id, (sends.get(id) ?? 0) + 1);
      await deadLetter(id, 'forbidden');
      await emulator.sqs.send(
        new DeleteMessageCommand({ QueueUrl: sendQueue.url, ReceiptHandle: message.ReceiptHandle }),
      );
    }
  }

  afterEach(async () => {
    closeTarget(target);
    await world.close();
  });

  it('25 jobs sent that fail again at once: "7 other left" (not 32), "25 dead-lettered again meanwhile", each sent once', async () => {
    const result = await redriveDeadLetters(target, 'forbidden');
    const text = renderRedrive(result, { reason: 'forbidden' }, 'the local pipeline');

    expect(result).toMatchObject({
      moved: 25,
      left: 7,
      arrivedMeanwhile: 25,
      againOfTaken: 25,
      stoppedEarly: null,
    });
    expect(text).toContain(
      'Sent 25 job(s) with reason forbidden back to the send queue of the local pipeline; 7 other dead-lettered ' +
        'job(s) left where they were.',
    );
    expect(text).toContain('25 dead-lettered again meanwhile');
    expect(text).not.toContain('other job(s) dead-lettered meanwhile');
    expect(sends.size).toBe(25);
    expect([...sends.values()].every((n) => n === 1)).toBe(true);
    const left = await emulator.inspect(dlq.name);
    expect(left.ready).toHaveLength(32);
    expect(left.inflight).toHaveLength(0);
  });

  it('a job dead-lettered by someone else while it runs is counted apart from the jobs it sent that came back', async () => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    const began = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    // Dead-lettered after the redrive began, by SQS itself (no attributes), not by this redrive.
    await emulator.sqs.send(new SendMessageCommand({ QueueUrl: dlq.url, MessageBody: body('crashed') }));

    const result = await redriveDeadLetters(target, 'forbidden', { now: () => began });

    expect(result).toMatchObject({ moved: 25, left: 7, arrivedMeanwhile: 26, againOfTaken: 25 });
    expect(renderRedrive(result, { reason: 'forbidden' }, 'T').split('\n')).toEqual([
      'Sent 25 job(s) with reason forbidden back to the send queue of T; 7 other dead-lettered job(s) left where ' +
        'they were.',
      '25 dead-lettered again meanwhile: jobs this redrive sent failed again and came back as new messages, left ' +
        'on the dead-letter queue (each dead letter is sent once).',
      '1 other job(s) dead-lettered meanwhile, left where they were.',
    ]);
    expect(sends.size).toBe(25);
    expect((await emulator.inspect(dlq.name)).ready).toHaveLength(33);
  });
});
