/**
 * Plain-text tables for terminals and logs: left-aligned columns separated by two spaces, widths measured in
 * code points so that names with accents line up. Used by the operator CLI and by the local pipeline's summary
 * (cli/ and local/ both use it; cli/ may import from local/, never the reverse).
 *
 * @example
 * formatTable(['job', 'outcome'], [['ok-1', 'delivered']]);
 * // 'job   outcome\nok-1  delivered'
 */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  options: {
    indent?: string;
    /** Cut each line to this many characters, the last one `…` (a terminal's width); the cells stay aligned. */
    maxWidth?: number | undefined;
  } = {},
): string {
  const indent = options.indent ?? '';
  const maxWidth = options.maxWidth;
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => width(row[column] ?? ''))));
  return all
    .map((row) =>
      `${indent}${row.map((cell, column) => pad(cell, widths[column] ?? 0)).join('  ')}`.trimEnd(),
    )
    .map((line) =>
      maxWidth !== undefined && width(line) > maxWidth
        ? `${[...line].slice(0, Math.max(maxWidth - 1, 1)).join('')}…`
        : line,
    )
    .join('\n');
}

function width(text: string): number {
  return [...text].length;
}

function pad(text: string, to: number): string {
  return text + ' '.repeat(Math.max(to - width(text), 0));
}
