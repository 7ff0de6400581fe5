/**
 * `relay validate FILE` (docs/operating.md, "Validate a job file"): each job checked with the relay's own rules,
 * offline, with no target; exit 0 all valid, 1 one invalid, 2 nothing to check.
 */
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '#cli/main.ts';
import { relay } from '#test/cli/run.ts';
import { jobLine, REPO_ROOT, tempDir } from '#test/local/io.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;

beforeEach(async () => {
  dir = await tempDir();
});

afterEach(async () => {
  await dir.remove();
});

describe('validate FILE', () => {
  it('says ok for each valid job and exits 0, with no target and nothing running', async () => {
    const file = await dir.file(
      'jobs.jsonl',
      `${jobLine('cms-1', '+15551230001')}\n${jobLine('cms-2', 'a@example.com')}\n`,
    );

    const run = await relay('validate', file);

    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`${file}:1: ok cms-1\n${file}:2: ok cms-2\n`);
    expect(run.stdout).toMatch(/^2 jobs: 2 valid, 0 invalid$/m);
    expect(run.stderr).toBe('');
  });

  it('names the line, the job and the field of an invalid job, and exits 1', async () => {
    const tooLong = JSON.stringify({
      id: 'cms-3',
      message: { to: '+15551230003', content: 'x'.repeat(2001) },
    });
    const file = await dir.file('jobs.jsonl', `${jobLine('cms-1', '+15551230001')}\n${tooLong}\n`);

    const run = await relay('validate', file);

    expect(run.status).toBe(1);
    expect(run.stdout).toContain(
      `${file}:2: invalid cms-3: message.content: expected at most 2000 characters, got 2001\n`,
    );
    expect(run.stdout).toMatch(/^2 jobs: 1 valid, 1 invalid: /m);
  });

  it('never prints the message text or the recipient, even of an invalid job', async () => {
    const job = {
      id: 'has space',
      message: { to: '+15559871234', content: 'Private: Room 4B', channel: 'sms' },
    };
    const file = await dir.file('jobs.jsonl', `${JSON.stringify(job)}\n`);

    const run = await relay('validate', file);

    expect(run.status).toBe(1);
    expect(run.stdout).toContain('invalid (invalid id "has space"): id: ');
    expect(run.stdout + run.stderr).not.toMatch(/Room 4B|5559871234/);
  });

  it("refuses a job larger than SQS's 1 MiB message, which no queue would take, naming the body and its size", async () => {
    const huge = JSON.stringify({
      id: 'cms-4',
      message: { to: '+15551230004', content: 'Hi', case_notes: 'x'.repeat(1_048_576) },
    });
    const file = await dir.file('jobs.jsonl', `${jobLine('cms-1', '+15551230001')}\n${huge}\n`);

    const run = await relay('validate', file);

    expect(run.status).toBe(1);
    expect(run.stdout).toContain(
      `${file}:2: invalid cms-4: body: expected at most 1048576 bytes (SQS's largest message), got ${Buffer.byteLength(huge)}`,
    );
  });

  it('prints the warnings of a valid job (a phone number not in E.164 form) and still exits 0', async () => {
    const file = await dir.file('jobs.jsonl', `${jobLine('cms-4', '(555) 123-4567')}\n`);

    const run = await relay('validate', file);

    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`${file}:1: warning: cms-4: message.to: a phone number not in E.164 form`);
    expect(run.stdout).toMatch(/1 valid, 0 invalid, 1 job with warnings$/m);
  });

  it('warns of a job whose expires_at has passed (the relay would dead-letter it expired) and still exits 0', async () => {
    const expired = JSON.stringify({
      ...JSON.parse(jobLine('cms-6', '+15551230006')),
      expires_at: '2020-01-01T00:00:00Z',
    });
    const file = await dir.file('jobs.jsonl', `${expired}\n${jobLine('cms-7', '+15551230007')}\n`);

    const run = await relay('validate', file);

    expect(run.status).toBe(0);
    expect(run.stdout).toContain(
      `${file}:1: warning: cms-6: expires_at: 2020-01-01T00:00:00.000Z has passed: the relay would dead-letter this job expired`,
    );
    expect(run.stdout).not.toContain('cms-7: expires_at');
  });

  it('refuses one id under two bodies on its second line (id_conflict), and warns of the same job twice', async () => {
    const lines = [
      jobLine('cms-5', '+15551230005'),
      jobLine('cms-5', '+15551230005'),
      jobLine('cms-5', '+15551239999'),
    ];
    const file = await dir.file('jobs.jsonl', `${lines.join('\n')}\n`);

    const run = await relay('validate', file);

    expect(run.status).toBe(1);
    expect(run.stdout).toContain(
      `${file}:2: warning: cms-5: id: cms-5 is also on line 1, the same job: it goes out once`,
    );
    expect(run.stdout).toContain(`${file}:3: invalid cms-5: id: cms-5 is also on line 1 with another body;`);
  });

  it('reads a pretty-printed job as one job starting on its first line', async () => {
    const text = JSON.stringify(JSON.parse(jobLine('cms-6', '+15551230006')), null, 2);
    const file = await dir.file('job.json', `${text}\n${jobLine('cms-7', '+15551230007')}\n`);

    const run = await relay('validate', file);

    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`${file}:1: ok cms-6\n`);
    expect(run.stdout).toContain(`:${text.split('\n').length + 1}: ok cms-7\n`);
  });

  it('with --json prints one object per job with the other commands’ field names', async () => {
    const file = await dir.file(
      'jobs.jsonl',
      `${jobLine('cms-8', '5551230008')}\n{"id":"cms-9","message":{"to":"+15551230009","content":"hi","channel":"sms"}}\nnot json\n`,
    );

    const run = await relay('validate', file, '--json');

    expect(run.status).toBe(1);
    const objects = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(objects).toEqual([
      {
        line: 1,
        job_id: 'cms-8',
        valid: true,
        field: null,
        error: null,
        warnings: [expect.stringMatching(/^message\.to: /)],
      },
      {
        line: 2,
        job_id: 'cms-9',
        valid: false,
        field: 'message.channel',
        error: 'expected one of text, email, voice, push (eCourtDate\'s channels), got "sms": use "text"',
        warnings: [],
      },
      {
        line: 3,
        job_id: null,
        valid: false,
        field: 'body',
        error: 'expected a JSON object, got text that is not valid JSON',
        warnings: [],
      },
    ]);
  });

  it('reads standard input for -', async () => {
    let stdout = '';
    const status = await runCli(['validate', '-'], {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: () => true },
      cwd: REPO_ROOT,
      env: {},
      stdin: Readable.from([`${jobLine('cms-10', '+15551230010')}\n`]),
    });

    expect(status).toBe(0);
    expect(stdout).toContain('stdin:1: ok cms-10\n');
  });

  it('accepts every job of examples/staging-smoke.jsonl', async () => {
    const run = await relay('validate', 'examples/staging-smoke.jsonl');

    expect(run.status).toBe(0);
    expect(run.stdout).not.toContain(' invalid ');
  });

  it('exits 2 naming the file when it cannot be read, holds no job, or is not given', async () => {
    const empty = await dir.file('empty.jsonl', '\n\n');

    const missing = await relay('validate', `${dir.path}/missing.jsonl`);
    const blank = await relay('validate', empty);
    const none = await relay('validate');

    expect([missing.status, blank.status, none.status]).toEqual([2, 2, 2]);
    expect(missing.stderr).toMatch(/cannot read the job file .*missing\.jsonl \(ENOENT\)/);
    expect(blank.stderr).toContain(`${empty} holds no job`);
    expect(none.stderr).toContain('validate needs a FILE');
    expect(missing.stdout + blank.stdout + none.stdout).toBe('');
  });
});
