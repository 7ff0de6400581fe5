import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readJobs } from '#cli/commands/send.ts';
import { readJobsFile } from '#local/pipeline/jobs-file.ts';
import { parseJob } from '#shared/job.ts';
import { jobBody } from '#test/helpers/factories.ts';

// Regression: a jobs file saved by a Windows editor starts with a UTF-8 byte order mark,
// and its first job was refused by `relay send` and dead-lettered invalid_job, without a job_id, by
// `npm start -- --jobs`.
const BOM = '\uFEFF';
const first = JSON.stringify(jobBody({ id: 'bom-1' }));
const second = JSON.stringify(jobBody({ id: 'bom-2' }));

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'relay-bom-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text, 'utf8');
  return path;
}

describe('relay send FILE with a byte order mark', () => {
  it('reads every job of a JSON Lines file, the first one included, and sends it without the mark', async () => {
    const path = await file('jobs.jsonl', `${BOM}${first}\r\n${second}\r\n`);

    const jobs = await readJobs(path);

    expect(jobs.map((job) => job.id)).toEqual(['bom-1', 'bom-2']);
    expect(jobs[0]?.body).toBe(first);
  });

  it('reads a single pretty-printed job', async () => {
    const path = await file('job.json', `${BOM}${JSON.stringify(jobBody({ id: 'bom-1' }), null, 2)}\n`);

    const jobs = await readJobs(path);

    expect(jobs.map((job) => job.id)).toEqual(['bom-1']);
    expect(parseJob(jobs[0]?.body ?? '').id).toBe('bom-1');
  });
});

describe('npm start -- --jobs FILE with a byte order mark', () => {
  it('names the first job by its id and queues its body without the mark', async () => {
    const path = await file('jobs.jsonl', `${BOM}${first}\n${second}\n`);

    const lines = await readJobsFile(path);

    expect(lines.map((line) => line.id)).toEqual(['bom-1', 'bom-2']);
    expect(lines[0]?.body).toBe(first);
  });
});

describe("npm start --jobs FILE: SQS's message size", () => {
  it("takes a job over the old 256 KiB limit and refuses one over SQS's 1 MiB, naming its line", async () => {
    const big = (bytes: number) =>
      JSON.stringify(jobBody({ id: `big-${bytes}` }, { note: 'x'.repeat(bytes) }));
    const path = await file('big.jsonl', `${big(300 * 1024)}\n`);
    expect((await readJobsFile(path)).map((job) => job.id)).toEqual([`big-${300 * 1024}`]);

    const over = await file('over.jsonl', `${first}\n${big(1024 * 1024)}\n`);
    await expect(readJobsFile(over)).rejects.toThrow(/over\.jsonl:2: the job is larger than SQS's 1 MiB/);
  });
});
