import { App } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import type { CfnTable } from 'aws-cdk-lib/aws-dynamodb';
import { describe, expect, it } from 'vitest';
import { buildRelayApp } from '#infra/relay-app.ts';
import { OUTPUT } from '#infra/stack-contract.ts';
import type { RelayStack } from '#infra/stacks/relay-stack.ts';
import { ENV } from '#shared/config.ts';
import {
  CDK_JSON_CONTEXT,
  dashboardBody,
  getAtt,
  logicalId,
  onlyResource,
  PRODUCTION,
  ref,
  senderEnvironment,
  senderStatements,
  synthRelay,
} from '#test/helpers/infra.ts';

// Every operation made on the table: the sender's Get and Put, the webhook receiver's Update.
const OPERATIONS = ['GetItem', 'PutItem', 'UpdateItem'];

function table(template: Template): { id: string; resource: Record<string, unknown> } {
  const { id } = onlyResource(template, 'AWS::DynamoDB::Table');
  return { id, resource: template.toJSON().Resources[id] };
}

/** The alarm's metric math: the sum of one DynamoDB metric over every operation made on the table (no FILL). */
function perOperationSum(stack: RelayStack, prefix: string, metricName: string, label: string) {
  const tableName = ref(logicalId(stack, stack.ledgerTable));
  return [
    {
      Id: expect.any(String),
      Expression: OPERATIONS.map((operation) => `${prefix}${operation}`).join(' + '),
      Label: label,
      ReturnData: true,
    },
    ...OPERATIONS.map((operation) => ({
      Id: `${prefix}${operation}`,
      ReturnData: false,
      MetricStat: {
        Metric: {
          Namespace: 'AWS/DynamoDB',
          MetricName: metricName,
          Dimensions: [
            { Name: 'Operation', Value: operation },
            { Name: 'TableName', Value: tableName },
          ],
        },
        Period: 300,
        Stat: 'Sum',
      },
    })),
  ];
}

describe('the job ledger table', () => {
  it('is on-demand, keyed by the string "id", expires items by "expiration", with point-in-time recovery, the AWS-owned key and no stream', () => {
    const { template } = synthRelay({ stage: 'staging' });
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    // toEqual: no stream, no index, no provisioned throughput, no fixed table name.
    expect(table(template).resource.Properties).toEqual({
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      // DynamoDB always encrypts at rest; SSEEnabled false selects its AWS-owned key (true: the aws/dynamodb key).
      SSESpecification: { SSEEnabled: false },
      DeletionProtectionEnabled: false,
      Tags: [
        { Key: 'application', Value: 'ecourtdate-relay' },
        { Key: 'stage', Value: 'staging' },
      ],
    });
  });

  it('may be deleted with the staging stack, but is retained and deletion-protected in production', () => {
    const staging = table(synthRelay({ stage: 'staging' }).template).resource;
    expect(staging).toMatchObject({ DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
    expect(staging.Properties).toMatchObject({ DeletionProtectionEnabled: false });

    const production = table(synthRelay({ ...PRODUCTION }).template).resource;
    expect(production).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    expect(production.Properties).toMatchObject({
      DeletionProtectionEnabled: true,
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
  });

  it('is named in the LedgerTableName output for the operator CLI', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    expect(OUTPUT.ledgerTableName).toBe('LedgerTableName');
    template.hasOutput('LedgerTableName', { Value: ref(logicalId(stack, stack.ledgerTable)) });
  });
});

describe('the sender and the ledger', () => {
  it('may get, put, update and delete items of the ledger table only: no query, scan, batch, index or wildcard', () => {
    const { stack, template } = synthRelay({ ...PRODUCTION });
    const statements = senderStatements(template);
    const dynamodb = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('dynamodb:')));
    expect(dynamodb).toEqual([
      {
        Sid: 'ItemsOfLedgerTable',
        Effect: 'Allow',
        // UpdateItem: the shared rate budget's leases of the api-client item (docs/pacing.md).
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        Resource: getAtt(logicalId(stack, stack.ledgerTable)),
      },
    ]);
    // No other statement reaches the table, and no KMS grant: the table uses the AWS-owned key.
    const table = logicalId(stack, stack.ledgerTable);
    const others = statements.filter((s) => !dynamodb.includes(s));
    expect(JSON.stringify(others)).not.toContain(table);
    expect(JSON.stringify(statements)).not.toContain('kms:');
  });

  it('with webhooks on, the same grant: the uuid index write (statuses that came before it) updates items too', () => {
    const { stack, template } = synthRelay({ ...PRODUCTION, webhooks: 'true' });
    expect(senderStatements(template)).toContainEqual({
      Sid: 'ItemsOfLedgerTable',
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
      Resource: getAtt(logicalId(stack, stack.ledgerTable)),
    });
  });

  it('learns the table, the TTL and the duplicate window from its environment', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    expect(senderEnvironment(template)).toMatchObject({
      [ENV.ledgerTableName]: ref(logicalId(stack, stack.ledgerTable)),
      [ENV.ledgerTtlDays]: '30',
      [ENV.duplicateWindowSeconds]: '1800',
    });
  });

  it('follows ledgerTtlDays and duplicateWindowSeconds from the settings', () => {
    const { template } = synthRelay({
      ...PRODUCTION,
      ledgerTtlDays: '90',
      duplicateWindowSeconds: '1700',
    });
    expect(senderEnvironment(template)).toMatchObject({
      [ENV.ledgerTtlDays]: '90',
      [ENV.duplicateWindowSeconds]: '1700',
    });
  });

  it('fails the synth when the backoff schedule outlasts the duplicate window', () => {
    // Default backoff with 7 attempts: 66 + 132 + 264 + 528 + 528 + 528 s with 10 % jitter.
    expect(() => synthRelay({ stage: 'staging', maxAttempts: '7' })).toThrow(
      /^backoffSeconds: with maxAttempts 7, .* take up to 2046 s .*below duplicateWindowSeconds \(1800 s\)/,
    );
  });
});

describe('ledger alarms', () => {
  function alarm(template: Template, name: string): Record<string, unknown> {
    return onlyResource(template, 'AWS::CloudWatch::Alarm', { AlarmName: name }).properties;
  }

  it('pages on a single DynamoDB system error or throttled request of the sender’s operations in 5 minutes', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const topic = ref(logicalId(stack, stack.onCall.topic));
    const common = {
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      // One breaching period of the last three: a late datapoint still counts.
      EvaluationPeriods: 3,
      DatapointsToAlarm: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: [topic],
      OKActions: [topic],
      Tags: expect.any(Array),
    };
    expect(alarm(template, 'EcourtdateRelay-staging-LedgerSystemErrors')).toEqual({
      AlarmName: 'EcourtdateRelay-staging-LedgerSystemErrors',
      AlarmDescription: expect.stringMatching(/Runbook: docs\/runbook\.md#ledgersystemerrors$/),
      Metrics: perOperationSum(stack, 'systemErrors', 'SystemErrors', 'ledger system errors'),
      ...common,
    });
    expect(alarm(template, 'EcourtdateRelay-staging-LedgerThrottles')).toEqual({
      AlarmName: 'EcourtdateRelay-staging-LedgerThrottles',
      AlarmDescription: expect.stringMatching(/Runbook: docs\/runbook\.md#ledgerthrottles$/),
      Metrics: perOperationSum(stack, 'throttled', 'ThrottledRequests', 'ledger throttled requests'),
      ...common,
    });
  });

  it('takes the ledger thresholds from the settings', () => {
    const { template } = synthRelay({
      ...PRODUCTION,
      ledgerSystemErrorThreshold: '3',
      ledgerThrottleThreshold: '20',
    });
    expect(alarm(template, 'EcourtdateRelay-production-LedgerSystemErrors')).toMatchObject({ Threshold: 3 });
    expect(alarm(template, 'EcourtdateRelay-production-LedgerThrottles')).toMatchObject({ Threshold: 20 });
  });
});

describe('the dashboard’s ledger graph', () => {
  it('shows consumed read and write units, and the system errors and throttles the alarms watch', () => {
    const { template } = synthRelay({ stage: 'staging' });
    const widget = dashboardBody(template).widgets.find(
      (w) => (w.properties as { title?: string }).title === 'Job ledger (DynamoDB)',
    );
    if (widget === undefined) throw new Error('no ledger graph on the dashboard');
    const metrics = (widget.properties as { metrics: unknown[][] }).metrics;
    const named = metrics.filter((m) => m[0] === 'AWS/DynamoDB').map((m) => m.slice(1, -1).join(' '));
    expect(named).toEqual([
      'ConsumedReadCapacityUnits TableName {ref}',
      'ConsumedWriteCapacityUnits TableName {ref}',
      ...OPERATIONS.map((operation) => `SystemErrors Operation ${operation} TableName {ref}`),
      ...OPERATIONS.map((operation) => `ThrottledRequests Operation ${operation} TableName {ref}`),
    ]);
    const expressions = metrics.flatMap((m) =>
      m.filter((part) => (part as { expression?: string }).expression),
    );
    expect(expressions).toEqual([
      expect.objectContaining({ label: 'ledger system errors', yAxis: 'right' }),
      expect.objectContaining({ label: 'ledger throttled requests', yAxis: 'right' }),
    ]);
  });
});

describe('cdk-nag and the ledger table', () => {
  it('flags the table without point-in-time recovery (AwsSolutions-DDB3): the check really looks at it', () => {
    const app = new App({
      context: { ...CDK_JSON_CONTEXT, stage: 'staging', 'aws:cdk:bundling-stacks': [] },
    });
    const stack = buildRelayApp(app);
    (stack.ledgerTable.node.defaultChild as CfnTable).pointInTimeRecoverySpecification = {
      pointInTimeRecoveryEnabled: false,
    };
    expect(() => app.synth()).toThrow(/Point-in-time Recovery[\s\S]*LedgerTable[\s\S]*AwsSolutions-DDB3/);
  });
});
