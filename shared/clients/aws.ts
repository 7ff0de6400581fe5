import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
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
 * The AWS SDK clients of one container. In Lambda they use the default endpoint and credentials; locally
 * and in tests the configured emulator endpoints. fauxqs hands out queue URLs whose host does not resolve,
 * so with an explicit SQS endpoint the queue URL must not be used as the endpoint.
 */
export function createAwsClients(
  config: Pick<SenderConfig, 'endpoints'>,
  overrides: ClientOverrides = {},
): AwsClients {
  const { sqs, secretsManager, dynamodb } = config.endpoints;
  return {
    sqs: new SQSClient({ ...overrides, ...(sqs ? { endpoint: sqs, useQueueUrlAsEndpoint: false } : {}) }),
    secrets: new SecretsManagerClient({
      ...overrides,
      ...(secretsManager ? { endpoint: secretsManager } : {}),
    }),
    dynamodb: new DynamoDBClient({ ...overrides, ...(dynamodb ? { endpoint: dynamodb } : {}) }),
  };
}
