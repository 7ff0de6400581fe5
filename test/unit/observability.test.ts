import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createObservability, subsegmentsWanted, traceClients } from '#shared/observability.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** What the sender reads at import, as in Lambda (LAMBDA_TASK_ROOT set: the X-Ray SDK's Lambda mode). */
const SENDER_ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  LAMBDA_TASK_ROOT: '/var/task',
  ECOURTDATE_BASE_URL: 'https://staging.api.ecourtdate.com',
  ECOURTDATE_SECRET_ID: 'ecourtdate-relay/staging/api-credentials',
  SEND_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/send',
  DEAD_LETTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/dead-letter',
  LEDGER_TABLE_NAME: 'ledger',
};

/**
 * Imports `entry` in a fresh Node process with `env` and answers the `async_hooks` namespaces cls-hooked
 * registered (`process.namespaces`): the X-Ray SDK's context hook is the `AWSXRay` one.
 */
function hookNamespacesAfterImport(entry: string, env: Record<string, string>): string[] {
  const code = `await import(${JSON.stringify(`./${entry}`)});
process.stdout.write('NAMESPACES=' + JSON.stringify(Object.keys(process.namespaces ?? {})) + '\\n');`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const line = child.stdout.split('\n').find((l) => l.startsWith('NAMESPACES='));
  if (child.status !== 0 || line === undefined)
    throw new Error(`import of ${entry} failed (${child.status}): ${child.stderr}`);
  return JSON.parse(line.slice('NAMESPACES='.length)) as string[];
}

describe('X-Ray subsegments (docs/deploy.md, "X-Ray subsegments")', () => {
  it("follow Powertools' POWERTOOLS_TRACE_ENABLED: on unless it says false", () => {
    expect(subsegmentsWanted({})).toBe(true);
    expect(subsegmentsWanted({ POWERTOOLS_TRACE_ENABLED: 'true' })).toBe(true);
    expect(subsegmentsWanted({ POWERTOOLS_TRACE_ENABLED: 'false' })).toBe(false);
    expect(subsegmentsWanted({ POWERTOOLS_TRACE_ENABLED: 'FALSE' })).toBe(false);
    expect(subsegmentsWanted({ POWERTOOLS_TRACE_ENABLED: ' false\n' })).toBe(false);
    expect(subsegmentsWanted({ POWERTOOLS_TRACE_ENABLED: '0' })).toBe(true);
  });

  it('without tracing, a handler gets no middleware and no client is wrapped', () => {
    expect(createObservability().tracing).toBeUndefined();
    expect(traceClients(undefined, [])).toEqual([]);
  });

  it.each([
    ['functions/sender.ts', 'false', []],
    ['functions/sender.ts', 'true', ['AWSXRay']],
    ['functions/webhook.ts', 'false', []],
  ])('%s with POWERTOOLS_TRACE_ENABLED=%s installs the context hooks %j', (entry, enabled, expected) => {
    const env = {
      ...SENDER_ENV,
      POWERTOOLS_TRACE_ENABLED: enabled,
      WEBHOOK_SECRET_ID: 'ecourtdate-relay/staging/webhook',
      EVENT_BUS_NAME: 'default',
    };
    expect(hookNamespacesAfterImport(entry, env)).toEqual(expected);
  });
});

describe('metric dimensions (docs/runbook.md)', () => {
  function emitted(stage: string | undefined) {
    const before = process.env.RELAY_STAGE;
    if (stage === undefined) delete process.env.RELAY_STAGE;
    else process.env.RELAY_STAGE = stage;
    try {
      const { metrics } = createObservability();
      metrics.addMetric('Delivered', 'Count', 1);
      return metrics.serializeMetrics() as unknown as {
        _aws: { CloudWatchMetrics: { Dimensions: string[][] }[] };
        [key: string]: unknown;
      };
    } finally {
      if (before === undefined) delete process.env.RELAY_STAGE;
      else process.env.RELAY_STAGE = before;
    }
  }

  it('a deployed function’s metrics carry its stage beside the service, as its alarms select them', () => {
    const emf = emitted('production');
    expect(emf._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([['service', 'stage']]);
    expect(emf).toMatchObject({ service: 'ecourtdate-relay', stage: 'production' });
  });

  it('without a stage (a local run) they carry the service only', () => {
    expect(emitted(undefined)._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([['service']]);
  });
});
