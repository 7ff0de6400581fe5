import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireRunLock, RUN_LOCK_FILE, readRunLock } from '#local/pipeline/run-lock.ts';
import { tempDir } from '#test/local/io.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;

beforeEach(async () => {
  dir = await tempDir();
});

afterEach(async () => {
  await dir.remove();
});

describe('the run lock of a state directory (one npm start per folder)', () => {
  it('is taken by a run, names its process, and is gone once released', async () => {
    const lock = await acquireRunLock(dir.path);

    expect(lock.kind).toBe('acquired');
    expect(await readRunLock(dir.path)).toBe(process.pid);
    if (lock.kind === 'acquired') await lock.release();
    expect(await readRunLock(dir.path)).toBeUndefined();
  });

  it('is refused while a live process holds it, naming that process', async () => {
    await writeFile(join(dir.path, RUN_LOCK_FILE), '{"pid": 4242}\n');

    const lock = await acquireRunLock(dir.path, (pid) => pid === 4242);

    expect(lock).toEqual({ kind: 'held', pid: 4242 });
  });

  it('is taken over from a process that is gone, or from a file that names none', async () => {
    await writeFile(join(dir.path, RUN_LOCK_FILE), '{"pid": 4242}\n');
    const stale = await acquireRunLock(dir.path, () => false);
    expect(stale.kind).toBe('acquired');
    if (stale.kind === 'acquired') await stale.release();

    await writeFile(join(dir.path, RUN_LOCK_FILE), 'not json');
    const broken = await acquireRunLock(dir.path, () => true);
    expect(broken.kind).toBe('acquired');
    expect(JSON.parse(await readFile(join(dir.path, RUN_LOCK_FILE), 'utf8'))).toEqual({ pid: process.pid });
  });

  it('is held against a second run in the same process too', async () => {
    const first = await acquireRunLock(dir.path);
    const second = await acquireRunLock(dir.path);

    expect(first.kind).toBe('acquired');
    expect(second).toEqual({ kind: 'held', pid: process.pid });
  });
});
