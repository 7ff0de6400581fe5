import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { AWS_CALL_LIMITS, type AwsCallLimits } from '#shared/clients/aws-call-limits.ts';
import type { SenderConfig } from '#shared/config.ts';

export interface AwsClients {
  readonly sqs: SQSClient;
  readonly secrets: SecretsManagerClient;
  readonly dynamodb: DynamoDBClient;
}

/** Fixed region and credentials, for the local emulators: no AWS profile or environment is ever consulted. */
export interface ClientOverrides {
  readonly region?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

/**
 * The AWS SDK clients of one container, each bounded by `limits` (default `AWS_CALL_LIMITS`). In Lambda they use
 * the default endpoint and credentials; locally and in tests the configured emulator endpoints. fauxqs hands
 * out queue URLs whose host does not resolve, so with an explicit SQS endpoint the queue URL must not be used as
 * the endpoint.
 */
export function createAwsClients(
  config: Pick<SenderConfig, 'endpoints'>,
  overrides: ClientOverrides = {},
  limits: AwsCallLimits = AWS_CALL_LIMITS,
): AwsClients {
  const { sqs, secretsManager, dynamodb } = config.endpoints;
  const bounded = boundedOptions(overrides, limits);
  return {
    sqs: new SQSClient({ ...bounded, ...(sqs ? { endpoint: sqs, useQueueUrlAsEndpoint: false } : {}) }),
    secrets: new SecretsManagerClient({
      ...bounded,
      ...(secretsManager ? { endpoint: secretsManager } : {}),
    }),
    dynamodb: new DynamoDBClient({ ...bounded, ...(dynamodb ? { endpoint: dynamodb } : {}) }),
  };
}

/**
 * An EventBridge client bounded like the others, for a sender that publishes `eCourtDate Job Settled` events.
 * The SDK module is loaded on first use only, so a sender that does not publish never pays for its import.
 */
export async function createEventBridgeClient(
  config: Pick<SenderConfig, 'endpoints'>,
  overrides: ClientOverrides = {},
  limits: AwsCallLimits = AWS_CALL_LIMITS,
): Promise<EventBridgeClient> {
  const { EventBridgeClient } = await import('@aws-sdk/client-eventbridge');
  return eventBridgeClientOf(EventBridgeClient, config, overrides, limits);
}

/**
 * {@link createEventBridgeClient} with the SDK's class already loaded (`import('@aws-sdk/client-eventbridge')`),
 * for a caller that builds clients synchronously (the local pipeline's containers).
 */
export function eventBridgeClientOf(
  Client: typeof EventBridgeClient,
  config: Pick<SenderConfig, 'endpoints'>,
  overrides: ClientOverrides = {},
  limits: AwsCallLimits = AWS_CALL_LIMITS,
): EventBridgeClient {
  const endpoint = config.endpoints.eventBridge;
  return new Client({ ...boundedOptions(overrides, limits), ...(endpoint ? { endpoint } : {}) });
}

function boundedOptions(overrides: ClientOverrides, limits: AwsCallLimits) {
  return {
    ...overrides,
    maxAttempts: limits.maxAttempts,
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: limits.connectionTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // Without it a request past requestTimeout is only logged as a warning, never ended.
      throwOnRequestTimeout: true,
      socketTimeout: limits.socketTimeoutMs,
    },
  };
}
