import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import type { RelayStack } from '#infra/stacks/relay-stack.ts';
import { WEBHOOK_OUTPUT, WEBHOOK_ROUTE_PATH } from '#infra/webhook-config.ts';
import { ENV } from '#shared/config.ts';
import { ConfigError } from '#shared/errors.ts';
import { WEBHOOK_ALARM_ID } from '#shared/webhook/alarms.ts';
import { WEBHOOK_METRIC } from '#shared/webhook/metrics.ts';
import {
  dashboardBody,
  getAtt,
  logicalId,
  onlyResource,
  PRODUCTION,
  ref,
  type StatementJson,
  senderEnvironment,
  synthRelay,
} from '#test/helpers/infra.ts';

const ON = { stage: 'staging', webhooks: 'true' };

function receiverFunction(template: Template) {
  return onlyResource(template, 'AWS::Lambda::Function', {
    Description: Match.stringLikeRegexp('webhook receiver'),
  });
}

function receiverEnvironment(template: Template): Record<string, unknown> {
  return (receiverFunction(template).properties.Environment as { Variables: Record<string, unknown> })
    .Variables;
}

/** The statements of the receiver role's policy. */
function receiverStatements(stack: RelayStack, template: Template): StatementJson[] {
  const role = logicalId(stack, stack.webhooks?.receiver.role as never);
  const { properties } = onlyResource(template, 'AWS::IAM::Policy', { Roles: [ref(role)] });
  return (properties.PolicyDocument as { Statement: StatementJson[] }).Statement;
}

describe('webhooks off (the default)', () => {
  it('deploys no endpoint, receiver or webhook secret', () => {
    const { template, stack } = synthRelay({ stage: 'staging' });

    template.resourceCountIs('AWS::ApiGatewayV2::Api', 0);
    template.resourceCountIs('AWS::Lambda::Function', 1);
    expect(stack.webhooks).toBeUndefined();
    expect(Object.keys(template.findOutputs(WEBHOOK_OUTPUT.url))).toEqual([]);
  });
});

describe('the sender with webhooks on', () => {
  it("is told to index each delivered job's message uuid for the receiver (WEBHOOKS_ENABLED)", () => {
    expect(senderEnvironment(synthRelay(ON).template)[ENV.webhooksEnabled]).toBe('true');
    expect(senderEnvironment(synthRelay({ stage: 'staging' }).template)[ENV.webhooksEnabled]).toBe('false');
  });
});

describe('the webhook endpoint', () => {
  it('is an HTTP API whose one route, ANY /ecourtdate/webhook, invokes the receiver with payload format 2.0', () => {
    const { template } = synthRelay(ON);
    const receiver = receiverFunction(template).id;

    onlyResource(template, 'AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    const integration = onlyResource(template, 'AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: getAtt(receiver),
    });
    onlyResource(template, 'AWS::ApiGatewayV2::Route', {
      RouteKey: `ANY ${WEBHOOK_ROUTE_PATH}`,
      Target: { 'Fn::Join': ['', ['integrations/', ref(integration.id)]] },
    });
    template.resourceCountIs('AWS::ApiGatewayV2::Route', 1);
  });

  it('throttles the $default stage at 50 requests a second with bursts of 100 by default', () => {
    const { template } = synthRelay(ON);

    onlyResource(template, 'AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
  });

  it('takes the throttling limits from the stage settings', () => {
    const { template } = synthRelay({ ...ON, webhookRateLimit: '20', webhookBurstLimit: '40' });

    onlyResource(template, 'AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 },
    });
  });

  it('logs access as JSON without headers or body', () => {
    const { template } = synthRelay(ON);
    const { properties } = onlyResource(template, 'AWS::ApiGatewayV2::Stage');
    const format = JSON.parse((properties.AccessLogSettings as { Format: string }).Format);

    expect(Object.keys(format).sort()).toEqual(
      [
        'integrationError',
        'integrationStatus',
        'method',
        'requestId',
        'requestTime',
        'responseLength',
        'routeKey',
        'sourceIp',
        'status',
      ].sort(),
    );
  });

  it('outputs the URL to paste into the eCourtDate Console', () => {
    const { template } = synthRelay(ON);
    const api = onlyResource(template, 'AWS::ApiGatewayV2::Api').id;

    template.hasOutput(WEBHOOK_OUTPUT.url, {
      Value: { 'Fn::Join': ['', [getAtt(api, 'ApiEndpoint'), WEBHOOK_ROUTE_PATH]] },
    });
    template.hasOutput(WEBHOOK_OUTPUT.secretName, { Value: 'ecourtdate-relay/staging/webhook-signing-key' });
    template.hasOutput(WEBHOOK_OUTPUT.functionName, { Value: ref(receiverFunction(template).id) });
  });
});

describe('bundling the receiver', () => {
  it('bundles functions/webhook.ts with the local esbuild into an ESM module with its own AWS SDK and a source map', () => {
    const { app, template } = synthRelay(ON, { bundle: true });
    const { properties } = receiverFunction(template);
    const assetKey = (properties.Code as { S3Key: string }).S3Key;
    const assetDir = join(app.synth().directory, `asset.${assetKey.replace(/\.zip$/, '')}`);
    const bundle = readFileSync(join(assetDir, 'index.mjs'), 'utf8');

    expect(properties.Handler).toBe('index.handler');
    expect(bundle).toMatch(/export\s*\{[^}]*\bhandler\b[^}]*\}/);
    expect(bundle).not.toMatch(/from\s*["']@aws-sdk\//);
    expect(bundle).toContain('AWSEvents');
    expect(existsSync(join(assetDir, 'index.mjs.map'))).toBe(true);
  });
});

describe('the webhook secret', () => {
  it('is generated by the stack as {"secret"} of 24 letters and digits', () => {
    const { template } = synthRelay(ON);

    onlyResource(template, 'AWS::SecretsManager::Secret', {
      Name: 'ecourtdate-relay/staging/webhook-signing-key',
      GenerateSecretString: {
        SecretStringTemplate: '{}',
        GenerateStringKey: 'secret',
        PasswordLength: 24,
        ExcludePunctuation: true,
      },
    });
  });

  it('can be an existing secret, by name', () => {
    const { template } = synthRelay({ ...ON, existingWebhookSecretName: 'shared/ecd-webhook' });
    // Subsegments off by default, as for the sender.
    expect(receiverEnvironment(template).POWERTOOLS_TRACE_ENABLED).toBe('false');
    expect(
      receiverEnvironment(synthRelay({ ...ON, traceSubsegments: 'true' }).template).POWERTOOLS_TRACE_ENABLED,
    ).toBe('true');

    template.resourceCountIs('AWS::SecretsManager::Secret', 1);
    expect(receiverEnvironment(template).WEBHOOK_SECRET_ID).toBe('shared/ecd-webhook');
  });
});

describe('the receiver', () => {
  it('is told of its secret, bus and table, its limits and the allowlist', () => {
    const { template, stack } = synthRelay({ ...ON, webhookAllowedIps: '203.0.113.10, 203.0.113.11' });
    const secret = logicalId(stack, stack.webhooks?.secret as never);

    expect(receiverEnvironment(template)).toMatchObject({
      WEBHOOK_SECRET_ID: ref(secret),
      EVENT_BUS_NAME: 'default',
      LEDGER_TABLE_NAME: ref(logicalId(stack, stack.ledgerTable)),
      WEBHOOK_ALLOWED_IPS: '203.0.113.10,203.0.113.11',
      WEBHOOK_MAX_BODY_BYTES: '65536',
      WEBHOOK_DEDUPE_TTL_SECONDS: String(7 * 86_400),
      WEBHOOK_LEASE_SECONDS: '30',
    });
    expect(receiverFunction(template).properties).toMatchObject({ Timeout: 10, Architectures: ['arm64'] });
  });

  it('may decrypt its secret with the customer-managed key of webhookSecretKmsKeyArn, through Secrets Manager only', () => {
    const key = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const { template, stack } = synthRelay({
      ...ON,
      existingWebhookSecretName: 'court/webhook',
      webhookSecretKmsKeyArn: key,
    });
    expect(receiverStatements(stack, template)).toContainEqual(
      expect.objectContaining({
        Action: 'kms:Decrypt',
        Resource: key,
        Condition: { StringEquals: { 'kms:ViaService': expect.anything() } },
      }),
    );
    const without = synthRelay(ON);
    expect(JSON.stringify(receiverStatements(without.stack, without.template))).not.toContain('kms:Decrypt');
  });

  it('may put events on the stack bus only, use three item operations on the ledger table, and read its secret', () => {
    const { template, stack } = synthRelay({ ...ON, eventBusName: 'court-bus' });
    const statements = receiverStatements(stack, template);
    const table = logicalId(stack, stack.ledgerTable);
    const secret = logicalId(stack, stack.webhooks?.secret as never);

    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: 'events:PutEvents',
        Resource: {
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              ':events:',
              { Ref: 'AWS::Region' },
              ':',
              { Ref: 'AWS::AccountId' },
              ':event-bus/court-bus',
            ],
          ],
        },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        Resource: getAtt(table),
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
        Resource: ref(secret),
      }),
    );
    const actions = statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
    expect(
      actions.filter(
        (a) => !/^(events:PutEvents|dynamodb:(Get|Put|Update)Item|secretsmanager:|logs:|xray:)/.test(a),
      ),
    ).toEqual([]);
    expect(receiverEnvironment(template).EVENT_BUS_NAME).toBe('court-bus');
  });
});

describe('webhook alarms', () => {
  it('page on-call for signature failures, receiver errors, throttles and publish failures, with OK actions', () => {
    const { template, stack } = synthRelay(ON);
    const topic = ref(logicalId(stack, stack.onCall.topic));

    for (const id of Object.values(WEBHOOK_ALARM_ID)) {
      const { properties } = onlyResource(template, 'AWS::CloudWatch::Alarm', {
        AlarmName: `EcourtdateRelay-staging-${id}`,
      });
      expect(properties).toMatchObject({
        AlarmActions: [topic],
        OKActions: [topic],
        TreatMissingData: 'notBreaching',
      });
      expect(properties.AlarmDescription).toMatch(
        new RegExp(`Runbook: docs/webhooks\\.md#${id.toLowerCase()}$`),
      );
    }
  });

  it('fires on 5 signature failures in 5 minutes by default, and on the configured number', () => {
    const byDefault = synthRelay(ON).template;
    const tuned = synthRelay({ ...ON, webhookSignatureFailureThreshold: '20' }).template;
    const props = (template: Template) =>
      onlyResource(template, 'AWS::CloudWatch::Alarm', {
        AlarmName: `EcourtdateRelay-staging-${WEBHOOK_ALARM_ID.signatureFailures}`,
      }).properties;

    expect(props(byDefault)).toMatchObject({
      MetricName: WEBHOOK_METRIC.signatureFailures,
      Namespace: 'ECourtDateRelay',
      Period: 300,
      Statistic: 'Sum',
      Threshold: 5,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(props(tuned).Threshold).toBe(20);
  });

  it('count receiver errors as Lambda errors plus the receiver’s own secret and table failures and unsaved progress', () => {
    const { template } = synthRelay(ON);
    const { properties } = onlyResource(template, 'AWS::CloudWatch::Alarm', {
      AlarmName: `EcourtdateRelay-staging-${WEBHOOK_ALARM_ID.receiverErrors}`,
    });
    const metrics = properties.Metrics as {
      Expression?: string;
      MetricStat?: { Metric: { MetricName: string } };
    }[];

    expect(metrics.find((m) => m.Expression)?.Expression).toBe('errors + internal + progress');
    expect(metrics.flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.MetricName] : [])).sort()).toEqual(
      ['Errors', WEBHOOK_METRIC.internalErrors, WEBHOOK_METRIC.progressUnsaved].sort(),
    );
  });

  it('show on the dashboard with graphs of deliveries, failures and the API', () => {
    const { template } = synthRelay(ON);
    const titles = dashboardBody(template).widgets.map((w) => (w.properties as { title?: string }).title);

    expect(titles).toEqual(
      expect.arrayContaining([
        'Webhook alarms (runbook: docs/webhooks.md)',
        'Webhook deliveries',
        'Webhook failures',
        'Webhook API and receiver',
      ]),
    );
  });
});

describe('webhook stage settings', () => {
  it.each([
    [{ webhooks: 'yes' }, 'webhooks'],
    [{ webhookAllowedIps: '203.0.113' }, 'webhookAllowedIps'],
    [{ webhookMaxBodyBytes: String(300 * 1024) }, 'webhookMaxBodyBytes'],
    [{ webhookRateLimit: '100', webhookBurstLimit: '10' }, 'webhookBurstLimit'],
    [{ webhookSecretName: 'a', existingWebhookSecretName: 'b' }, 'existingWebhookSecretName'],
    // A name ending like Secrets Manager's ARN suffix ("-" and six characters) makes lookups ambiguous.
    [{ webhookSecretName: 'court/webhook-secret' }, 'webhookSecretName'],
    [{ webhookSecretKmsKeyArn: 'alias/relay' }, 'webhookSecretKmsKeyArn'],
  ])('refuses %o, naming %s', (context, setting) => {
    const error = (() => {
      try {
        synthRelay({ ...ON, ...context });
      } catch (e) {
        return e;
      }
      return undefined;
    })();

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(setting);
  });
});

describe('cdk-nag AwsSolutions with webhooks on', () => {
  /** Every AwsSolutions finding left in the app, warnings included. */
  function unacknowledgedFindings(app: IConstruct): { rule: string; path: string | undefined }[] {
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(app);
    return report.violations.flatMap((violation) =>
      violation.violatingResources.map((r) => ({ rule: violation.ruleName, path: r.constructPath })),
    );
  }

  /** Acknowledgements recorded under the receiver, as [construct path, rule, reason]. */
  function webhookAcknowledgements(app: IConstruct): [string, string, string][] {
    return app.node
      .findAll()
      .filter((construct) => construct.node.path.includes('/Webhooks/'))
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

  it.each([
    [{ ...ON }],
    [
      {
        ...PRODUCTION,
        ecourtdateRegion: 'us-east',
        webhooks: 'true',
        existingWebhookSecretName: 'x/y',
        eventBusName: 'court-bus',
      },
    ],
  ])('finds nothing unacknowledged in %o', (context) => {
    const { app } = synthRelay(context);

    expect(unacknowledgedFindings(app)).toEqual([]);
  });

  it('acknowledges three findings of the receiver, each with a reason', () => {
    const { app } = synthRelay(ON);
    const acknowledged = webhookAcknowledgements(app);

    expect(acknowledged.map(([path, rule]) => [path.replace(/^.*\/Webhooks\//, ''), rule]).sort()).toEqual(
      [
        ['Api/ANY--ecourtdate--webhook', 'AwsSolutions-APIG4'],
        ['Receiver/Role/DefaultPolicy', 'AwsSolutions-IAM5[Resource::*]'],
        ['Secret', 'AwsSolutions-SMG4'],
      ].sort(),
    );
    for (const [, , reason] of acknowledged) expect(reason.length).toBeGreaterThan(120);
  });
});

describe('eCourtDate Job Settled events (publishJobSettled)', () => {
  it('are off by default: the sender is told of no bus and may not put events', () => {
    const { template } = synthRelay({ stage: 'staging' });
    expect(senderEnvironment(template)[ENV.publishJobSettled]).toBeUndefined();
    expect(JSON.stringify(template.toJSON())).not.toContain('"events:PutEvents"');
  });

  it('when on, the sender is told of the bus and may put events on that bus only', () => {
    const { template } = synthRelay({
      stage: 'staging',
      publishJobSettled: 'true',
      eventBusName: 'court-bus',
    });
    expect(senderEnvironment(template)).toMatchObject({
      [ENV.publishJobSettled]: 'true',
      [ENV.eventBusName]: 'court-bus',
    });
    const statements = JSON.stringify(template.toJSON());
    expect(statements).toContain('"events:PutEvents"');
    expect(statements).toContain(':event-bus/court-bus');
  });
});
