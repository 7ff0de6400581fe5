import type { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { EVENT_DETAIL_TYPE } from '#infra/config.ts';
import {
  getAtt,
  logicalId,
  onlyResource,
  PRODUCTION,
  ref,
  type StatementJson,
  synthRelay,
} from '#test/helpers/infra.ts';

const ACCOUNTS = '111122223333,444455556666';
/** An account's root principal as the template writes it (any principal of that account its own IAM allows). */
const root = (account: string) => ({
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::${account}:root`]],
});
const producers = { AWS: [root('111122223333'), root('444455556666')] };

function queuePolicyStatements(template: Template, queueId: string): StatementJson[] {
  const { properties } = onlyResource(template, 'AWS::SQS::QueuePolicy', { Queues: [ref(queueId)] });
  return (properties.PolicyDocument as { Statement: StatementJson[] }).Statement;
}

describe('producerAccounts lets other accounts send jobs', () => {
  it('adds sqs:SendMessage on the send queue, and nothing else, for those accounts', () => {
    const { stack, template } = synthRelay({ stage: 'staging', producerAccounts: ACCOUNTS });
    const sendQueue = logicalId(stack, stack.sendQueues.queue);

    expect(queuePolicyStatements(template, sendQueue)).toContainEqual({
      Sid: 'ProducerAccountsSendJobs',
      Effect: 'Allow',
      Principal: producers,
      Action: 'sqs:SendMessage',
      Resource: getAtt(sendQueue),
    });
    const deadLetterQueue = logicalId(stack, stack.sendQueues.deadLetterQueue);
    expect(JSON.stringify(queuePolicyStatements(template, deadLetterQueue))).not.toContain('111122223333');
  });

  it("puts a statement of this stage's own on the default bus: PutEvents with the stage's sources and detail-type only", () => {
    const { template } = synthRelay({
      ...PRODUCTION,
      producerAccounts: ACCOUNTS,
      eventSources: 'cms.court-a.production,cms.court-b.production',
    });
    const { properties } = onlyResource(template, 'AWS::Events::EventBusPolicy');

    expect(properties).toEqual({
      EventBusName: 'default',
      StatementId: 'EcourtdateRelay-production-producer-accounts',
      Statement: {
        Effect: 'Allow',
        Principal: producers,
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
              ':event-bus/default',
            ],
          ],
        },
        Condition: {
          'ForAllValues:StringEquals': {
            'events:source': ['cms.court-a.production', 'cms.court-b.production'],
            'events:detail-type': [EVENT_DETAIL_TYPE],
          },
          Null: { 'events:source': 'false', 'events:detail-type': 'false' },
        },
      },
    });
  });

  it('puts the bus statement on the named bus the rule listens on', () => {
    const { template } = synthRelay({
      stage: 'staging',
      producerAccounts: '111122223333',
      eventBusName: 'court-a-integrations',
    });
    const { properties } = onlyResource(template, 'AWS::Events::EventBusPolicy');
    expect(properties.EventBusName).toBe('court-a-integrations');
    expect(JSON.stringify(properties.Statement)).toContain(':event-bus/court-a-integrations');
  });

  it('adds no queue or bus statement for other accounts without the setting', () => {
    const { stack, template } = synthRelay({ stage: 'staging' });
    template.resourceCountIs('AWS::Events::EventBusPolicy', 0);
    const sendQueue = logicalId(stack, stack.sendQueues.queue);
    expect(queuePolicyStatements(template, sendQueue).map((s) => s.Sid)).not.toContain(
      'ProducerAccountsSendJobs',
    );
  });
});
