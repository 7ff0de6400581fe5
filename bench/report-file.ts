/**
 * reports/bench.md is two parts: the text written by hand at the top ("Performance and cost": the goals, how to
 * read the figures), then the report `npm run bench -- --write` generates. This line parts them.
 */
export const GENERATED_REPORT_MARKER =
  '<!-- npm run bench -- --write rewrites everything below this line and keeps the text above it. -->';

/**
 * The new content of reports/bench.md: the hand-written text of `previous` (everything above the marker, the
 * marker included) followed by the freshly generated `report`. With no previous file, or one without the
 * marker, the report alone, under a marker, so that text added above it later is kept. Pure.
 */
export function benchReportFile(previous: string | undefined, report: string): string {
  const at = previous?.indexOf(GENERATED_REPORT_MARKER) ?? -1;
  const kept = previous !== undefined && at !== -1 ? previous.slice(0, at) : '';
  return `${kept}${GENERATED_REPORT_MARKER}\n\n${report}`;
}
