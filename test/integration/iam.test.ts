/**
 * The test world enforces the stack's IAM (docs/test-world.md): every AWS call the sender, its event source mapping
 * and the webhook receiver make is authorized against their roles' policies in the synthesised template, and a
 * denied call fails as AWS fails it.
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { startDynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import { startEventBridgeStub } from '#local/emulators/eventbridge-stub.ts';
import { startSecretsManagerStub } from '#local/emulators/secrets-manager-stub.ts';
import { startSqsEmulator } from '#local/emulators/sqs-emulator.ts';
import { assumedRoleArn, type CheckedCall, createIamGate, isAllowed } from '#local/iam/gate.ts';
import { type Grant, grantsOf, withoutGrant } from '#local/iam/grants.ts';
import { localQueueArn } from '#local/iam/template-policies.ts';
import { LOCAL_RESOURCE_NAMES } from '#local/resource-names.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { type Harness, type HarnessOptions, startHarness } from '#test/helpers/relay-harness.ts';
import { startWebhookHarness, type WebhookHarness } from '#test/helpers/webhook-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
const REGION = 'us-east-1';
/** A role with no grant at all, and its key: every call it signs is denied. */
const NOBODY = { accessKeyId: 'ASIALOCALNOBODYROLE0', secretAccessKey: 'local' };
const nobodyGate = () =>
  createIamGate([
    { roleName: 'NobodyRole', sessionName: 'nobody', accessKeyIds: [NOBODY.accessKeyId], statements: [] },
  ]);
const denialMessage = (action: string, resource: string) =>
  `User: ${assumedRoleArn('NobodyRole', 'nobody')} is not authorized to perform: ${action} on resource: ${resource} ` +
  `because no identity-based policy allows the ${action} action`;

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** The options of a client signing as the role with no grant, one try per call (a denial is not retried). */
const NOBODY_CLIENT = { region: REGION, credentials: NOBODY, maxAttempts: 1 } as const;

/** Sends `command` with `client` (destroyed after the test) and returns what it threw. */
function refusal(client: { send(command: never): Promise<unknown>; destroy(): void }, command: unknown) {
  closers.push(async () => client.destroy());
  return client.send(command as never).then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('a denied call fails as AWS fails it', () => {
  it('SQS: the SDK throws AccessDenied with the principal, action and queue ARN', async () => {
    const gate = nobodyGate();
    const emulator = await startSqsEmulator({ iam: gate });
    closers.push(() => emulator.stop());
    const queue = await emulator.createQueue('denied-send');
    const sqs = new SQSClient({
      ...NOBODY_CLIENT,
      endpoint: emulator.endpoint,
      useQueueUrlAsEndpoint: false,
    });

    const error = await refusal(sqs, new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{}' }));

    expect(error).toMatchObject({
      name: 'AccessDenied',
      message: denialMessage('sqs:SendMessage', localQueueArn('denied-send')),
      $metadata: { httpStatusCode: 403 },
    });
    expect(emulator.denials()).toMatchObject([{ action: 'sqs:SendMessage', allowed: false }]);
  });

  it('DynamoDB: the SDK throws AccessDeniedException with the table ARN', async () => {
    const dynamodb = await startDynamoDbEmulator({ iam: nobodyGate() });
    closers.push(() => dynamodb.stop());
    await dynamodb.createLedgerTable('denied-table');
    const client = new DynamoDBClient({ ...NOBODY_CLIENT, endpoint: dynamodb.endpoint });

    const error = await refusal(
      client,
      new GetItemCommand({ TableName: 'denied-table', Key: { id: { S: 'job#x' } } }),
    );

    expect(error).toMatchObject({
      name: 'AccessDeniedException',
      message: denialMessage(
        'dynamodb:GetItem',
        'arn:aws:dynamodb:us-east-1:000000000000:table/denied-table',
      ),
      $metadata: { httpStatusCode: 400 },
    });
    expect(dynamodb.denials()).toHaveLength(1);
  });

  it('Secrets Manager: the SDK throws AccessDeniedException with the secret ARN', async () => {
    const stub = await startSecretsManagerStub({ iam: nobodyGate(), secrets: { 'relay/denied': '{}' } });
    closers.push(() => stub.close());
    const client = new SecretsManagerClient({ ...NOBODY_CLIENT, endpoint: stub.url });

    const error = await refusal(client, new GetSecretValueCommand({ SecretId: 'relay/denied' }));

    expect(error).toMatchObject({
      name: 'AccessDeniedException',
      message: denialMessage(
        'secretsmanager:GetSecretValue',
        'arn:aws:secretsmanager:us-east-1:000000000000:secret:relay/denied-AbCdEf',
      ),
      $metadata: { httpStatusCode: 400 },
    });
    expect(stub.denials()).toHaveLength(1);
  });

  it('EventBridge: the SDK throws AccessDeniedException with the bus ARN, and nothing is published', async () => {
    const stub = await startEventBridgeStub({ iam: nobodyGate() });
    closers.push(() => stub.close());
    const client = new EventBridgeClient({ ...NOBODY_CLIENT, endpoint: stub.url });

    const error = await refusal(
      client,
      new PutEventsCommand({ Entries: [{ Source: 'relay', DetailType: 'x', Detail: '{}' }] }),
    );

    expect(error).toMatchObject({
      name: 'AccessDeniedException',
      message: denialMessage('events:PutEvents', 'arn:aws:events:us-east-1:000000000000:event-bus/default'),
      $metadata: { httpStatusCode: 400 },
    });
    expect(stub.events).toEqual([]);
    expect(stub.denials()).toHaveLength(1);
  });

  it('a key the gate does not know (test code, the CLI, the emulators’ own clients) is not restricted', async () => {
    const emulator = await startSqsEmulator({ iam: nobodyGate() });
    closers.push(() => emulator.stop());
    const queue = await emulator.createQueue('open-send');

    await emulator.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{}' }));

    expect(emulator.denials()).toEqual([]);
  });
});

describe('the past bug: the sender without sqs:SendMessage on its own send queue', () => {
  it('is refused AccessDenied when it re-queues a record as a fresh copy (received five times or more), and the job stays on the queue', async () => {
    // maxReceiveCount 10: a record received five times is re-queued as a fresh copy (docs/sqs-limits.md).
    const sendQueue = localQueueArn(LOCAL_RESOURCE_NAMES.sendQueue);
    const h = await startHarness({
      maxReceiveCount: 10,
      senderPolicy: (statements) =>
        withoutGrant(statements, { action: 'sqs:SendMessage', resource: sendQueue }),
    });
    closers.push(() => h.close());
    h.sim.script({ match: { path: ONEOFFS }, action: { kind: 'respond', status: 429 } });
    const id = await h.enqueue(jobBody());

    for (let receive = 1; receive <= 5; receive++) {
      await h.invoke();
      await h.fastForward();
    }

    // The fifth receive's fresh copy is the first SendMessage the sender makes on its send queue: IAM refuses it
    // (and every retry of it), so the job is never lost, but never re-queued either.
    const denied = h.emulator.denials();
    expect(denied.length).toBeGreaterThan(0);
    expect(new Set(denied.map((call) => `${call.action} ${call.resource}`))).toEqual(
      new Set([`sqs:SendMessage ${sendQueue}`]),
    );
    const { ready, delayed, inflight } = await h.inspect();
    expect([...ready, ...delayed, ...inflight.map((e) => e.message)].map((m) => m.messageId)).toEqual([id]);
  });
});

/** Calls of the sender's role in representative runs: deliver, retry, dead letter, re-queue, Job Settled. */
async function senderCalls(): Promise<{ calls: readonly CheckedCall[]; harness: Harness }> {
  // Webhooks on (the uuid index) and the Job Settled events on the world's bus.
  const options: HarnessOptions = { maxReceiveCount: 4, webhooks: true, jobSettledEvents: true };
  const h = await startHarness(options);
  closers.push(() => h.close());
  const instance = () => h.createInstance();
  // Delivered at once; retried after a 503; dead-lettered on a 403; re-queued through a 429 storm.
  h.sim.script({
    match: { path: ONEOFFS, contentIncludes: 'retry' },
    times: 1,
    action: { kind: 'respond', status: 503 },
  });
  h.sim.script({
    match: { path: ONEOFFS, contentIncludes: 'forbidden' },
    action: { kind: 'respond', status: 403 },
  });
  h.sim.script({
    match: { path: ONEOFFS, contentIncludes: 'storm' },
    times: 4,
    action: { kind: 'respond', status: 429 },
  });
  for (const content of ['delivered', 'retry', 'forbidden', 'storm']) {
    await h.enqueue(jobBody({ id: `job-${content}` }, { content }));
  }
  await h.runUntilQuiet(12, () => h.invokeWith(instance()));
  return { calls: h.iam.gate.calls(), harness: h };
}

/** Calls of the receiver's role when a delivery status is recorded and published. */
async function receiverCalls(): Promise<{ calls: readonly CheckedCall[]; harness: WebhookHarness }> {
  const h = await startWebhookHarness();
  closers.push(() => h.close());
  const messageUuid = randomUUID();
  await h.seedJob('job-a', messageUuid);
  await h.post({
    uuid: randomUUID(),
    channel: 'text',
    direction: 'outbound',
    message_uuid: messageUuid,
    last_status: 'delivered',
  });
  return { calls: h.iam.gate.calls(), harness: h };
}

/** Services the local world does not emulate: their grants are listed, not checked. */
const NOT_EMULATED = /^(logs|xray):/;

describe('removing any one grant the code needs makes some call fail', () => {
  it('every grant of the sender and the receiver is needed by some call, except the known least-privilege findings', async () => {
    const sender = await senderCalls();
    const receiver = await receiverCalls();
    const roles = [
      { role: sender.harness.iam.roles.sender, calls: sender.calls },
      { role: receiver.harness.iam.roles.receiver, calls: receiver.calls },
    ];

    const unused: string[] = [];
    for (const { role, calls } of roles) {
      if (!role) throw new Error('a role of the stack is missing from the test world');
      const made = calls.filter((call) => call.roleName === role.roleName && call.allowed);
      for (const grant of grantsOf(role.statements)) {
        if (NOT_EMULATED.test(grant.action)) continue;
        const without = withoutGrant(role.statements, grant);
        const denied = await firstDenied(without, made);
        if (!denied) unused.push(`${role.sessionName}: ${grant.action} on ${shortArn(grant)}`);
      }
    }

    // Granted but never needed by the functions' calls: what CDK's grantSendMessages (GetQueueAttributes on the
    // dead-letter queue, GetQueueUrl) and grantRead (DescribeSecret) add beside the actions the code makes
    // (least-privilege findings). GetQueueAttributes on the send queue is needed: Lambda's event source mapping
    // reads the queue's attributes with the function's role. The sender's GetItem and UpdateItem on the ledger are
    // both used: the circuit breaker reads the api-client item, the shared rate budget leases from it.
    expect(unused.sort()).toEqual(
      [
        'sender: secretsmanager:DescribeSecret on secret:ecourtdate-relay/local/api-credentials-AbCdEf',
        'sender: sqs:GetQueueAttributes on ecourtdate-relay-local-dlq',
        'sender: sqs:GetQueueUrl on ecourtdate-relay-local-dlq',
        'sender: sqs:GetQueueUrl on ecourtdate-relay-local-send',
        'webhook-receiver: secretsmanager:DescribeSecret on secret:ecourtdate-relay/local/webhook-signing-key-AbCdEf',
      ].sort(),
    );
  });
});

async function firstDenied(statements: Parameters<typeof isAllowed>[0], calls: readonly CheckedCall[]) {
  for (const call of calls) if (!(await isAllowed(statements, call))) return call;
  return undefined;
}

function shortArn(grant: Grant): string {
  return grant.resource.replace(/^arn:aws:[a-z]+:us-east-1:000000000000:/, '');
}
