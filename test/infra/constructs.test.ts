import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import { RelayFunction } from '#infra/constructs/relay-function.ts';
import { QueueWithDeadLetterQueue, secureQueue } from '#infra/constructs/secure-queue.ts';

const emptyStack = () => new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Test');

describe('QueueWithDeadLetterQueue', () => {
  const valid = { visibilityTimeout: Duration.minutes(6), maxReceiveCount: 10 };

  it('applies its documented defaults: 4 days on the queue, 14 days on the dead-letter queue', () => {
    const stack = emptyStack();
    const queues = new QueueWithDeadLetterQueue(stack, 'Work', valid);
    const resources = Template.fromStack(stack).toJSON().Resources;
    expect(resources[stack.getLogicalId(queues.queue.node.defaultChild as never)].Properties).toMatchObject({
      MessageRetentionPeriod: 4 * 86_400,
      VisibilityTimeout: 360,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { maxReceiveCount: 10 },
    });
    expect(
      resources[stack.getLogicalId(queues.deadLetterQueue.node.defaultChild as never)].Properties,
    ).toMatchObject({
      MessageRetentionPeriod: 14 * 86_400,
      SqsManagedSseEnabled: true,
    });
  });

  it.each([
    [
      { ...valid, maxReceiveCount: 0 },
      /Work\.maxReceiveCount: expected a whole number from 1 to 1000, got 0/,
    ],
    [{ ...valid, maxReceiveCount: 1001 }, /Work\.maxReceiveCount/],
    [
      { ...valid, visibilityTimeout: Duration.hours(13) },
      /Work\.visibilityTimeout: expected 0 seconds to 12 hours/,
    ],
    [{ ...valid, retentionPeriod: Duration.days(15) }, /Work\.retentionPeriod/],
    [
      { ...valid, retentionPeriod: Duration.days(7), deadLetterRetentionPeriod: Duration.days(7) },
      /Work\.deadLetterRetentionPeriod: must exceed the queue's retention \(7 days\)/,
    ],
  ])('rejects invalid props at synth: %o', (props, message) => {
    expect(() => new QueueWithDeadLetterQueue(emptyStack(), 'Work', props)).toThrow(message);
  });
});

describe('secureQueue', () => {
  it('keeps messages 14 days by default, encrypted and TLS-only', () => {
    const stack = emptyStack();
    secureQueue(stack, 'Failures');
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::SQS::Queue', {
      MessageRetentionPeriod: 14 * 86_400,
      SqsManagedSseEnabled: true,
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: [
          { Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
        ],
      },
    });
  });
});

describe('RelayFunction', () => {
  it.each([
    [{ memorySize: 64 }, /Sender\.memorySize: expected 128 to 10240 MB, got 64/],
    [{ timeout: Duration.minutes(16) }, /Sender\.timeout: expected 1 s to 15 minutes/],
  ])('rejects invalid props at synth: %o', (props, message) => {
    expect(
      () =>
        new RelayFunction(emptyStack(), 'Sender', {
          entry: 'functions/sender.ts',
          description: 'test',
          stage: 'staging',
          ...props,
        }),
    ).toThrow(message);
  });

  it('defaults to 30 s, 256 MB, INFO logs kept a month', () => {
    const stack = emptyStack();
    const fn = new RelayFunction(stack, 'Sender', {
      entry: 'functions/sender.ts',
      description: 'test',
      stage: 'staging',
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Timeout: 30,
      MemorySize: 256,
      Environment: { Variables: { POWERTOOLS_LOG_LEVEL: 'INFO', RELAY_STAGE: 'staging' } },
    });
    expect(
      template.toJSON().Resources[stack.getLogicalId(fn.logGroup.node.defaultChild as never)].Properties,
    ).toEqual({
      RetentionInDays: 30,
    });
  });

  describe('useTableItems', () => {
    const withTable = (props: Partial<dynamodb.TableProps> = {}) => {
      const stack = emptyStack();
      const table = new dynamodb.Table(stack, 'Items', {
        partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
        ...props,
      });
      const fn = new RelayFunction(stack, 'Sender', {
        entry: 'functions/sender.ts',
        description: 'test',
        stage: 'staging',
        environment: { ITEMS_TABLE: table.tableName },
      });
      return { stack, fn, table };
    };

    it('grants exactly the named item operations on the table ARN, which the variable names', () => {
      const { stack, fn, table } = withTable();
      fn.useTableItems(table, 'ITEMS_TABLE', ['PutItem', 'GetItem', 'GetItem']);
      const template = Template.fromStack(stack);
      const tableId = stack.getLogicalId(table.node.defaultChild as never);
      template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: { Variables: { ITEMS_TABLE: { Ref: tableId } } },
      });
      const policy = Object.values(template.findResources('AWS::IAM::Policy'))[0] as {
        Properties: { PolicyDocument: { Statement: unknown[] } };
      };
      expect(policy.Properties.PolicyDocument.Statement).toContainEqual({
        Sid: 'ItemsOfItems',
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        Resource: { 'Fn::GetAtt': [tableId, 'Arn'] },
      });
      expect(JSON.stringify(policy)).not.toContain('kms:');
    });

    it('also grants encrypt/decrypt on a customer-managed key, when the table has one', () => {
      const { stack, fn, table } = withTable({ encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED });
      fn.useTableItems(table, 'ITEMS_TABLE', ['GetItem']);
      expect(JSON.stringify(Template.fromStack(stack).findResources('AWS::IAM::Policy'))).toContain(
        'kms:Decrypt',
      );
    });

    it('refuses an empty list of operations', () => {
      const { fn, table } = withTable();
      expect(() => fn.useTableItems(table, 'ITEMS_TABLE', [])).toThrow(
        /Sender\.useTableItems: expected at least one operation on Items/,
      );
    });
  });

  describe('a resource reaches the function with its grant, or not at all', () => {
    const setUp = (environment: (queue: sqs.Queue) => Record<string, string>) => {
      const stack = emptyStack();
      const queue = new sqs.Queue(stack, 'Work', { enforceSSL: true });
      const fn = new RelayFunction(stack, 'Sender', {
        entry: 'functions/sender.ts',
        description: 'test',
        stage: 'staging',
        environment: environment(queue),
      });
      return { stack, fn, queue };
    };

    it('refuses a grant whose variable holds something else', () => {
      const { fn, queue } = setUp(() => ({ WORK_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/1/other' }));
      expect(() => fn.sendTo(queue, 'WORK_QUEUE_URL')).toThrow(
        'Sender.environment: WORK_QUEUE_URL must name Work, which the function is granted; it names something else',
      );
    });

    it('refuses a grant whose variable is not set', () => {
      const { fn, queue } = setUp(() => ({}));
      expect(() => fn.sendTo(queue, 'WORK_QUEUE_URL')).toThrow(
        'Sender.environment: WORK_QUEUE_URL must name Work, which the function is granted; it is not set',
      );
    });

    it('fails the synth on a variable naming a resource that no grant claimed', () => {
      const { stack } = setUp((queue) => ({ WORK_QUEUE_URL: queue.queueUrl }));
      expect(() => Template.fromStack(stack)).toThrow(
        'Sender: environment variable WORK_QUEUE_URL names a resource the function is granted nothing on',
      );
    });
  });
});
