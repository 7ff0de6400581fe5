import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MainIO } from '#local/pipeline/main.ts';

/** The repository root: `npm start` runs here (cdk.json, examples/). */
export const REPO_ROOT = join(import.meta.dirname, '..', '..');

/** A text stream that keeps what is written, not a TTY. */
export function collector(): { write(text: string): boolean; readonly text: string } {
  let text = '';
  return {
    write(chunk: string) {
      text += chunk;
      return true;
    },
    get text() {
      return text;
    },
  };
}

/** `main`'s I/O for a test: captured output, the given environment, run from the repository root. */
export function testIO(env: Record<string, string | undefined> = {}) {
  const stdout = collector();
  const stderr = collector();
  // What Ctrl-C does to `npm start`: `stop()` aborts the signal.
  const controller = new AbortController();
  const io: MainIO = { stdout, stderr, env, cwd: REPO_ROOT, signal: controller.signal };
  return { io, stdout, stderr, stop: () => controller.abort() };
}

/** A temporary directory, removed by the returned cleanup. */
export async function tempDir(): Promise<{
  path: string;
  file(name: string, text: string): Promise<string>;
  remove(): Promise<void>;
}> {
  const path = await mkdtemp(join(tmpdir(), 'relay-test-'));
  return {
    path,
    async file(name, text) {
      const file = join(path, name);
      await writeFile(file, text);
      return file;
    },
    remove: () => rm(path, { recursive: true, force: true }),
  };
}

/** One JSON job line. */
export function jobLine(id: string, to: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    id,
    message: { to, content: `Reminder for ${id}: court on Dec 3 at 9:00 AM.` },
    ...extra,
  });
}
