/** An instance that died, and the jobs whose records it held at that moment. */
export interface KillEvent {
  readonly instance: string;
  /** Epoch ms. */
  readonly at: number;
  /**
   * `kill-after-send`: the message was created and answered, the instance died before reading the answer;
   * `kill-before-send`: it died as it was about to send; `invocation-timeout`: an invocation outlived the
   * function timeout, and the event source mapping ended its container (local/lambda/container.ts).
   */
  readonly cause: 'kill-after-send' | 'kill-before-send' | 'invocation-timeout';
  /** The job whose request triggered the kill. */
  readonly jobId?: string | undefined;
  /** Every job of the batch the instance held: any of them may have been anywhere on its path. */
  readonly touched: readonly string[];
  /** Epoch ms the instance's batch was received: its records are hidden from then for the visibility timeout. */
  readonly batchReceivedAt?: number | undefined;
  /**
   * Of an `invocation-timeout`: the planned timeout fault the instance met during the batch (test/chaos/faults.ts,
   * `TimeoutFault`), or undefined when it met none.
   */
  readonly fault?: string | undefined;
}

/** The part of a container (`ContainerIo` of local/lambda/container.ts) a kill uses. */
export interface KillableContainer {
  end(): void;
}

interface InstanceState {
  readonly name: string;
  /** The instance's current container, from its last cold start. */
  container: KillableContainer | undefined;
  /** Its container was killed or timed out, and no cold start has happened since. */
  dead: boolean;
  /** Job ids of the batch of the current (or last) invocation. */
  batch: readonly string[];
  /** Epoch ms that batch was received. */
  receivedAt: number | undefined;
}

/**
 * Kills simulated Lambda instances the way a crash or an out-of-memory does: it ends the instance's container
 * (local/lambda/container.ts), so from the moment of death nothing the instance started reaches anyone. Its
 * requests to eCourtDate, DynamoDB (the job ledger), SQS (visibility changes, dead-letter sends, re-queued copies),
 * Secrets Manager and EventBridge never answer, and no ledger write, acknowledgement, dead letter, log line or
 * settlement happens after it. The invocation then hangs until the function timeout, where the event source
 * mapping fails its batch (the records come back after the queue's visibility timeout, as in AWS) and the next
 * invocation is a cold start. It also records the invocations the mapping ended at the function timeout
 * (`invocation-timeout`), and the batch each instance holds, for the checks.
 */
export class InstanceKiller {
  readonly #instances = new Map<string, InstanceState>();
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
   * @param options.jobIdOfRecord the job id of an SQS message body, for the batch a kill touches
   * @param options.now epoch ms clock @default Date.now
   */
  constructor(options: {
    jobIdOfRecord: (body: string | undefined) => string | undefined;
    now?: () => number;
  }) {
    this.#jobIdOfRecord = options.jobIdOfRecord;
    this.#now = options.now ?? Date.now;
  }

  /** A cold start of `instance` (the pipeline's `onInstance` hook): `container` is the one a kill ends. */
  attach(instance: string, container: KillableContainer): void {
    const state = this.#state(instance);
    state.container = container;
    state.dead = false;
  }

  /** A batch handed to `instance` (the pipeline's `onInvoke` hook), received at `receivedAt` (epoch ms). */
  invoked(instance: string, bodies: readonly (string | undefined)[], receivedAt: number): void {
    const state = this.#state(instance);
    state.batch = bodies.map((body) => this.#jobIdOfRecord(body)).filter((id) => id !== undefined);
    state.receivedAt = receivedAt;
    for (const id of state.batch) {
      const times = this.receiveTimes.get(id) ?? [];
      times.push(receivedAt);
      this.receiveTimes.set(id, times);
    }
  }

  /** Whether `instance`'s current container was killed or timed out (and none has started since). */
  isDead(instance: string): boolean {
    return this.#state(instance).dead;
  }

  /** Kills `instance` now: ends its container; a no-op for one already dead. */
  kill(instance: string, cause: Exclude<KillEvent['cause'], 'invocation-timeout'>, jobId?: string): void {
    const state = this.#state(instance);
    if (state.dead) return;
    state.dead = true;
    state.container?.end();
    this.#record(state, cause, jobId);
  }

  /**
   * The event source mapping ended `instance`'s container at the function timeout (the pipeline's
   * `onInvocationTimeout` hook): recorded as an `invocation-timeout` unless a kill already ended it.
   * `faultOf` names the planned fault the instance met since its batch was received (epoch ms), if any.
   */
  timedOut(instance: string, faultOf?: (batchReceivedAt: number | undefined) => string | undefined): void {
    const state = this.#state(instance);
    if (state.dead) return;
    state.dead = true;
    this.#record(state, 'invocation-timeout', undefined, faultOf?.(state.receivedAt));
  }

  #record(state: InstanceState, cause: KillEvent['cause'], jobId: string | undefined, fault?: string): void {
    this.kills.push({
      instance: state.name,
      at: this.#now(),
      cause,
      jobId,
      touched: [...state.batch],
      batchReceivedAt: state.receivedAt,
      ...(fault === undefined ? {} : { fault }),
    });
  }

  #state(instance: string): InstanceState {
    let state = this.#instances.get(instance);
    if (state === undefined) {
      state = { name: instance, container: undefined, dead: false, batch: [], receivedAt: undefined };
      this.#instances.set(instance, state);
    }
    return state;
  }
}
