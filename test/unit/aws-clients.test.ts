import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type AwsClients, createAwsClients } from '#shared/clients/aws.ts';
import { AWS_CALL_LIMITS, type AwsCallLimits, awsCallWorstCaseMs } from '#shared/clients/aws-call-limits.ts';

const LOCAL = { region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
/** Short limits, so that a hung endpoint fails the call in a fraction of a second. */
const SHORT: AwsCallLimits = {
  connectionTimeoutMs: 200,
  requestTimeoutMs: 200,
  socketTimeoutMs: 200,
  maxAttempts: 2,
};

let server: Server | undefined;

afterEach(async () => {
  vi.unstubAllEnvs();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

/** A loopback endpoint for all three services; counts the requests it gets. */
async function endpoint(
  answer: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; requests: () => number }> {
  let count = 0;
  server = createServer((req, res) => {
    count++;
    req.resume();
    answer(req, res);
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests: () => count };
}

function clients(url: string, limits?: AwsCallLimits): AwsClients {
  return createAwsClients({ endpoints: { sqs: url, secretsManager: url, dynamodb: url } }, LOCAL, limits);
}

/** One call of each client, as the sender makes them. */
const calls = {
  dynamodb: (c: AwsClients) =>
    c.dynamodb.send(new GetItemCommand({ TableName: 'ledger', Key: { id: { S: 'job#1' } } })),
  sqs: (c: AwsClients) =>
    c.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: 'http://127.0.0.1/000000000000/send',
        ReceiptHandle: 'r',
        VisibilityTimeout: 60,
      }),
    ),
  secretsManager: (c: AwsClients) => c.secrets.send(new GetSecretValueCommand({ SecretId: 'api-client' })),
};

describe('createAwsClients: no AWS call can hang past the function timeout', () => {
  it.each(Object.entries(calls))(
    'a %s call to an endpoint that never answers fails with a TimeoutError after maxAttempts tries',
    async (_service, call) => {
      const hung = await endpoint(() => undefined);

      await expect(call(clients(hung.url, SHORT))).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(hung.requests()).toBe(SHORT.maxAttempts);
    },
  );

  it('a response whose body stalls fails once the socket has been idle for socketTimeoutMs', async () => {
    const stalled = await endpoint((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      res.write('{"Item":');
    });

    await expect(calls.dynamodb(clients(stalled.url, SHORT))).rejects.toThrow();
  });

  it('AWS_MAX_ATTEMPTS and AWS_RETRY_MODE in the environment do not change the attempts', async () => {
    vi.stubEnv('AWS_MAX_ATTEMPTS', '10');
    vi.stubEnv('AWS_RETRY_MODE', 'adaptive');
    const hung = await endpoint(() => undefined);

    await expect(calls.dynamodb(clients(hung.url, SHORT))).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(hung.requests()).toBe(SHORT.maxAttempts);
  });

  it('builds every client with the deployed limits by default', async () => {
    const fast = await endpoint((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
      res.end('{"__type":"ValidationException","message":"no"}');
    });
    const built = clients(fast.url);

    for (const [service, call] of Object.entries(calls)) {
      await call(built).catch(() => undefined);
      const client = built[service === 'secretsManager' ? 'secrets' : (service as 'sqs' | 'dynamodb')];
      expect(await client.config.maxAttempts()).toBe(AWS_CALL_LIMITS.maxAttempts);
      const handler = client.config.requestHandler as unknown as { httpHandlerConfigs(): object };
      expect(handler.httpHandlerConfigs()).toMatchObject({
        connectionTimeout: AWS_CALL_LIMITS.connectionTimeoutMs,
        requestTimeout: AWS_CALL_LIMITS.requestTimeoutMs,
        throwOnRequestTimeout: true,
        socketTimeout: AWS_CALL_LIMITS.socketTimeoutMs,
      });
    }
  });
});

describe('awsCallWorstCaseMs', () => {
  it('adds every attempt at its request and socket timeouts and the longest retry delays', () => {
    // 3 x (2 s + 2 s), then retries after at most 1 s and 2 s, each with up to 5 s of Retry-After.
    expect(awsCallWorstCaseMs(AWS_CALL_LIMITS)).toBe(3 * 4_000 + (1_000 + 5_000) + (2_000 + 5_000));
  });

  it('caps each retry delay at the SDK maximum of 20 s', () => {
    const many = { ...AWS_CALL_LIMITS, requestTimeoutMs: 0, socketTimeoutMs: 0, maxAttempts: 7 };
    // Retries 0-5: 1, 2, 4, 8, 16, then 20 (capped) seconds, each + 5 s.
    expect(awsCallWorstCaseMs(many)).toBe((1 + 2 + 4 + 8 + 16 + 20) * 1000 + 6 * 5_000);
  });
});
