/**
 * The benchmark's emulators in a process of their own (forked by bench/relay.bench.ts), so the CPU time a
 * workload process measures is its own: the local world (local/world.ts: fauxqs behind the strict SQS layer,
 * dynalite, the Secrets Manager stand-in holding the bench client's credentials under the world's secret id, and
 * the eCourtDate simulator with its rate limit out of the way: the relay's pacing is measured apart), all on
 * 127.0.0.1. Each measurement creates its own queues and ledger table on it. Answers the commands of
 * {@link HostCommand} over the IPC channel.
 */

import { startWorld } from '#local/world.ts';
import { BENCH_CLIENT, type HostCommand, type HostEndpoints } from './protocol.ts';

const world = await startWorld({
  apiClient: BENCH_CLIENT,
  simulator: { rateLimitPerMinute: 1_000_000_000 },
  // The benchmark measures the relay, not the test world's IAM check (docs/test-world.md).
  iam: false,
});
const { sqs, dynamodb, secrets } = world;
const sim = world.simulator as NonNullable<typeof world.simulator>;

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
      await world.close();
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
