import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EVENT_DETAIL_TYPE } from '#infra/config.ts';
import { OUTPUT } from '#infra/stack-contract.ts';
import type { EmulatedQueue, SqsEmulator } from '#local/emulators/sqs-emulator.ts';
import { readJobsFile } from '#local/pipeline/jobs-file.ts';
import { startWorld, type World } from '#local/world.ts';
import { relay } from '#test/cli/run.ts';
import { jobLine, tempDir } from '#test/local/io.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;

beforeEach(async () => {
  dir = await tempDir();
});

afterEach(async () => {
  await dir.remove();
});

describe('send FILE --via queue, against the SQS emulator', () => {
  let world: World;
  let emulator: SqsEmulator;
  let queue: EmulatedQueue;
  let target: string[];

  beforeEach(async () => {
    world = await startWorld();
    emulator = world.sqs;
    queue = world.sendQueue;
    target = ['--endpoint-url', emulator.endpoint, '--send-queue-url', queue.url];
  });

  afterEach(async () => {
    await world.close();
  });

  it('puts every job of a JSON Lines file on the queue, each body exactly as written', async () => {
    const lines = [jobLine('cms-1', '+15551230001'), `  ${jobLine('cms-2', 'someone@example.com')}`];
    const file = await dir.file('jobs.jsonl', `${lines.join('\n')}\n`);

    const run = await relay('send', file, ...target);

    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^sent job cms-1 to the send queue \(/m);
    expect((await emulator.inspect(queue.name)).ready.map((m) => m.body)).toEqual(lines);
  });

  it('accepts one pretty-printed job', async () => {
    const text = JSON.stringify(JSON.parse(jobLine('cms-3', '+15551230003')), null, 2);
    const file = await dir.file('job.json', `${text}\n`);

    const run = await relay('send', file, ...target);

    expect(run.status).toBe(0);
    expect((await emulator.inspect(queue.name)).ready.map((m) => JSON.parse(m.body).id)).toEqual(['cms-3']);
  });

  it('accepts jobs pasted pretty-printed between JSON Lines, as npm start --jobs does, each named by its first line', async () => {
    const pretty = JSON.stringify(JSON.parse(jobLine('cms-6', '+15551230006')), null, 2);
    const file = await dir.file(
      'jobs.jsonl',
      [jobLine('cms-5', '+15551230005'), pretty, jobLine('cms-7', '+15551230007')].join('\n'),
    );

    const run = await relay('send', file, ...target);

    expect(run.status).toBe(0);
    expect((await emulator.inspect(queue.name)).ready.map((m) => JSON.parse(m.body).id)).toEqual([
      'cms-5',
      'cms-6',
      'cms-7',
    ]);
    expect((await readJobsFile(file)).map((job) => [job.line, job.id])).toEqual([
      [1, 'cms-5'],
      [2, 'cms-6'],
      [2 + pretty.split('\n').length, 'cms-7'],
    ]);
  });

  it('refuses a file with one id under two bodies (the second would be id_conflict), and says an identical repeat goes out once', async () => {
    const conflicting = await dir.file(
      'conflict.jsonl',
      [jobLine('cms-9', '+15551230009'), jobLine('cms-9', '+15551230019')].join('\n'),
    );
    const repeated = await dir.file(
      'repeat.jsonl',
      [jobLine('cms-10', '+15551230010'), jobLine('cms-10', '+15551230010')].join('\n'),
    );

    const conflict = await relay('send', conflicting, ...target);
    const repeat = await relay('send', repeated, ...target);

    expect(conflict.status).toBe(1);
    expect(conflict.stderr).toContain(`${conflicting}:2: id: cms-9 is also on line 1 with another body`);
    expect(conflict.stderr).toContain('give each version of a message its own id');
    expect(repeat.status).toBe(0);
    expect(repeat.stderr).toContain(
      `${repeated}:2: id: cms-10 is also on line 1, the same job: it goes out once`,
    );
    expect((await emulator.inspect(queue.name)).ready.map((m) => JSON.parse(m.body).id)).toEqual([
      'cms-10',
      'cms-10',
    ]);
  });

  it('sends a phone number not in E.164 form with a warning naming the line and the form, never the number', async () => {
    const file = await dir.file('jobs.jsonl', jobLine('cms-8', '(555) 123-9004'));

    const run = await relay('send', file, ...target);

    expect(run.status).toBe(0);
    expect(run.stderr).toContain(`relay: warning: ${file}:1: message.to: a phone number not in E.164 form`);
    expect(run.stderr).not.toContain('123-9004');
    expect((await emulator.inspect(queue.name)).ready).toHaveLength(1);
  });

  it('a missing or empty file: the command could not run, exit 2 (as npm start --jobs), nothing sent', async () => {
    const empty = await dir.file('empty.jsonl', '\n\n');

    const missing = await relay('send', `${dir.path}/missing.jsonl`, ...target);
    const blank = await relay('send', empty, ...target);

    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`cannot read the job file ${dir.path}/missing.jsonl (ENOENT)`);
    expect(blank.status).toBe(2);
    expect(blank.stderr).toContain(`${empty} holds no job`);
    expect((await emulator.inspect(queue.name)).ready).toHaveLength(0);
  });

  it('refuses a file with an invalid job, naming line and field, and sends nothing', async () => {
    const file = await dir.file(
      'jobs.jsonl',
      [
        jobLine('cms-4', '+15551230004'),
        JSON.stringify({ id: 'cms-5', message: { to: '+15551230005' } }),
        JSON.stringify({ id: 'has spaces', message: { to: '+1555', content: 'x' } }),
      ].join('\n'),
    );

    const run = await relay('send', file, ...target);

    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`${file}:2: message.content: is required`);
    expect(run.stderr).toContain(`${file}:3: id: expected 1-128 characters`);
    expect((await emulator.inspect(queue.name)).ready).toHaveLength(0);
  });

  it("refuses a scheduled_at or expires_at without a time zone with the sender's own message, listing the accepted forms", async () => {
    const file = await dir.file(
      'jobs.jsonl',
      [
        jobLine('cms-10', '+15551230010', { expires_at: '2035-12-03 09:00:00' }),
        JSON.stringify({
          id: 'cms-11',
          message: { to: '+15551230011', content: 'Court on Dec 3.', scheduled_at: '2035-12-01T10:00:00' },
        }),
      ].join('\n'),
    );

    const run = await relay('send', file, ...target);

    expect(run.status).toBe(1);
    const forms =
      'expected an ISO 8601 date-time with its time zone: the local time with its UTC offset, such as ' +
      '2027-12-01T10:00:00-05:00, or UTC with a Z, such as 2027-12-01T15:00:00Z; got a time without a time zone';
    expect(run.stderr).toContain(`${file}:1: expires_at: ${forms}`);
    expect(run.stderr).toContain(`${file}:2: message.scheduled_at: ${forms}`);
    expect((await emulator.inspect(queue.name)).ready).toHaveLength(0);
  });
});

describe('send FILE --via bus (EventBridge and CloudFormation mocked)', () => {
  let events: AwsClientStub<EventBridgeClient>;
  let cloudformation: AwsClientStub<CloudFormationClient>;

  beforeEach(() => {
    events = mockClient(EventBridgeClient);
    cloudformation = mockClient(CloudFormationClient);
    cloudformation.on(DescribeStacksCommand).resolves({
      Stacks: [
        {
          StackName: 'EcourtdateRelay-staging',
          CreationTime: new Date(),
          StackStatus: 'CREATE_COMPLETE',
          Outputs: [
            { OutputKey: OUTPUT.eventBusName, OutputValue: 'court-events' },
            { OutputKey: OUTPUT.eventSource, OutputValue: 'county.cms.staging,county.jms.staging' },
            { OutputKey: OUTPUT.eventDetailType, OutputValue: EVENT_DETAIL_TYPE },
          ],
        },
      ],
    });
  });

  afterEach(() => {
    events.restore();
    cloudformation.restore();
  });

  it("publishes each job as the detail of a send-job event on the stack's bus, with its first source", async () => {
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'event-1' }] });
    const line = jobLine('cms-6', '+15551230006');
    const file = await dir.file('job.json', line);

    const run = await relay('send', file, '--via', 'bus', '--stage', 'staging');

    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(events.commandCalls(PutEventsCommand)[0]?.args[0].input.Entries).toEqual([
      {
        EventBusName: 'court-events',
        Source: 'county.cms.staging',
        DetailType: EVENT_DETAIL_TYPE,
        Detail: line,
      },
    ]);
    expect(run.stdout).toContain('sent job cms-6 to the event bus (event-1)');
  });

  it('--event-bus without a stage needs --event-source (each stage takes its own source only), exit 2', async () => {
    const file = await dir.file('job.json', jobLine('cms-8', '+15551230008'));

    const run = await relay('send', file, '--via', 'bus', '--event-bus', 'court-events');

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--event-bus court-events needs --event-source');
    expect(run.stderr).toContain('ecourtdate-relay.upstream.staging or ecourtdate-relay.upstream.production');
    expect(events.commandCalls(PutEventsCommand)).toHaveLength(0);
  });

  it('splits a file into PutEvents requests of at most 10 entries and 256 KiB together, in order', async () => {
    events.on(PutEventsCommand).callsFake(async (input: { Entries: unknown[] }) => ({
      FailedEntryCount: 0,
      Entries: input.Entries.map((_, i) => ({ EventId: `event-${i}` })),
    }));
    // 12 jobs of about 60 KiB: four fit in one request.
    const big = (i: number) =>
      JSON.stringify({ ...JSON.parse(jobLine(`cms-b${i}`, '+15551230009')), note: 'x'.repeat(60 * 1024) });
    const file = await dir.file('jobs.jsonl', `${Array.from({ length: 12 }, (_, i) => big(i)).join('\n')}\n`);

    const run = await relay('send', file, '--via', 'bus', '--stage', 'staging');

    expect(run.status).toBe(0);
    const requests = events.commandCalls(PutEventsCommand).map((call) => call.args[0].input.Entries ?? []);
    expect(requests.map((entries) => entries.length)).toEqual([4, 4, 4]);
    expect(requests.flat().map((entry) => JSON.parse(entry.Detail ?? '{}').id)).toEqual(
      Array.from({ length: 12 }, (_, i) => `cms-b${i}`),
    );
  });

  it('refuses a file holding a job larger than an EventBridge event may be before sending any, exit 2', async () => {
    const small = jobLine('cms-s1', '+15551230010');
    const huge = JSON.stringify({
      ...JSON.parse(jobLine('cms-h1', '+15551230011')),
      note: 'x'.repeat(300 * 1024),
    });
    const file = await dir.file('jobs.jsonl', `${small}\n${huge}\n`);

    const run = await relay('send', file, '--via', 'bus', '--stage', 'staging');

    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/job cms-h1 \(\d+ bytes\): larger than an EventBridge event may be/);
    expect(run.stderr).toContain('nothing was sent: send the file with --via queue');
    expect(events.commandCalls(PutEventsCommand)).toHaveLength(0);
  });

  it('reports an event EventBridge refused, exit 2', async () => {
    events.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }],
    });
    const file = await dir.file('job.json', jobLine('cms-7', '+15551230007'));

    const run = await relay('send', file, '--via', 'bus', '--stage', 'staging');

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('job cms-7: InternalFailure try again');
  });
});
