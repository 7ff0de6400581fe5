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
  options: { indent?: string } = {},
): string {
  const indent = options.indent ?? '';
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => width(row[column] ?? ''))));
  return all
    .map((row) =>
      `${indent}${row.map((cell, column) => pad(cell, widths[column] ?? 0)).join('  ')}`.trimEnd(),
    )
    .join('\n');
}

function width(text: string): number {
  return [...text].length;
}

function pad(text: string, to: number): string {
  return text + ' '.repeat(Math.max(to - width(text), 0));
}
