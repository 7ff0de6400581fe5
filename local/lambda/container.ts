/**
 * Lambda's execution environments, on one machine. A handler here runs in the test process (it needs the
 * closures that the pipeline, the harness and the chaos suite give it, and a harness's faked clock), so Lambda
 * stopping an environment at the function timeout cannot be a killed process; a {@link Container} has the same
 * observable effect instead: it gates every way out of the handler (its `fetch`, its AWS SDK clients, its logs,
 * metrics and hooks), and once ended nothing it started answers and nothing it does reaches anyone (README.md,
 * "Quick start (local pipeline)"; docs/chaos.md).
 */
import type { SqsHandler } from '#local/lambda/event-source.ts';
import type { FetchLike } from '#shared/ecourtdate/http.ts';

/** An AWS SDK v3 client, as far as a container gates it (every client: SQS, DynamoDB, Secrets Manager, EventBridge). */
export interface InstrumentableClient {
  readonly middlewareStack: {
    add(middleware: never, options: never): void;
  };
}

/** The gated I/O a {@link ContainerFactory} builds its handler with. */
export interface ContainerIo {
  /** 1 for the slot's first container, 2 after its first cold start again, and so on. */
  readonly generation: number;
  /** `fetch` whose requests answer only while the container lives; once ended, none leaves and none answers. */
  fetch(fetch: FetchLike): FetchLike;
  /**
   * Adds middleware to `client`: the same rule as {@link ContainerIo.fetch} for every command it sends, and for
   * every retry of one (the SDK's retry loop tries no more once the container is ended).
   */
  instrument<C extends InstrumentableClient>(client: C): C;
  /** `fn`, dropped once the container is ended: for log lines, metrics and hooks such as `onSettled`. */
  live<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  /** Registers a clean-up (close connection pools, destroy SDK clients) run when the container is ended. */
  onEnd(dispose: () => unknown): void;
  /** True once the container is ended. */
  readonly ended: boolean;
  /** Ends the container now, as a crash or an out-of-memory does (the chaos suite's kills). */
  end(): void;
}

/** Builds one container's handler (its module state: clients, caches, pacer) from the container's gated I/O. */
export type ContainerFactory = (io: ContainerIo) => SqsHandler;

const forever = <T>(): Promise<T> => new Promise<T>(() => undefined);

/**
 * One execution environment: a handler built by a factory on the container's gated I/O. {@link Container.end}
 * is Lambda stopping it: every request it started never answers (an error included), no new request leaves,
 * its log lines, metrics and hooks reach no one, and its handler's promise never settles.
 */
export class Container {
  readonly generation: number;
  readonly handler: SqsHandler;
  #ended = false;
  readonly #disposers: (() => unknown)[] = [];

  /** @param factory runs once, now: the container's cold start. Throws what the factory throws. */
  constructor(factory: ContainerFactory, generation = 1) {
    this.generation = generation;
    const container = this;
    const gate = async <T>(call: () => Promise<T>): Promise<T> => {
      if (this.#ended) return forever();
      let result: T;
      try {
        result = await call();
      } catch (error) {
        if (this.#ended) return forever();
        throw error;
      }
      return this.#ended ? forever() : result;
    };
    const io: ContainerIo = {
      generation,
      fetch: (fetch) => (input, init) => gate(() => fetch(input, init)),
      instrument: (client) => {
        const middleware =
          (next: (args: unknown) => Promise<unknown>) =>
          (args: unknown): Promise<unknown> =>
            gate(() => next(args));
        client.middlewareStack.add(
          middleware as never,
          { step: 'initialize', name: 'lambdaContainerGate', override: true } as never,
        );
        // The SDK retries inside the call (the deserialize step runs once per attempt, inside the retry loop): a
        // retry once the container ended never leaves, as none would from a stopped environment in AWS. The first
        // attempt belongs to a call begun before the end and is left to the call's own gate.
        const attemptGate =
          (next: (args: unknown) => Promise<unknown>) =>
          (args: unknown): Promise<unknown> =>
            isRetry(args) ? gate(() => next(args)) : next(args);
        client.middlewareStack.add(
          attemptGate as never,
          {
            step: 'deserialize',
            name: 'lambdaContainerAttemptGate',
            priority: 'low',
            override: true,
          } as never,
        );
        return client;
      },
      live:
        (fn) =>
        (...args) => {
          if (!this.#ended) fn(...args);
        },
      onEnd: (dispose) => {
        this.#disposers.push(dispose);
      },
      get ended() {
        return container.ended;
      },
      end: () => this.end(),
    };
    const handler = factory(io);
    this.handler = (event, context) => gate(() => handler(event, context));
  }

  /** True once {@link Container.end} was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Stops the container now (idempotent); its clean-ups run, their failures ignored (nothing waits for them). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const dispose of this.#disposers.splice(0)) {
      try {
        Promise.resolve(dispose()).catch(() => undefined);
      } catch {
        // A clean-up of a stopped container has no one to report to.
      }
    }
  }
}

/**
 * One concurrency slot of a function: it runs each invocation on its current {@link Container}, building a fresh
 * one (a cold start: the factory runs again, with new caches and clients) when there is none yet or the last was
 * ended. The event source mapping ends it at the function timeout (`end`).
 */
export class FunctionInstance {
  readonly name: string;
  readonly #factory: ContainerFactory;
  #current: Container | undefined;
  #coldStarts = 0;

  /** @param factory called at each cold start, on the first invocation and on the first one after an `end`. */
  constructor(name: string, factory: ContainerFactory) {
    this.name = name;
    this.#factory = factory;
  }

  /** Cold starts so far (containers built). */
  get coldStarts(): number {
    return this.#coldStarts;
  }

  /** The container the next invocation runs on, built now if there is none or the last was ended. */
  container(): Container {
    if (this.#current === undefined || this.#current.ended) {
      this.#coldStarts += 1;
      this.#current = new Container(this.#factory, this.#coldStarts);
    }
    return this.#current;
  }

  /** Invokes the handler of the current container (see {@link FunctionInstance.container}). */
  readonly handler: SqsHandler = (event, context) => this.container().handler(event, context);

  /** Ends the current container (Lambda stopping the environment); the next invocation is a cold start. */
  readonly end = (): void => {
    this.#current?.end();
  };
}

/** Whether an SDK request is a retry: its `amz-sdk-request` header says `attempt=2` or later. */
function isRetry(args: unknown): boolean {
  const headers = (args as { request?: { headers?: Record<string, string> } }).request?.headers ?? {};
  const attempt = /attempt=(\d+)/.exec(headers['amz-sdk-request'] ?? '')?.[1];
  return attempt !== undefined && Number(attempt) > 1;
}
