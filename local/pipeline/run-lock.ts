import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** The file in a state directory that says which `npm start` uses it: `{"pid": N}`. */
export const RUN_LOCK_FILE = 'run.lock';

/** What `acquireRunLock` found: the lock is ours now, or another live process holds it. */
export type RunLockResult =
  | { readonly kind: 'acquired'; release(): Promise<void> }
  | { readonly kind: 'held'; readonly pid: number };

/**
 * Takes the state directory for this process, so that a second `npm start` in the same folder cannot truncate
 * the running one's logs (docs/operating.md): creates `<stateDir>/run.lock` holding this process id,
 * unless a live process holds it. A lock left by a process that is gone is taken over. `release()` removes the
 * file if it is still ours; it is safe to repeat. Throws what the file system throws (other than a lock that
 * exists).
 *
 * @param isRunning whether a process id is alive; injectable for tests
 */
export async function acquireRunLock(
  stateDir: string,
  isRunning: (pid: number) => boolean = processIsRunning,
): Promise<RunLockResult> {
  await mkdir(stateDir, { recursive: true });
  const path = join(stateDir, RUN_LOCK_FILE);
  for (let tries = 0; tries < 2; tries++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(`${JSON.stringify({ pid: process.pid })}\n`);
      await handle.close();
      let released = false;
      return {
        kind: 'acquired',
        async release() {
          if (released) return;
          released = true;
          if ((await readRunLock(stateDir)) === process.pid) await rm(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = await readRunLock(stateDir);
      if (pid !== undefined && isRunning(pid)) return { kind: 'held', pid };
      // Left by a process that stopped without cleaning up (or unreadable): take it over.
      await rm(path, { force: true });
    }
  }
  throw new Error(`cannot take ${path}: another process keeps creating it`);
}

/** The process id in `<stateDir>/run.lock`, or undefined when there is none or it is not one. */
export async function readRunLock(stateDir: string): Promise<number | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(join(stateDir, RUN_LOCK_FILE), 'utf8'));
    const pid = (parsed as { pid?: unknown } | null)?.pid;
    return typeof pid === 'number' && Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process with this id exists (signal 0 checks without sending anything). */
export function processIsRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it is just not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
