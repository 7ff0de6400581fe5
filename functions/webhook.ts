import { lambdaObservability } from '#shared/observability.ts';
import { createWebhookClients } from '#shared/webhook/clients.ts';
import { loadWebhookConfig } from '#shared/webhook/config.ts';
import { createWebhookHandler } from '#shared/webhook/handler.ts';

// Cold start: a bad setting fails here, with the variable's name, before any request is answered.
const config = loadWebhookConfig(process.env);

/** API Gateway HTTP API → signature check, dedupe, `PutEvents` onto the stack's bus (docs/webhooks.md). */
export const handler = createWebhookHandler({
  config,
  ...createWebhookClients(config),
  // The X-Ray SDK is imported only when the stage traces subsegments (docs/deploy.md, "X-Ray subsegments").
  observability: await lambdaObservability(process.env),
});
