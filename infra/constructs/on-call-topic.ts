import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { EmailSubscription, UrlSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface OnCallTopicProps {
  /** Shown as the sender of e-mail notifications. */
  readonly displayName: string;
  /**
   * Subscribed to the topic (the recipient confirms by e-mail).
   * @default no subscription; subscribe with `aws sns subscribe`
   */
  readonly email?: string | undefined;
  /**
   * An HTTPS endpoint subscribed to the topic, e.g. a PagerDuty or Opsgenie SNS integration URL (which confirm
   * the subscription themselves; docs/deploy.md, "On-call").
   * @default no HTTPS subscription
   */
  readonly httpsEndpoint?: string | undefined;
  /**
   * What happens to the encryption key when the stack is deleted (a deleted key cannot decrypt anything).
   * @default RemovalPolicy.RETAIN
   */
  readonly keyRemovalPolicy?: RemovalPolicy;
}

/**
 * The SNS topic every alarm notifies, encrypted with its own customer-managed KMS key and TLS-only.
 *
 * CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed `alias/aws/sns` key, because its
 * key policy cannot be extended to the CloudWatch service; a customer-managed key can.
 */
export class OnCallTopic extends Construct {
  readonly topic: sns.Topic;
  readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: OnCallTopicProps) {
    super(scope, id);
    const { account, region, partition } = Stack.of(this);
    const alarmsOfThisAccount = {
      ArnLike: { 'aws:SourceArn': `arn:${partition}:cloudwatch:${region}:${account}:alarm:*` },
      StringEquals: { 'aws:SourceAccount': account },
    };

    this.key = new kms.Key(this, 'Key', {
      description: `Encrypts the ${props.displayName} on-call topic`,
      enableKeyRotation: true,
      removalPolicy: props.keyRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    // CloudWatch encrypts the alarm notification with this key when it publishes (AWS CloudWatch user guide,
    // "Amazon SNS topics with SSE"). In a key policy, "*" is this key.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToUseTheKey',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );

    this.topic = new sns.Topic(this, 'Topic', {
      displayName: props.displayName,
      masterKey: this.key,
      enforceSSL: true,
    });
    // A topic policy replaces SNS's default one, so the CloudWatch service must be allowed explicitly, and only
    // for alarms of this account.
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: alarmsOfThisAccount,
      }),
    );
    if (props.email !== undefined) this.topic.addSubscription(new EmailSubscription(props.email));
    if (props.httpsEndpoint !== undefined) {
      this.topic.addSubscription(
        new UrlSubscription(props.httpsEndpoint, { protocol: sns.SubscriptionProtocol.HTTPS }),
      );
    }
  }
}
