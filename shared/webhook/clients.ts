import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { ClientOverrides } from '#shared/clients/aws.ts';
import type { WebhookConfig } from '#shared/webhook/config.ts';

export interface WebhookClients {
  readonly secrets: SecretsManagerClient;
  readonly dynamodb: DynamoDBClient;
  readonly eventBridge: EventBridgeClient;
}

/**
 * The AWS SDK clients of one receiver container: default endpoints and credentials in Lambda, the configured
 * emulator endpoints locally and in tests (`overrides` fixes region and credentials for those).
 */
export function createWebhookClients(
  config: Pick<WebhookConfig, 'endpoints'>,
  overrides: ClientOverrides = {},
): WebhookClients {
  const { eventBridge, secretsManager, dynamodb } = config.endpoints;
  return {
    secrets: new SecretsManagerClient({
      ...overrides,
      ...(secretsManager ? { endpoint: secretsManager } : {}),
    }),
    dynamodb: new DynamoDBClient({ ...overrides, ...(dynamodb ? { endpoint: dynamodb } : {}) }),
    eventBridge: new EventBridgeClient({ ...overrides, ...(eventBridge ? { endpoint: eventBridge } : {}) }),
  };
}
