/**
 * What a run has started, to be stopped in reverse order: the last thing started (the senders) stops first, so
 * in-flight invocations end before the clients, queues and log go away. Closing is safe to repeat; a close that
 * fails does not keep the others from running.
 */
export class Closers {
  readonly #closers: (() => Promise<unknown>)[] = [];

  push(close: () => Promise<unknown>): void {
    this.#closers.push(close);
  }

  async closeAll(): Promise<void> {
    for (const close of this.#closers.splice(0).reverse()) await close().catch(() => undefined);
  }
}
