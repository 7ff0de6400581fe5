import { type ChildProcess, spawn } from 'node:child_process';
import { REPO_ROOT } from '#test/local/io.ts';

/** `npm start` running as a child process, the way a user runs it, without a terminal. */
export interface StartProcess {
  readonly child: ChildProcess;
  /** Everything printed so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout matches `pattern`; rejects if the process ends first or after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** What a terminal's Ctrl-C does: SIGINT to the whole process group (npx, tsx and node alike). */
  pressCtrlC(): void;
  /** The exit status; 128 + n for a process killed by signal n, as a shell reports it. */
  readonly exited: Promise<number>;
}

/** Starts `tsx local/start.ts <args>` (the `npm start` script) in its own process group. */
export function startProcess(args: readonly string[]): StartProcess {
  const child = spawn('npx', ['tsx', 'local/start.ts', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const listener of listeners) listener();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      for (const listener of listeners) listener();
      resolve(code ?? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 9));
    });
  });
  let ended = false;
  void exited.finally(() => {
    ended = true;
  });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    pressCtrlC() {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGINT');
    },
    waitForOutput(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(stdout)) {
            done();
            resolve();
          } else if (ended || child.exitCode !== null) {
            done();
            reject(new Error(`npm start ended before printing ${pattern}:\n${stdout}\n${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${stdout}\n${stderr}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** Ends the process group if a test left it running. */
export function killProcess(started: StartProcess | undefined): void {
  const pid = started?.child.pid;
  if (pid === undefined || started?.child.exitCode !== null) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
