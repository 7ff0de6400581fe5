import type { TrackerCounts } from '#local/pipeline/tracker.ts';

/** A writable text stream; `isTTY` decides between a redrawn bar and plain lines. */
export interface OutputStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface ProgressSnapshot {
  readonly counts: TrackerCounts;
  /** Requests to eCourtDate so far: to the messages endpoint (`send`) and to `/oauth/token` (`token`). */
  readonly apiCalls: { readonly send: number; readonly token: number };
  readonly elapsedMs: number;
}

export interface Progress {
  update(snapshot: ProgressSnapshot): void;
  /** A line of its own above the progress (the bar is redrawn after it). */
  note(text: string): void;
  /** Clears the bar (TTY) so that what follows starts on a clean line. */
  done(): void;
}

const BAR_WIDTH = 24;
/** Plain mode: a line when something settled (at most this often), and a heartbeat otherwise. */
const PLAIN_MIN_INTERVAL_MS = 1_000;
const PLAIN_HEARTBEAT_MS = 5_000;

/**
 * Progress of a run: in a terminal, one line redrawn in place with a bar; elsewhere (CI, a pipe, a test),
 * plain lines, printed when jobs settle and every few seconds, so a log stays readable.
 */
export function createProgress(stream: OutputStream): Progress {
  return stream.isTTY ? ttyProgress(stream) : plainProgress(stream);
}

function ttyProgress(stream: OutputStream): Progress {
  let drawn = false;
  return {
    update(snapshot) {
      const { counts } = snapshot;
      const filled = counts.total === 0 ? BAR_WIDTH : Math.round((counts.settled / counts.total) * BAR_WIDTH);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}`;
      const line = `${bar} ${counts.settled}/${counts.total} settled · ${describe(snapshot)}`;
      // A pseudo-terminal may report 0 columns: then assume a usual width.
      const columns = stream.columns && stream.columns > 20 ? stream.columns : 120;
      stream.write(`\r\x1b[2K${[...line].slice(0, columns - 1).join('')}`);
      drawn = true;
    },
    note(text) {
      stream.write(`${drawn ? '\r\x1b[2K' : ''}${text}\n`);
      drawn = false;
    },
    done() {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}

function plainProgress(stream: OutputStream): Progress {
  let lastLineAt = Number.NEGATIVE_INFINITY;
  let lastSettled = -1;
  return {
    update(snapshot) {
      const { counts, elapsedMs } = snapshot;
      const changed = counts.settled !== lastSettled;
      const due = changed
        ? elapsedMs - lastLineAt >= PLAIN_MIN_INTERVAL_MS || counts.settled === counts.total
        : elapsedMs - lastLineAt >= PLAIN_HEARTBEAT_MS;
      if (!due) return;
      stream.write(`progress: ${counts.settled}/${counts.total} settled; ${describe(snapshot)}\n`);
      lastLineAt = elapsedMs;
      lastSettled = counts.settled;
    },
    note(text) {
      stream.write(`${text}\n`);
    },
    done() {},
  };
}

function describe({ counts, apiCalls, elapsedMs }: ProgressSnapshot): string {
  const parts = [
    `${counts.delivered} delivered`,
    `${counts.duplicate} duplicate`,
    `${counts.deadLettered} dead-lettered`,
    `${counts.retrying} awaiting retry`,
    // With the settled ones, these add up to the total: jobs not tried yet are not awaiting a retry.
    `${counts.waiting} not tried yet`,
  ];
  const calls = apiCalls.send + apiCalls.token;
  return `${parts.join(', ')} · ${calls} API calls (${apiCalls.token} token) · ${(elapsedMs / 1000).toFixed(1)} s`;
}
