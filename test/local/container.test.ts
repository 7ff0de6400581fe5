import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { FunctionInstance } from '#local/lambda/container.ts';
import { eventually } from '#test/local/wait.ts';

const closers: (() => unknown)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/**
 * An SQS-shaped endpoint that answers its first request with a retryable 500 after `firstAnswerMs`, and every
 * later one at once; it records when each request arrives (epoch ms).
 */
async function slowFailingEndpoint(firstAnswerMs: number) {
  const arrivals: number[] = [];
  const server = createServer((request, response) => {
    arrivals.push(Date.now());
    request.resume();
    request.on('end', () => {
      setTimeout(
        () => {
          response.writeHead(500, {
            'content-type': 'application/x-amz-json-1.0',
            'x-amzn-query-error': 'InternalError;Receiver',
          });
          response.end(
            JSON.stringify({ __type: 'com.amazonaws.sqs#InternalError', message: 'internal error' }),
          );
        },
        arrivals.length === 1 ? firstAnswerMs : 0,
      );
    });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', () => listening()));
  closers.push(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, arrivals };
}

describe('a function container ended as Lambda ends one at its timeout', () => {
  it('lets no SDK retry leave after the end: the retry of an attempt answered after the end never goes out', async () => {
    const endpoint = await slowFailingEndpoint(300);
    const instance = new FunctionInstance('sender-1', (io) => {
      const sqs = io.instrument(
        new SQSClient({
          endpoint: endpoint.url,
          region: 'us-east-1',
          useQueueUrlAsEndpoint: false,
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        }),
      );
      // As the pipeline does: the end destroys the client, whose broken socket the SDK would retry at once.
      io.onEnd(() => sqs.destroy());
      return async () => {
        await sqs.send(
          new SendMessageCommand({ QueueUrl: `${endpoint.url}/000000000000/q`, MessageBody: '{}' }),
        );
        return { batchItemFailures: [] };
      };
    });
    void instance.handler({ Records: [] }, {} as never);
    await eventually(() => expect(endpoint.arrivals).toHaveLength(1));

    const endedAt = Date.now();
    instance.end();
    // The first attempt's 500 arrives 300 ms in; the SDK's standard mode would retry within a second or two.
    await new Promise((wait) => setTimeout(wait, 2_500));

    expect(endpoint.arrivals.filter((at) => at >= endedAt)).toEqual([]);
  });
});
