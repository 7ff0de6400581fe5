import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import {
  getAtt,
  logicalId,
  onlyResource,
  PRODUCTION,
  type StatementJson,
  senderStatements,
  synthRelay,
} from '#test/helpers/infra.ts';

const KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

function keyPolicy(template: ReturnType<typeof synthRelay>['template'], keyId: string): StatementJson[] {
  const resource = template.toJSON().Resources[keyId];
  return resource.Properties.KeyPolicy.Statement as StatementJson[];
}

/** The KMS statements of a role policy: actions and resource. */
const kmsStatements = (statements: StatementJson[]) =>
  statements.filter((s) => [s.Action].flat().some((action) => action.startsWith('kms:')));

describe('dataKmsKey encrypts the queues and the ledger table with a customer-managed key', () => {
  it('without the setting, the queues keep SQS-managed keys, the table its AWS-owned key, and the sender no KMS right', () => {
    const { template } = synthRelay({ stage: 'staging' });
    template.resourceCountIs('AWS::KMS::Key', 1); // the on-call topic's only
    for (const queue of Object.values(template.findResources('AWS::SQS::Queue'))) {
      expect(queue.Properties).toMatchObject({ SqsManagedSseEnabled: true });
      expect(queue.Properties.KmsMasterKeyId).toBeUndefined();
    }
    expect(onlyResource(template, 'AWS::DynamoDB::Table').properties.SSESpecification).toEqual({
      SSEEnabled: false,
    });
    expect(kmsStatements(senderStatements(template))).toEqual([]);
  });

  it('create: a rotating key of the stack encrypts the send queue, both dead-letter queues and the ledger table', () => {
    const { stack, template } = synthRelay({ stage: 'staging', dataKmsKey: 'create' });
    const key = logicalId(stack, stack.dataKey as never);
    expect(template.toJSON().Resources[key].Properties.EnableKeyRotation).toBe(true);
    for (const queue of [
      stack.sendQueues.queue,
      stack.sendQueues.deadLetterQueue,
      stack.eventsDeadLetterQueue,
    ]) {
      expect(template.toJSON().Resources[logicalId(stack, queue)].Properties.KmsMasterKeyId).toEqual(
        getAtt(key),
      );
    }
    expect(onlyResource(template, 'AWS::DynamoDB::Table').properties.SSESpecification).toEqual({
      SSEEnabled: true,
      SSEType: 'KMS',
      KMSMasterKeyId: getAtt(key),
    });
  });

  it("create: the key policy lets EventBridge encrypt for this account's rules (send queue and its dead-letter queue)", () => {
    const { stack, template } = synthRelay({ stage: 'staging', dataKmsKey: 'create' });
    const statements = keyPolicy(template, logicalId(stack, stack.dataKey as never));
    expect(statements).toContainEqual({
      Sid: 'EventBridgeDeadLettersOfThisAccountsRules',
      Effect: 'Allow',
      Principal: { Service: 'events.amazonaws.com' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Resource: '*',
      Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    });
  });

  it('create: producer accounts may generate data keys and decrypt through SQS only', () => {
    const { stack, template } = synthRelay({
      stage: 'staging',
      dataKmsKey: 'create',
      producerAccounts: '111122223333',
    });
    const statements = keyPolicy(template, logicalId(stack, stack.dataKey as never));
    expect(statements).toContainEqual({
      Sid: 'ProducerAccountsEncryptSendJobs',
      Effect: 'Allow',
      Principal: {
        AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::111122223333:root']] },
      },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Resource: '*',
      Condition: {
        StringEquals: {
          'kms:ViaService': { 'Fn::Join': ['', ['sqs.', { Ref: 'AWS::Region' }, '.amazonaws.com']] },
        },
      },
    });
  });

  it('create: the key is kept with production’s data when the stack is deleted', () => {
    const { stack, template } = synthRelay({ ...PRODUCTION, dataKmsKey: 'create' });
    const key = template.toJSON().Resources[logicalId(stack, stack.dataKey as never)];
    expect(key.DeletionPolicy).toBe('Retain');
  });

  it('an existing key by ARN: the stack creates no key, encrypts with that one and grants the sender on it alone', () => {
    const { template } = synthRelay({ stage: 'staging', dataKmsKey: KEY_ARN });
    template.resourceCountIs('AWS::KMS::Key', 1); // the on-call topic's only
    for (const queue of Object.values(template.findResources('AWS::SQS::Queue'))) {
      expect(queue.Properties.KmsMasterKeyId).toBe(KEY_ARN);
    }
    expect(onlyResource(template, 'AWS::DynamoDB::Table').properties.SSESpecification).toMatchObject({
      KMSMasterKeyId: KEY_ARN,
    });
    const kms = kmsStatements(senderStatements(template));
    expect(kms.length).toBeGreaterThan(0);
    for (const statement of kms) expect(statement.Resource).toBe(KEY_ARN);
  });

  it('grants the sender what SQS and DynamoDB need on the key: GenerateDataKey to send, Decrypt to receive and read', () => {
    const { template } = synthRelay({ stage: 'staging', dataKmsKey: KEY_ARN });
    const actions = kmsStatements(senderStatements(template)).flatMap((s) => [s.Action].flat());
    expect(actions).toEqual(expect.arrayContaining(['kms:Decrypt', 'kms:GenerateDataKey*']));
  });

  it('grants the webhook receiver the key for the ledger table when webhooks are on', () => {
    const { template } = synthRelay({ stage: 'staging', dataKmsKey: KEY_ARN, webhooks: 'true' });
    const { properties } = onlyResource(template, 'AWS::IAM::Policy', {
      PolicyName: Match.stringLikeRegexp('Webhooks'),
    });
    const statements = (properties.PolicyDocument as { Statement: StatementJson[] }).Statement;
    expect(kmsStatements(statements)).toContainEqual(
      expect.objectContaining({ Action: expect.arrayContaining(['kms:Decrypt']), Resource: KEY_ARN }),
    );
  });
});
