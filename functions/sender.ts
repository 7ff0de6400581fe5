import { createAwsClients } from '#shared/clients/aws.ts';
import { loadSenderConfig } from '#shared/config.ts';
import { lambdaObservability } from '#shared/observability.ts';
import { createSenderHandler } from '#shared/sender/handler.ts';

// Cold start: a bad setting fails here, with the variable's name, before any record is touched.
const config = loadSenderConfig(process.env);

/** SQS event source → eCourtDate `POST /v1/messages/oneoffs`, one partial batch response per invocation. */
export const handler = createSenderHandler({
  config,
  ...createAwsClients(config),
  // The X-Ray SDK is imported only when the stage traces subsegments (docs/deploy.md, "X-Ray subsegments").
  observability: await lambdaObservability(process.env),
});
