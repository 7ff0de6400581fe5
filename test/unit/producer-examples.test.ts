import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultEventSource, EVENT_DETAIL_TYPE, STAGES } from '#infra/config.ts';
import { REPO_ROOT } from '#infra/constructs/relay-function.ts';
import { parseJob } from '#shared/job.ts';
import { DEFAULT_MESSAGE_GROUP, messageGroupOf } from '#shared/sqs/message-group.ts';

const DIR = join(REPO_ROOT, 'examples', 'producers');

/**
 * Each producer example of docs/deploy.md ("Producers"), with how to read its job (the JSON text it sends) and
 * the two strings of the stage's EventBridge contract out of its source.
 */
const EXAMPLES = [
  {
    file: 'send-job.sh',
    job: /JOB=\$\(cat <<'JSON'\n([\s\S]*?)\nJSON\n\)/,
    sourcePrefix: /^SOURCE_PREFIX='([^']*)'$/m,
    detailType: /^DETAIL_TYPE='([^']*)'$/m,
  },
  {
    file: 'send_job.py',
    job: /^JOB = """([\s\S]*?)"""$/m,
    sourcePrefix: /^SOURCE_PREFIX = "([^"]*)"$/m,
    detailType: /^DETAIL_TYPE = "([^"]*)"$/m,
  },
  {
    file: 'SendJob.cs',
    job: /^const string Job = """([\s\S]*?)""";$/m,
    sourcePrefix: /^const string SourcePrefix = "([^"]*)";$/m,
    detailType: /^const string DetailType = "([^"]*)";$/m,
  },
] as const;

function extract(text: string, pattern: RegExp, what: string): string {
  const found = pattern.exec(text)?.[1];
  if (found === undefined) throw new Error(`no ${what} found by ${pattern}`);
  return found;
}

describe.each(EXAMPLES)('the producer example $file', (example) => {
  const text = readFileSync(join(DIR, example.file), 'utf8');

  it("sends a job the relay's own parser accepts, with no warning", () => {
    const job = parseJob(extract(text, example.job, 'job'));
    expect(job.id).toMatch(/\S/);
    expect(job.warnings).toEqual([]);
  });

  it('sets the message group of the fair send queue on what it sends to SQS', () => {
    expect(text).toMatch(/message-group-id|MessageGroupId/);
  });

  it("puts events with each stage's own source and the send-job detail-type", () => {
    const prefix = extract(text, example.sourcePrefix, 'source prefix');
    for (const stage of STAGES) expect(prefix + stage).toBe(defaultEventSource(stage));
    expect(extract(text, example.detailType, 'detail-type')).toBe(EVENT_DETAIL_TYPE);
  });

  it('is referenced from docs/deploy.md', () => {
    expect(readFileSync(join(REPO_ROOT, 'docs', 'deploy.md'), 'utf8')).toContain(
      `](../examples/producers/${example.file})`,
    );
  });
});

describe('the AWS CLI example builds the calls it documents', () => {
  const bin = mkdtempSync(join(tmpdir(), 'producer-example-'));
  const calls = join(bin, 'calls.json');
  // A stand-in `aws` that records its arguments and answers as the CLI's --output text would.
  writeFileSync(
    join(bin, 'aws'),
    `#!/usr/bin/env node\nrequire('node:fs').writeFileSync(${JSON.stringify(calls)}, JSON.stringify(process.argv.slice(2)));\n` +
      `console.log(process.argv[2] === 'sqs' ? 'message-1' : '0\\tevent-1\\tNone');\n`,
  );
  chmodSync(join(bin, 'aws'), 0o755);
  afterAll(() => rmSync(bin, { recursive: true, force: true }));

  const runWith = (env: Record<string, string>, ...args: string[]) => {
    const out = execFileSync('bash', [join(DIR, 'send-job.sh'), ...args], {
      env: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH}` },
      encoding: 'utf8',
    });
    return { out: out.trim(), argv: JSON.parse(readFileSync(calls, 'utf8')) as string[] };
  };
  const run = (...args: string[]) => runWith({}, ...args);
  const option = (argv: string[], name: string) => argv[argv.indexOf(name) + 1] ?? '';

  it('sends to the endpoint ENDPOINT_URL names with --endpoint-url (every AWS CLI takes it), and to AWS without', () => {
    const local = 'http://127.0.0.1:4566';
    expect(
      option(runWith({ ENDPOINT_URL: local }, 'sqs', `${local}/000000000000/q`).argv, '--endpoint-url'),
    ).toBe(local);
    expect(run('sqs', 'https://sqs.us-east-1.amazonaws.com/111122223333/q').argv).not.toContain(
      '--endpoint-url',
    );
  });

  it('sqs: the job as the message body of send-message, to the queue given', () => {
    const { out, argv } = run('sqs', 'https://sqs.us-east-1.amazonaws.com/111122223333/q');
    expect(argv.slice(0, 2)).toEqual(['sqs', 'send-message']);
    expect(option(argv, '--queue-url')).toBe('https://sqs.us-east-1.amazonaws.com/111122223333/q');
    expect(parseJob(option(argv, '--message-body')).id).toBe('cms-50117-reminder-1');
    expect(out).toBe('message-1');
  });

  it("sqs: the job's agency_reference as its --message-group-id (the fair queue's group)", () => {
    const { argv } = run('sqs', 'https://sqs.us-east-1.amazonaws.com/111122223333/q');
    const job = parseJob(option(argv, '--message-body'));
    expect(option(argv, '--message-group-id')).toBe(messageGroupOf(job.agencyReference));
    expect(option(argv, '--message-group-id')).toBe('county-a');
  });

  it('sqs: a job without agency_reference goes in the group default', () => {
    const file = join(bin, 'job.json');
    writeFileSync(file, JSON.stringify({ id: 'j-1', message: { to: '+15555550100', content: 'Hi' } }));
    const { argv } = runWith({ JOB_FILE: file }, 'sqs', 'https://sqs.us-east-1.amazonaws.com/111122223333/q');
    expect(option(argv, '--message-group-id')).toBe(DEFAULT_MESSAGE_GROUP);
  });

  it.each([
    'Cook County',
    'Condado de Doña Ana',
    "St. Mary's Parish / Juvenile",
    `${'Très long comté '.repeat(8)}`.slice(0, 128),
  ])(
    'sqs: an agency_reference SQS refuses as a group (%s) is sent in the group the sender gives it',
    (reference) => {
      const file = join(bin, 'job.json');
      writeFileSync(
        file,
        JSON.stringify({
          id: 'j-1',
          message: { to: '+15555550100', content: 'Hi' },
          agency_reference: reference,
        }),
      );
      const { argv } = runWith(
        { JOB_FILE: file },
        'sqs',
        'https://sqs.us-east-1.amazonaws.com/111122223333/q',
      );
      expect(option(argv, '--message-group-id')).toBe(messageGroupOf(reference));
    },
  );

  it.each(STAGES)(
    'events %s: one entry with the stage source, the detail-type and the job as its Detail',
    (stage) => {
      const { out, argv } = run('events', stage, 'court-a-integrations');
      expect(argv.slice(0, 2)).toEqual(['events', 'put-events']);
      const [entry, ...others] = JSON.parse(option(argv, '--entries')) as Record<string, string>[];
      expect(others).toEqual([]);
      expect(entry).toMatchObject({
        EventBusName: 'court-a-integrations',
        Source: defaultEventSource(stage),
        DetailType: EVENT_DETAIL_TYPE,
      });
      expect(parseJob(entry?.Detail ?? '').id).toBe('cms-50117-reminder-1');
      expect(out).toBe('event-1');
    },
  );

  it('refuses a stage that is not one of the relay’s', () => {
    expect(() => run('events', 'prod')).toThrow(/expected staging or production/);
  });
});
