import { describe, expect, it } from 'vitest';
import { loadStageConfig } from '#infra/config.ts';
import { type SenderResources, senderEnvironment } from '#infra/stack-contract.ts';
import { loadSenderConfig } from '#shared/config.ts';

const resources: SenderResources = {
  secretId:
    'arn:aws:secretsmanager:us-east-1:123456789012:secret:ecourtdate-relay/staging/api-credentials-AbCdEf',
  sendQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/EcourtdateRelay-staging-SendQueue',
  deadLetterQueueUrl:
    'https://sqs.us-east-1.amazonaws.com/123456789012/EcourtdateRelay-staging-DeadLetterQueue',
  ledgerTableName: 'EcourtdateRelay-staging-LedgerTable',
};

describe('senderEnvironment: the one description of what the sender is told', () => {
  it("is an environment the sender's configuration accepts, with the stage's settings and the resources", () => {
    const stage = loadStageConfig({
      stage: 'production',
      ecourtdateRegion: 'us-east',
      maxConcurrency: '4',
      backoffSeconds: '30,90',
      maxAttempts: '4',
      duplicateWindowSeconds: '1600',
      httpTimeoutMs: '8000',
      ledgerTtlDays: '20',
      maxReceiveCount: '12',
      rateLimitHintMaxSeconds: '120',
    });

    expect(loadSenderConfig(senderEnvironment(stage, resources))).toMatchObject({
      baseUrl: new URL('https://us-east.api.ecourtdate.com'),
      secretId: resources.secretId,
      sendQueueUrl: resources.sendQueueUrl,
      deadLetterQueueUrl: resources.deadLetterQueueUrl,
      ledgerTableName: resources.ledgerTableName,
      // The stage's budget, shared through the api-client item; the reserve (1,000 - 945, the budget's most in a
      // window, less the CLI's own 4) split by 4 instances.
      requestsPerMinute: 900,
      fallbackRequestsPerMinute: 12,
      backoffSeconds: [30, 90],
      maxAttempts: 4,
      duplicateWindowSeconds: 1600,
      httpTimeoutMs: 8000,
      ledgerTtlSeconds: 20 * 86_400,
      maxReceiveCount: 12,
      rateLimitHintMaxSeconds: 120,
    });
  });

  it("tells the sender the send queue's maxReceiveCount, so that it re-queues a waiting job before SQS's redrive", () => {
    const stage = loadStageConfig({ stage: 'staging' });

    expect(senderEnvironment(stage, resources)).toMatchObject({
      MAX_RECEIVE_COUNT: String(stage.maxReceiveCount),
      RATE_LIMIT_HINT_MAX_SECONDS: String(stage.rateLimitHintMaxSeconds),
    });
  });

  it("tells every instance the stage's whole budget, whatever the number of instances", () => {
    const stage = loadStageConfig({ stage: 'staging', requestsPerMinute: '600' });

    expect(senderEnvironment({ ...stage, maxConcurrency: 50 }, resources).REQUESTS_PER_MINUTE).toBe('600');
  });

  it("gives each instance its share of the reserve (the limit less the budget's most in a 60 s window) as its fallback, rounding down", () => {
    const stage = loadStageConfig({ stage: 'staging', requestsPerMinute: '700' });

    // 700 a minute puts at most 735 in a window: (1,000 - 735 - 4) / 7 = 37.3.
    expect(senderEnvironment({ ...stage, maxConcurrency: 7 }, resources).FALLBACK_REQUESTS_PER_MINUTE).toBe(
      '37',
    );
  });

  it('gives no fallback when the reserve leaves less than one request a minute per instance', () => {
    const stage = loadStageConfig({ stage: 'staging', requestsPerMinute: '948' });

    expect(senderEnvironment(stage, resources).FALLBACK_REQUESTS_PER_MINUTE).toBe('0');
  });
});
