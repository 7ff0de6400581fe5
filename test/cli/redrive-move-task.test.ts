import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetQueueAttributesCommand, SQSClient, StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OUTPUT } from '#infra/stack-contract.ts';
import { relay } from '#test/cli/run.ts';

describe('dlq redrive without a reason: an SQS message move task (SQS client mocked)', () => {
  // Created per test: aws-sdk-client-mock patches every client of the class until restored.
  let sqs: AwsClientStub<SQSClient>;
  let cloudformation: AwsClientStub<CloudFormationClient>;
  const SEND_ARN = 'arn:aws:sqs:us-east-1:123456789012:EcourtdateRelay-staging-SendQueue';
  const DLQ_ARN = 'arn:aws:sqs:us-east-1:123456789012:EcourtdateRelay-staging-DeadLetterQueue';

  beforeEach(() => {
    sqs = mockClient(SQSClient);
    cloudformation = mockClient(CloudFormationClient);
    sqs.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-handle-1' });
  });

  afterEach(() => {
    sqs.restore();
    cloudformation.restore();
  });

  it('--stage: moves from the dead-letter queue to the send queue named by the stack outputs', async () => {
    cloudformation.on(DescribeStacksCommand, { StackName: 'EcourtdateRelay-staging' }).resolves({
      Stacks: [
        {
          StackName: 'EcourtdateRelay-staging',
          CreationTime: new Date(),
          StackStatus: 'UPDATE_COMPLETE',
          Outputs: [
            { OutputKey: OUTPUT.sendQueueArn, OutputValue: SEND_ARN },
            { OutputKey: OUTPUT.deadLetterQueueArn, OutputValue: DLQ_ARN },
            {
              OutputKey: OUTPUT.sendQueueUrl,
              OutputValue: 'https://sqs.us-east-1.amazonaws.com/123/send',
            },
            {
              OutputKey: OUTPUT.deadLetterQueueUrl,
              OutputValue: 'https://sqs.us-east-1.amazonaws.com/123/dlq',
            },
          ],
        },
      ],
    });

    const run = await relay('dlq', 'redrive', '--stage', 'staging');

    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(sqs.commandCalls(StartMessageMoveTaskCommand).map((c) => c.args[0].input)).toEqual([
      { SourceArn: DLQ_ARN, DestinationArn: SEND_ARN },
    ]);
    expect(sqs.commandCalls(GetQueueAttributesCommand)).toHaveLength(0);
    expect(run.stdout).toContain('message move task task-handle-1');
  });

  it('explicit queue URLs: looks their ARNs up first', async () => {
    sqs
      .on(GetQueueAttributesCommand, { QueueUrl: 'https://sqs.us-east-1.amazonaws.com/123/dlq' })
      .resolves({ Attributes: { QueueArn: DLQ_ARN } })
      .on(GetQueueAttributesCommand, { QueueUrl: 'https://sqs.us-east-1.amazonaws.com/123/send' })
      .resolves({ Attributes: { QueueArn: SEND_ARN } });

    const run = await relay(
      'dlq',
      'redrive',
      '--dlq-url',
      'https://sqs.us-east-1.amazonaws.com/123/dlq',
      '--send-queue-url',
      'https://sqs.us-east-1.amazonaws.com/123/send',
    );

    expect(run.status).toBe(0);
    expect(sqs.commandCalls(StartMessageMoveTaskCommand)[0]?.args[0].input).toEqual({
      SourceArn: DLQ_ARN,
      DestinationArn: SEND_ARN,
    });
  });

  it('--stage for a stack that is not there: says so, exit 2', async () => {
    cloudformation.on(DescribeStacksCommand).rejects(
      Object.assign(new Error('Stack with id EcourtdateRelay-production does not exist'), {
        name: 'ValidationError',
      }),
    );

    const run = await relay('dlq', 'redrive', '--stage', 'production');

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('cannot read the outputs of stack EcourtdateRelay-production');
    expect(run.stderr).toContain('does not exist');
  });
});
