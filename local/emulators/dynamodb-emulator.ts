import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { accessKeyIdOf, type CheckedCall, type IamGate } from '#local/iam/gate.ts';
import { localTableArn } from '#local/iam/template-policies.ts';
import { LEDGER_TABLE_KEY, LEDGER_TABLE_TTL_ATTRIBUTE } from '#shared/ledger/schema.ts';

export interface DynamoDbEmulator {
  /** The endpoint to give DynamoDB clients (`AWS_ENDPOINT_URL_DYNAMODB`). */
  readonly endpoint: string;
  readonly client: DynamoDBClient;
  /** Creates the ledger table as the stack does: string partition key `id`, TTL on `expiration`. */
  createLedgerTable(name: string): Promise<void>;
  /** Requests received so far, by DynamoDB operation (e.g. `{ PutItem: 2 }`): what a job costs. */
  requestCounts(): Readonly<Record<string, number>>;
  /** Requests of a function role that the stack's IAM denied (the `iam` option), oldest first. */
  denials(): readonly CheckedCall[];
  stop(): Promise<void>;
}

/** Options of `startDynamoDbEmulator`. */
export interface DynamoDbEmulatorOptions {
  /** The front's port; 0 picks a free one. @default 0 */
  readonly port?: number;
  /**
   * The stack's IAM (local/iam/): each request of a function role is authorized first (every table it names,
   * and the index when it names one) and a denied one answered as DynamoDB answers it
   * (`AccessDeniedException`, HTTP 400). @default every request is allowed
   */
  readonly iam?: IamGate | undefined;
}

/**
 * Starts dynalite in-process, in memory, on 127.0.0.1, behind a small loopback front that adds what dynalite
 * lacks and DynamoDB has: a conditional write with `ReturnValuesOnConditionCheckFailure: ALL_OLD` returns the
 * item that failed the condition in the error (DynamoDB API reference, PutItem). The front also counts requests
 * per operation, and with `iam` it enforces the stack's IAM.
 */
export async function startDynamoDbEmulator(
  options: DynamoDbEmulatorOptions = {},
): Promise<DynamoDbEmulator> {
  const backend = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await listen(backend, 0);
  const backendPort = (backend.address() as AddressInfo).port;
  const counts: Record<string, number> = {};
  const denied: CheckedCall[] = [];

  const front = createServer((req, res) => {
    void forward(req, res, backendPort, counts, options.iam, denied).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(
        JSON.stringify({
          __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
          message: String(error),
        }),
      );
    });
  });
  await listen(front, options.port ?? 0);
  const endpoint = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  return {
    endpoint,
    client,
    async createLedgerTable(name) {
      await client.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: LEDGER_TABLE_KEY, AttributeType: 'S' }],
          KeySchema: [{ AttributeName: LEDGER_TABLE_KEY, KeyType: 'HASH' }],
        }),
      );
      await client
        .send(
          new UpdateTimeToLiveCommand({
            TableName: name,
            TimeToLiveSpecification: { AttributeName: LEDGER_TABLE_TTL_ATTRIBUTE, Enabled: true },
          }),
        )
        // dynalite does not implement TTL; the setting only matters in AWS.
        .catch(() => undefined);
    },
    requestCounts: () => ({ ...counts }),
    denials: () => [...denied],
    async stop() {
      client.destroy();
      front.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
      await new Promise<void>((resolve) => backend.close(() => resolve()));
    },
  };
}

function listen(server: import('node:net').Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

async function forward(
  req: IncomingMessage,
  res: ServerResponse,
  backendPort: number,
  counts: Record<string, number>,
  iam: IamGate | undefined,
  denied: CheckedCall[],
): Promise<void> {
  const body = await readAll(req);
  const target = String(req.headers['x-amz-target'] ?? '');
  const operation = target.split('.').pop() ?? 'unknown';
  counts[operation] = (counts[operation] ?? 0) + 1;
  if (iam) {
    for (const resource of resourcesOf(body)) {
      const decision = await iam.authorize({
        accessKeyId: accessKeyIdOf(req.headers),
        action: `dynamodb:${operation}`,
        resource,
      });
      if (decision.allowed) continue;
      denied.push(decision.call);
      const out = JSON.stringify({
        __type: 'com.amazon.coral.service#AccessDeniedException',
        message: decision.message,
      });
      res.writeHead(400, {
        'content-type': 'application/x-amz-json-1.0',
        'content-length': String(Buffer.byteLength(out)),
      });
      res.end(out);
      return;
    }
  }
  const answer = await send(backendPort, req.method ?? 'POST', req.headers, body);
  let out = answer.body;
  if (answer.status === 400 && answer.body.includes('ConditionalCheckFailedException')) {
    out = await withOldItem(backendPort, req.headers, operation, body, answer.body);
  }
  // The body may have changed, so its checksum goes: the SDK verifies it only when present.
  const { 'x-amz-crc32': _checksum, ...headers } = answer.headers;
  headers['content-length'] = String(Buffer.byteLength(out));
  res.writeHead(answer.status, headers);
  res.end(out);
}

/** Adds `Item` (the item as it was) to a failed conditional write that asked for `ALL_OLD`, as DynamoDB does. */
async function withOldItem(
  backendPort: number,
  headers: IncomingMessage['headers'],
  operation: string,
  requestBody: string,
  errorBody: string,
): Promise<string> {
  if (!['PutItem', 'UpdateItem', 'DeleteItem'].includes(operation)) return errorBody;
  const input = JSON.parse(requestBody) as {
    TableName: string;
    Item?: Record<string, unknown>;
    Key?: Record<string, unknown>;
    ReturnValuesOnConditionCheckFailure?: string;
  };
  if (input.ReturnValuesOnConditionCheckFailure !== 'ALL_OLD') return errorBody;
  const key = input.Key ?? { [LEDGER_TABLE_KEY]: input.Item?.[LEDGER_TABLE_KEY] };
  const got = await send(
    backendPort,
    'POST',
    { ...headers, 'x-amz-target': 'DynamoDB_20120810.GetItem' },
    JSON.stringify({ TableName: input.TableName, Key: key, ConsistentRead: true }),
  );
  const item = (JSON.parse(got.body) as { Item?: unknown }).Item;
  if (item === undefined) return errorBody;
  return JSON.stringify({ ...(JSON.parse(errorBody) as object), Item: item });
}

/** The ARNs a request acts on: its `TableName` (with `IndexName`, the index), or every table of a batch. */
function resourcesOf(body: string): string[] {
  let input: { TableName?: unknown; IndexName?: unknown; RequestItems?: unknown; TransactItems?: unknown };
  try {
    input = JSON.parse(body || '{}') as typeof input;
  } catch {
    return [];
  }
  if (typeof input.TableName === 'string') {
    const table = localTableArn(input.TableName);
    return [typeof input.IndexName === 'string' ? `${table}/index/${input.IndexName}` : table];
  }
  if (typeof input.RequestItems === 'object' && input.RequestItems !== null) {
    return Object.keys(input.RequestItems).map(localTableArn);
  }
  if (Array.isArray(input.TransactItems)) {
    return input.TransactItems.flatMap((item: Record<string, { TableName?: unknown }>) =>
      Object.values(item).map((part) => localTableArn(String(part.TableName))),
    );
  }
  return [];
}

function send(
  port: number,
  method: string,
  headers: IncomingMessage['headers'],
  body: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const out = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path: '/',
        headers: { ...headers, host: `127.0.0.1:${port}`, 'content-length': String(Buffer.byteLength(body)) },
      },
      (answer) => {
        void readAll(answer).then(
          (text) => resolve({ status: answer.statusCode ?? 500, headers: { ...answer.headers }, body: text }),
          reject,
        );
      },
    );
    out.once('error', reject);
    out.end(body);
  });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
