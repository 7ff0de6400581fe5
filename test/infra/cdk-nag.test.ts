import { App, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { buildRelayApp } from '#infra/relay-app.ts';
import { CDK_JSON_CONTEXT, PRODUCTION, synthRelay } from '#test/helpers/infra.ts';

/** Every AwsSolutions finding left in the app, warnings included, with the rule's explanation. */
function unacknowledgedFindings(app: IConstruct): { rule: string; path: string | undefined; why: string }[] {
  const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(app);
  return report.violations.flatMap((violation) =>
    violation.violatingResources.map((r) => ({
      rule: violation.ruleName,
      path: r.constructPath,
      why: violation.description,
    })),
  );
}

/** Every acknowledgement recorded in the app, as [construct path, rule, reason]. */
function acknowledgements(app: IConstruct): [string, string, string][] {
  return app.node
    .findAll()
    .flatMap((construct) =>
      construct.node.metadata
        .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((entry) =>
          Object.entries(entry.data as Record<string, string>).map(
            ([rule, reason]) =>
              [construct.node.path, rule.replace(/^annotation::/i, ''), reason] as [string, string, string],
          ),
        ),
    );
}

describe('cdk-nag AwsSolutions', () => {
  it.each(['staging', 'production'])('finds nothing unacknowledged in the %s stack', (stage) => {
    // The synth itself fails on an unacknowledged error; the direct check catches warnings too.
    const { app } = synthRelay(stage === 'production' ? PRODUCTION : { stage });
    expect(unacknowledgedFindings(app)).toEqual([]);
  });

  it('finds nothing unacknowledged with an existing secret, a named bus and every on-call destination', () => {
    const { app } = synthRelay({
      stage: 'production',
      ecourtdateRegion: 'us-east',
      existingSecretName: 'court-a/ecourtdate-api',
      eventBusName: 'court-a-integrations',
      onCallEmail: 'oncall@court.example',
      onCallHttpsEndpoint: 'https://events.pagerduty.com/integration/0123456789abcdef/enqueue',
      onCallTopicArn: 'arn:aws:sns:us-east-1:123456789012:court-chatbot-alerts',
    });
    expect(unacknowledgedFindings(app)).toEqual([]);
  });

  it.each(['create', 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'])(
    'finds nothing unacknowledged with producer accounts, webhooks and dataKmsKey=%s',
    (dataKmsKey) => {
      const { app } = synthRelay({
        ...PRODUCTION,
        producerAccounts: '111122223333,444455556666',
        dataKmsKey,
        webhooks: 'true',
      });
      expect(unacknowledgedFindings(app)).toEqual([]);
    },
  );

  it('fails the synth on a finding nobody acknowledged', () => {
    const app = new App({
      context: { ...CDK_JSON_CONTEXT, stage: 'staging', 'aws:cdk:bundling-stacks': [] },
    });
    const stack = buildRelayApp(app);
    new sqs.Queue(stack, 'Unencrypted', { encryption: sqs.QueueEncryption.UNENCRYPTED });
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS2[\s\S]*Unencrypted/);
  });

  it('acknowledges exactly three findings, each on the one resource concerned and with a reason', () => {
    const { app } = synthRelay({ stage: 'staging' });
    const acknowledged = acknowledgements(app);
    expect(acknowledged.map(([path, rule]) => [path, rule])).toEqual([
      ['EcourtdateRelay-staging/ApiClientSecret', 'AwsSolutions-SMG4'],
      ['EcourtdateRelay-staging/Sender/Role/DefaultPolicy', 'AwsSolutions-IAM5[Resource::*]'],
      ['EcourtdateRelay-staging/EventsDeadLetterQueue', 'AwsSolutions-SQS3'],
    ]);
    for (const [, , reason] of acknowledged) expect(reason.length).toBeGreaterThan(120);
  });

  it('needs each acknowledgement: without them, exactly those findings come back', () => {
    const { app } = synthRelay({ stage: 'staging' });
    for (const construct of app.node.findAll()) {
      // Test-only surgery: drop the recorded acknowledgements to prove none of them is stale.
      const metadata = (construct.node as unknown as { _metadata?: { type: string }[] })._metadata ?? [];
      for (let i = metadata.length - 1; i >= 0; i--) {
        if (metadata[i]?.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY) metadata.splice(i, 1);
      }
    }
    expect(unacknowledgedFindings(app).map(({ rule, path }) => [rule, path])).toEqual([
      ['AwsSolutions-SMG4', 'EcourtdateRelay-staging/ApiClientSecret/Resource'],
      ['AwsSolutions-IAM5[Resource::*]', 'EcourtdateRelay-staging/Sender/Role/DefaultPolicy/Resource'],
      ['AwsSolutions-SQS3', 'EcourtdateRelay-staging/EventsDeadLetterQueue/Resource'],
    ]);
  });
});
