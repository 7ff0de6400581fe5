import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '#test/local/io.ts';

/** The packages `npm run relay` loads: every import of its module graph that is not a file of this repository. */
async function packagesLoadedBy(entry: string): Promise<string[]> {
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: REPO_ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const imports = Object.values(result.metafile.inputs).flatMap((input) => input.imports);
  return [...new Set(imports.filter((i) => i.external).map((i) => i.path))].sort();
}

describe('npm run relay starts fast', () => {
  it('loads neither the CDK library nor constructs: the stack outputs it reads come from infra/stack-contract.ts', async () => {
    const packages = await packagesLoadedBy('cli/relay.ts');

    // A sanity check that the graph was walked: the CLI does use the SQS client.
    expect(packages).toContain('@aws-sdk/client-sqs');
    expect(packages.filter((name) => /^(aws-cdk-lib|constructs|cdk-nag)(\/|$)/.test(name))).toEqual([]);
  });
});
