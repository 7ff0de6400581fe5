import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { onlyResource, synthRelay } from '#test/helpers/infra.ts';

describe('bundling the sender', () => {
  it('bundles functions/sender.ts with the local esbuild into an ESM module with a source map, no Docker needed', () => {
    const { app, template } = synthRelay({ stage: 'staging' }, { bundle: true });
    const { properties } = onlyResource(template, 'AWS::Lambda::Function');
    const assetKey = (properties.Code as { S3Key: string }).S3Key;
    const assetDir = join(app.synth().directory, `asset.${assetKey.replace(/\.zip$/, '')}`);
    expect(properties.Handler).toBe('index.handler');
    const bundle = readFileSync(join(assetDir, 'index.mjs'), 'utf8');
    // CommonJS dependencies get a require() inside the ESM bundle.
    expect(
      bundle.startsWith("import { createRequire } from 'node:module'; const require = createRequire("),
    ).toBe(true);
    expect(bundle).toMatch(/export\s*\{[^}]*\bhandler\b[^}]*\}/);
    // The pinned AWS SDK is inside the bundle, not taken from the runtime.
    expect(bundle).not.toMatch(/from\s*["']@aws-sdk\//);
    expect(existsSync(join(assetDir, 'index.mjs.map'))).toBe(true);
  });
});
