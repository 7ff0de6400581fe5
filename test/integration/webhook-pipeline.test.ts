import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WEBHOOK_FAILED_RECIPIENT, WEBHOOK_REPLY_RECIPIENT } from '#local/ecourtdate-simulator/webhooks.ts';
import { parseStartOptions } from '#local/pipeline/options.ts';
import { type PipelineHooks, type PipelineRun, runPipeline } from '#local/pipeline/run.ts';
import { UUID_KEY_PREFIX } from '#shared/ledger/delivery.ts';
import { jobLine, tempDir, testIO } from '#test/local/io.ts';

/**
 * Until the sender writes the uuid index itself when webhooks are on (docs/webhooks.md, "Delivery status per job"),
 * this hook does it for the test, as the sender will: after the ledger entry of a delivered job is written, one
 * PutItem `uuid#<uuid>` -> job id. Idempotent, so it stays harmless once the sender does it too.
 */
const writeUuidIndex: PipelineHooks['onInstance'] = (_instance, clients) => {
  // The ledger writes through the document client, whose items may reach this stack marshalled or not yet.
  const text = (value: unknown): string | undefined =>
    typeof value === 'string' ? value : (value as { S?: string } | undefined)?.S;
  clients.dynamodb.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const input = args.input as { TableName?: string; Item?: Record<string, unknown> };
      const item = input.Item ?? {};
      const [id, status, uuid, jobId] = [item.id, item.status, item.uuid, item.job_id].map(text);
      if (id?.startsWith('job#') && status === 'delivered' && uuid !== undefined && jobId !== undefined) {
        await clients.dynamodb.send(
          new PutItemCommand({
            TableName: input.TableName,
            Item: { id: { S: UUID_KEY_PREFIX + uuid }, job_id: { S: jobId } },
          }),
        );
      }
      return result;
    },
    { step: 'initialize', name: 'testUuidIndex' },
  );
};

let dir: Awaited<ReturnType<typeof tempDir>>;
let run: PipelineRun;
let stdout: { readonly text: string };

beforeAll(async () => {
  dir = await tempDir();
  const jobs = await dir.file(
    'jobs.jsonl',
    [
      jobLine('reached', '+15551230101'),
      jobLine('carrier-failed', WEBHOOK_FAILED_RECIPIENT),
      jobLine('answered', WEBHOOK_REPLY_RECIPIENT),
      jobLine('refused', '+15550100403'),
    ].join('\n'),
  );
  const io = testIO();
  stdout = io.stdout;
  run = await runPipeline(
    parseStartOptions(['--jobs', jobs, '--state-dir', dir.path, '--keep-running']),
    io.io,
    { onInstance: writeUuidIndex },
  );
}, 60_000);

afterAll(async () => {
  await run?.stop();
  await dir?.remove();
});

it('reports each delivered job’s delivery status from the simulator’s webhooks', () => {
  const byId = Object.fromEntries(run.report.jobs.map((job) => [job.id, job]));

  expect(byId.reached).toMatchObject({
    delivery_status: 'delivered',
    delivery_history: ['sent', 'delivered'],
  });
  expect(byId['carrier-failed']).toMatchObject({
    delivery_status: 'failed',
    delivery_history: ['sent', 'failed'],
  });
  expect(byId.answered).toMatchObject({
    delivery_status: 'replied',
    delivery_history: ['sent', 'delivered', 'replied'],
  });
  expect(byId.refused).toMatchObject({ delivery_status: null, delivery_history: [] });
});

it('shows the delivery statuses in the summary', () => {
  expect(run.summary).toContain("Delivery status from eCourtDate's webhooks");
  expect(run.summary).toMatch(/^carrier-failed\s+failed \(sent → failed\)$/m);
  expect(run.summary).toMatch(/^answered\s+replied \(sent → delivered → replied\)$/m);
  expect(stdout.text).not.toContain('relay-local-webhook-0001');
});

it('--keep-running writes the webhook URL to the endpoints file, where a signed POST is accepted', async () => {
  const { createHmac, randomUUID } = await import('node:crypto');
  const body = JSON.stringify({
    uuid: randomUUID(),
    direction: 'inbound',
    channel: 'text',
    content: 'hello',
  });
  const signature = createHmac('sha256', 'relay-local-webhook-0001').update(body).digest('hex');

  const res = await fetch(run.endpoints.webhookUrl ?? '', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-ecd-signature': signature },
    body,
  });

  expect(run.endpoints.webhookUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ecourtdate\/webhook$/);
  expect(res.status).toBe(200);
});
