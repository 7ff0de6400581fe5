import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '#local/pipeline/report.ts';
import { ALARM_ID } from '#shared/alarm-definitions.ts';
import { REPO_ROOT, tempDir } from '#test/local/io.ts';

/**
 * What each sample job in examples/jobs.jsonl must come to, with the built-in simulator's script (the magic
 * recipients in local/pipeline/scenario.ts): one entry per row of the response table in docs/contract.md ("What
 * each response does"). Line 21 is not JSON: it has no id, and the report names it by its line.
 */
const EXPECTED: Record<string, { outcome: string; reason: string | null }> = {
  'ok-1': { outcome: 'delivered', reason: null },
  'token-renewed': { outcome: 'delivered', reason: null },
  'bad-request': { outcome: 'dead_lettered', reason: 'bad_request' },
  forbidden: { outcome: 'dead_lettered', reason: 'forbidden' },
  'agency-not-found': { outcome: 'dead_lettered', reason: 'not_found' },
  'method-not-allowed': { outcome: 'dead_lettered', reason: 'client_error' },
  'created-then-504': { outcome: 'delivered', reason: null },
  'timeout-once': { outcome: 'delivered', reason: null },
  'skip-duplicate-504': { outcome: 'dead_lettered', reason: 'unknown_outcome' },
  'server-error-once': { outcome: 'delivered', reason: null },
  'email-scheduled': { outcome: 'delivered', reason: null },
  'auth-failing-then-ok': { outcome: 'delivered', reason: null },
  'server-error-twice': { outcome: 'dead_lettered', reason: 'unknown_outcome' },
  unavailable: { outcome: 'dead_lettered', reason: 'unknown_outcome' },
  'connection-dropped-once': { outcome: 'delivered', reason: null },
  'ok-2': { outcome: 'delivered', reason: null },
  'ok-voice': { outcome: 'delivered', reason: null },
  expired: { outcome: 'dead_lettered', reason: 'expired' },
  'invalid-no-content': { outcome: 'dead_lettered', reason: 'invalid_job' },
  'duplicate-of-ok-1': { outcome: 'duplicate', reason: null },
  'line 21': { outcome: 'dead_lettered', reason: 'invalid_job' },
  'rate-limited-once': { outcome: 'delivered', reason: null },
};

interface Finished {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real command the way `npm start` does (tsx under the project's Node), without a terminal. */
function start(args: readonly string[]): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['tsx', 'local/start.ts', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('npm start, end to end (a child process, the sample jobs, the built-in simulator)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let run: Finished;
  let report: RunReport;

  beforeAll(async () => {
    dir = await tempDir();
    const reportFile = join(dir.path, 'report.json');
    run = await start(['--report', reportFile, '--state-dir', dir.path]);
    report = JSON.parse(await readFile(reportFile, 'utf8')) as RunReport;
  }, 90_000);

  afterAll(async () => {
    await dir?.remove();
  });

  it('is the command `npm start` runs', async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.start).toBe('tsx local/start.ts');
  });

  it('settles every sample job and exits 0', () => {
    expect(run.stderr.replace(/^npm warn .*\n/gm, '')).toBe('');
    expect(run.status).toBe(0);
    expect(report.summary.unsettled).toBe(0);
  });

  it('gives every sample job the outcome and reason the response table prescribes', async () => {
    const lines = (await readFile(join(REPO_ROOT, 'examples', 'jobs.jsonl'), 'utf8')).trim().split('\n');
    expect(report.jobs).toHaveLength(lines.length);
    expect(
      Object.fromEntries(
        report.jobs.map((j) => [j.id ?? `line ${j.line}`, { outcome: j.outcome, reason: j.reason }]),
      ),
    ).toEqual(EXPECTED);
    expect(report.summary).toEqual({
      jobs: 22,
      delivered: 11,
      duplicate: 1,
      dead_lettered: 10,
      unsettled: 0,
    });
  });

  it('records how the retried ones got there', () => {
    const job = (id: string) => report.jobs.find((j) => j.id === id);
    // Created by the first attempt (answered 504); the retry met eCourtDate's duplicate check.
    expect(job('created-then-504')).toMatchObject({ attempts: 2, last_status: 409 });
    expect(job('unavailable')).toMatchObject({ attempts: 5, last_status: 503 });
    expect(job('server-error-twice')).toMatchObject({ attempts: 2, last_status: 500 });
    expect(job('duplicate-of-ok-1')).toMatchObject({ attempts: 1, last_status: 409 });
    // Nothing was sent for an invalid job: attempts count sends.
    expect(job('invalid-no-content')).toMatchObject({ attempts: 0, last_status: null });
    expect(job('invalid-no-content')?.detail).toContain('message.content');
    expect(job('ok-1')?.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(report.api_calls.token).toBeGreaterThanOrEqual(2);
    expect(report.api_calls.send).toBeGreaterThanOrEqual(30);
  });

  it('shows the alarms the run would raise', () => {
    const state = Object.fromEntries(report.alarms.map((a) => [a.name, a.state]));
    expect(state[ALARM_ID.deadLetterQueue]).toBe('ALARM');
    expect(state[ALARM_ID.senderErrors]).toBe('OK');
    expect(state[ALARM_ID.eventsDeadLetterQueue]).toBe('INSUFFICIENT_DATA');
  });

  it('prints plain progress lines and the summary table', () => {
    expect(run.stdout).toMatch(/^progress: \d+\/22 settled/m);
    expect(run.stdout).toContain('22 jobs against the built-in eCourtDate simulator');
    // A newcomer's first run: its dead letters and alarms are the demo's, on purpose.
    expect(run.stdout).toContain(
      'This is the demo: its dead letters and the alarms it raises are deliberate.',
    );
    expect(run.stdout).toMatch(/^dead-lettered\s+10\s+bad_request 1/m);
    expect(run.stdout).toMatch(/^duplicate-of-ok-1\s+duplicate/m);
    expect(run.stdout).toMatch(/^\(no id\) line 21\s+dead_lettered\s+invalid_job\s+0\s/m);
    expect(run.stdout).toMatch(/^DeadLetterQueueNotEmpty\s+ALARM/m);
    expect(run.stdout).not.toContain('ExperimentalWarning');
  });
});
