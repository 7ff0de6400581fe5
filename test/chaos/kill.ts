import type { AwsClients } from '#shared/clients/aws.ts';

/** An instance that died, and the jobs whose records it held at that moment. */
export interface KillEvent {
  readonly instance: string;
  /** Epoch ms. */
  readonly at: number;
  /**
   * `kill-after-send`: the message was created and answered, the instance died before reading the answer;
   * `kill-before-send`: it died as it was about to send; `invocation-timeout`: an invocation outlived the
   * function timeout (Lambda ends it the same way).
   */
  readonly cause: 'kill-after-send' | 'kill-before-send' | 'invocation-timeout';
  /** The job whose request triggered the kill. */
  readonly jobId?: string | undefined;
  /** Every job of the batch the instance held: any of them may have been anywhere on its path. */
  readonly touched: readonly string[];
  /** Epoch ms the instance received that batch: its records are hidden from then for the visibility timeout. */
  readonly batchReceivedAt?: number | undefined;
}

interface InstanceState {
  readonly name: string;
  dead: boolean;
  /** Bumped when a dead instance comes back: calls started before never finish. */
  generation: number;
  /** Job ids of the batch of the current (or last) invocation. */
  batch: readonly string[];
  /** Epoch ms of the last ReceiveMessage answer with records. */
  receivedAt: number | undefined;
}

type Middleware = (
  next: (args: unknown) => Promise<{ output: unknown }>,
  context: { commandName?: string },
) => (args: unknown) => Promise<{ output: unknown }>;

// The event source's own calls: a dead invocation cannot reach them, and freezing them would stop the poller.
const POLLER_COMMANDS = new Set(['ReceiveMessageCommand', 'DeleteMessageBatchCommand']);

const forever = <T>(): Promise<T> => new Promise<T>(() => undefined);

/**
 * Kills simulated Lambda instances the way a crash, an out-of-memory or a timeout does: from the moment of
 * death nothing the instance started reaches anyone. Its requests to eCourtDate, DynamoDB (the job ledger) and
 * SQS (visibility changes, dead-letter sends, re-queued copies) never answer, so no ledger write, acknowledgement
 * or dead letter happens after it. Its batch comes back from SQS only after the queue's visibility timeout, as
 * in AWS. When the event source mapping polls again (after the dead invocation's function timeout), the instance
 * is a fresh container again. Token requests and Secrets Manager reads are left alone: a dead container's cache
 * is gone anyway, and a frozen one would stall the instance that replaces it.
 */
export class InstanceKiller {
  readonly #instances = new Map<string, InstanceState>();
  readonly #functionTimeoutMs: number;
  readonly #jobIdOfRecord: (body: string | undefined) => string | undefined;
  readonly #now: () => number;
  readonly kills: KillEvent[] = [];
  /** Epoch ms of every SQS receive of each job, over every instance and every copy of the job. */
  readonly receiveTimes = new Map<string, number[]>();

  /** SQS receives per job id. */
  get receives(): Map<string, number> {
    return new Map([...this.receiveTimes].map(([id, times]) => [id, times.length]));
  }

  /**
   * @param options.functionTimeoutMs real ms; an invocation that lasts this long was ended by Lambda
   * @param options.jobIdOfRecord the job id of an SQS message body, for the batch a kill touches
   * @param options.now epoch ms clock @default Date.now
   */
  constructor(options: {
    functionTimeoutMs: number;
    jobIdOfRecord: (body: string | undefined) => string | undefined;
    now?: () => number;
  }) {
    this.#functionTimeoutMs = options.functionTimeoutMs;
    this.#jobIdOfRecord = options.jobIdOfRecord;
    this.#now = options.now ?? Date.now;
  }

  /** Instruments one instance's SDK clients (the pipeline's `onInstance` hook). */
  instrument(instance: string, clients: AwsClients): void {
    const state = this.#state(instance);
    const freezing: Middleware = (next, context) => async (args) => {
      const command = context.commandName ?? '';
      if (command === 'ReceiveMessageCommand') return this.#receive(state, next, args);
      if (POLLER_COMMANDS.has(command)) return next(args);
      return this.call(instance, () => next(args));
    };
    const options = { step: 'initialize' as const, name: 'chaosInstanceKiller', override: true };
    clients.sqs.middlewareStack.add(freezing as never, options);
    clients.dynamodb.middlewareStack.add(freezing as never, options);
  }

  /**
   * Runs `call` for `instance`: never answers if the instance is dead now or dies before the answer arrives.
   */
  async call<T>(instance: string, call: () => Promise<T>): Promise<T> {
    const state = this.#state(instance);
    if (state.dead) return forever();
    const generation = state.generation;
    const result = await call();
    if (state.dead || state.generation !== generation) return forever();
    return result;
  }

  isDead(instance: string): boolean {
    return this.#state(instance).dead;
  }

  /** Kills `instance` now; a no-op for one already dead. */
  kill(instance: string, cause: KillEvent['cause'], jobId?: string): void {
    const state = this.#state(instance);
    if (state.dead) return;
    state.dead = true;
    this.kills.push({
      instance,
      at: this.#now(),
      cause,
      jobId,
      touched: [...state.batch],
      batchReceivedAt: state.receivedAt,
    });
  }

  async #receive(state: InstanceState, next: Parameters<Middleware>[0], args: unknown) {
    const now = this.#now();
    if (state.dead) {
      // The dead invocation has ended (its function timeout): a new container polls.
      state.dead = false;
      state.generation += 1;
    } else if (
      state.receivedAt !== undefined &&
      state.batch.length > 0 &&
      now - state.receivedAt >= this.#functionTimeoutMs - 50
    ) {
      // The last invocation ran into the function timeout: Lambda ended it mid-way, as a kill does.
      this.kills.push({
        instance: state.name,
        at: state.receivedAt + this.#functionTimeoutMs,
        cause: 'invocation-timeout',
        touched: [...state.batch],
        batchReceivedAt: state.receivedAt,
      });
    }
    const out = await next(args);
    const messages = (out.output as { Messages?: { Body?: string }[] }).Messages ?? [];
    state.batch = messages.map((m) => this.#jobIdOfRecord(m.Body)).filter((id) => id !== undefined);
    state.receivedAt = messages.length > 0 ? this.#now() : undefined;
    for (const id of state.batch) {
      const times = this.receiveTimes.get(id) ?? [];
      times.push(state.receivedAt ?? this.#now());
      this.receiveTimes.set(id, times);
    }
    return out;
  }

  #state(instance: string): InstanceState {
    let state = this.#instances.get(instance);
    if (state === undefined) {
      state = { name: instance, dead: false, generation: 0, batch: [], receivedAt: undefined };
      this.#instances.set(instance, state);
    }
    return state;
  }
}
