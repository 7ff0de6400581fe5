import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { SqsHandler } from '#local/lambda/event-source.ts';

/**
 * A stand-in for the Lambda runtime of one function, for the bundle `cdk deploy` uploads: the asset directory of
 * the synthesised cloud assembly and the template's `Handler` (docs/test-world.md). Each execution environment is a
 * child process of its own, started with this Node (`process.execPath`: the Node 24 of the `nodejs24.x` runtime
 * when run through npm scripts or vitest) and the function's environment only. It imports the bundle once (the
 * init phase), then takes invocations one at a time:
 *
 * - an invocation still running at its deadline ends the process (`SIGKILL`: requests in flight die, nothing
 *   after the deadline happens), as Lambda ends an environment whose invocation timed out; the next invocation
 *   starts a fresh process (a cold start);
 * - between invocations the process is frozen (`SIGSTOP`, then `SIGCONT` for the next invocation), as Lambda
 *   freezes an idle environment: work the handler left running (a request whose answer it stopped waiting for)
 *   does nothing until the next invocation thaws it;
 * - a handler that threw (or rejected) before the deadline is an invocation error and its environment stays
 *   warm, as Lambda keeps it. The sender has no early timeout of its own (middy's is off), so a slow eCourtDate
 *   meets the deadline and ends the environment (docs/test-world.md).
 */

/** Lambda's limit on the init phase (the bundle's import, its module-scope code included). */
export const INIT_TIMEOUT_MS = 10_000;

export interface FunctionRuntimeOptions {
  /** The directory the bundle is in (the cloud assembly's `asset.<hash>/`), `LAMBDA_TASK_ROOT` in the function. */
  readonly assetDirectory: string;
  /** The template's `Handler`: `<file without extension>.<export>`, e.g. `index.handler`. */
  readonly handler: string;
  /** The function's environment variables; the runtime adds only Lambda's own (`_HANDLER`, `LAMBDA_TASK_ROOT`, ...). */
  readonly environment: Readonly<Record<string, string>>;
  /** The function timeout, ms: `context.getRemainingTimeInMillis()` counts down from it, and the process ends at it. */
  readonly timeoutMs: number;
  /** `AWS_LAMBDA_FUNCTION_NAME` and `context.functionName`. @default 'sender' */
  readonly functionName?: string;
  /** `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` and `context.memoryLimitInMB`, MB. @default 256 */
  readonly memorySizeMb?: number;
  /** The init phase's limit, ms. @default INIT_TIMEOUT_MS */
  readonly initTimeoutMs?: number;
  /** Each chunk the function writes to stdout or stderr (what Lambda sends to CloudWatch Logs). @default dropped */
  readonly onOutput?: (chunk: string) => void;
}

export interface FunctionRuntime {
  /**
   * Invokes the function with `event` (any JSON-compatible value; the structured clone of it is what the handler
   * sees) in a warm environment, or in a fresh one after a cold start. Resolves with what the handler returned.
   * Rejects with a {@link FunctionTimeoutError} once the environment was ended at the deadline, an
   * {@link InitError} when the bundle could not be imported or has no such export, an {@link InvocationError}
   * when the handler threw (the environment stays warm) or its process exited during the invocation.
   * Invocations are queued: one at a time, as a Lambda environment takes them. The environment is frozen
   * before the promise settles, and thawed for the next invocation.
   */
  invoke(event: unknown): Promise<unknown>;
  /** Environments started so far (cold starts). */
  readonly coldStarts: number;
  /** Ends the current environment, if any; later invocations are refused. */
  close(): Promise<void>;
}

/** The invocation outlived the function timeout: Lambda's `Task timed out after N seconds`. */
export class FunctionTimeoutError extends Error {
  override readonly name = 'FunctionTimeoutError';
  /** The function timeout, ms. */
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super(`Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`);
    this.timeoutMs = timeoutMs;
  }
}

/** An error the runtime reports with Lambda's error type (`Runtime.HandlerNotFound`, the handler's own error name). */
abstract class TypedRuntimeError extends Error {
  /** The error type Lambda would report: the thrown error's name, or a `Runtime.*` type of its own. */
  readonly errorType: string;
  constructor(errorType: string, message: string) {
    super(message);
    this.errorType = errorType;
  }
}

/** The init phase failed: the bundle did not import (an error at module scope), or the handler export is missing. */
export class InitError extends TypedRuntimeError {
  override readonly name = 'InitError';
}

/** The handler threw (or rejected), or its process exited during the invocation (`Runtime.ExitError`). */
export class InvocationError extends TypedRuntimeError {
  override readonly name = 'InvocationError';
}

/** An error as it crosses the process boundary: its name and message only, as Lambda reports it. */
interface ErrorShape {
  readonly errorType: string;
  readonly errorMessage: string;
}

type FromEnvironment =
  | { readonly type: 'ready' }
  | { readonly type: 'init-error'; readonly error: ErrorShape }
  | { readonly type: 'result'; readonly id: string; readonly value: unknown }
  | { readonly type: 'error'; readonly id: string; readonly error: ErrorShape };

/**
 * What runs in the environment's process: resolve `_HANDLER` in `LAMBDA_TASK_ROOT` (`index.handler` →
 * `index.js`, `index.mjs` or `index.cjs`, the first that exists), import it once, then answer each invocation
 * with a context whose remaining time counts down to the deadline it was given (epoch ms, whole ms, never more
 * than the function timeout).
 */
const BOOTSTRAP = `
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
const shape = (e) => ({ errorType: String(e?.name ?? 'Error'), errorMessage: String(e?.message ?? e) });
const spec = process.env._HANDLER ?? '';
const dot = spec.lastIndexOf('.');
let handler;
try {
  if (dot <= 0) throw Object.assign(new Error('Bad handler ' + JSON.stringify(spec)), { name: 'Runtime.MalformedHandlerName' });
  const base = join(process.env.LAMBDA_TASK_ROOT ?? '.', spec.slice(0, dot));
  const file = ['.js', '.mjs', '.cjs'].map((ext) => base + ext).find((f) => existsSync(f));
  if (!file) throw Object.assign(new Error('Cannot find module ' + JSON.stringify(spec.slice(0, dot))), { name: 'Runtime.ImportModuleError' });
  const module = await import(pathToFileURL(file).href);
  handler = module[spec.slice(dot + 1)];
  if (typeof handler !== 'function') throw Object.assign(new Error(spec + ' is undefined or not exported'), { name: 'Runtime.HandlerNotFound' });
} catch (error) {
  process.send({ type: 'init-error', error: shape(error) }, () => process.exit(1));
}
if (handler) {
  process.on('message', async ({ id, event, deadline, timeoutMs, requestId }) => {
    const fail = () => { throw new Error('callback-style completion is not supported'); };
    const name = process.env.AWS_LAMBDA_FUNCTION_NAME;
    const context = {
      callbackWaitsForEmptyEventLoop: true, functionName: name, functionVersion: '$LATEST',
      invokedFunctionArn: 'arn:aws:lambda:' + process.env.AWS_REGION + ':000000000000:function:' + name,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, awsRequestId: requestId,
      logGroupName: '/aws/lambda/' + name, logStreamName: 'local',
      getRemainingTimeInMillis: () => Math.max(Math.min(Math.floor(deadline - Date.now()), timeoutMs), 0),
      done: fail, fail, succeed: fail,
    };
    try {
      process.send({ type: 'result', id, value: (await handler(event, context)) ?? null });
    } catch (error) {
      process.send({ type: 'error', id, error: shape(error) });
    }
  });
  process.send({ type: 'ready' });
}
`;

/** Wall-clock time, epoch ms, unaffected by a faked `Date` in this process (the environment's clock is real). */
const wallClock = () => performance.timeOrigin + performance.now();

interface Environment {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  /** Resolves once the bundle is imported; rejects with an {@link InitError}. */
  readonly ready: Promise<void>;
  /** The message handler of the invocation running now, if any. */
  current?: ((message: FromEnvironment) => void) | undefined;
  /** Called when the process exits, with the invocation running then, if any. */
  onExit?: (() => void) | undefined;
}

/**
 * Starts the runtime of one function. No process starts until the first invocation (Lambda starts an environment
 * on demand). Throws a `RangeError` for a function timeout that is not a positive number of ms.
 *
 * @example
 * const runtime = startFunctionRuntime({ assetDirectory, handler: 'index.handler', environment, timeoutMs: 220_000 });
 * const response = await runtime.invoke({ Records: [] });
 */
export function startFunctionRuntime(options: FunctionRuntimeOptions): FunctionRuntime {
  if (!(options.timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, got ${options.timeoutMs}`);
  const functionName = options.functionName ?? 'sender';
  const initTimeoutMs = options.initTimeoutMs ?? INIT_TIMEOUT_MS;
  let environment: Environment | undefined;
  let coldStarts = 0;
  let closed = false;
  let queue: Promise<unknown> = Promise.resolve();

  const start = (): Environment => {
    coldStarts++;
    const child = spawn(process.execPath, ['--input-type=module', '-e', BOOTSTRAP], {
      cwd: options.assetDirectory,
      env: {
        ...options.environment,
        // Lambda's own variables, which the function's configuration cannot set.
        _HANDLER: options.handler,
        LAMBDA_TASK_ROOT: options.assetDirectory,
        AWS_LAMBDA_FUNCTION_NAME: functionName,
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(options.memorySizeMb ?? 256),
        AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
        TZ: ':UTC',
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    const output = (chunk: Buffer) => options.onOutput?.(chunk.toString());
    child.stdout?.on('data', output);
    child.stderr?.on('data', output);
    const env: Environment = {
      child,
      exited: new Promise((resolve) => child.once('exit', () => resolve())),
      ready: new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new InitError('Runtime.InitTimeout', `init phase exceeded ${initTimeoutMs} ms`));
        }, initTimeoutMs);
        child.on('message', (message: FromEnvironment) => {
          if (message.type === 'ready') {
            clearTimeout(timer);
            resolve();
          } else if (message.type === 'init-error') {
            clearTimeout(timer);
            reject(new InitError(message.error.errorType, message.error.errorMessage));
          } else env.current?.(message);
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(
            new InitError('Runtime.ExitError', `the environment exited during init (${signal ?? code})`),
          );
          env.onExit?.();
        });
        child.once('error', (error) => reject(new InitError('Runtime.StartError', error.message)));
      }),
    };
    // A rejection nobody awaits yet (an init failure before the first invocation awaits it) is not unhandled.
    env.ready.catch(() => {});
    return env;
  };

  /** Ends `env` and waits for its process to be gone. */
  const end = async (env: Environment) => {
    if (environment === env) environment = undefined;
    env.child.kill('SIGKILL');
    await env.exited;
  };

  const invokeOnce = async (event: unknown): Promise<unknown> => {
    if (closed) throw new Error('the function runtime is closed');
    environment ??= start();
    const env = environment;
    try {
      await env.ready;
    } catch (error) {
      await end(env);
      throw error;
    }
    const id = randomUUID();
    return new Promise<unknown>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (outcome: () => void, freeze = true) => {
        clearTimeout(timer);
        env.current = undefined;
        env.onExit = undefined;
        if (freeze) env.child.kill('SIGSTOP');
        outcome();
      };
      env.current = (message) => {
        if (message.type === 'result' && message.id === id) settle(() => resolve(message.value));
        if (message.type === 'error' && message.id === id)
          settle(() => reject(new InvocationError(message.error.errorType, message.error.errorMessage)));
      };
      env.onExit = () => {
        if (environment === env) environment = undefined;
        settle(
          () =>
            reject(new InvocationError('Runtime.ExitError', 'the environment exited during the invocation')),
          false,
        );
      };
      const deadline = wallClock() + options.timeoutMs;
      timer = setTimeout(() => {
        env.current = undefined;
        env.onExit = undefined;
        // Rejected only once the process is gone: nothing of this invocation runs after it.
        void end(env).then(() => reject(new FunctionTimeoutError(options.timeoutMs)));
      }, options.timeoutMs);
      env.child.kill('SIGCONT');
      env.child.send({ id, event, deadline, timeoutMs: options.timeoutMs, requestId: randomUUID() });
    });
  };

  return {
    invoke(event) {
      const result = queue.then(() => invokeOnce(event));
      queue = result.catch(() => {});
      return result;
    },
    get coldStarts() {
      return coldStarts;
    },
    async close() {
      closed = true;
      if (environment) await end(environment);
    },
  };
}

/**
 * The runtime as the handler the local event source mapping invokes (`SqsHandler` of `event-source.ts`): the
 * SQS event goes to the function, its `SQSBatchResponse` comes back; the mapping's own context is not passed
 * on, since the runtime makes the function's context from its own timeout. Give `invokeBatch`/`pollOnce` a
 * `functionTimeoutMs` longer than the runtime's, so that a timeout is the runtime's (the process ended, a
 * {@link FunctionTimeoutError}) rather than the mapping's backstop. Rejects as {@link FunctionRuntime.invoke}.
 */
export function sqsHandlerOf(runtime: FunctionRuntime): SqsHandler {
  return async (event: SQSEvent) => (await runtime.invoke(event)) as SQSBatchResponse | undefined;
}
