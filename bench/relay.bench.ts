/**
 * `npm run bench`: what one job costs and how fast the relay goes, measured on the real sender handler with
 * the local emulators (fauxqs, dynalite, the eCourtDate simulator, the Secrets Manager stand-in). Every AWS
 * request is counted by a middleware on the very SDK clients the handler uses; eCourtDate requests at the
 * simulator. Prints a Markdown report and writes it to reports/bench.md.
 *
 * Figures are for this machine and loopback emulators: throughput says how much work the relay does per job,
 * not how fast AWS is. Request counts per job do not depend on the machine.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { startDynamoDbEmulator } from '#local/dynamodb-emulator.ts';
import { startSimulator } from '#local/ecourtdate-simulator.ts';
import { startEventSourceMapping } from '#local/pipeline/event-source-mapping.ts';
import { startSecretsManagerStub } from '#local/secrets-manager-stub.ts';
import { startSqsEmulator } from '#local/sqs-emulator.ts';
import { createAwsClients } from '#shared/clients/aws.ts';
import { loadSenderConfig } from '#shared/config.ts';
import { createSenderHandler } from '#shared/sender/handler.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 1000);
const RUNS = [1, 4];
const MEMORY_MB = 512;
const LOCAL = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
// us-east-1 list prices (arm64 Lambda, SQS standard, DynamoDB on-demand); check the AWS pricing pages.
const PRICE = {
  lambdaGbSecond: 0.0000133334,
  lambdaRequest: 0.2 / 1e6,
  sqsRequest: 0.4 / 1e6,
  dynamoWrite: 0.625 / 1e6,
  dynamoRead: 0.125 / 1e6,
};
const DYNAMO_WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand']);

type Counts = Map<string, number>;

type Next = (args: unknown) => Promise<unknown>;
interface Stack {
  add(middleware: (next: Next, context: { commandName?: string }) => Next, options: object): void;
}

/** Counts every request a client sends, by command name. */
function counting<T extends { middlewareStack: unknown }>(client: T, counts: Counts): T {
  (client.middlewareStack as Stack).add(
    (next, context) => async (args) => {
      const name = String(context.commandName);
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'benchCounter' },
  );
  return client;
}

interface RunFigures {
  readonly instances: number;
  readonly seconds: number;
  readonly jobsPerSecond: number;
  readonly ecourtdate: { readonly token: number; readonly send: number };
  readonly sqs: Counts;
  readonly dynamodb: Counts;
  readonly secrets: Counts;
  readonly invocations: number;
  readonly handlerSeconds: number;
}

async function run(instances: number): Promise<RunFigures> {
  const sqsEmulator = await startSqsEmulator();
  const dynamo = await startDynamoDbEmulator();
  const sim = await startSimulator({
    clients: { bench: 'bench-secret-0123456789abcdef' },
    rateLimitPerMinute: 1_000_000,
  });
  const secrets = await startSecretsManagerStub({
    secrets: {
      bench: JSON.stringify({ client_id: 'bench', client_secret: 'bench-secret-0123456789abcdef' }),
    },
  });
  try {
    await dynamo.createLedgerTable('bench-ledger');
    const dlq = await sqsEmulator.createQueue('bench-dlq');
    const queue = await sqsEmulator.createQueue('bench-send', { VisibilityTimeout: '360' });
    const config = loadSenderConfig({
      ECOURTDATE_BASE_URL: sim.url,
      ECOURTDATE_SECRET_ID: 'bench',
      SEND_QUEUE_URL: queue.url,
      DEAD_LETTER_QUEUE_URL: dlq.url,
      LEDGER_TABLE_NAME: 'bench-ledger',
      // The whole budget, as if eCourtDate's limit were raised: this measures the relay, not the pacing.
      REQUESTS_PER_MINUTE: String(Math.floor(100_000 / instances)),
      AWS_ENDPOINT_URL_SQS: sqsEmulator.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    });
    const counts = { sqs: new Map(), dynamodb: new Map(), secrets: new Map() } satisfies Record<
      string,
      Counts
    >;
    let handlerMs = 0;
    const senders = Array.from({ length: instances }, (_, i) => {
      // The clients the sender gets in a local run, each with a request counter.
      const clients = createAwsClients(config, LOCAL);
      const sqs = counting(clients.sqs, counts.sqs);
      const handler = createSenderHandler({
        config,
        sqs,
        secrets: counting(clients.secrets, counts.secrets),
        dynamodb: counting(clients.dynamodb, counts.dynamodb),
      });
      const timed: typeof handler = Object.assign(async (...args: Parameters<typeof handler>) => {
        const started = performance.now();
        try {
          return await handler(...args);
        } finally {
          handlerMs += performance.now() - started;
        }
      }, handler);
      return { name: `sender-${i + 1}`, handler: timed, sqs };
    });

    for (let i = 0; i < JOBS; i += 10) {
      await sqsEmulator.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: Array.from({ length: Math.min(10, JOBS - i) }, (_, k) => ({
            Id: String(k),
            MessageBody: JSON.stringify({
              id: `bench-${i + k}`,
              message: { to: '+15551234567', content: `Benchmark reminder ${i + k}`, channel: 'text' },
            }),
          })),
        }),
      );
    }

    const started = performance.now();
    const mapping = startEventSourceMapping({
      queue,
      instances: senders,
      functionTimeoutMs: 360_000,
      waitTimeSeconds: 0,
    });
    while (sim.messages.length < JOBS) await new Promise((r) => setTimeout(r, 20));
    const seconds = (performance.now() - started) / 1000;
    await mapping.stop();
    return {
      instances,
      seconds,
      jobsPerSecond: JOBS / seconds,
      ecourtdate: {
        token: sim.requests.filter((r) => r.path === '/oauth/token').length,
        send: sim.requests.filter((r) => r.path === '/v1/messages/oneoffs').length,
      },
      ...counts,
      invocations: mapping.invocations,
      handlerSeconds: handlerMs / 1000,
    };
  } finally {
    await Promise.allSettled([sim.close(), secrets.close(), sqsEmulator.stop(), dynamo.stop()]);
  }
}

function sum(counts: Counts, filter: (name: string) => boolean = () => true): number {
  let total = 0;
  for (const [name, n] of counts) if (filter(name)) total += n;
  return total;
}

function perThousand(n: number): string {
  return ((n / JOBS) * 1000).toFixed(0);
}

function render(results: readonly RunFigures[]): string {
  const lines = [
    '# Benchmark: the sender on loopback emulators',
    '',
    `${JOBS} clean jobs (all answered 201) through the real sender handler, polled like Lambda's SQS event source`,
    `mapping (batches of 10), against fauxqs, dynalite, the eCourtDate simulator and the Secrets Manager stand-in, on`,
    `this machine (Node ${process.version}). Reproduce with \`npm run bench\` (\`BENCH_JOBS\` sets the count).`,
    '',
    '| instances | seconds | jobs/s | eCourtDate requests per 1,000 jobs (token + send) | SQS requests per 1,000 jobs | DynamoDB requests per 1,000 jobs (writes / reads) | invocations | handler time per job (ms) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const writes = sum(r.dynamodb, (n) => DYNAMO_WRITES.has(n));
    const reads = sum(r.dynamodb) - writes;
    lines.push(
      `| ${r.instances} | ${r.seconds.toFixed(1)} | ${r.jobsPerSecond.toFixed(0)} | ${perThousand(r.ecourtdate.token + r.ecourtdate.send)} (${r.ecourtdate.token} + ${perThousand(r.ecourtdate.send)}) | ${perThousand(sum(r.sqs))} | ${perThousand(sum(r.dynamodb))} (${perThousand(writes)} / ${perThousand(reads)}) | ${r.invocations} | ${((r.handlerSeconds / JOBS) * 1000).toFixed(1)} |`,
    );
  }
  const last = results[results.length - 1];
  if (last) {
    const writes = sum(last.dynamodb, (n) => DYNAMO_WRITES.has(n));
    const reads = sum(last.dynamodb) - writes;
    // SQS requests the event source mapping makes itself (receive, delete) are billed too; they are counted here.
    const sqsRequests = sum(last.sqs) + Math.ceil(JOBS / 10);
    const gbSeconds = last.handlerSeconds * (MEMORY_MB / 1024);
    const cost =
      gbSeconds * PRICE.lambdaGbSecond +
      last.invocations * PRICE.lambdaRequest +
      sqsRequests * PRICE.sqsRequest +
      writes * PRICE.dynamoWrite +
      reads * PRICE.dynamoRead;
    lines.push(
      '',
      `Requests by kind in the ${last.instances}-instance run: SQS ${fmt(last.sqs)}; DynamoDB ${fmt(last.dynamodb)}; Secrets Manager ${fmt(last.secrets)}.`,
      '',
      `AWS cost per 1,000 delivered jobs at us-east-1 list prices (arm64 Lambda at ${MEMORY_MB} MB billed for the`,
      `measured handler time, SQS standard requests including the upstream send, DynamoDB on-demand items under 1 KB):`,
      `about $${((cost / JOBS) * 1000).toFixed(4)}, before free tiers. Lambda time on AWS includes real network latency to eCourtDate`,
      `(100 ms to 1 s a call), which dominates: at 1 s a call and 10 records in parallel, add about $${((JOBS / 10) * 1 * (MEMORY_MB / 1024) * PRICE.lambdaGbSecond * (1000 / JOBS)).toFixed(4)} per 1,000 jobs.`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function fmt(counts: Counts): string {
  return [...counts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, n]) => `${name.replace(/Command$/, '')} ${n}`)
    .join(', ');
}

const results: RunFigures[] = [];
for (const instances of RUNS) results.push(await run(instances));
const report = render(results);
process.stdout.write(report);
const root = resolve(import.meta.dirname, '..');
await mkdir(join(root, 'reports'), { recursive: true });
await writeFile(join(root, 'reports', 'bench.md'), report);
