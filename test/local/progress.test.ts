import { describe, expect, it } from 'vitest';
import { createProgress, type ProgressSnapshot } from '#local/pipeline/progress.ts';

/** Carriage return and ANSI "erase line": the bar is redrawn in place. */
const CLEAR_LINE = '\r\u001b[2K';

function snapshot(settled: number, elapsedMs: number): ProgressSnapshot {
  return {
    counts: {
      total: 4,
      settled,
      delivered: settled,
      duplicate: 0,
      deadLettered: 0,
      retrying: 0,
      waiting: 4 - settled,
    },
    apiCalls: { send: settled, token: settled },
    elapsedMs,
  };
}

function stream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, isTTY, columns: 200, write: (text: string) => writes.push(text) };
}

describe('progress display', () => {
  it('in a terminal: one line redrawn in place with a bar, cleared at the end', () => {
    const out = stream(true);
    const progress = createProgress(out);

    progress.update(snapshot(1, 100));
    progress.update(snapshot(2, 200));
    progress.done();

    expect(out.writes).toHaveLength(3);
    const [first, second] = out.writes;
    expect(first?.startsWith(CLEAR_LINE)).toBe(true);
    expect(second?.startsWith(CLEAR_LINE)).toBe(true);
    expect(second?.slice(CLEAR_LINE.length)).toMatch(
      /^█{12}░{12} 2\/4 settled · 2 delivered, .* · 4 API calls \(2 token\) · 0\.2 s$/,
    );
    expect(out.writes.every((w) => !w.includes('\n'))).toBe(true);
    expect(out.writes[2]).toBe(CLEAR_LINE);
  });

  it('in a terminal: never wider than the terminal', () => {
    const out = { ...stream(true), columns: 40 };
    createProgress(out).update(snapshot(1, 100));

    expect([...(out.writes[0] ?? '').replace(CLEAR_LINE, '')].length).toBe(39);
  });

  it('the counts of a line add up to the total: settled, awaiting retry and not tried yet', () => {
    const out = stream(false);
    const counts = {
      total: 10,
      settled: 4,
      delivered: 2,
      duplicate: 1,
      deadLettered: 1,
      retrying: 2,
      waiting: 4,
    };
    createProgress(out).update({ counts, apiCalls: { send: 5, token: 1 }, elapsedMs: 0 });

    const [, settled, total] = /(\d+)\/(\d+) settled/.exec(out.writes[0] ?? '') ?? [];
    const numbers = [
      ...(out.writes[0] ?? '').matchAll(
        /(\d+) (?:delivered|duplicate|dead-lettered|awaiting retry|not tried yet)/g,
      ),
    ];
    expect(numbers.reduce((sum, match) => sum + Number(match[1]), 0)).toBe(Number(total));
    expect(Number(settled)).toBe(4);
  });

  it('elsewhere: plain lines when jobs settle (at most one a second) and a heartbeat every 5 s', () => {
    const out = stream(false);
    const progress = createProgress(out);

    progress.update(snapshot(0, 0));
    progress.update(snapshot(1, 300));
    progress.update(snapshot(1, 4_000));
    progress.update(snapshot(1, 5_100));
    progress.update(snapshot(4, 5_200));

    // API calls count token requests too; the parenthesis says how many of them.
    expect(out.writes).toEqual([
      'progress: 0/4 settled; 0 delivered, 0 duplicate, 0 dead-lettered, 0 awaiting retry, 4 not tried yet · 0 API calls (0 token) · 0.0 s\n',
      'progress: 1/4 settled; 1 delivered, 0 duplicate, 0 dead-lettered, 0 awaiting retry, 3 not tried yet · 2 API calls (1 token) · 4.0 s\n',
      'progress: 4/4 settled; 4 delivered, 0 duplicate, 0 dead-lettered, 0 awaiting retry, 0 not tried yet · 8 API calls (4 token) · 5.2 s\n',
    ]);
  });
});
