/**
 * The cold-start baseline of the benchmark: a handler that only imports and builds the SQS client, bundled like
 * the sender. The sender's import time is compared with this one's.
 */
import { SQSClient } from '@aws-sdk/client-sqs';

const sqs = new SQSClient({});

export const handler = async (): Promise<{ batchItemFailures: never[] }> => {
  void sqs;
  return { batchItemFailures: [] };
};
