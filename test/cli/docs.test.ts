import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { START_HELP } from '#local/pipeline/options.ts';
import { REPO_ROOT } from '#test/local/io.ts';

const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');
const readme = read('README.md');
/** The background page the project was designed from, outside the repository (spelled apart so this file passes). */
const OUTSIDE_DOC = ['design', 'md'].join('.');

/** Every file under these folders of the repository. */
function filesUnder(...folders: string[]): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? walk(path) : [path];
    });
  return folders.flatMap((folder) => walk(join(REPO_ROOT, folder)));
}

describe('what a newcomer reads', () => {
  it('example jobs never go stale: every expires_at and scheduled_at in the docs and examples is at least a year ahead (but the job that shows expiry)', () => {
    const yearAhead = Date.now() + 365 * 86_400_000;
    const texts = [
      ...filesUnder('docs')
        .filter((file) => file.endsWith('.md'))
        .map((file) => readFileSync(file, 'utf8')),
      readme,
      ...filesUnder('examples').map((file) =>
        readFileSync(file, 'utf8')
          .split('\n')
          .filter((line) => !line.includes('"id":"expired"'))
          .join('\n'),
      ),
    ];
    const stale = texts.flatMap((text) =>
      [...text.matchAll(/"(expires_at|scheduled_at)":\s*"([^"]+)"/g)]
        .filter((match) => Date.parse(match[2] ?? '') < yearAhead)
        .map((match) => `${match[1]}: ${match[2]}`),
    );
    expect(stale).toEqual([]);
  });

  it("the code cites the project's own contract (docs/contract.md), never a document outside the repository", () => {
    const citing = filesUnder('cli', 'local', 'shared', 'infra', 'functions', 'test', 'docs')
      .filter((file) => /\.(ts|md)$/.test(file))
      .filter((file) => readFileSync(file, 'utf8').includes(OUTSIDE_DOC))
      .map((file) => relative(REPO_ROOT, file));
    expect(citing).toEqual([]);
    expect(read('docs/contract.md')).toMatch(/^## The send job$/m);
    expect(read('docs/contract.md')).toMatch(/^## What each response does$/m);
    expect(readme).toContain('(docs/contract.md#the-send-job)');
    expect(readme).toContain('(docs/contract.md#what-each-response-does)');
  });

  it('docs/deploy.md says that cdk.json makes staging the default stage', () => {
    const context = (JSON.parse(read('cdk.json')) as { context: { stage: string } }).context;

    expect(context.stage).toBe('staging');
    expect(read('docs/deploy.md')).toContain(
      '`cdk.json` sets `staging`, so `npx cdk deploy` without `-c stage=...` deploys staging',
    );
  });

  it('the README says the EBADENGINE warnings of an older Node are expected, as long as the project pins Node 24', () => {
    const pkg = JSON.parse(read('package.json')) as { engines?: { node?: string } };

    expect(pkg.engines?.node).toBe('>=24 <25');
    expect(readme).toContain('`npm warn EBADENGINE Unsupported engine`');
    expect(readme).toContain('that is expected and harmless');
  });

  it("npm start --help speaks the user's words and names every emulator it starts", () => {
    const help = START_HELP.replace(/\s+/g, ' ');
    for (const piece of [
      'an SQS emulator',
      'a DynamoDB emulator',
      'the eCourtDate simulator',
      'a local Secrets Manager',
    ]) {
      expect(help).toContain(piece);
    }
    expect(START_HELP).not.toMatch(/design/i);
  });
});
