import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

/** Every .ts file under `dir`, as paths relative to the repository. */
function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => relative(ROOT, join(ROOT, dir, name)));
}

/** The module specifiers a file imports or re-exports (static and dynamic). */
function specifiers(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/(?:from|import\()\s*'([^']+)'/g)].map((match) => match[1] ?? '');
}

// README.md, "Layout": the code that runs in Lambda imports none of the local world, and the local world (the
// emulators, the Lambda stand-ins, the pipeline) imports nothing of the operator CLI.
describe('import direction', () => {
  it.each([
    ['local', /^#cli\/|\/cli\//],
    ['shared', /^#(cli|local|test|infra)\/|\/(cli|local|test)\//],
    ['functions', /^#(cli|local|test|infra)\/|\/(cli|local|test)\//],
  ])('%s/ imports nothing it must not', (dir, forbidden) => {
    const offenders = sources(dir).flatMap((file) =>
      specifiers(file)
        .filter((specifier) => forbidden.test(specifier))
        .map((specifier) => `${file}: ${specifier}`),
    );
    expect(offenders).toEqual([]);
  });
});
