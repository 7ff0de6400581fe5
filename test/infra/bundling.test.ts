import { spawnSync } from 'node:child_process';
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

  it("loads the X-Ray SDK (and its context hook) from the bundle only when the stage's traceSubsegments is on", () => {
    for (const [setting, expected] of [
      ['false', []],
      ['true', ['AWSXRay']],
    ] as const) {
      const { app, template } = synthRelay({ stage: 'staging', traceSubsegments: setting }, { bundle: true });
      const { properties } = onlyResource(template, 'AWS::Lambda::Function');
      const variables = (properties.Environment as { Variables: Record<string, unknown> }).Variables;
      const assetKey = (properties.Code as { S3Key: string }).S3Key;
      const bundle = join(app.synth().directory, `asset.${assetKey.replace(/\.zip$/, '')}`, 'index.mjs');
      // The deployed variables that are plain strings, resource names and URLs made up, and Lambda's own.
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '',
        ...Object.fromEntries(Object.entries(variables).filter(([, v]) => typeof v === 'string')),
        AWS_REGION: 'us-east-1',
        AWS_LAMBDA_FUNCTION_NAME: 'sender',
        LAMBDA_TASK_ROOT: '/var/task',
        ECOURTDATE_SECRET_ID: 'ecourtdate-relay/staging/api-credentials',
        SEND_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/send',
        DEAD_LETTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/dead-letter',
        LEDGER_TABLE_NAME: 'ledger',
      };
      expect(env.POWERTOOLS_TRACE_ENABLED).toBe(setting);
      const code = `await import(${JSON.stringify(bundle)});
process.stdout.write('NAMESPACES=' + JSON.stringify(Object.keys(process.namespaces ?? {})) + '\\n');`;
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
        env,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(child.status, child.stderr).toBe(0);
      const line = child.stdout.split('\n').find((l) => l.startsWith('NAMESPACES=')) ?? 'NAMESPACES=null';
      expect(JSON.parse(line.slice('NAMESPACES='.length))).toEqual(expected);
    }
  });
});
