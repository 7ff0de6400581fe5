import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SenderConfig } from '#shared/config.ts';

/**
 * The AWS SDK clients of one container. In Lambda they use the default endpoint and credentials; locally
 * and in tests the configured emulator endpoints. fauxqs hands out queue URLs whose host does not resolve,
 * so with an explicit SQS endpoint the queue URL must not be used as the endpoint.
 */
export function createAwsClients(config: Pick<SenderConfig, 'endpoints'>): {
  sqs: SQSClient;
  secrets: SecretsManagerClient;
} {
  const sqsEndpoint = config.endpoints.sqs;
  return {
    sqs: new SQSClient(sqsEndpoint ? { endpoint: sqsEndpoint, useQueueUrlAsEndpoint: false } : {}),
    secrets: new SecretsManagerClient(
      config.endpoints.secretsManager ? { endpoint: config.endpoints.secretsManager } : {},
    ),
  };
}
