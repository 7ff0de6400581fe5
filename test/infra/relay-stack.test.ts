import type { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { CRASH_RECOVERY_MARGIN_SECONDS, defaultEventSource, EVENT_DETAIL_TYPE } from '#infra/config.ts';
import { statusCodeSearch } from '#infra/constructs/relay-dashboard.ts';
import { OUTPUT } from '#infra/stack-contract.ts';
import type { RelayStack } from '#infra/stacks/relay-stack.ts';
import {
  ALARM_ID,
  type AlarmDefinition,
  type AlarmMetricSource,
  alarmDefinitions,
} from '#shared/alarm-definitions.ts';
import { ENV } from '#shared/config.ts';
import { METRIC, METRICS_NAMESPACE, METRICS_SERVICE } from '#shared/metric-names.ts';
import { EVENTBRIDGE_MESSAGE_GROUP } from '#shared/sqs/message-group.ts';
import { WEBHOOK_METRIC } from '#shared/webhook/metrics.ts';
import {
  dashboardBody,
  getAtt,
  logicalId,
  onlyResource,
  PRODUCTION,
  ref,
  type StatementJson as Statement,
  senderEnvironment,
  senderStatements,
  synthRelay,
} from '#test/helpers/infra.ts';

function ids(stack: RelayStack) {
  return {
    sendQueue: logicalId(stack, stack.sendQueues.queue),
    deadLetterQueue: logicalId(stack, stack.sendQueues.deadLetterQueue),
    eventsDeadLetterQueue: logicalId(stack, stack.eventsDeadLetterQueue),
    function: logicalId(stack, stack.sender.function),
    logGroup: logicalId(stack, stack.sender.logGroup),
    role: logicalId(stack, stack.sender.role),
    rule: logicalId(stack, stack.sendJobRule),
    topic: logicalId(stack, stack.onCall.topic),
    key: logicalId(stack, stack.onCall.key),
    ledgerTable: logicalId(stack, stack.ledgerTable),
  };
}

function queuePolicyStatements(template: Template, queueId: string): Statement[] {
  const { properties } = onlyResource(template, 'AWS::SQS::QueuePolicy', { Queues: [ref(queueId)] });
  return (properties.PolicyDocument as { Statement: Statement[] }).Statement;
}

const denyWithoutTls = (resource: unknown, action = 'sqs:*') => ({
  Effect: 'Deny',
  Principal: action === 'sqs:*' ? { AWS: '*' } : '*',
  Action: action,
  Resource: resource,
  Condition: { Bool: { 'aws:SecureTransport': 'false' } },
});

describe('queues', () => {
  it('encrypts every queue with SQS-managed keys and denies every request made without TLS', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const queues = [stack.sendQueues.queue, stack.sendQueues.deadLetterQueue, stack.eventsDeadLetterQueue];
    template.resourceCountIs('AWS::SQS::Queue', queues.length);
    for (const queue of queues) {
      const id = logicalId(stack, queue);
      expect(template.toJSON().Resources[id].Properties.SqsManagedSseEnabled).toBe(true);
      expect(queuePolicyStatements(template, id)).toContainEqual(
        expect.objectContaining(denyWithoutTls(getAtt(id))),
      );
    }
  });

  it('gives the send queue a visibility timeout of six function timeouts, 4 days retention and a redrive at 10 receives', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const { sendQueue, deadLetterQueue } = ids(stack);
    const fn = onlyResource(template, 'AWS::Lambda::Function').properties;
    expect(fn.Timeout).toBe(220);
    expect(template.toJSON().Resources[sendQueue].Properties).toEqual({
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 6 * 220,
      MessageRetentionPeriod: 4 * 86_400,
      RedrivePolicy: { deadLetterTargetArn: getAtt(deadLetterQueue), maxReceiveCount: 10 },
      Tags: expect.any(Array),
    });
  });

  // After a crash (timeout, out of memory) the batch comes back only after the visibility timeout, counted from
  // the receive; its resend must still meet eCourtDate's 409 for a message the crashed attempt created.
  it.each(['staging', 'production'])(
    '%s: a crashed batch is resent inside the duplicate window the sender is told, with a margin',
    (stage) => {
      const { stack, template } = synthRelay(stage === 'production' ? PRODUCTION : { stage });
      const queue = template.toJSON().Resources[ids(stack).sendQueue].Properties;
      const fn = onlyResource(template, 'AWS::Lambda::Function').properties;
      const mapping = onlyResource(template, 'AWS::Lambda::EventSourceMapping').properties;
      const window = Number(senderEnvironment(template)[ENV.duplicateWindowSeconds]);

      const recovery = queue.VisibilityTimeout + mapping.MaximumBatchingWindowInSeconds + fn.Timeout;
      expect(recovery + CRASH_RECOVERY_MARGIN_SECONDS).toBeLessThanOrEqual(window);
    },
  );

  it('keeps dead-lettered jobs and failed events for 14 days', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const { deadLetterQueue, eventsDeadLetterQueue } = ids(stack);
    for (const id of [deadLetterQueue, eventsDeadLetterQueue]) {
      expect(template.toJSON().Resources[id].Properties).toMatchObject({
        MessageRetentionPeriod: 14 * 86_400,
      });
      expect(template.toJSON().Resources[id].Properties.RedrivePolicy).toBeUndefined();
    }
  });

  it('follows sendQueueRetentionDays and deadLetterRetentionDays, on both dead-letter queues', () => {
    const { stack, template } = synthRelay({
      stage: 'staging',
      sendQueueRetentionDays: '2',
      deadLetterRetentionDays: '7',
      ledgerTtlDays: '8',
    });
    const { sendQueue, deadLetterQueue, eventsDeadLetterQueue } = ids(stack);
    const retention = (id: string) => template.toJSON().Resources[id].Properties.MessageRetentionPeriod;
    expect(retention(sendQueue)).toBe(2 * 86_400);
    expect(retention(deadLetterQueue)).toBe(7 * 86_400);
    expect(retention(eventsDeadLetterQueue)).toBe(7 * 86_400);
  });

  it('follows maxReceiveCount and a function timeout from the settings', () => {
    const { stack, template } = synthRelay({
      stage: 'staging',
      maxReceiveCount: '50',
      functionTimeoutSeconds: '240',
    });
    expect(template.toJSON().Resources[ids(stack).sendQueue].Properties).toMatchObject({
      VisibilityTimeout: 1440,
      RedrivePolicy: { maxReceiveCount: 50 },
    });
    expect(onlyResource(template, 'AWS::Lambda::Function').properties.Timeout).toBe(240);
  });

  it("tells the sender the send queue's maxReceiveCount, so that it re-queues a waiting job before the redrive", () => {
    const { stack, template } = synthRelay({ stage: 'staging', maxReceiveCount: '25' });
    const queue = template.toJSON().Resources[ids(stack).sendQueue].Properties;

    expect(senderEnvironment(template)[ENV.maxReceiveCount]).toBe(
      String(queue.RedrivePolicy.maxReceiveCount),
    );
    expect(senderEnvironment(template)[ENV.maxReceiveCount]).toBe('25');
  });

  it('lets only EventBridge rule deliveries and TLS requests through the queue policies', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const { sendQueue, eventsDeadLetterQueue, deadLetterQueue, rule } = ids(stack);
    const fromRule = { ArnEquals: { 'aws:SourceArn': getAtt(rule) } };
    expect(queuePolicyStatements(template, sendQueue)).toEqual([
      denyWithoutTls(getAtt(sendQueue)),
      {
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
        Resource: getAtt(sendQueue),
        Condition: fromRule,
      },
    ]);
    expect(queuePolicyStatements(template, eventsDeadLetterQueue)).toEqual([
      denyWithoutTls(getAtt(eventsDeadLetterQueue)),
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: getAtt(eventsDeadLetterQueue),
        Condition: fromRule,
      }),
    ]);
    expect(queuePolicyStatements(template, deadLetterQueue)).toEqual([
      denyWithoutTls(getAtt(deadLetterQueue)),
    ]);
  });
});

describe('EventBridge', () => {
  it('puts the detail of "eCourtDate Send Message" events from the upstream source on the send queue', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const { sendQueue, eventsDeadLetterQueue } = ids(stack);
    const { properties } = onlyResource(template, 'AWS::Events::Rule');
    expect(properties.EventBusName).toBeUndefined();
    expect(properties.EventPattern).toEqual({
      source: [defaultEventSource('staging')],
      'detail-type': [EVENT_DETAIL_TYPE],
    });
    expect(properties.Targets).toEqual([
      {
        Id: 'Target0',
        Arn: getAtt(sendQueue),
        InputPath: '$.detail',
        DeadLetterConfig: { Arn: getAtt(eventsDeadLetterQueue) },
        RetryPolicy: { MaximumEventAgeInSeconds: 86_400, MaximumRetryAttempts: 185 },
        // One fixed group of the fair send queue for every bus job (docs/contract.md, "Message group").
        SqsParameters: { MessageGroupId: EVENTBRIDGE_MESSAGE_GROUP },
      },
    ]);
  });

  it('listens on a named bus to the configured sources', () => {
    const { template } = synthRelay({
      stage: 'staging',
      eventBusName: 'court-a-integrations',
      eventSources: 'cms.court-a.staging,jms.court-a.staging',
    });
    const { properties } = onlyResource(template, 'AWS::Events::Rule');
    expect(properties.EventBusName).toBe('court-a-integrations');
    expect(properties.EventPattern).toEqual({
      source: ['cms.court-a.staging', 'jms.court-a.staging'],
      'detail-type': ['eCourtDate Send Message'],
    });
    template.hasOutput(OUTPUT.eventBusName, { Value: 'court-a-integrations' });
    template.hasOutput(OUTPUT.eventSource, { Value: 'cms.court-a.staging,jms.court-a.staging' });
  });
});

describe('the sender function', () => {
  it('runs Node.js 24 on arm64 with active tracing, its own log group and the bundled ESM handler', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const { logGroup, role } = ids(stack);
    expect(onlyResource(template, 'AWS::Lambda::Function').properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      TracingConfig: { Mode: 'Active' },
      Timeout: 220,
      MemorySize: 256,
      Role: getAtt(role),
      LoggingConfig: { LogGroup: ref(logGroup) },
    });
    expect(template.toJSON().Resources[logGroup].Properties).toMatchObject({ RetentionInDays: 30 });
  });

  it('hands the sender every resource it uses, its share of the rate limit and the Powertools settings', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const { sendQueue, deadLetterQueue, ledgerTable } = ids(stack);
    expect(senderEnvironment(template)).toEqual({
      [ENV.baseUrl]: 'https://staging.api.ecourtdate.com',
      [ENV.secretId]: ref(logicalId(stack, stack.secret as never)),
      [ENV.sendQueueUrl]: ref(sendQueue),
      [ENV.deadLetterQueueUrl]: ref(deadLetterQueue),
      [ENV.ledgerTableName]: ref(ledgerTable),
      [ENV.ledgerTtlDays]: '30',
      // The stage's budget, shared by the instances; the reserve (1,000 - 945, the budget's most in a window) split
      // by 2 when the item fails.
      [ENV.requestsPerMinute]: '900',
      [ENV.fallbackRequestsPerMinute]: '25',
      [ENV.backoffSeconds]: '60,120,240,480',
      [ENV.maxAttempts]: '5',
      [ENV.duplicateWindowSeconds]: '1800',
      [ENV.httpTimeoutMs]: '10000',
      [ENV.maxReceiveCount]: '10',
      [ENV.rateLimitHintMaxSeconds]: '300',
      [ENV.webhooksEnabled]: 'false',
      POWERTOOLS_SERVICE_NAME: METRICS_SERVICE,
      RELAY_STAGE: 'staging',
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      POWERTOOLS_LOG_LEVEL: 'INFO',
      POWERTOOLS_LOGGER_LOG_EVENT: 'false',
      POWERTOOLS_TRACE_ENABLED: 'false',
      POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false',
      NODE_OPTIONS: '--enable-source-maps',
    });
  });

  it('keeps active tracing on and turns X-Ray subsegments on only with traceSubsegments', () => {
    for (const [context, expected] of [
      [{}, 'false'],
      [{ traceSubsegments: 'false' }, 'false'],
      [{ traceSubsegments: 'true' }, 'true'],
    ] as const) {
      const { template } = synthRelay({ ...PRODUCTION, ...context });
      expect(senderEnvironment(template).POWERTOOLS_TRACE_ENABLED).toBe(expected);
      expect(onlyResource(template, 'AWS::Lambda::Function').properties).toMatchObject({
        TracingConfig: { Mode: 'Active' },
      });
    }
  });

  it('consumes the send queue in batches, reporting batch item failures, at most maxConcurrency at once', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const { sendQueue, function: fn } = ids(stack);
    expect(onlyResource(template, 'AWS::Lambda::EventSourceMapping').properties).toEqual({
      EventSourceArn: getAtt(sendQueue),
      FunctionName: ref(fn),
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
      Tags: expect.any(Array),
    });
  });

  it('gives the sender a configured budget, and the reserve split by a configured number of instances', () => {
    const { template } = synthRelay({
      ...PRODUCTION,
      maxConcurrency: '8',
      requestsPerMinute: '948',
      batchSize: '5',
      maxBatchingWindowSeconds: '0',
      backoffSeconds: '30,60',
      maxAttempts: '4',
      httpTimeoutMs: '8000',
    });
    expect(onlyResource(template, 'AWS::Lambda::EventSourceMapping').properties).toMatchObject({
      BatchSize: 5,
      ScalingConfig: { MaximumConcurrency: 8 },
    });
    expect(
      onlyResource(template, 'AWS::Lambda::EventSourceMapping').properties.MaximumBatchingWindowInSeconds,
    ).toBe(undefined);
    expect(senderEnvironment(template)).toMatchObject({
      [ENV.requestsPerMinute]: '948',
      [ENV.fallbackRequestsPerMinute]: '0',
      [ENV.backoffSeconds]: '30,60',
      [ENV.maxAttempts]: '4',
      [ENV.httpTimeoutMs]: '8000',
    });
  });
});

describe('the API client secret', () => {
  it('is created per stage with a placeholder value and no plaintext in the template', () => {
    const { template } = synthRelay({ stage: 'staging' });
    expect(onlyResource(template, 'AWS::SecretsManager::Secret').properties).toMatchObject({
      Name: 'ecourtdate-relay/staging/api-credentials',
      GenerateSecretString: {
        SecretStringTemplate: JSON.stringify({ client_id: 'REPLACE_WITH_ECOURTDATE_CLIENT_ID' }),
        GenerateStringKey: 'client_secret',
      },
    });
    expect(onlyResource(template, 'AWS::SecretsManager::Secret').properties.SecretString).toBeUndefined();
    template.hasOutput(OUTPUT.secretName, { Value: 'ecourtdate-relay/staging/api-credentials' });
  });

  it('can be an existing secret, found by name, which only the sender may read', () => {
    const { template } = synthRelay({ ...PRODUCTION, existingSecretName: 'court-a/ecourtdate-api' });
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    expect(senderEnvironment(template)[ENV.secretId]).toBe('court-a/ecourtdate-api');
    expect(senderStatements(template)).toContainEqual({
      Effect: 'Allow',
      Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
      // The six "?" stand for the random suffix Secrets Manager adds: this name only, no other secret.
      Resource: {
        'Fn::Join': [
          '',
          [
            'arn:',
            ref('AWS::Partition'),
            ':secretsmanager:',
            ref('AWS::Region'),
            ':',
            ref('AWS::AccountId'),
            ':secret:court-a/ecourtdate-api-??????',
          ],
        ],
      },
    });
    template.hasOutput(OUTPUT.secretName, { Value: 'court-a/ecourtdate-api' });
  });

  const KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  /** The sender's kms:Decrypt statement, if any. */
  const decrypt = (template: Parameters<typeof senderStatements>[0]) =>
    senderStatements(template).find((statement) =>
      ([] as unknown[]).concat(statement.Action).includes('kms:Decrypt'),
    );

  it.each([
    ['an existing secret', { existingSecretName: 'court-a/ecourtdate-api' }],
    ['a created secret', {}],
  ])(
    '%s under a customer-managed key: the sender may decrypt with that key, through Secrets Manager only',
    (_, setting) => {
      const { template } = synthRelay({ ...PRODUCTION, ...setting, secretKmsKeyArn: KEY });
      expect(decrypt(template)).toMatchObject({
        Effect: 'Allow',
        Resource: KEY,
        Condition: {
          StringEquals: {
            'kms:ViaService': { 'Fn::Join': ['', ['secretsmanager.', ref('AWS::Region'), '.amazonaws.com']] },
          },
        },
      });
    },
  );

  it('without a key setting, the sender gets no KMS permission (the AWS managed key needs none)', () => {
    expect(
      decrypt(synthRelay({ ...PRODUCTION, existingSecretName: 'court-a/ecourtdate-api' }).template),
    ).toBeUndefined();
  });
});

describe('least privilege', () => {
  it('gives the sender exactly: consume the send queue and re-queue copies on it, send to the dead-letter queue, read its secret, use its ledger items, write its logs and traces', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const { sendQueue, deadLetterQueue, logGroup, ledgerTable } = ids(stack);
    const statements = senderStatements(template);
    expect(statements).toHaveLength(6);
    expect(statements).toEqual(
      expect.arrayContaining([
        {
          Sid: 'WriteOwnLogs',
          Effect: 'Allow',
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: getAtt(logGroup),
        },
        { Effect: 'Allow', Action: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], Resource: '*' },
        {
          Effect: 'Allow',
          Action: [
            'sqs:ChangeMessageVisibility',
            'sqs:DeleteMessage',
            'sqs:GetQueueAttributes',
            'sqs:GetQueueUrl',
            'sqs:ReceiveMessage',
            // Fresh copies of a waiting job go back on the send queue (docs/sqs-limits.md, "Fresh copies").
            'sqs:SendMessage',
          ],
          Resource: getAtt(sendQueue),
        },
        {
          Effect: 'Allow',
          Action: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
          Resource: getAtt(deadLetterQueue),
        },
        {
          Effect: 'Allow',
          Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
          Resource: ref(logicalId(stack, stack.secret as never)),
        },
        {
          Sid: 'ItemsOfLedgerTable',
          Effect: 'Allow',
          Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
          Resource: getAtt(ledgerTable),
        },
      ]),
    );
  });

  it('uses no wildcard action or resource for SQS, Secrets Manager or DynamoDB, and no AWS-managed policy', () => {
    const { template } = synthRelay({ ...PRODUCTION });
    template.resourceCountIs('AWS::IAM::Role', 1);
    template.resourceCountIs('AWS::IAM::Policy', 1);
    const role = onlyResource(template, 'AWS::IAM::Role').properties;
    expect(role.ManagedPolicyArns).toBeUndefined();
    expect(role.Policies).toBeUndefined();
    for (const statement of senderStatements(template)) {
      const actions = [statement.Action].flat();
      if (!actions.some((a) => /^(sqs|secretsmanager|dynamodb):/.test(a))) continue;
      expect(actions.filter((a) => a.includes('*'))).toEqual([]);
      expect(JSON.stringify(statement.Resource)).not.toContain('*');
    }
  });
});

describe('the on-call topic', () => {
  it('is encrypted with a rotating customer-managed key that CloudWatch may use', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const { key, topic } = ids(stack);
    expect(template.toJSON().Resources[key].Properties).toMatchObject({ EnableKeyRotation: true });
    expect(template.toJSON().Resources[key].Properties.KeyPolicy.Statement).toContainEqual({
      Sid: 'AllowCloudWatchAlarmsToUseTheKey',
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      Resource: '*',
    });
    expect(template.toJSON().Resources[topic].Properties).toMatchObject({ KmsMasterKeyId: getAtt(key) });
  });

  it('accepts only TLS publishes, and from CloudWatch only this account’s alarms', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const { topic } = ids(stack);
    const { properties } = onlyResource(template, 'AWS::SNS::TopicPolicy');
    expect(properties.Topics).toEqual([ref(topic)]);
    expect((properties.PolicyDocument as { Statement: Statement[] }).Statement).toEqual([
      { ...denyWithoutTls(ref(topic), 'sns:Publish'), Sid: 'AllowPublishThroughSSLOnly' },
      {
        Sid: 'AllowCloudWatchAlarmsToPublish',
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Resource: ref(topic),
        Condition: {
          ArnLike: {
            'aws:SourceArn': {
              'Fn::Join': [
                '',
                [
                  'arn:',
                  ref('AWS::Partition'),
                  ':cloudwatch:',
                  ref('AWS::Region'),
                  ':',
                  ref('AWS::AccountId'),
                  ':alarm:*',
                ],
              ],
            },
          },
          StringEquals: { 'aws:SourceAccount': ref('AWS::AccountId') },
        },
      },
    ]);
  });

  it('has no subscription unless an on-call e-mail is configured', () => {
    synthRelay({ stage: 'staging' }).template.resourceCountIs('AWS::SNS::Subscription', 0);
    const { stack, template } = synthRelay({ stage: 'staging', onCallEmail: 'oncall@court.example' });
    expect(onlyResource(template, 'AWS::SNS::Subscription').properties).toEqual({
      Protocol: 'email',
      Endpoint: 'oncall@court.example',
      TopicArn: ref(ids(stack).topic),
    });
  });
});

describe('alarms', () => {
  function expectedMetric(source: AlarmMetricSource, stack: RelayStack) {
    const resource = ids(stack);
    switch (source) {
      case 'relay':
        return {
          Namespace: METRICS_NAMESPACE,
          Dimensions: [
            { Name: 'service', Value: METRICS_SERVICE },
            { Name: 'stage', Value: stack.config.stage },
          ],
        };
      case 'senderFunction':
        return {
          Namespace: 'AWS/Lambda',
          Dimensions: [{ Name: 'FunctionName', Value: ref(resource.function) }],
        };
      case 'ledgerTable':
        return {
          Namespace: 'AWS/DynamoDB',
          Dimensions: [{ Name: 'TableName', Value: ref(resource.ledgerTable) }],
        };
      default:
        return {
          Namespace: 'AWS/SQS',
          Dimensions: [{ Name: 'QueueName', Value: getAtt(resource[source], 'QueueName') }],
        };
    }
  }

  function alarm(template: Template, name: string): Record<string, unknown> {
    return onlyResource(template, 'AWS::CloudWatch::Alarm', { AlarmName: name }).properties;
  }

  it('creates one alarm per shared definition', () => {
    synthRelay({ stage: 'staging' }).template.resourceCountIs(
      'AWS::CloudWatch::Alarm',
      alarmDefinitions().length,
    );
  });

  const singleMetric = alarmDefinitions().filter((d) => d.expression === undefined);
  it.each(singleMetric.map((d) => [d.id, d] as [string, AlarmDefinition]))(
    '%s watches its metric with the defined statistic, period, threshold and missing-data rule, paging on ALARM and OK',
    (id, definition) => {
      const { stack, template } = synthRelay({ stage: 'staging' });
      const [metric] = definition.metrics;
      if (!metric) throw new Error('no metric');
      const topic = ref(ids(stack).topic);
      expect(alarm(template, `EcourtdateRelay-staging-${id}`)).toMatchObject({
        MetricName: metric.metricName,
        ...expectedMetric(metric.source, stack),
        Statistic: metric.statistic,
        Period: 300,
        Threshold: definition.threshold,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        EvaluationPeriods: definition.evaluationPeriods,
        DatapointsToAlarm: definition.datapointsToAlarm,
        TreatMissingData: definition.treatMissingData,
        AlarmActions: [topic],
        OKActions: [topic],
      });
    },
  );

  it('pins the metric, threshold and missing-data rule of each single-metric alarm', () => {
    const defined = Object.fromEntries(
      singleMetric.map((d) => [
        d.id,
        [d.metrics[0]?.metricName, d.metrics[0]?.statistic, d.threshold, d.treatMissingData],
      ]),
    );
    expect(defined).toEqual({
      [ALARM_ID.forbidden]: [METRIC.forbidden, 'Sum', 1, 'notBreaching'],
      [ALARM_ID.deadLetterQueue]: ['ApproximateNumberOfMessagesVisible', 'Maximum', 1, 'ignore'],
      [ALARM_ID.eventsDeadLetterQueue]: ['ApproximateNumberOfMessagesVisible', 'Maximum', 1, 'ignore'],
      [ALARM_ID.oldestMessage]: ['ApproximateAgeOfOldestMessage', 'Maximum', 3600, 'ignore'],
      [ALARM_ID.noisyAgency]: ['ApproximateNumberOfNoisyGroups', 'Maximum', 1, 'notBreaching'],
      [ALARM_ID.senderErrors]: ['Errors', 'Sum', 1, 'notBreaching'],
      [ALARM_ID.senderThrottles]: ['Throttles', 'Sum', 1, 'notBreaching'],
    });
  });

  it('alarms on the 5xx share of calls with metric math over three consecutive periods', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const topic = ref(ids(stack).topic);
    const relayMetric = (id: string, metricName: string) => ({
      Id: id,
      ReturnData: false,
      MetricStat: {
        Metric: {
          Namespace: METRICS_NAMESPACE,
          MetricName: metricName,
          Dimensions: [
            { Name: 'service', Value: METRICS_SERVICE },
            { Name: 'stage', Value: 'staging' },
          ],
        },
        Period: 300,
        Stat: 'Sum',
      },
    });
    expect(alarm(template, 'EcourtdateRelay-staging-ServerErrorRate')).toMatchObject({
      Metrics: [
        {
          Id: expect.any(String),
          Expression: 'IF(calls >= 5, 100 * (errors5xx + transport) / calls, 0)',
          ReturnData: true,
          Label: '5xx and transport errors (% of calls)',
        },
        relayMetric('calls', METRIC.apiCalls),
        relayMetric('errors5xx', METRIC.responses5xx),
        relayMetric('transport', METRIC.transportErrors),
      ],
      Threshold: 20,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'notBreaching',
      AlarmActions: [topic],
      OKActions: [topic],
    });
  });

  it('takes thresholds from the settings', () => {
    const { template } = synthRelay({
      ...PRODUCTION,
      forbiddenThreshold: '3',
      serverErrorRatePercent: '35',
      serverErrorMinCalls: '50',
      serverErrorPeriods: '2',
      oldestMessageAgeSeconds: '900',
    });
    expect(alarm(template, 'EcourtdateRelay-production-Forbidden403')).toMatchObject({ Threshold: 3 });
    expect(alarm(template, 'EcourtdateRelay-production-OldestMessageTooOld')).toMatchObject({
      Threshold: 900,
    });
    const serverErrors = alarm(template, 'EcourtdateRelay-production-ServerErrorRate');
    expect(serverErrors).toMatchObject({ Threshold: 35, EvaluationPeriods: 2, DatapointsToAlarm: 2 });
    expect((serverErrors.Metrics as { Expression?: string }[])[0]?.Expression).toMatch(/^IF\(calls >= 50,/);
  });
});

describe('the dashboard', () => {
  it('shows alarms, responses by status code, outcomes, queues, dead letters, duration, errors, concurrency and the circuit breaker', () => {
    const { template } = synthRelay({ stage: 'staging' });
    expect(onlyResource(template, 'AWS::CloudWatch::Dashboard').properties.DashboardName).toBe(
      'EcourtdateRelay-staging',
    );
    const { widgets } = dashboardBody(template);
    const titles = widgets.map((w) => (w.properties as { title?: string }).title).filter(Boolean);
    expect(titles).toEqual([
      'Alarms',
      'eCourtDate responses by status code',
      'Outcomes',
      'eCourtDate calls and failures',
      'Send queue: depth and age',
      'Dead-letter queues',
      'Dead-lettered by reason',
      'Sender duration (ms)',
      'Sender errors and throttles',
      'Sender concurrency',
      'Job ledger (DynamoDB)',
      'Circuit breaker',
      'Send queue: fairness by agency',
    ]);
    const widget = (title: string) =>
      JSON.stringify(widgets.find((w) => (w.properties as { title?: string }).title === title));
    expect(widget('Alarms').match(/"{ref}"/g)).toHaveLength(alarmDefinitions().length);
    expect(widget('Circuit breaker')).toContain(METRIC.breakerOpen);
    expect(widget('Circuit breaker')).toContain(METRIC.jobsHeld);
    // SEARCH matches "Status" anywhere in a name: the receiver's WebhookJobStatusRecorded and
    // WebhookStatusPending are excluded by name, and every other relay metric with "Status" in it too.
    const search = statusCodeSearch(300, 'staging');
    expect(widget('eCourtDate responses by status code')).toContain(search.replaceAll('"', '\\"'));
    expect(search).toContain(
      `SEARCH('{${METRICS_NAMESPACE},service,stage} service="${METRICS_SERVICE}" stage="staging" MetricName=Status NOT MetricName=`,
    );
    for (const name of [...Object.values(METRIC), ...Object.values(WEBHOOK_METRIC)]) {
      if (/Status/.test(name) && !/^Status\d+$/.test(name))
        expect(search).toContain(`NOT MetricName="${name}"`);
    }
    expect(search).toContain('NOT MetricName="WebhookJobStatusRecorded"');
    expect(
      widget('Outcomes')
        .match(/"ECourtDateRelay","\w+"/g)
        ?.map((m) => m.split(',')[1]),
    ).toEqual(
      [
        METRIC.delivered,
        METRIC.duplicates,
        METRIC.retried,
        METRIC.deferred,
        METRIC.deadLettered,
        METRIC.alreadySettled,
      ].map((name) => `"${name}"`),
    );
    for (const metricName of [
      'ApproximateNumberOfMessagesVisible',
      'ApproximateNumberOfMessagesNotVisible',
      'ApproximateAgeOfOldestMessage',
    ]) {
      expect(widget('Send queue: depth and age')).toContain(`"${metricName}"`);
    }
    for (const metricName of [
      'ApproximateNumberOfNoisyGroups',
      'ApproximateNumberOfMessagesVisibleInQuietGroups',
      'ApproximateAgeOfOldestMessageInQuietGroups',
    ]) {
      expect(widget('Send queue: fairness by agency')).toContain(`"${metricName}"`);
    }
    expect(widget('Dead-letter queues').match(/ApproximateNumberOfMessagesVisible/g)).toHaveLength(2);
    expect(widget('Sender duration (ms)')).toContain('"Duration"');
    expect(widget('Sender errors and throttles')).toContain('"Errors"');
    expect(widget('Sender errors and throttles')).toContain('"Throttles"');
    expect(widget('Sender concurrency')).toContain('"ConcurrentExecutions"');
    expect(widget('Sender concurrency')).toContain('"value":2');
  });
});

describe('stack outputs', () => {
  it('publishes the names an operator and upstream systems need, under stable names', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    const id = ids(stack);
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(Object.keys(outputs).sort()).toEqual(Object.values(OUTPUT).sort());
    expect(Object.fromEntries(Object.entries(outputs).map(([name, output]) => [name, output.Value]))).toEqual(
      {
        SendQueueUrl: ref(id.sendQueue),
        SendQueueArn: getAtt(id.sendQueue),
        DeadLetterQueueUrl: ref(id.deadLetterQueue),
        DeadLetterQueueArn: getAtt(id.deadLetterQueue),
        EventsDeadLetterQueueUrl: ref(id.eventsDeadLetterQueue),
        OnCallTopicArn: ref(id.topic),
        SecretName: 'ecourtdate-relay/staging/api-credentials',
        SecretArn: ref(logicalId(stack, stack.secret as never)),
        DashboardName: 'EcourtdateRelay-staging',
        EventBusName: 'default',
        EventSource: defaultEventSource('staging'),
        EventDetailType: 'eCourtDate Send Message',
        SenderFunctionName: ref(id.function),
        LedgerTableName: ref(id.ledgerTable),
        EcourtdateBaseUrl: 'https://staging.api.ecourtdate.com',
      },
    );
  });
});

describe('stages', () => {
  const dataResources = (stack: RelayStack) => [
    logicalId(stack, stack.secret as never),
    logicalId(stack, stack.sendQueues.queue),
    logicalId(stack, stack.sendQueues.deadLetterQueue),
    logicalId(stack, stack.eventsDeadLetterQueue),
    logicalId(stack, stack.sender.logGroup),
    logicalId(stack, stack.onCall.key),
    logicalId(stack, stack.ledgerTable),
  ];

  it('lets staging be deleted with its data and without termination protection', () => {
    const { app, stack, template } = synthRelay({ stage: 'staging' });
    for (const id of dataResources(stack)) {
      expect(template.toJSON().Resources[id]).toMatchObject({ DeletionPolicy: 'Delete' });
    }
    expect(app.synth().getStackByName('EcourtdateRelay-staging').terminationProtection).toBe(false);
  });

  it('protects production: termination protection, and the secret, queues, ledger table, logs and key retained', () => {
    const { app, stack, template } = synthRelay({ ...PRODUCTION });
    for (const id of dataResources(stack)) {
      expect(template.toJSON().Resources[id]).toMatchObject({
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
      });
    }
    expect(app.synth().getStackByName('EcourtdateRelay-production').terminationProtection).toBe(true);
    expect(
      template.toJSON().Resources[logicalId(stack, stack.sender.logGroup)].Properties.RetentionInDays,
    ).toBe(365);
  });

  it('points production at the multi-region API with five instances by default, or at the configured region', () => {
    const multi = synthRelay({ ...PRODUCTION }).template;
    expect(senderEnvironment(multi)).toMatchObject({
      [ENV.baseUrl]: 'https://api.ecourtdate.com',
      [ENV.requestsPerMinute]: '900',
      [ENV.fallbackRequestsPerMinute]: '10',
    });
    expect(onlyResource(multi, 'AWS::Lambda::EventSourceMapping').properties).toMatchObject({
      ScalingConfig: { MaximumConcurrency: 5 },
    });
    const texas = synthRelay({ ...PRODUCTION, ecourtdateRegion: 'us-texas' }).template;
    expect(senderEnvironment(texas)[ENV.baseUrl]).toBe('https://us-texas.api.ecourtdate.com');
    texas.hasOutput(OUTPUT.ecourtdateBaseUrl, { Value: 'https://us-texas.api.ecourtdate.com' });
  });

  it('names each stage’s stack, secret, alarms and dashboard after the stage', () => {
    const { stack, template } = synthRelay({ ...PRODUCTION });
    expect(stack.stackName).toBe('EcourtdateRelay-production');
    template.hasOutput(OUTPUT.secretName, { Value: 'ecourtdate-relay/production/api-credentials' });
    template.hasOutput(OUTPUT.dashboardName, { Value: 'EcourtdateRelay-production' });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'EcourtdateRelay-production-Forbidden403',
    });
  });
});

describe('bad configuration', () => {
  it.each([
    [{ stage: 'qa' }, /stage: expected one of staging, production, got "qa"/],
    [{ stage: 'staging', maxConcurrency: '1' }, /maxConcurrency: expected a value from 2 to 1000, got 1/],
    [{ ...PRODUCTION, baseUrl: 'http://api.ecourtdate.com' }, /baseUrl: .*https:\/\//],
    [{ stage: 'staging', onCallEmail: 'not-an-address' }, /onCallEmail: expected one e-mail address/],
    [
      { stage: 'staging', serverErrorRatePercent: '0' },
      /serverErrorRatePercent: expected a value from 1 to 100/,
    ],
  ])('fails the synth for %o', (context, message) => {
    expect(() => synthRelay(context)).toThrow(message);
  });
});
