import {
  Aws,
  CfnOutput,
  Duration,
  RemovalPolicy,
  Stack,
  type StackProps,
  Tags,
  Validations,
} from 'aws-cdk-lib';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { EVENT_DETAIL_TYPE, type StageConfig } from '#infra/config.ts';
import { EventSchemaRegistry } from '#infra/constructs/event-schema-registry.ts';
import { OnCallTopic } from '#infra/constructs/on-call-topic.ts';
import { RelayAlarms } from '#infra/constructs/relay-alarms.ts';
import { RelayDashboard } from '#infra/constructs/relay-dashboard.ts';
import { RelayFunction, secretIdOf } from '#infra/constructs/relay-function.ts';
import { existingSecret, secretKey } from '#infra/constructs/secret.ts';
import { QueueWithDeadLetterQueue, secureQueue } from '#infra/constructs/secure-queue.ts';
import { WebhookReceiver } from '#infra/constructs/webhook-receiver.ts';
import { OUTPUT, senderEnvironment, sendQueueVisibilityTimeoutSeconds } from '#infra/stack-contract.ts';
import { alarmDefinitions, SENDER_LEDGER_OPERATIONS } from '#shared/alarm-definitions.ts';
import { ENV } from '#shared/config.ts';
import { LEDGER_TABLE_KEY, LEDGER_TABLE_TTL_ATTRIBUTE } from '#shared/ledger/ledger.ts';
import { EVENTBRIDGE_MESSAGE_GROUP } from '#shared/sqs/message-group.ts';

export interface RelayStackProps extends StackProps {
  readonly config: StageConfig;
}

/**
 * One stage of the relay: the send queue and its dead-letter queue, the EventBridge rule that feeds it, the
 * sender Lambda, its job ledger table, the eCourtDate API client secret, and the alarms, topic and dashboard
 * that watch them.
 */
export class RelayStack extends Stack {
  readonly config: StageConfig;
  readonly secret: secretsmanager.ISecret;
  readonly sender: RelayFunction;
  readonly ledgerTable: dynamodb.Table;
  /** The customer-managed key of the queues and the ledger table (`dataKmsKey`); undefined without one. */
  readonly dataKey: kms.IKey | undefined;
  readonly sendQueues: QueueWithDeadLetterQueue;
  readonly eventsDeadLetterQueue: sqs.Queue;
  readonly sendJobRule: events.Rule;
  readonly onCall: OnCallTopic;
  readonly alarms: RelayAlarms;
  readonly dashboard: RelayDashboard;
  /** The event contract's schemas (`schemas/`) in the stage's own EventBridge schema registry. */
  readonly eventSchemas: EventSchemaRegistry;
  /** The webhook receiver (docs/webhooks.md), when the stage turns webhooks on (`webhooks: true`). */
  readonly webhooks: WebhookReceiver | undefined;

  constructor(scope: Construct, id: string, props: RelayStackProps) {
    const { config } = props;
    super(scope, id, {
      ...props,
      stackName: config.stackName,
      description: `eCourtDate relay (${config.stage}): send jobs from SQS and EventBridge to ${config.baseUrl}`,
      terminationProtection: config.terminationProtection,
    });
    this.config = config;
    Tags.of(this).add('application', 'ecourtdate-relay');
    Tags.of(this).add('stage', config.stage);
    // Production keeps what holds jobs, credentials or evidence when the stack is deleted.
    const dataRemoval = config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.secret = this.apiClientSecret(config, dataRemoval);
    this.dataKey = this.dataKmsKey(config, dataRemoval);
    this.ledgerTable = this.jobLedgerTable(config, dataRemoval);
    this.sendQueues = this.sendQueuesOf(config, dataRemoval);
    this.sender = this.senderFunction(config, dataRemoval);
    this.eventsDeadLetterQueue = this.eventsDeadLetterQueueOf(config, dataRemoval);
    this.sendJobRule = this.sendJobRuleOf(config);
    this.allowProducerAccounts(config, this.sendQueues.queue);
    this.onCall = new OnCallTopic(this, 'OnCall', {
      displayName: `eCourtDate relay ${config.stage}`,
      email: config.onCallEmail,
      httpsEndpoint: config.onCallHttpsEndpoint,
      keyRemovalPolicy: dataRemoval,
    });
    const definitions = alarmDefinitions(config.alarmThresholds);
    this.alarms = new RelayAlarms(this, 'Alarms', {
      definitions,
      resources: this.alarmResources(),
      topic: this.onCall.topic,
      alarmNamePrefix: config.stackName,
      runbookBaseUrl: config.runbookBaseUrl,
    });
    this.dashboard = new RelayDashboard(this, 'Dashboard', {
      dashboardName: config.stackName,
      resources: this.alarmResources(),
      alarms: [...this.alarms.alarms.values()],
      definitions,
      summary: `Stage **${config.stage}**, eCourtDate API ${config.baseUrl}`,
      maxConcurrency: config.maxConcurrency,
    });
    this.eventSchemas = new EventSchemaRegistry(this, 'EventSchemas', {
      registryName: config.stackName,
      stage: config.stage,
    });
    this.webhooks = config.webhook.enabled ? this.webhookReceiver(config, dataRemoval) : undefined;
    this.notifyExistingTopic(config);
    if (this.dataKey !== undefined) {
      const roles = [this.sender.role, ...(this.webhooks ? [this.webhooks.receiver.role] : [])];
      for (const role of roles) this.acknowledgeDataKeyGrants(role);
    }
    for (const [name, value, description] of this.outputs(config)) {
      new CfnOutput(this, name, { value, description });
    }
  }

  /** The send queue and its dead-letter queue. */
  private sendQueuesOf(config: StageConfig, removalPolicy: RemovalPolicy): QueueWithDeadLetterQueue {
    return new QueueWithDeadLetterQueue(this, 'SendQueue', {
      // Six times the function timeout (stack-contract.ts says why); the local pipeline uses the same factor.
      // config.ts checked that a crashed batch comes back inside eCourtDate's duplicate window.
      visibilityTimeout: Duration.seconds(sendQueueVisibilityTimeoutSeconds(config)),
      // A net for crash loops only (see maxReceiveCount in config.ts); the sender is told it as MAX_RECEIVE_COUNT.
      maxReceiveCount: config.maxReceiveCount,
      // Longer than the 24 h after which the sender stops retrying a job, with days to spare for an outage.
      retentionPeriod: Duration.days(config.sendQueueRetentionDays),
      deadLetterRetentionPeriod: Duration.days(config.deadLetterRetentionDays),
      removalPolicy,
      deadLetterRemovalPolicy: removalPolicy,
      encryptionMasterKey: this.dataKey,
    });
  }

  /** The sender Lambda, consuming the send queue, with a grant for each resource its environment names. */
  private senderFunction(config: StageConfig, removalPolicy: RemovalPolicy): RelayFunction {
    const { queue: sendQueue, deadLetterQueue } = this.sendQueues;
    const webhooksEnabled = config.webhook.enabled;
    const sender = new RelayFunction(this, 'Sender', {
      entry: 'functions/sender.ts',
      description: `eCourtDate relay sender (${config.stage})`,
      stage: config.stage,
      // Derived in config.ts: one job's worst case (the batch is sent concurrently), every request timing out.
      timeout: Duration.seconds(config.functionTimeoutSeconds),
      memorySize: config.memorySizeMb,
      logLevel: config.logLevel,
      logRetention: config.logRetentionDays as logs.RetentionDays,
      logRemovalPolicy: removalPolicy,
      traceSubsegments: config.traceSubsegments,
      // The local pipeline builds the sender's environment with the same function, from its own resources.
      environment: senderEnvironment(config, {
        secretId: secretIdOf(this.secret),
        sendQueueUrl: sendQueue.queueUrl,
        deadLetterQueueUrl: deadLetterQueue.queueUrl,
        ledgerTableName: this.ledgerTable.tableName,
        webhooksEnabled,
        jobSettledBusName: config.publishJobSettled ? (config.eventBusName ?? 'default') : undefined,
      }),
    });
    if (config.publishJobSettled) {
      // The relay's verdict on each job, on the bus upstream systems already use (docs/webhooks.md).
      const bus = events.EventBus.fromEventBusName(this, 'JobSettledBus', config.eventBusName ?? 'default');
      sender.putEventsOn(bus, ENV.eventBusName);
    }
    // Each grant names the variable that tells the sender of its resource (checked by RelayFunction).
    sender.consume(sendQueue, ENV.sendQueueUrl, {
      batchSize: config.batchSize,
      maxBatchingWindow:
        config.maxBatchingWindowSeconds > 0 ? Duration.seconds(config.maxBatchingWindowSeconds) : undefined,
      // The sender reports only the records to retry; the rest of the batch is deleted, never resent.
      reportBatchItemFailures: true,
      // Bounds the instances, so that their fallback shares of the reserve add up to it (docs/pacing.md).
      maxConcurrency: config.maxConcurrency,
    });
    sender.sendTo(deadLetterQueue, ENV.deadLetterQueueUrl);
    sender.readSecret(this.secret, ENV.secretId, config.secret.kmsKeyArn);
    // The job ledger claims and settles single items by key with conditional puts; the circuit breaker updates
    // the api-client item, and with webhooks on the uuid index write updates items too. Nothing else.
    sender.useTableItems(this.ledgerTable, ENV.ledgerTableName, SENDER_LEDGER_OPERATIONS);
    return sender;
  }

  /** The dead-letter queue of the EventBridge rule's target: send-job events it could not deliver. */
  private eventsDeadLetterQueueOf(config: StageConfig, removalPolicy: RemovalPolicy): sqs.Queue {
    const queue = secureQueue(this, 'EventsDeadLetterQueue', {
      retentionPeriod: Duration.days(config.deadLetterRetentionDays),
      removalPolicy,
      encryptionMasterKey: this.dataKey,
    });
    Validations.of(queue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself a dead-letter queue: the DeadLetterConfig of the EventBridge rule target, which ' +
        'cdk-nag does not recognise. A dead-letter queue of a dead-letter queue adds nothing; it is alarmed on.',
    });
    return queue;
  }

  /** The rule that puts the stage's send-job events on the send queue (their `detail`: the job). */
  private sendJobRuleOf(config: StageConfig): events.Rule {
    const rule = new events.Rule(this, 'SendJobRule', {
      eventBus:
        config.eventBusName === undefined
          ? undefined
          : events.EventBus.fromEventBusName(this, 'EventBus', config.eventBusName),
      description: `Send jobs ("${EVENT_DETAIL_TYPE}") to the eCourtDate relay send queue`,
      eventPattern: { source: [...config.eventSources], detailType: [EVENT_DETAIL_TYPE] },
    });
    rule.addTarget(
      new targets.SqsQueue(this.sendQueues.queue, {
        // The job is the event's detail: the same body an upstream system would send to the queue itself.
        message: events.RuleTargetInput.fromEventPath('$.detail'),
        // A rule target takes one fixed group, not one per event: bus jobs are one group of the fair queue, and
        // the sender's copies of them join their agency's (docs/contract.md, "Message group").
        messageGroupId: EVENTBRIDGE_MESSAGE_GROUP,
        deadLetterQueue: this.eventsDeadLetterQueue,
        // Keep retrying delivery for as long as a job is worth anything (the sender's 24 h limit).
        maxEventAge: Duration.hours(24),
        retryAttempts: 185,
      }),
    );
    // The target's grant lets EventBridge use a created key for the send queue, on behalf of this account's
    // rules; its dead-letter queue needs the same (docs/privacy.md, "Customer-managed key"). aws:SourceAccount,
    // as the target's own grant: the rule's ARN would make the key depend on the rule, which depends on the queue.
    this.dataKey?.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeDeadLettersOfThisAccountsRules',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
    return rule;
  }

  /** What the relay's alarms and dashboard watch. */
  private alarmResources() {
    return {
      sendQueue: this.sendQueues.queue,
      deadLetterQueue: this.sendQueues.deadLetterQueue,
      eventsDeadLetterQueue: this.eventsDeadLetterQueue,
      senderFunction: this.sender.function,
      ledgerTable: this.ledgerTable,
      stage: this.config.stage,
    };
  }

  /** The webhook receiver (docs/webhooks.md), on the stage's ledger, topic and dashboard. */
  private webhookReceiver(config: StageConfig, removalPolicy: RemovalPolicy): WebhookReceiver {
    return new WebhookReceiver(this, 'Webhooks', {
      stage: config.stage,
      webhook: config.webhook,
      ledgerTable: this.ledgerTable,
      eventBusName: config.eventBusName,
      topic: this.onCall.topic,
      alarmNamePrefix: config.stackName,
      runbookBaseUrl: config.runbookBaseUrl,
      dashboard: this.dashboard.dashboard,
      logLevel: config.logLevel,
      logRetention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy,
      traceSubsegments: config.traceSubsegments,
    });
  }

  /**
   * An existing topic (`onCallTopicArn`, e.g. AWS Chatbot's, to Microsoft Teams or Slack) hears every alarm too:
   * SNS cannot subscribe one topic to another, so each alarm notifies both (docs/deploy.md, "On-call").
   */
  private notifyExistingTopic(config: StageConfig): void {
    if (config.onCallTopicArn === undefined) return;
    const alsoNotify = new SnsAction(
      sns.Topic.fromTopicArn(this, 'OnCallExistingTopic', config.onCallTopicArn),
    );
    for (const alarm of [...this.alarms.alarms.values(), ...(this.webhooks?.alarms.values() ?? [])]) {
      alarm.addAlarmAction(alsoNotify);
      alarm.addOkAction(alsoNotify);
    }
  }

  /** The stack outputs, as [name, value, description]: docs/deploy.md ("Stack outputs") and the CLI read them. */
  private outputs(config: StageConfig): [name: string, value: string, description: string][] {
    const { queue: sendQueue, deadLetterQueue } = this.sendQueues;
    return [
      [OUTPUT.sendQueueUrl, sendQueue.queueUrl, 'Send jobs here (aws sqs send-message)'],
      [OUTPUT.sendQueueArn, sendQueue.queueArn, 'Send queue ARN (redrive destination)'],
      [
        OUTPUT.deadLetterQueueUrl,
        deadLetterQueue.queueUrl,
        'Jobs the relay gave up on, with a reason attribute',
      ],
      [OUTPUT.deadLetterQueueArn, deadLetterQueue.queueArn, 'Dead-letter queue ARN (redrive source)'],
      [
        OUTPUT.eventsDeadLetterQueueUrl,
        this.eventsDeadLetterQueue.queueUrl,
        'Events EventBridge could not deliver to the send queue',
      ],
      [OUTPUT.onCallTopicArn, this.onCall.topic.topicArn, 'Alarm notifications (aws sns subscribe)'],
      [OUTPUT.secretName, config.secret.name, 'eCourtDate API client credentials (put-secret-value)'],
      [
        OUTPUT.secretArn,
        this.secret.secretArn,
        'eCourtDate API client credentials ARN (without the random suffix when imported by name)',
      ],
      [OUTPUT.dashboardName, config.stackName, 'CloudWatch dashboard'],
      [OUTPUT.eventBusName, config.eventBusName ?? 'default', 'Event bus to publish send jobs to'],
      [OUTPUT.eventSource, config.eventSources.join(','), 'Accepted event source(s), comma-separated'],
      [OUTPUT.eventDetailType, EVENT_DETAIL_TYPE, 'detail-type of send-job events'],
      [OUTPUT.senderFunctionName, this.sender.function.functionName, 'Sender Lambda function'],
      [
        OUTPUT.ledgerTableName,
        this.ledgerTable.tableName,
        'Job ledger: per-job attempts, outcome and history (npm run relay -- job ID)',
      ],
      [
        OUTPUT.ecourtdateBaseUrl,
        config.baseUrl,
        'eCourtDate API the sender calls (npm run relay -- check-credentials)',
      ],
    ];
  }

  /**
   * The customer-managed key of `dataKmsKey`: created (rotating yearly, kept with production's data), or an
   * existing key by ARN, whose key policy the stack cannot change (docs/privacy.md, "Customer-managed key").
   */
  private dataKmsKey(config: StageConfig, removalPolicy: RemovalPolicy): kms.IKey | undefined {
    const setting = config.dataKmsKey;
    if (setting.kind === 'none') return undefined;
    if (setting.kind === 'existing') return kms.Key.fromKeyArn(this, 'DataKey', setting.arn);
    return new kms.Key(this, 'DataKey', {
      description: `eCourtDate relay (${config.stage}): the send queue, the dead-letter queues and the job ledger`,
      enableKeyRotation: true,
      removalPolicy,
    });
  }

  /** The two KMS action wildcards of CDK's SQS and DynamoDB grants on `dataKmsKey`, with their reason. */
  private acknowledgeDataKeyGrants(role: iam.IRole): void {
    for (const action of ['kms:GenerateDataKey*', 'kms:ReEncrypt*']) {
      Validations.of(role.node.findChild('DefaultPolicy')).acknowledge({
        id: `AwsSolutions-IAM5[Action::${action}]`,
        reason:
          "CDK's SQS and DynamoDB grants (grantSendMessages, the table key's grantEncryptDecrypt) add " +
          `${action} on the one dataKmsKey key, named by its ARN: the queues' and the ledger's key, no other.`,
      });
    }
  }

  /**
   * `producerAccounts`: lets those accounts' principals send jobs to the send queue, and put send-job events on
   * the rule's bus with the stage's sources and detail-type only (a bus both stages share, the default bus
   * included, must not take the other stage's jobs from them). With a created key, also its kms:GenerateDataKey
   * and kms:Decrypt through SQS. Each account must still grant its own principal the same (docs/deploy.md,
   * "Producers in other accounts").
   */
  private allowProducerAccounts(config: StageConfig, sendQueue: sqs.IQueue): void {
    const accounts = config.producerAccounts;
    if (accounts.length === 0) return;
    const principals = accounts.map((account) => new iam.AccountPrincipal(account));
    sendQueue.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'ProducerAccountsSendJobs',
        principals,
        actions: ['sqs:SendMessage'],
        resources: [sendQueue.queueArn],
      }),
    );
    if (this.dataKey instanceof kms.Key) {
      this.dataKey.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'ProducerAccountsEncryptSendJobs',
          principals,
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: ['*'],
          conditions: { StringEquals: { 'kms:ViaService': `sqs.${Aws.REGION}.amazonaws.com` } },
        }),
      );
    }
    const busName = config.eventBusName ?? 'default';
    new events.CfnEventBusPolicy(this, 'ProducerAccountsPutEvents', {
      eventBusName: busName,
      // One statement of the bus's policy, this stage's own: the other stage's, and anything else on the
      // account's default bus, stay as they are.
      statementId: `${config.stackName}-producer-accounts`,
      statement: {
        Effect: 'Allow',
        Principal: { AWS: principals.map((principal) => principal.arn) },
        Action: 'events:PutEvents',
        Resource: this.formatArn({ service: 'events', resource: 'event-bus', resourceName: busName }),
        Condition: {
          'ForAllValues:StringEquals': {
            'events:source': [...config.eventSources],
            'events:detail-type': [EVENT_DETAIL_TYPE],
          },
          Null: { 'events:source': 'false', 'events:detail-type': 'false' },
        },
      },
    });
  }

  /**
   * The sender's job ledger (one item per job) and the webhook receiver's records, in one table keyed by `id`; DynamoDB deletes
   * each item some time after its `expiration` (ledgerTtlDays after the job's last change).
   */
  private jobLedgerTable(config: StageConfig, removalPolicy: RemovalPolicy): dynamodb.Table {
    return new dynamodb.Table(this, 'LedgerTable', {
      partitionKey: { name: LEDGER_TABLE_KEY, type: dynamodb.AttributeType.STRING },
      // A few item operations per job, in bursts: on-demand costs nothing when idle and needs no capacity plan.
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: LEDGER_TABLE_TTL_ATTRIBUTE,
      // AWS-owned key by default, like the queues' SQS-managed keys: items hold job ids, statuses, counts and
      // body hashes, not the job body; no KMS request or key policy on the sender's hot path, and no key cost.
      // With `dataKmsKey`, the queues' key: useTableItems grants it to each function that uses the table.
      ...(this.dataKey === undefined
        ? { encryption: dynamodb.TableEncryption.DEFAULT }
        : { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: this.dataKey }),
      // Undo a bad deploy or a mistaken bulk change: the ledger is what stops a settled job being sent twice.
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: config.retainData,
      removalPolicy,
    });
  }

  private apiClientSecret(config: StageConfig, removalPolicy: RemovalPolicy): secretsmanager.ISecret {
    if (config.secret.kind === 'existing') {
      return existingSecret(this, 'ApiClientSecret', config.secret);
    }
    const secret = new secretsmanager.Secret(this, 'ApiClientSecret', {
      secretName: config.secret.name,
      encryptionKey: secretKey(this, 'ApiClientSecret', config.secret),
      description: `eCourtDate API client credentials for the relay (${config.stage}): {"client_id","client_secret"}`,
      // A placeholder that cannot authenticate: the real credentials are put in after deploy (docs/deploy.md, "Put the API client
      // credentials in the secret"),
      // so they never pass through CloudFormation. A generated client_secret keeps plaintext out of the template.
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ client_id: 'REPLACE_WITH_ECOURTDATE_CLIENT_ID' }),
        generateStringKey: 'client_secret',
        excludePunctuation: true,
      },
      removalPolicy,
    });
    Validations.of(secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'The secret holds an eCourtDate API client id and secret, issued in the eCourtDate Console (shown once) ' +
        'with no API to create or rotate them, so a rotation Lambda cannot exist. Rotation is a documented manual ' +
        'procedure (docs/deploy.md, "Put the API client credentials in the secret": create a new API client, put-secret-value, revoke the old one); the sender ' +
        're-reads the secret on a 401.',
    });
    return secret;
  }
}
