import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENDPOINTS_FILE } from '#local/pipeline/endpoints-file.ts';
import { parseStartOptions } from '#local/pipeline/options.ts';
import { type PipelineRun, runPipeline } from '#local/pipeline/run.ts';
import { relay } from '#test/cli/run.ts';
import { collector, jobLine, REPO_ROOT, tempDir } from '#test/local/io.ts';
import { eventually } from '#test/local/wait.ts';

describe('the CLI against the local pipeline (npm start -- --keep-running, then --local)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let pipeline: PipelineRun;
  let endpointsFile: string;
  const output = collector();

  beforeAll(async () => {
    dir = await tempDir();
    const jobs = await dir.file(
      'jobs.jsonl',
      [
        jobLine('local-ok', '+15551230201'),
        jobLine('local-forbidden', '+15550100403'),
        jobLine('local-agency', '+15551230202', { agency_reference: 'county-z' }),
        '{not json',
        jobLine('local-bad', '+15550100400'),
      ].join('\n'),
    );
    const options = parseStartOptions(['--jobs', jobs, '--keep-running', '--state-dir', dir.path]);
    pipeline = await runPipeline(options, { stdout: output, env: {}, cwd: REPO_ROOT });
    endpointsFile = join(dir.path, ENDPOINTS_FILE);
  });

  afterAll(async () => {
    await pipeline?.stop();
    await dir?.remove();
  });

  it('--keep-running writes the endpoints of the local queues, secret, simulator and job ledger', async () => {
    const endpoints = JSON.parse(await readFile(endpointsFile, 'utf8')) as Record<string, string>;

    expect(endpoints).toEqual(pipeline.endpoints);
    expect(Object.keys(endpoints).sort()).toEqual(
      [
        'pid',
        'deadLetterQueueArn',
        'deadLetterQueueUrl',
        'dynamodbEndpoint',
        'ecourtdateUrl',
        'ledgerTableName',
        'region',
        'secretId',
        'secretsManagerEndpoint',
        'sendQueueArn',
        'sendQueueUrl',
        'sqsEndpoint',
        'webhookSecretId',
        'webhookUrl',
      ].sort(),
    );
  });

  it('dlq list --local shows what the run dead-lettered', async () => {
    const run = await relay('--local', '--local-file', endpointsFile, 'dlq', 'list');

    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^local-forbidden\s+forbidden\s+403\s+1\s/m);
    expect(run.stdout).toMatch(/^local-agency\s+not_found\s+404\s+1\s/m);
  });

  it('dlq list --local says why each job is there; a line without an id is "(no id)" there and in the summary', async () => {
    const run = await relay('--local', '--local-file', endpointsFile, 'dlq', 'list');

    expect(run.stdout).toMatch(
      /^\(no id\)\s+invalid_job\s+-\s+0\s+\S+\s+\S+\s+body: expected a JSON object/m,
    );
    expect(run.stdout).toMatch(
      /^local-bad\s+bad_request\s+400\s+1\s+\S+\s+\S+\s+.*eCourtDate: .*The to field/m,
    );
    expect(pipeline.summary).toMatch(/^\(no id\) line 4\s+dead_lettered\s+invalid_job/m);
  });

  it('dlq list --local --json: the same snake_case schema as the npm start report', async () => {
    const run = await relay('--local', '--local-file', endpointsFile, 'dlq', 'list', '--json');

    const rows = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const bad = rows.find((row) => row.job_id === 'local-bad');
    const reported = pipeline.report.jobs.find((job) => job.id === 'local-bad');
    expect(bad).toMatchObject({
      reason: reported?.reason,
      last_status: reported?.last_status,
      attempts: reported?.attempts,
      response_excerpt: reported?.response_excerpt,
    });
    expect(rows.find((row) => row.job_id === null)).toMatchObject({ reason: 'invalid_job', attempts: 0 });
  });

  it('job --local reads the ledger entry the run wrote', async () => {
    const run = await relay('job', 'local-forbidden', '--local', '--local-file', endpointsFile, '--json');

    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      job_id: 'local-forbidden',
      status: 'dead_lettered',
      last_status: 403,
      reason: 'forbidden',
      attempts: 1,
    });
  });

  it('check-credentials --local passes against the built-in simulator', async () => {
    const run = await relay('check-credentials', '--local', '--local-file', endpointsFile);

    expect(run.status).toBe(0);
    expect(run.stdout).toContain('(from the local pipeline)');
  });

  it("check-credentials --local --state-dir DIR finds the pipeline by the run's own --state-dir", async () => {
    const run = await relay('check-credentials', '--local', '--state-dir', dir.path);

    expect(run.status).toBe(0);
    expect(run.stdout).toContain('(from the local pipeline)');
  });

  it('dlq list --local --state-dir DIR reads DIR/endpoints.json', async () => {
    const run = await relay('dlq', 'list', '--local', '--state-dir', dir.path);

    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^local-forbidden\s+forbidden\s+403\s+1\s/m);
  });

  it('send --local: the still-running sender delivers it', async () => {
    const file = await dir.file('one.json', jobLine('local-late', '+15551230203'));

    const run = await relay('send', file, '--local', '--local-file', endpointsFile);

    expect(run.status).toBe(0);
    await eventually(() => expect(output.text).toContain('job local-late: delivered'));
  });

  it('send --local of a job already delivered: the line says it was not sent again', async () => {
    const file = await dir.file('twice.json', jobLine('local-twice', '+15551230204'));
    await relay('send', file, '--local', '--local-file', endpointsFile);
    await eventually(() => expect(output.text).toContain('job local-twice: delivered'));

    const run = await relay('send', file, '--local', '--local-file', endpointsFile);

    expect(run.status).toBe(0);
    await eventually(() =>
      expect(output.text).toContain('job local-twice: already delivered; acknowledged, not sent again'),
    );
  });

  it('dlq redrive --reason --local: the job goes round again (and, still refused, comes back)', async () => {
    const run = await relay(
      'dlq',
      'redrive',
      '--reason',
      'forbidden',
      '--local',
      '--local-file',
      endpointsFile,
    );

    expect(run.status).toBe(0);
    expect(run.stdout).toContain(
      'Sent 1 job(s) with reason forbidden back to the send queue of the local pipeline',
    );
    await eventually(() => expect(output.text).toContain('job local-forbidden: dead_letter (forbidden)'));
  });

  it('--local without a running pipeline says how to start one, exit 2', async () => {
    const run = await relay('dlq', 'list', '--local', '--local-file', join(dir.path, 'missing.json'));

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('npm start -- --keep-running');
  });
});
