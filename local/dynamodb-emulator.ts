import { CreateTableCommand, DynamoDBClient, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { LEDGER_TABLE_KEY, LEDGER_TABLE_TTL_ATTRIBUTE } from '#shared/ledger/ledger.ts';

export interface DynamoDbEmulator {
  /** The endpoint to give DynamoDB clients (`AWS_ENDPOINT_URL_DYNAMODB`). */
  readonly endpoint: string;
  readonly client: DynamoDBClient;
  /** Creates the ledger table as the stack does: string partition key `id`, TTL on `expiration`. */
  createLedgerTable(name: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts dynalite in-process, in memory, on 127.0.0.1. */
export async function startDynamoDbEmulator(options: { port?: number } = {}): Promise<DynamoDbEmulator> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('dynalite did not report a port');
  const endpoint = `http://127.0.0.1:${address.port}`;
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
    async stop() {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
