import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ENDPOINTS_FILE } from '#local/pipeline/endpoints-file.ts';
import type { RunReport } from '#local/pipeline/report.ts';
import { relay } from '#test/cli/run.ts';
import { jobLine, tempDir } from '#test/local/io.ts';
import { killProcess, type StartProcess, startProcess } from '#test/local/start-process.ts';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe('Ctrl-C on npm start (a child process, SIGINT to its process group as a terminal sends it)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let started: StartProcess | undefined;

  beforeEach(async () => {
    dir = await tempDir();
  });

  afterEach(async () => {
    killProcess(started);
    started = undefined;
    await dir.remove();
  });

  it('during the run: prints "interrupted: N/M settled" and the summary, writes the partial report, exit 130', async () => {
    // In real time the 503 job's first retry is a minute away: it cannot settle before the Ctrl-C.
    const jobs = await dir.file(
      'jobs.jsonl',
      [jobLine('fine', '+15551230401'), jobLine('unavailable', '+15550100503')].join('\n'),
    );
    const report = join(dir.path, 'report.json');
    started = startProcess([
      '--jobs',
      jobs,
      '--time-scale',
      '1',
      '--report',
      report,
      '--state-dir',
      dir.path,
    ]);
    await started.waitForOutput(/^progress: 1\/2 settled/m);

    started.pressCtrlC();

    expect(await started.exited).toBe(130);
    expect(started.stdout()).toMatch(/^interrupted: 1\/2 settled$/m);
    expect(started.stdout()).toContain('Interrupted (Ctrl-C) with 1 job not settled.');
    expect(started.stdout()).toMatch(/^unavailable\s+unsettled\s+-\s+1\s+503/m);
    const written = JSON.parse(await readFile(report, 'utf8')) as RunReport;
    expect(written.ended).toBe('interrupted');
    expect(written.summary).toMatchObject({ jobs: 2, delivered: 1, unsettled: 1 });
  });

  it('with --keep-running: stops, removes the endpoints file, and --local commands then say it is not running', async () => {
    const jobs = await dir.file('jobs.jsonl', jobLine('fine', '+15551230402'));
    const endpoints = join(dir.path, ENDPOINTS_FILE);
    started = startProcess(['--jobs', jobs, '--keep-running', '--state-dir', dir.path]);
    await started.waitForOutput(/^Still running/m);
    expect(await exists(endpoints)).toBe(true);
    expect((await relay('dlq', 'list', '--local', '--local-file', endpoints)).status).toBe(0);

    started.pressCtrlC();

    // A terminal's Ctrl-C reaches npm (npx) too, which then exits 130 whatever the run's own status was (0 here).
    expect(await started.exited).toBe(130);
    expect(started.stdout()).toContain(`Stopped; removed ${endpoints}`);
    // The hints work as printed: they name this run's own state directory.
    expect(started.stdout()).toContain(`Try: npm run relay -- dlq list --local --local-file ${endpoints}`);
    expect(started.stdout()).toContain(
      `Start again with: npm start -- --keep-running --state-dir ${dir.path}`,
    );
    expect(await exists(endpoints)).toBe(false);
    for (const argv of [['dlq', 'list'], ['check-credentials']]) {
      const run = await relay(...argv, '--local', '--local-file', endpoints);
      expect(run.status).toBe(2);
      expect(run.stderr).toContain('the local pipeline is not running');
      expect(run.stderr).toContain('npm start -- --keep-running');
    }
  });

  it("with --keep-running in the background: SIGINT to the pid in endpoints.json stops it with the run's own status, 0", async () => {
    const jobs = await dir.file('jobs.jsonl', jobLine('fine', '+15551230406'));
    const endpoints = join(dir.path, ENDPOINTS_FILE);
    started = startProcess(['--jobs', jobs, '--keep-running', '--state-dir', dir.path]);
    await started.waitForOutput(/^Still running/m);
    const { pid } = JSON.parse(await readFile(endpoints, 'utf8')) as { pid: number };
    expect(pid).not.toBe(started.child.pid);

    // As `kill -INT <pid>` from a script: the pipeline's own process only, not npm (npx) around it.
    process.kill(pid, 'SIGINT');

    expect(await started.exited).toBe(0);
    expect(started.stdout()).toContain(`Stopped; removed ${endpoints}`);
    expect(await exists(endpoints)).toBe(false);
  });

  it('npm run stop (relay local stop) stops a background run of its state directory, and a second npm start there is refused while it runs', async () => {
    const jobs = await dir.file('jobs.jsonl', jobLine('fine', '+15551230407'));
    started = startProcess(['--jobs', jobs, '--keep-running', '--state-dir', dir.path]);
    await started.waitForOutput(/^Still running/m);
    expect(started.stdout()).toContain(`npm run stop -- --state-dir ${dir.path} stops it`);

    const second = startProcess(['--jobs', jobs, '--state-dir', dir.path]);
    expect(await second.exited).toBe(2);
    expect(second.stderr()).toMatch(/another npm start \(process \d+\) is using the state directory/);

    const stop = await relay('local', 'stop', '--state-dir', dir.path);

    expect(stop.status).toBe(0);
    expect(stop.stdout).toMatch(/^Stopped the local pipeline \(process \d+\)\.$/m);
    expect(await started.exited).toBe(0);
    const again = await relay('local', 'stop', '--state-dir', dir.path);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain('no local pipeline is running with the state directory');
  });
});
