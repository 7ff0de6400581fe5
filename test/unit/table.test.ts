import { describe, expect, it } from 'vitest';
import { formatTable } from '#local/terminal/table.ts';

describe('formatTable', () => {
  it('aligns columns two spaces apart, measuring code points', () => {
    expect(
      formatTable(
        ['job', 'outcome'],
        [
          ['ok-1', 'delivered'],
          ['día-2', 'duplicate'],
        ],
      ),
    ).toBe('job    outcome\nok-1   delivered\ndía-2  duplicate');
  });

  it('with maxWidth (a terminal), cuts each longer line to the width with …, and leaves shorter ones whole', () => {
    const table = formatTable(
      ['job', 'detail'],
      [
        ['ok-1', ''],
        ['bad-1', 'eCourtDate rejected the message (HTTP 400): response_excerpt names the field'],
      ],
      { maxWidth: 30 },
    );

    const lines = table.split('\n');
    expect(lines.map((line) => [...line].length)).toEqual([13, 4, 30]);
    expect(lines[2]).toBe('bad-1  eCourtDate rejected th…');
  });
});
