import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '#local/ecourtdate-simulator.ts';
import { main } from '#local/pipeline/main.ts';
import type { RunReport } from '#local/pipeline/report.ts';
import { ALARM_ID, alarmDefinitions } from '#shared/alarm-definitions.ts';
import { jobLine, tempDir, testIO } from '#test/local/io.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
let sim: Simulator | undefined;

beforeEach(async () => {
  dir = await tempDir();
});

afterEach(async () => {
  await sim?.close();
  sim = undefined;
  await dir.remove();
});

async function readReport(path: string): Promise<RunReport> {
  return JSON.parse(await readFile(path, 'utf8')) as RunReport;
}

describe('npm start, in process', () => {
  it('--jobs and --report: puts each line on the queue as written and reports every job, API calls and alarms', async () => {
    const jobs = await dir.file(
      'jobs.jsonl',
      [
        jobLine('fine', '+15551230101'),
        jobLine('refused', '+15550100403'),
        'not json at all',
        '',
        jobLine('too-late', '+15551230102', { expires_at: '2020-01-01T00:00:00Z' }),
      ].join('\n'),
    );
    const report = join(dir.path, 'out', 'report.json');
    const { io, stderr } = testIO();

    const status = await main(['--jobs', jobs, '--report', report, '--state-dir', dir.path], io);

    expect(stderr.text).toBe('');
    expect(status).toBe(0);
    const result = await readReport(report);
    expect(Object.keys(result)).toEqual(['summary', 'jobs', 'api_calls', 'alarms']);
    expect(result.summary).toEqual({ jobs: 4, delivered: 1, duplicate: 0, dead_lettered: 3, unsettled: 0 });
    expect(result.jobs.map((j) => [j.id, j.outcome, j.reason, j.last_status])).toEqual([
      ['fine', 'delivered', null, 201],
      ['refused', 'dead_lettered', 'forbidden', 403],
      ['line-3', 'dead_lettered', 'invalid_job', null],
      ['too-late', 'dead_lettered', 'expired', null],
    ]);
    expect(Object.keys(result.jobs[0] ?? {})).toEqual([
      'id',
      'outcome',
      'reason',
      'attempts',
      'last_status',
      'uuid',
    ]);
    expect(result.jobs[0]?.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.jobs[0]?.attempts).toBe(1);
    expect(result.api_calls.send).toBe(2);
    expect(result.api_calls.token).toBeGreaterThanOrEqual(1);
    expect(result.alarms.map((a) => a.name)).toEqual(alarmDefinitions().map((d) => d.id));
    const state = Object.fromEntries(result.alarms.map((a) => [a.name, a.state]));
    expect(state[ALARM_ID.forbidden]).toBe('ALARM');
    expect(state[ALARM_ID.deadLetterQueue]).toBe('ALARM');
    expect(state[ALARM_ID.authFailing]).toBe('OK');
    expect(state[ALARM_ID.eventsDeadLetterQueue]).toBe('INSUFFICIENT_DATA');
  });

  it('keeps the sender logs out of the terminal: plain progress lines and the summary there, JSON lines in the log file', async () => {
    const jobs = await dir.file('jobs.jsonl', `${jobLine('fine', '+15551230103')}\n`);
    const { io, stdout } = testIO();

    await main(['--jobs', jobs, '--state-dir', dir.path], io);

    expect(stdout.text).toMatch(/^progress: 1\/1 settled; 1 delivered/m);
    expect(stdout.text).toContain('1 jobs against the built-in eCourtDate simulator');
    expect(stdout.text).toMatch(/^Forbidden403\s+OK/m);
    expect(stdout.text).not.toContain('job settled');
    expect(stdout.text).not.toContain('_aws');
    const log = await readFile(join(dir.path, 'sender.log'), 'utf8');
    expect(log).toContain('"message":"job settled"');
    expect(log).toContain('"_aws"');
    expect(log).not.toContain('Reminder for fine');
  });

  it('--ecourtdate-url: sends to that API with the credentials from the environment, in real time', async () => {
    sim = await startSimulator({ clients: { 'staging-client': 'staging-secret-value' } });
    const jobs = await dir.file(
      'jobs.jsonl',
      [jobLine('smoke-1', '+15555550101'), jobLine('smoke-2', 'someone@example.com')].join('\n'),
    );
    const report = join(dir.path, 'report.json');
    const { io, stdout } = testIO({
      ECOURTDATE_CLIENT_ID: 'staging-client',
      ECOURTDATE_CLIENT_SECRET: 'staging-secret-value',
    });

    const status = await main(
      ['--ecourtdate-url', sim.url, '--jobs', jobs, '--report', report, '--state-dir', dir.path],
      io,
    );

    expect(status).toBe(0);
    const result = await readReport(report);
    expect(result.jobs.map((j) => [j.id, j.outcome])).toEqual([
      ['smoke-1', 'delivered'],
      ['smoke-2', 'delivered'],
    ]);
    expect(sim.messages.map((m) => m.clientId)).toEqual(['staging-client', 'staging-client']);
    expect(result.jobs.map((j) => j.uuid).sort()).toEqual(sim.messages.map((m) => m.uuid).sort());
    const byPath = (path: string) => sim?.requests.filter((r) => r.path === path).length;
    expect(result.api_calls).toEqual({ token: byPath('/oauth/token'), send: byPath('/v1/messages/oneoffs') });
    expect(stdout.text).toContain(`against ${sim.url}`);
    expect(stdout.text).toContain('(real time)');
    expect(stdout.text).not.toContain('staging-secret-value');
  });

  it('--ecourtdate-url without the credentials in the environment: says which variable is missing, exit 2', async () => {
    const jobs = await dir.file('jobs.jsonl', `${jobLine('smoke-1', '+15555550101')}\n`);
    const { io, stderr } = testIO({ ECOURTDATE_CLIENT_ID: 'staging-client' });

    const status = await main(['--ecourtdate-url', 'https://staging.api.ecourtdate.com', '--jobs', jobs], io);

    expect(status).toBe(2);
    expect(stderr.text).toContain('ECOURTDATE_CLIENT_SECRET is not set');
    expect(stderr.text).not.toContain('ECOURTDATE_CLIENT_ID is');
  });

  it.each([
    [['--ecourtdate-url', 'https://staging.api.ecourtdate.com'], '--ecourtdate-url needs --jobs FILE'],
    [['--ecourtdate-url', 'http://staging.api.ecourtdate.com', '--jobs', 'x'], 'expected an https:// URL'],
    [['--time-scale', '0'], '--time-scale: expected a whole number from 1'],
    [['--concurrency', 'many'], '--concurrency: expected a whole number'],
    [['--jobs', '/nonexistent/jobs.jsonl'], 'cannot read the jobs file /nonexistent/jobs.jsonl (ENOENT)'],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
  ])('refuses %j with a message saying why, exit 2', async (argv, message) => {
    const { io, stderr } = testIO();

    expect(await main(argv, io)).toBe(2);
    expect(stderr.text).toContain(message);
  });

  it('--help prints the options', async () => {
    const { io, stdout } = testIO();

    expect(await main(['--help'], io)).toBe(0);
    for (const option of [
      '--jobs',
      '--ecourtdate-url',
      '--time-scale',
      '--report',
      '--concurrency',
      '--timeout',
    ]) {
      expect(stdout.text).toContain(option);
    }
  });

  it('--timeout: a job still waiting for its retry is reported unsettled, exit 1', async () => {
    const jobs = await dir.file('jobs.jsonl', `${jobLine('unavailable', '+15550100503')}\n`);
    const report = join(dir.path, 'report.json');
    const { io, stdout } = testIO();

    // Real time: the 503's first retry is a minute away.
    const status = await main(
      ['--jobs', jobs, '--time-scale', '1', '--timeout', '2', '--report', report, '--state-dir', dir.path],
      io,
    );

    expect(status).toBe(1);
    const result = await readReport(report);
    expect(result.summary.unsettled).toBe(1);
    expect(result.jobs).toEqual([
      { id: 'unavailable', outcome: 'unsettled', reason: null, attempts: 1, last_status: 503, uuid: null },
    ]);
    expect(stdout.text).toContain('Stopped by the timeout with 1 job(s) not settled.');
  });
});
