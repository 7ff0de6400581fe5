import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ConfigError } from '#shared/errors.ts';

/** The longest SQS keeps a message, and the longest visibility timeout it accepts. */
const SQS_MAX_RETENTION = Duration.days(14);
const SQS_MAX_VISIBILITY = Duration.hours(12);

/**
 * SQS-managed SSE rather than a customer-managed KMS key: upstream producers and EventBridge can send with
 * nothing but sqs:SendMessage (a KMS key would need kms:GenerateDataKey grants for every producer and a key
 * policy for events.amazonaws.com), and there is no KMS request cost or throttling per message.
 */
const SECURE_QUEUE_SETTINGS = {
  encryption: sqs.QueueEncryption.SQS_MANAGED,
  enforceSSL: true,
} as const satisfies sqs.QueueProps;

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
}

/**
 * A standalone queue with the house security settings: SQS-managed server-side encryption and a policy that
 * denies any request not made over TLS. Used for dead-letter queues.
 */
export function secureQueue(scope: Construct, id: string, props: SecureQueueProps = {}): sqs.Queue {
  const retentionPeriod = props.retentionPeriod ?? SQS_MAX_RETENTION;
  within(`${id}.retentionPeriod`, retentionPeriod, Duration.minutes(1), SQS_MAX_RETENTION);
  return new sqs.Queue(scope, id, {
    ...SECURE_QUEUE_SETTINGS,
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
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      ...SECURE_QUEUE_SETTINGS,
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
