import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalEndpoints, writeLocalEndpoints } from '#local/pipeline/endpoints-file.ts';
import { relay } from '#test/cli/run.ts';
import { refusedPort } from '#test/helpers/refused-port.ts';
import { jobLine, tempDir } from '#test/local/io.ts';

/** The id of a process that has exited. */
function stoppedPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

function endpoints(pid: number, port: number): LocalEndpoints {
  const url = `http://127.0.0.1:${port}`;
  return {
    pid,
    region: 'us-east-1',
    sqsEndpoint: url,
    sendQueueUrl: `${url}/000000000000/ecourtdate-relay-local-send`,
    sendQueueArn: 'arn:aws:sqs:us-east-1:000000000000:ecourtdate-relay-local-send',
    deadLetterQueueUrl: `${url}/000000000000/ecourtdate-relay-local-dlq`,
    deadLetterQueueArn: 'arn:aws:sqs:us-east-1:000000000000:ecourtdate-relay-local-dlq',
    secretsManagerEndpoint: url,
    secretId: 'ecourtdate-relay/local/api-credentials',
    ecourtdateUrl: url,
    dynamodbEndpoint: url,
    ledgerTableName: 'ecourtdate-relay-local-ledger',
  };
}

describe('--local when the local pipeline is not running: says so and how to start it, exit 2', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let stale: string;
  let refusing: string;
  let jobFile: string;

  beforeAll(async () => {
    dir = await tempDir();
    const port = await refusedPort();
    stale = `${dir.path}/stale.json`;
    refusing = `${dir.path}/refusing.json`;
    // Left behind by an `npm start` that was killed (no chance to remove it).
    await writeLocalEndpoints(stale, endpoints(stoppedPid(), port));
    // A live process id, but nothing listens: the pipeline's ports are closed.
    await writeLocalEndpoints(refusing, endpoints(process.pid, port));
    jobFile = await dir.file('job.json', jobLine('late-job', '+15551230301'));
  });

  afterAll(async () => {
    await dir?.remove();
  });

  const commands: [string, (file: string) => string[]][] = [
    ['dlq list', (file) => ['dlq', 'list', '--local', '--local-file', file]],
    ['check-credentials', (file) => ['check-credentials', '--local', '--local-file', file]],
    ['job', (file) => ['job', 'ok-1', '--local', '--local-file', file]],
    ['send', (file) => ['send', jobFile, '--local', '--local-file', file]],
    [
      'dlq redrive --reason',
      (file) => ['dlq', 'redrive', '--reason', 'forbidden', '--local', '--local-file', file],
    ],
  ];

  it.each(commands)('%s: no endpoints file at all', async (_, argv) => {
    const run = await relay(...argv(`${dir.path}/missing.json`));

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('the local pipeline is not running (no ');
    expect(run.stderr).toContain('Start it in another terminal with "npm start -- --keep-running"');
  });

  it.each(commands)('%s: an endpoints file left by a process that has stopped', async (_, argv) => {
    const run = await relay(...argv(stale));

    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/the local pipeline is not running \(.*stale\.json was left by process \d+/);
    expect(run.stderr).toContain('npm start -- --keep-running');
  });

  it.each(commands)('%s: endpoints that refuse connections', async (_, argv) => {
    const run = await relay(...argv(refusing));

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('the local pipeline is not running (its endpoints refuse connections)');
    expect(run.stderr).not.toContain('ECONNREFUSED');
    expect(run.stdout).not.toContain('Check your AWS credentials');
  });
});

describe('--state-dir with the operator CLI: the endpoints file of that run', () => {
  it('--local --state-dir DIR with no pipeline there names DIR/endpoints.json and how to start one', async () => {
    const dir = await tempDir();
    try {
      const run = await relay('check-credentials', '--local', '--state-dir', dir.path);

      expect(run.status).toBe(2);
      expect(run.stderr).toContain(`the local pipeline is not running (no ${dir.path}/endpoints.json`);
      expect(run.stderr).toContain('npm start -- --keep-running');
    } finally {
      await dir.remove();
    }
  });

  it('--local-file and --state-dir together are refused: they both name the endpoints file', async () => {
    const run = await relay('dlq', 'list', '--local', '--local-file', 'a.json', '--state-dir', 'b');

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--local-file and --state-dir both say where the endpoints file is');
  });

  it('--state-dir without --local is refused instead of ignored', async () => {
    const run = await relay('dlq', 'list', '--stage', 'staging', '--state-dir', 'b');

    expect(run.status).toBe(2);
    expect(run.stderr).toContain(
      '--state-dir names the state directory of a local pipeline: use it with --local',
    );
  });
});
