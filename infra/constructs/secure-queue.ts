import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ConfigError } from '#shared/errors.ts';

/** The longest SQS keeps a message, and the longest visibility timeout it accepts. */
const SQS_MAX_RETENTION = Duration.days(14);
const SQS_MAX_VISIBILITY = Duration.hours(12);

/**
 * SQS-managed SSE unless a customer-managed KMS key is given: with SQS-managed keys, upstream producers (in
 * other accounts too) and EventBridge send with nothing but sqs:SendMessage, and there is no KMS request cost or
 * throttling per message. A customer-managed key needs kms:GenerateDataKey and kms:Decrypt for every producer
 * and a key policy for events.amazonaws.com (docs/privacy.md, "Customer-managed key").
 */
function secureQueueSettings(key: kms.IKey | undefined) {
  return {
    ...(key === undefined
      ? { encryption: sqs.QueueEncryption.SQS_MANAGED }
      : { encryption: sqs.QueueEncryption.KMS, encryptionMasterKey: key }),
    enforceSSL: true,
  } as const satisfies sqs.QueueProps;
}

export interface SecureQueueProps {
  /**
   * How long SQS keeps a message.
   * @default 14 days (the SQS maximum: a queue that holds failures should give people time to look)
   */
  readonly retentionPeriod?: Duration;
  /**
   * What happens to the queue and its messages when the stack is deleted.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Customer-managed KMS key to encrypt messages with.
   * @default SQS-managed server-side encryption
   */
  readonly encryptionMasterKey?: kms.IKey;
}

/**
 * A standalone queue with the house security settings: server-side encryption (SQS-managed, or the given
 * customer-managed key) and a policy that denies any request not made over TLS. Used for dead-letter queues.
 */
export function secureQueue(scope: Construct, id: string, props: SecureQueueProps = {}): sqs.Queue {
  const retentionPeriod = props.retentionPeriod ?? SQS_MAX_RETENTION;
  within(`${id}.retentionPeriod`, retentionPeriod, Duration.minutes(1), SQS_MAX_RETENTION);
  return new sqs.Queue(scope, id, {
    ...secureQueueSettings(props.encryptionMasterKey),
    retentionPeriod,
    removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
  });
}

export interface QueueWithDeadLetterQueueProps {
  /**
   * How long a received message stays invisible before SQS offers it again. For a Lambda event source, at
   * least six times the function timeout (AWS guidance), so a throttled or retried batch is not redelivered
   * while still in flight.
   */
  readonly visibilityTimeout: Duration;
  /** Receives before SQS moves a message to the dead-letter queue (1-1000). */
  readonly maxReceiveCount: number;
  /**
   * How long the work queue keeps a message.
   * @default 4 days
   */
  readonly retentionPeriod?: Duration;
  /**
   * How long the dead-letter queue keeps a message. Must exceed `retentionPeriod`: a standard queue keeps a
   * redriven message's original enqueue time, so a shorter dead-letter retention would expire it early.
   * @default 14 days
   */
  readonly deadLetterRetentionPeriod?: Duration;
  /**
   * Removal policy of the work queue.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Removal policy of the dead-letter queue.
   * @default RemovalPolicy.DESTROY
   */
  readonly deadLetterRemovalPolicy?: RemovalPolicy;
  /**
   * Customer-managed KMS key of both queues.
   * @default SQS-managed server-side encryption
   */
  readonly encryptionMasterKey?: kms.IKey;
}

/**
 * A work queue and its dead-letter queue, both encrypted and TLS-only, with the redrive policy between them.
 * Props are validated at synth.
 */
export class QueueWithDeadLetterQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: QueueWithDeadLetterQueueProps) {
    super(scope, id);
    const retentionPeriod = props.retentionPeriod ?? Duration.days(4);
    const deadLetterRetentionPeriod = props.deadLetterRetentionPeriod ?? SQS_MAX_RETENTION;
    within(`${id}.visibilityTimeout`, props.visibilityTimeout, Duration.seconds(0), SQS_MAX_VISIBILITY);
    within(`${id}.retentionPeriod`, retentionPeriod, Duration.minutes(1), SQS_MAX_RETENTION);
    if (
      !Number.isInteger(props.maxReceiveCount) ||
      props.maxReceiveCount < 1 ||
      props.maxReceiveCount > 1000
    ) {
      throw new ConfigError(
        `${id}.maxReceiveCount`,
        `expected a whole number from 1 to 1000, got ${props.maxReceiveCount}`,
      );
    }
    if (deadLetterRetentionPeriod.toSeconds() <= retentionPeriod.toSeconds()) {
      throw new ConfigError(
        `${id}.deadLetterRetentionPeriod`,
        `must exceed the queue's retention (${retentionPeriod.toHumanString()}), got ${deadLetterRetentionPeriod.toHumanString()}`,
      );
    }

    this.deadLetterQueue = secureQueue(this, 'DeadLetterQueue', {
      retentionPeriod: deadLetterRetentionPeriod,
      removalPolicy: props.deadLetterRemovalPolicy ?? RemovalPolicy.DESTROY,
      encryptionMasterKey: props.encryptionMasterKey,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      ...secureQueueSettings(props.encryptionMasterKey),
      visibilityTimeout: props.visibilityTimeout,
      retentionPeriod,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
  }
}

function within(name: string, value: Duration, min: Duration, max: Duration): void {
  if (value.toSeconds() < min.toSeconds() || value.toSeconds() > max.toSeconds()) {
    throw new ConfigError(
      name,
      `expected ${min.toHumanString()} to ${max.toHumanString()}, got ${value.toHumanString()}`,
    );
  }
}
