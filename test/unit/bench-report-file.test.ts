import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { benchReportFile, GENERATED_REPORT_MARKER } from '../../bench/report-file.ts';

describe('reports/bench.md as npm run bench -- --write rewrites it', () => {
  it('keeps the hand-written text above the marker and replaces the old report below it', () => {
    const previous = `# Performance and cost\n\nHow to read the figures.\n\n${GENERATED_REPORT_MARKER}\n\n# Benchmark\nold figures\n`;

    const file = benchReportFile(previous, '# Benchmark\nnew figures\n');

    expect(file).toBe(
      `# Performance and cost\n\nHow to read the figures.\n\n${GENERATED_REPORT_MARKER}\n\n# Benchmark\nnew figures\n`,
    );
  });

  it('writes the report under a marker when there is no previous file', () => {
    expect(benchReportFile(undefined, '# Benchmark\n')).toBe(`${GENERATED_REPORT_MARKER}\n\n# Benchmark\n`);
  });

  it('replaces a previous file without the marker as a whole, since nothing in it is marked hand-written', () => {
    expect(benchReportFile('# Benchmark\nold\n', '# Benchmark\nnew\n')).toBe(
      `${GENERATED_REPORT_MARKER}\n\n# Benchmark\nnew\n`,
    );
  });

  it('the committed reports/bench.md has its hand-written "Performance and cost" above the marker', () => {
    const committed = readFileSync(new URL('../../reports/bench.md', import.meta.url), 'utf8');
    const [handWritten = ''] = committed.split(GENERATED_REPORT_MARKER);

    expect(handWritten).toMatch(/^# Performance and cost\n/);
    expect(committed.split(GENERATED_REPORT_MARKER)).toHaveLength(2);
  });
});
