import { describe, expect, it } from 'vitest';
import { relay } from '#test/cli/run.ts';

describe('npm run relay', () => {
  it('--help documents every command and target', async () => {
    const run = await relay('--help');

    expect(run.status).toBe(0);
    for (const text of [
      'dlq list',
      'dlq redrive',
      '--reason',
      'send FILE',
      '--via queue|bus',
      'check-credentials',
      'job ID',
      '--json',
      '--ledger-table NAME',
      '--dynamodb-endpoint URL',
      'AWS_ENDPOINT_URL_DYNAMODB',
      '--stage',
      '--local',
    ]) {
      expect(run.stdout).toContain(text);
    }
  });

  it.each([
    [['dlq', 'purge'], 'dlq needs a subcommand: list, redrive or delete (got "purge")'],
    [['dlq'], 'dlq needs a subcommand: list, redrive or delete; e.g. npm run relay -- dlq list'],
    [['job', 'x', '--jsn'], 'unknown option --jsn (did you mean --json?)'],
    [['dlq', 'list', '--frobnicate'], 'unknown option --frobnicate\nSee: npm run relay -- --help'],
    [['send'], 'send needs a FILE'],
    [['job'], 'job needs an ID'],
    [['job', 'a', 'b', '--ledger-table', 't'], 'unexpected argument(s): b'],
    [['job', 'job-1'], 'the job ledger table is not known: give --stage, --local, or --ledger-table'],
    [['job', 'no spaces', '--ledger-table', 't'], 'job ID: expected 1-128 characters of A-Z a-z 0-9 . _ : -'],
    [['dlq', 'list', '--stage', 'dev'], '--stage: expected one of staging, production, got "dev"'],
    [['dlq', 'list', '--stage', 'staging', '--local'], 'choose one of --stage and --local'],
    [['dlq', 'list'], 'the dead-letter queue is not known: give --stage, --local, or --dlq-url'],
    [
      ['dlq', 'list', '--max', '0', '--dlq-url', 'https://sqs.us-east-1.amazonaws.com/1/q'],
      '--max: expected a whole number',
    ],
    [
      ['dlq', 'list', '--max', '-1', '--dlq-url', 'https://sqs.us-east-1.amazonaws.com/1/q'],
      '--max: expected a whole number above 0, got "-1"',
    ],
    [
      ['send', '/nonexistent/jobs.jsonl', '--send-queue-url', 'https://sqs.us-east-1.amazonaws.com/1/q'],
      'cannot read the job file /nonexistent/jobs.jsonl (ENOENT)',
    ],
    [
      [
        'send',
        'x.json',
        '--via',
        'carrier-pigeon',
        '--send-queue-url',
        'https://sqs.us-east-1.amazonaws.com/1/q',
      ],
      '--via: expected queue or bus',
    ],
    [
      ['check-credentials', '--secret-id', 's', '--ecourtdate-url', 'http://api.example.com'],
      'expected an https:// URL',
    ],
  ])('refuses %j with a message, exit 2', async (argv, message) => {
    const run = await relay(...argv);

    expect(run.status).toBe(2);
    expect(run.stderr).toContain(message);
  });
});
