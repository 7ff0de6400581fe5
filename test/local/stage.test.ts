import { describe, expect, it } from 'vitest';
import { DEAD_LETTER_RETENTION_DAYS, SEND_QUEUE_RETENTION_DAYS } from '#infra/config.ts';
import { cdkStageConfig, localQueueSettings, localSenderEnvironment } from '#local/pipeline/stage.ts';
import { alarmDefinitions } from '#shared/alarm-definitions.ts';
import { ENV } from '#shared/config.ts';
import { onlyResource, synthRelay } from '#test/helpers/infra.ts';
import { REPO_ROOT } from '#test/local/io.ts';

const retention = { sendDays: SEND_QUEUE_RETENTION_DAYS, deadLetterDays: DEAD_LETTER_RETENTION_DAYS };

describe('the local pipeline is configured as the stack deploys it (cdk.json, default stage)', () => {
  const stage = cdkStageConfig(REPO_ROOT);
  const { template } = synthRelay();

  it('send queue: the same visibility timeout and maxReceiveCount at time scale 1', () => {
    const { properties } = onlyResource(template, 'AWS::SQS::Queue', { RedrivePolicy: {} });
    const local = localQueueSettings(stage, 1, retention);

    expect(local.visibilityTimeoutSeconds).toBe(properties.VisibilityTimeout);
    expect(local.maxReceiveCount).toBe(
      (properties.RedrivePolicy as { maxReceiveCount: number }).maxReceiveCount,
    );
    expect(local.retentionSeconds).toBe(properties.MessageRetentionPeriod);
  });

  it('divides the visibility timeout by the time scale, never below a second', () => {
    const full = localQueueSettings(stage, 1, retention).visibilityTimeoutSeconds;

    expect(localQueueSettings(stage, 60, retention).visibilityTimeoutSeconds).toBe(Math.round(full / 60));
    expect(localQueueSettings(stage, 100_000, retention).visibilityTimeoutSeconds).toBe(1);
  });

  it('sender environment: every variable the stack gives the function, with the same settings', () => {
    const { properties } = onlyResource(template, 'AWS::Lambda::Function');
    const variables = (properties.Environment as { Variables: Record<string, unknown> }).Variables;
    const senderVariables = Object.entries(variables).filter(([name]) =>
      (Object.values(ENV) as string[]).includes(name),
    );
    const local = localSenderEnvironment(stage, {
      baseUrl: stage.baseUrl,
      concurrency: stage.maxConcurrency,
      timeScale: 1,
      resources: {
        secretId: 'local-secret',
        sendQueueUrl: 'http://127.0.0.1:1/send',
        deadLetterQueueUrl: 'http://127.0.0.1:1/dlq',
        ledgerTableName: 'local-ledger',
      },
      endpoints: {
        sqs: 'http://127.0.0.1:1',
        secretsManager: 'http://127.0.0.1:2',
        dynamodb: 'http://127.0.0.1:3',
      },
    });

    // Resources are references in the template and emulator URLs locally: the names must match, the values not.
    expect(Object.keys(local)).toEqual(expect.arrayContaining(senderVariables.map(([name]) => name)));
    expect(local).toMatchObject(
      Object.fromEntries(senderVariables.filter(([, value]) => typeof value === 'string')),
    );
  });

  it('alarms: the stack alarms on the very definitions the local run evaluates', () => {
    const definitions = alarmDefinitions(stage.alarmThresholds);
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (resource) => (resource as { Properties: { AlarmName: string; Threshold: number } }).Properties,
    );

    expect(alarms.map((a) => [a.AlarmName, a.Threshold]).sort()).toEqual(
      definitions.map((d) => [`${stage.stackName}-${d.id}`, d.threshold]).sort(),
    );
  });
});
