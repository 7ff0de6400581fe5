/**
 * The benchmark's emulators in a process of their own (forked by bench/relay.bench.ts), so the CPU time a
 * workload process measures is its own: fauxqs behind the strict SQS layer, dynalite, the eCourtDate simulator
 * (rate limit out of the way: the relay's pacing is measured apart) and the Secrets Manager stand-in, all on
 * 127.0.0.1. Answers the commands of {@link HostCommand} over the IPC channel.
 */

import { startSimulator } from '#local/ecourtdate-simulator/index.ts';
import { startDynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import { startSecretsManagerStub } from '#local/emulators/secrets-manager-stub.ts';
import { startSqsEmulator } from '#local/emulators/sqs-emulator.ts';
import { BENCH_CLIENT, BENCH_SECRET_ID, type HostCommand, type HostEndpoints } from './protocol.ts';

const sqs = await startSqsEmulator();
const dynamodb = await startDynamoDbEmulator();
const sim = await startSimulator({
  clients: { [BENCH_CLIENT.id]: BENCH_CLIENT.secret },
  rateLimitPerMinute: 1_000_000_000,
});
const secrets = await startSecretsManagerStub({
  secrets: {
    [BENCH_SECRET_ID]: JSON.stringify({ client_id: BENCH_CLIENT.id, client_secret: BENCH_CLIENT.secret }),
  },
});

const endpoints: HostEndpoints = {
  sqs: sqs.endpoint,
  dynamodb: dynamodb.endpoint,
  secretsManager: secrets.url,
  ecourtdate: sim.url,
};

async function handle(command: HostCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'createQueue':
      return sqs.createQueue(command.name, command.attributes);
    case 'createTable':
      await dynamodb.createLedgerTable(command.name);
      return null;
    case 'latency':
      sim.clearScript();
      if (command.ms > 0) {
        sim.script({
          name: 'bench latency',
          match: { path: '/v1/messages/oneoffs' },
          delayMs: command.ms,
          action: { kind: 'pass' },
        });
      }
      return null;
    case 'counts': {
      const requests = sim.requests;
      return {
        ecourtdate: {
          token: requests.filter((r) => r.path === '/oauth/token').length,
          send: requests.filter((r) => r.path === '/v1/messages/oneoffs').length,
          rateLimited: requests.filter((r) => r.status === 429).length,
        },
        dynamodb: dynamodb.requestCounts(),
        sqsRefusals: sqs.refusals().length,
      };
    }
    case 'stop':
      await Promise.allSettled([sim.close(), secrets.close(), sqs.stop(), dynamodb.stop()]);
      process.disconnect();
      return null;
  }
}

process.on('message', (message: { id: number; command: HostCommand }) => {
  handle(message.command).then(
    // After `stop` the channel is closed: there is no one left to answer.
    (result) => process.connected && process.send?.({ id: message.id, result }),
    (error: unknown) =>
      process.connected &&
      process.send?.({ id: message.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
process.send?.({ ready: endpoints });
