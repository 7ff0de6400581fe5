/**
 * The stand-in for the Lambda runtime (local/lambda/runtime.ts), with a small ESM function in a temporary asset
 * directory: init once, one invocation at a time, the process ended at the deadline, frozen between invocations.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  type FunctionRuntime,
  type FunctionRuntimeOptions,
  FunctionTimeoutError,
  InitError,
  InvocationError,
  startFunctionRuntime,
} from '#local/lambda/runtime.ts';

const FUNCTION = `
import { writeFileSync } from 'node:fs';
let calls = 0;
const initAt = process.pid;
export const handler = async (event, context) => {
  calls++;
  if (event.kind === 'hang') {
    writeFileSync(event.pidFile, String(process.pid));
    return new Promise(() => {});
  }
  if (event.kind === 'throw') throw Object.assign(new Error('no such job'), { name: 'JobError' });
  if (event.kind === 'remaining') return { remaining: context.getRemainingTimeInMillis() };
  if (event.kind === 'env') return { env: { ...process.env } };
  return { calls, pid: initAt };
};
`;

const dir = mkdtempSync(join(tmpdir(), 'function-runtime-'));
writeFileSync(join(dir, 'index.mjs'), FUNCTION);
writeFileSync(
  join(dir, 'broken.mjs'),
  `throw Object.assign(new Error('bad setting'), { name: 'ConfigError' });`,
);
const runtimes: FunctionRuntime[] = [];

function runtime(options: Partial<FunctionRuntimeOptions> = {}): FunctionRuntime {
  const started = startFunctionRuntime({
    assetDirectory: dir,
    handler: 'index.handler',
    environment: { FUNCTION_SETTING: 'on' },
    timeoutMs: 10_000,
    ...options,
  });
  runtimes.push(started);
  return started;
}

afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.close()));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Whether a process with this id exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the function runtime', () => {
  it('imports the bundle once and takes every invocation in that environment', async () => {
    const fn = runtime();

    const first = (await fn.invoke({})) as { calls: number; pid: number };
    const second = (await fn.invoke({})) as { calls: number; pid: number };

    expect([first.calls, second.calls]).toEqual([1, 2]);
    expect(second.pid).toBe(first.pid);
    expect(fn.coldStarts).toBe(1);
  });

  it('ends the environment of an invocation still running at the deadline and reports a timeout', async () => {
    const fn = runtime({ timeoutMs: 300 });
    const pidFile = join(dir, 'hang.pid');

    const error = await fn.invoke({ kind: 'hang', pidFile }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(FunctionTimeoutError);
    expect((error as Error).message).toBe('Task timed out after 0.30 seconds');
    expect(alive(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
  });

  it('starts a fresh environment (a cold start) for the invocation after a timeout', async () => {
    const fn = runtime({ timeoutMs: 300 });
    const before = (await fn.invoke({})) as { calls: number; pid: number };
    await fn.invoke({ kind: 'hang', pidFile: join(dir, 'cold.pid') }).catch(() => {});

    const after = (await fn.invoke({})) as { calls: number; pid: number };

    expect(after.calls).toBe(1);
    expect(after.pid).not.toBe(before.pid);
    expect(fn.coldStarts).toBe(2);
  });

  it('reports a handler error as an invocation error with its name, and keeps the environment warm', async () => {
    const fn = runtime();

    const error = await fn.invoke({ kind: 'throw' }).catch((e: unknown) => e);
    const next = (await fn.invoke({})) as { calls: number };

    expect(error).toBeInstanceOf(InvocationError);
    expect(error).toMatchObject({ errorType: 'JobError', message: 'no such job' });
    expect(next.calls).toBe(2);
    expect(fn.coldStarts).toBe(1);
  });

  it('freezes the environment between invocations', async () => {
    const fn = runtime();

    const { pid } = (await fn.invoke({})) as { pid: number };

    // /proc/<pid>/stat: the state after the command's closing parenthesis, `T` for stopped.
    await vi.waitFor(() => {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      expect(stat.slice(stat.lastIndexOf(')') + 2)[0]).toBe('T');
    });
  });

  it("gives the handler a context whose remaining time counts down from the function's timeout", async () => {
    const fn = runtime({ timeoutMs: 5_000 });

    const { remaining } = (await fn.invoke({ kind: 'remaining' })) as { remaining: number };

    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(5_000);
  });

  it("runs the function with its environment and Lambda's own variables only", async () => {
    const fn = runtime();

    const { env } = (await fn.invoke({ kind: 'env' })) as { env: Record<string, string> };

    expect(env).toMatchObject({
      FUNCTION_SETTING: 'on',
      _HANDLER: 'index.handler',
      LAMBDA_TASK_ROOT: dir,
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
    });
    // Set in the test process (vitest.config.ts), not in the function's environment.
    expect(env.POWERTOOLS_DEV).toBeUndefined();
    expect(env.AWS_ACCESS_KEY_ID).toBeUndefined();
  });

  it('fails the invocation with an init error naming what the import threw', async () => {
    const fn = runtime({ handler: 'broken.handler' });

    const error = await fn.invoke({}).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InitError);
    expect(error).toMatchObject({ errorType: 'ConfigError', message: 'bad setting' });
  });

  it('fails the invocation with an init error when the handler is not exported', async () => {
    const fn = runtime({ handler: 'index.missing' });

    const error = await fn.invoke({}).catch((e: unknown) => e);

    expect(error).toMatchObject({ errorType: 'Runtime.HandlerNotFound' });
  });
});
