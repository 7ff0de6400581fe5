import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Simulator, SimulatorOptions } from '#local/ecourtdate-simulator/index.ts';
import { main } from '#local/pipeline/main.ts';
import type { RunReport } from '#local/pipeline/report.ts';
import { startWorld, type World } from '#local/world.ts';
import { ALARM_ID, alarmDefinitions } from '#shared/alarm-definitions.ts';
import { refusedPort } from '#test/helpers/refused-port.ts';
import { jobLine, tempDir, testIO } from '#test/local/io.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
/** The world whose simulator stands for the eCourtDate API `--ecourtdate-url` names, when a test starts one. */
let apiWorld: World | undefined;

beforeEach(async () => {
  dir = await tempDir();
});

afterEach(async () => {
  await apiWorld?.close();
  apiWorld = undefined;
  await dir.remove();
});

/**
 * An eCourtDate API for `--ecourtdate-url`: the simulator of a `startWorld` world (local/world.ts) of its own,
 * accepting only the client `staging-client` / `staging-secret-value`, with `options` over the world's.
 */
async function externalApi(options: SimulatorOptions = {}): Promise<Simulator> {
  apiWorld = await startWorld({
    apiClient: { id: 'staging-client', secret: 'staging-secret-value' },
    simulator: options,
  });
  if (apiWorld.simulator === undefined) throw new Error('the world started no simulator');
  return apiWorld.simulator;
}

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
    const { io, stderr, stdout } = testIO();

    const status = await main(['--jobs', jobs, '--report', report, '--state-dir', dir.path], io);

    expect(stderr.text).toBe('');
    expect(status).toBe(0);
    // Every call of the sender and the receiver was one the stack's IAM allows (docs/test-world.md).
    expect(stdout.text).not.toContain('IAM:');
    // Not the demo: the user's own jobs, whose dead letters are no show.
    expect(stdout.text).not.toContain('This is the demo');
    const result = await readReport(report);
    expect(Object.keys(result)).toEqual(['ended', 'summary', 'jobs', 'api_calls', 'alarms']);
    expect(result.ended).toBe('settled');
    expect(result.summary).toEqual({ jobs: 4, delivered: 1, duplicate: 0, dead_lettered: 3, unsettled: 0 });
    expect(result.jobs.map((j) => [j.id, j.line, j.outcome, j.reason, j.last_status])).toEqual([
      ['fine', 1, 'delivered', null, 201],
      ['refused', 2, 'dead_lettered', 'forbidden', 403],
      [null, 3, 'dead_lettered', 'invalid_job', null],
      ['too-late', 5, 'dead_lettered', 'expired', null],
    ]);
    expect(Object.keys(result.jobs[0] ?? {})).toEqual([
      'id',
      'line',
      'copy_of_line',
      'outcome',
      'reason',
      'attempts',
      'last_status',
      'uuid',
      'detail',
      'response_excerpt',
      'delivery_status',
      'delivery_history',
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

  it('an exact duplicate line settles within the run as the same job, sent once and counted once', async () => {
    const line = jobLine('twice', '+15551230103');
    const jobs = await dir.file('jobs.jsonl', [line, line].join('\n'));
    const report = join(dir.path, 'report.json');
    const { io, stdout } = testIO();

    const status = await main(['--jobs', jobs, '--report', report, '--state-dir', dir.path], io);

    expect(status).toBe(0);
    const result = await readReport(report);
    expect(result.ended).toBe('settled');
    expect(result.summary).toEqual({ jobs: 1, delivered: 1, duplicate: 0, dead_lettered: 0, unsettled: 0 });
    // Both messages' fates: the first line's was sent, the second found the job delivered (same uuid, no send).
    expect(result.jobs.map((j) => [j.line, j.copy_of_line, j.outcome, j.attempts])).toEqual([
      [1, null, 'delivered', 1],
      [2, 1, 'delivered', 1],
    ]);
    expect(result.jobs[1]?.uuid).toBe(result.jobs[0]?.uuid);
    expect(result.api_calls.send).toBe(1);
    const state = Object.fromEntries(result.alarms.map((a) => [a.name, a.state]));
    expect(state[ALARM_ID.oldestMessage]).not.toBe('ALARM');
    expect(stdout.text).toContain('the same job as line 1: sent once');
    expect(stdout.text).toMatch(/^1 job against/m);
  });

  it("says why each job failed, in the summary and the report: the detail and eCourtDate's answer", async () => {
    const jobs = await dir.file(
      'jobs.jsonl',
      [
        JSON.stringify({ id: 'no-content', message: { to: '+15551230111' } }),
        jobLine('bad-request', '+15550100400'),
        jobLine('same-id', '+15551230112'),
        jobLine('same-id', '+15551230113'),
        jobLine('skip-duplicate-504', '+15550100505', {
          message: { to: '+15550100505', content: 'Court on Dec 3.', skip_duplicate: true },
        }),
        '{not json',
      ].join('\n'),
    );
    const report = join(dir.path, 'report.json');
    const { io, stdout } = testIO();

    expect(await main(['--jobs', jobs, '--report', report, '--state-dir', dir.path], io)).toBe(0);

    const byLine = Object.fromEntries((await readReport(report)).jobs.map((j) => [j.line, j]));
    expect(byLine[1]).toMatchObject({
      id: 'no-content',
      reason: 'invalid_job',
      detail: 'message.content: is required',
      attempts: 0,
    });
    expect(byLine[2]).toMatchObject({ reason: 'bad_request', attempts: 1, last_status: 400 });
    expect(byLine[2]?.response_excerpt).toContain('The to field must be a valid phone number.');
    const conflict = [byLine[3], byLine[4]].find((j) => j?.outcome === 'dead_lettered');
    expect(conflict).toMatchObject({ reason: 'id_conflict' });
    expect(conflict?.detail).toContain('different body');
    expect(byLine[5]).toMatchObject({ reason: 'unknown_outcome', last_status: 504 });
    expect(byLine[5]?.response_excerpt).toContain('Gateway Timeout');
    expect(byLine[6]).toMatchObject({ id: null, reason: 'invalid_job', attempts: 0 });
    expect(byLine[6]?.detail).toMatch(/JSON/);

    expect(stdout.text).toMatch(
      /^no-content\s+dead_lettered\s+invalid_job\s+0\s+-\s+message\.content: is required$/m,
    );
    expect(stdout.text).toMatch(
      /^bad-request\s+dead_lettered\s+bad_request\s+1\s+400\s+.*eCourtDate: .*The to field/m,
    );
    expect(stdout.text).toMatch(/^\(no id\) line 6\s+dead_lettered\s+invalid_job\s+0\s+-\s+\S/m);
  });

  it('keeps the sender logs out of the terminal: plain progress lines and the summary there, JSON lines in the log file', async () => {
    const jobs = await dir.file('jobs.jsonl', `${jobLine('fine', '+15551230103')}\n`);
    const { io, stdout } = testIO();

    await main(['--jobs', jobs, '--state-dir', dir.path], io);

    expect(stdout.text).toMatch(/^progress: 1\/1 settled; 1 delivered/m);
    expect(stdout.text).toContain('1 job against the built-in eCourtDate simulator');
    expect(stdout.text).toContain('API calls: 1 request to the messages endpoint, 1 token request\n');
    expect(stdout.text).toMatch(/^Forbidden403\s+OK/m);
    expect(stdout.text).not.toContain('job settled');
    expect(stdout.text).not.toContain('_aws');
    const log = await readFile(join(dir.path, 'sender.log'), 'utf8');
    expect(log).toContain('"message":"job settled"');
    expect(log).toContain('"_aws"');
    expect(log).not.toContain('Reminder for fine');
  });

  it('--ecourtdate-url: sends to that API with the credentials from the environment, in real time', async () => {
    const sim = await externalApi();
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
    const byPath = (path: string) => sim.requests.filter((r) => r.path === path).length;
    expect(result.api_calls).toEqual({ token: byPath('/oauth/token'), send: byPath('/v1/messages/oneoffs') });
    expect(stdout.text).toContain(`against ${sim.url}`);
    expect(stdout.text).toContain('(real time)');
    expect(stdout.text).not.toContain('staging-secret-value');
  });

  it('--ecourtdate-url refusing connections: stops at the first request, names the cause and the host, exit 2', async () => {
    const port = await refusedPort();
    const jobs = await dir.file(
      'jobs.jsonl',
      [jobLine('smoke-1', '+15555550101'), jobLine('smoke-2', '+15555550102')].join('\n'),
    );
    const report = join(dir.path, 'report.json');
    const { io, stdout } = testIO({ ECOURTDATE_CLIENT_ID: 'id', ECOURTDATE_CLIENT_SECRET: 'secret' });

    // The timeout is far beyond the test's own: only stopping at the first failure lets this test pass.
    const status = await main(
      ['--ecourtdate-url', `http://127.0.0.1:${port}`, '--jobs', jobs, '--timeout', '600'].concat([
        '--report',
        report,
        '--state-dir',
        dir.path,
      ]),
      io,
    );

    expect(status).toBe(2);
    const result = await readReport(report);
    expect(result.ended).toBe('unreachable');
    expect(result.summary).toMatchObject({ jobs: 2, unsettled: 2 });
    // One token request told it all: no send was made, and no retry.
    expect(result.api_calls).toEqual({ token: 1, send: 0 });
    const cause = `Could not reach 127.0.0.1:${port}: the connection was refused (ECONNREFUSED). Check the API base URL and this network.`;
    expect(stdout.text).toContain(`First request without an answer: ${cause}`);
    const summary = stdout.text.split('Stopped at the first failed request')[1] ?? '';
    expect(summary).toContain(cause);
    expect(stdout.text).toContain('the API cannot be reached from here, and retrying would not change that');
    // No advice to run a command that cannot help (or, without a target, cannot run).
    expect(stdout.text).not.toContain('check-credentials');
  });

  it('--ecourtdate-url with a job dead-lettered: points to check-credentials --local, a command that runs here', async () => {
    const sim = await externalApi({ knownAgencies: ['county-a'] });
    const jobs = await dir.file(
      'jobs.jsonl',
      `${jobLine('smoke-agency', '+15555550103', { agency_reference: 'county-z' })}\n`,
    );
    const { io, stdout } = testIO({
      ECOURTDATE_CLIENT_ID: 'staging-client',
      ECOURTDATE_CLIENT_SECRET: 'staging-secret-value',
    });

    const status = await main(['--ecourtdate-url', sim.url, '--jobs', jobs, '--state-dir', dir.path], io);

    expect(status).toBe(0);
    expect(stdout.text).toMatch(/^smoke-agency\s+dead_lettered\s+not_found/m);
    expect(stdout.text).toContain(
      'To check the credentials and the API step by step: run this again with --keep-running, then, in ' +
        `another terminal: npm run relay -- check-credentials --local --local-file ${join(dir.path, 'endpoints.json')}`,
    );
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
    [['--concurrency', '-1'], '--concurrency: expected a whole number from 1 to 100, got "-1"'],
    [['--timeout', '-5'], '--timeout: expected a number of seconds above 0, got "-5"'],
    [['--jobs', '/nonexistent/jobs.jsonl'], 'cannot read the jobs file /nonexistent/jobs.jsonl (ENOENT)'],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
  ])('refuses %j with a message saying why, exit 2', async (argv, message) => {
    const { io, stderr } = testIO();

    expect(await main(argv, io)).toBe(2);
    expect(stderr.text).toContain(message);
  });

  it('--time-scale beyond the faithful limit: refused before anything starts, naming the limit and why, exit 2', async () => {
    const { io, stdout, stderr } = testIO();

    expect(await main(['--time-scale', '600'], io)).toBe(2);
    expect(stderr.text).toContain('--time-scale 600 is too fast to be faithful; use 38 or less');
    expect(stderr.text).toContain('duplicate window lasts 3.0 s');
    expect(stderr.text).toContain('3 s HTTP timeout in real time');
    expect(stderr.text).toContain('dead-lettered unknown_outcome instead');
    expect(stdout.text).toBe('');
  });

  it('--time-scale at the faithful limit: a job that timed out, and one created then answered 504, are still delivered', async () => {
    const jobs = await dir.file(
      'jobs.jsonl',
      [jobLine('timeout-once', '+15550100408'), jobLine('created-then-504', '+15550100504')].join('\n'),
    );
    const report = join(dir.path, 'report.json');
    const { io } = testIO();

    expect(
      await main(['--jobs', jobs, '--time-scale', '38', '--report', report, '--state-dir', dir.path], io),
    ).toBe(0);

    const result = await readReport(report);
    expect(result.jobs.map((j) => [j.id, j.outcome, j.attempts])).toEqual([
      ['timeout-once', 'delivered', 2],
      ['created-then-504', 'delivered', 2],
    ]);
  });

  it('one id under two bodies: the refused row is dead-lettered id_conflict, never delivered, with no delivery status', async () => {
    const moved = { message: { to: '+15551230406', content: 'Change: your hearing moved to 9:30 AM.' } };
    const jobs = await dir.file(
      'jobs.jsonl',
      [jobLine('hearing-1', '+15551230406'), jobLine('hearing-1', '+15551230406', moved)].join('\n'),
    );
    const report = join(dir.path, 'report.json');
    const { io, stdout } = testIO();

    await main(['--jobs', jobs, '--report', report, '--state-dir', dir.path], io);

    const result = await readReport(report);
    expect(result.summary).toMatchObject({ jobs: 2, delivered: 1, dead_lettered: 1, unsettled: 0 });
    const delivered = result.jobs.find((j) => j.outcome === 'delivered');
    const refused = result.jobs.find((j) => j.outcome !== 'delivered');
    expect(delivered).toMatchObject({ id: 'hearing-1', delivery_status: 'delivered' });
    expect(refused).toMatchObject({
      id: 'hearing-1',
      outcome: 'dead_lettered',
      reason: 'id_conflict',
      attempts: 0,
      uuid: null,
      delivery_status: null,
      delivery_history: [],
    });
    expect(stdout.text).toMatch(/^hearing-1\s+dead_lettered\s+id_conflict\s+0\s+-\s+this version \(body /m);
    const deliveries = stdout.text.split("Delivery status from eCourtDate's webhooks")[1] ?? '';
    expect(deliveries.match(/^hearing-1\s/gm)).toHaveLength(1);
  });

  it('a job delivered by a 409 has no uuid: the summary says why it has no delivery status', async () => {
    const jobs = await dir.file(
      'jobs.jsonl',
      [jobLine('ok-1', '+15551230404'), jobLine('created-then-504', '+15550100504')].join('\n'),
    );
    const report = join(dir.path, 'report.json');
    const { io, stdout } = testIO();

    expect(await main(['--jobs', jobs, '--report', report, '--state-dir', dir.path], io)).toBe(0);

    const result = await readReport(report);
    expect(result.jobs.map((j) => [j.id, j.last_status, j.uuid === null, j.delivery_status])).toEqual([
      ['ok-1', 201, false, 'delivered'],
      ['created-then-504', 409, true, null],
    ]);
    const deliveries = stdout.text.split("Delivery status from eCourtDate's webhooks")[1] ?? '';
    expect(deliveries).toMatch(/^ok-1\s+delivered \(sent → delivered\)$/m);
    expect(deliveries).toMatch(/^created-then-504\s+- \(no uuid\)$/m);
    expect(deliveries).toContain('(no uuid): delivered by a 409 to a resend');
  });

  it("the summary names both logs: the sender's and the webhook receiver's", async () => {
    const jobs = await dir.file('jobs.jsonl', `${jobLine('fine', '+15551230405')}\n`);
    const { io, stdout } = testIO();

    expect(await main(['--jobs', jobs, '--state-dir', dir.path], io)).toBe(0);

    expect(stdout.text).toContain(`(what Lambda would print): ${join(dir.path, 'sender.log')}`);
    expect(stdout.text).toContain(`Webhook receiver logs: ${join(dir.path, 'webhook.log')}`);
  });

  it('--report under a file: refused before the run naming the file, exit 2', async () => {
    const file = await dir.file('a-file', 'not a directory');
    const { io, stdout, stderr } = testIO();

    expect(await main(['--report', join(file, 'sub', 'report.json'), '--state-dir', dir.path], io)).toBe(2);
    expect(stderr.text).toContain(
      `--report: cannot write ${join(file, 'sub', 'report.json')}: ${file} is a file, not a folder`,
    );
    expect(stdout.text).not.toContain('progress:');
  });

  it('--report in a folder that does not exist: the folder is created', async () => {
    const folder = join(dir.path, 'no-such-folder', 'deeper');
    const jobs = await dir.file('jobs.jsonl', `${jobLine('fine', '+15551230403')}\n`);
    const { io, stderr } = testIO();

    expect(
      await main(['--jobs', jobs, '--report', join(folder, 'r.json'), '--state-dir', dir.path], io),
    ).toBe(0);
    expect(stderr.text).toBe('');
    expect((await readReport(join(folder, 'r.json'))).ended).toBe('settled');
  });

  it('--report naming a directory: refused before the run, exit 2', async () => {
    const { io, stderr } = testIO();

    expect(await main(['--report', dir.path, '--state-dir', dir.path], io)).toBe(2);
    expect(stderr.text).toContain(`--report: cannot write ${dir.path} (it is a directory)`);
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
    // In the user's words: what runs, and what the sample jobs are for.
    expect(stdout.text).toContain('a DynamoDB emulator with the job ledger table');
    expect(stdout.text).toContain('sample jobs that meet every answer eCourtDate can');
    expect(stdout.text).not.toContain('design');
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
    expect(result.ended).toBe('timed_out');
    expect(result.jobs).toMatchObject([
      { id: 'unavailable', outcome: 'unsettled', reason: null, attempts: 1, last_status: 503, uuid: null },
    ]);
    expect(stdout.text).toContain('Stopped by the timeout with 1 job not settled.');
  });
});
