import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (name: string) => readFileSync(join(ROOT, name), 'utf8');

describe('the licence, security policy and contribution guide', () => {
  it('LICENSE is the Apache License 2.0 and package.json says so', () => {
    expect(read('LICENSE')).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
    expect(JSON.parse(read('package.json')).license).toBe('Apache-2.0');
  });

  it('SECURITY.md says how to report a vulnerability privately', () => {
    expect(read('SECURITY.md')).toMatch(/## Reporting a vulnerability[\s\S]*Do not open a public issue/);
  });

  it('CONTRIBUTING.md gives the two commands and the house style, and the README links all three', () => {
    const contributing = read('CONTRIBUTING.md');
    expect(contributing).toContain('npm install');
    expect(contributing).toContain('npm test');
    expect(contributing).toContain('## House style');
    for (const file of ['LICENSE', 'SECURITY.md', 'CONTRIBUTING.md'])
      expect(read('README.md')).toContain(`](${file})`);
  });
});
