import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { buildApp } from 'fauxqs';

export interface EmulatedQueue {
  readonly name: string;
  readonly url: string;
  readonly arn: string;
}

/** One message as fauxqs's inspection endpoint reports it. */
export interface InspectedMessage {
  readonly messageId: string;
  readonly body: string;
  readonly approximateReceiveCount?: number;
}

export interface QueueInspection {
  readonly ready: readonly InspectedMessage[];
  readonly delayed: readonly InspectedMessage[];
  /** Received but not deleted, with the epoch ms at which each becomes visible again. */
  readonly inflight: readonly {
    readonly message: InspectedMessage;
    readonly receiptHandle: string;
    readonly visibilityDeadline: number;
  }[];
}

export interface SqsEmulator {
  /** The endpoint to give SQS clients (`AWS_ENDPOINT_URL_SQS`), e.g. http://127.0.0.1:41234. */
  readonly endpoint: string;
  /** An SDK client pointed at the emulator. */
  readonly sqs: SQSClient;
  createQueue(name: string, attributes?: Record<string, string>): Promise<EmulatedQueue>;
  /** Non-destructive view of a queue: nothing is received, no visibility changes. */
  inspect(name: string): Promise<QueueInspection>;
  stop(): Promise<void>;
}

/**
 * Starts fauxqs in-process, listening on 127.0.0.1 only. Its queue URLs name a `localhost` subdomain that
 * does not resolve, so every client must use `endpoint` with `useQueueUrlAsEndpoint: false` (the relay's
 * `createAwsClients` does this whenever `AWS_ENDPOINT_URL_SQS` is set).
 */
export async function startSqsEmulator(
  options: { port?: number; region?: string } = {},
): Promise<SqsEmulator> {
  const app = buildApp({ logger: false, host: 'localhost' });
  const endpoint = await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const sqs = new SQSClient({
    endpoint,
    useQueueUrlAsEndpoint: false,
    region: options.region ?? 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  return {
    endpoint,
    sqs,
    async createQueue(name, attributes = {}) {
      const created = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
      const url = created.QueueUrl ?? '';
      const attrs = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
      );
      return { name, url, arn: attrs.Attributes?.QueueArn ?? '' };
    },
    async inspect(name) {
      const response = await fetch(`${endpoint}/_fauxqs/queues/${encodeURIComponent(name)}`);
      if (!response.ok) throw new Error(`fauxqs has no queue named ${name} (HTTP ${response.status})`);
      const state = (await response.json()) as { messages: QueueInspection };
      return state.messages;
    },
    async stop() {
      sqs.destroy();
      await app.close();
    },
  };
}
