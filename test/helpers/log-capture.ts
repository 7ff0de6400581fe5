/**
 * Captures everything the code under test writes: stdout and stderr (Powertools logs and EMF metrics) and every
 * console method (Powertools writes through them in dev mode), teed so the output still shows. For the log
 * hygiene tests: nothing secret or personal may appear in `text()`.
 */
export interface LogCapture {
  /** Everything written since the capture started. */
  text(): string;
  /** Forgets what was captured so far. */
  clear(): void;
  /** Puts stdout, stderr and the console back. */
  stop(): void;
}

export function captureLogs(): LogCapture {
  let output = '';
  const restore: (() => void)[] = [];
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      output += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
    restore.push(() => {
      stream.write = original as typeof stream.write;
    });
  }
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    const original = console[method];
    console[method] = (...args: unknown[]) => {
      output += `${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}\n`;
      original.apply(console, args);
    };
    restore.push(() => {
      console[method] = original;
    });
  }
  return {
    text: () => output,
    clear: () => {
      output = '';
    },
    stop: () => {
      for (const undo of restore.splice(0)) undo();
    },
  };
}
