import { closest, distance } from 'fastest-levenshtein';

/**
 * The known name closest to `name` (at most two edits away, case ignored), for a "did you mean" hint: a stage
 * setting's name (infra/), a CLI option (cli/main.ts). Undefined when none is that close, or `known` is empty.
 * Not for the Lambda functions: nothing they load imports it.
 *
 * @example
 * closestName('maxConcurency', ['maxConcurrency', 'batchSize']); // 'maxConcurrency'
 * closestName('jsn', ['json', 'stage']); // 'json'
 */
export function closestName(name: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined;
  const lower = known.map((candidate) => candidate.toLowerCase());
  const best = closest(name.toLowerCase(), lower);
  return distance(name.toLowerCase(), best) <= 2 ? known[lower.indexOf(best)] : undefined;
}
