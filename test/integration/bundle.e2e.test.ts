/**
 * The bundle `cdk deploy` uploads, run as Lambda runs it (docs/test-world.md, "The bundle `cdk deploy`
 * uploads"): the sender's asset from the synthesised cloud assembly, its handler, timeout and environment from
 * the template (references resolved to the resources of a `startWorld` world; only the endpoints, region, the
 * sender role's local credentials and the simulator's URL added), in a process of its own
 * (local/lambda/runtime.ts) that is ended at the function's deadline and frozen between invocations, polled by
 * the local event source mapping (local/lambda/event-source.ts) from a send queue configured as the template
 * configures it (visibility timeout, maxReceiveCount). Every call it makes is checked against the stack's IAM.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Message, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Match } from 'aws-cdk-lib/assertions';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Simulator } from '#local/ecourtdate-simulator/index.ts';
import { stubSecretArn } from '#local/emulators/secrets-manager-stub.ts';
import type { EmulatedQueue, SqsEmulator } from '#local/emulators/sqs-emulator.ts';
import { describeDenials } from '#local/iam/gate.ts';
import type { LocalIam } from '#local/iam/local-iam.ts';
import { localTableArn } from '#local/iam/template-policies.ts';
import { type PollResult, pollOnce } from '#local/lambda/event-source.ts';
import {
  type FunctionRuntime,
  FunctionTimeoutError,
  sqsHandlerOf,
  startFunctionRuntime,
} from '#local/lambda/runtime.ts';
import { startWorld, type World } from '#local/world.ts';
import { ENV } from '#shared/config.ts';
import { JobLedger } from '#shared/ledger/ledger.ts';
import {
  type DeployedFunction,
  deployedFunction,
  type LocalResource,
  resolveEnvironment,
} from '#test/helpers/deployed-function.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { onlyResource, synthRelay } from '#test/helpers/infra.ts';
import { attr } from '#test/helpers/relay-harness.ts';

const ONEOFFS = '/v1/messages/oneoffs';
const CLIENT_ID = 'relay-bundle-client';
const CLIENT_SECRET = 'cs_live_0a1b2c3d4e5f60718293a4b5c6d7e8f9';
/**
 * The function timeout of the timed-out invocations, in place of the template's (minutes): long enough for a
 * cold instance's token request and send, far shorter than eCourtDate's scripted latency and than the
 * template's `HTTP_TIMEOUT_MS`, so the invocation meets its deadline with the request in flight.
 */
const SHORT_TIMEOUT_MS = 2_000;
/** eCourtDate's latency for the slow recipients: it answers (and creates the message) after the deadline. */
const SLOW_ANSWER_MS = 4_000;

interface Synthesized {
  readonly sender: DeployedFunction;
  /** Logical ids of what the sender's variables reference. */
  readonly ids: Readonly<Record<'sendQueueId' | 'deadLetterQueueId' | 'tableId' | 'secretId', string>>;
  /** The send queue's, seconds. */
  readonly visibilityTimeoutSeconds: number;
  readonly maxReceiveCount: number;
}

/** The sender's bundle deployed into a `startWorld` world (local/world.ts). */
interface Deployment {
  /** The world the bundle runs in: its queues, ledger table, API-credentials secret, simulator and IAM check. */
  readonly world: World;
  readonly sender: DeployedFunction;
  readonly environment: Record<string, string>;
  readonly emulator: SqsEmulator;
  readonly sendQueue: EmulatedQueue;
  readonly deadLetterQueue: EmulatedQueue;
  readonly ledger: JobLedger;
  readonly sim: Simulator;
  readonly iam: LocalIam;
  /** The event source mapping's client: it polls with the sender's role, as Lambda's does. */
  readonly poller: SQSClient;
}

let synthesized: Synthesized;
let world: Deployment;
const runtimes: FunctionRuntime[] = [];

/** The sender's runtime, with the template's function timeout unless `timeoutMs` overrides it. */
function senderRuntime(
  timeoutMs = world.sender.timeoutSeconds * 1000,
  environment: Record<string, string> = {},
): FunctionRuntime {
  const runtime = startFunctionRuntime({
    assetDirectory: world.sender.assetDirectory,
    handler: world.sender.handler,
    environment: { ...world.environment, ...environment },
    timeoutMs,
    memorySizeMb: world.sender.memorySizeMb,
  });
  runtimes.push(runtime);
  return runtime;
}

/** One poll of the event source mapping into `runtime`; its own backstop timeout is left to the runtime's. */
function poll(runtime: FunctionRuntime, timeoutMs: number): Promise<PollResult> {
  return pollOnce({
    sqs: world.poller,
    queueUrl: world.sendQueue.url,
    queueArn: world.sendQueue.arn,
    handler: sqsHandlerOf(runtime),
    waitTimeSeconds: 0,
    functionTimeoutMs: timeoutMs + 10_000,
  });
}

async function enqueue(body: unknown): Promise<void> {
  await world.emulator.sqs.send(
    new SendMessageCommand({
      QueueUrl: world.sendQueue.url,
      MessageBody: typeof body === 'string' ? body : JSON.stringify(body),
    }),
  );
}

const sendsTo = (to: string) =>
  world.sim.requests.filter((r) => r.path === ONEOFFS && (r.body as { to?: string }).to === to);

/** The synthesised template's logical id behind a `Ref` variable of the sender. */
function referenced(sender: DeployedFunction, variable: string): string {
  const ref = (sender.variables[variable] as { Ref?: string } | undefined)?.Ref;
  if (ref === undefined) throw new Error(`${variable} is not a Ref in the template`);
  return ref;
}

/** The synthesised staging app, bundled: what `cdk deploy` would upload and deploy. */
function synthSender(): Synthesized {
  const { app, template } = synthRelay({ stage: 'staging' }, { bundle: true });
  const { id } = onlyResource(template, 'AWS::Lambda::Function', {
    Description: Match.stringLikeRegexp('relay sender'),
  });
  const sender = deployedFunction(app, template, id);
  const resources = template.toJSON().Resources as Record<string, { Properties: Record<string, unknown> }>;
  const sendQueueId = referenced(sender, ENV.sendQueueUrl);
  const deadLetterQueueId = referenced(sender, ENV.deadLetterQueueUrl);
  const tableId = referenced(sender, ENV.ledgerTableName);
  const secretId = referenced(sender, ENV.secretId);
  const sendQueueProps = resources[sendQueueId]?.Properties ?? {};
  const visibilityTimeoutSeconds = sendQueueProps.VisibilityTimeout as number;
  const { maxReceiveCount } = sendQueueProps.RedrivePolicy as { maxReceiveCount: number };
  return {
    sender,
    ids: { sendQueueId, deadLetterQueueId, tableId, secretId },
    visibilityTimeoutSeconds,
    maxReceiveCount,
  };
}

/**
 * A `startWorld` world (local/world.ts; a fresh one per test) whose send queue has the template's visibility
 * timeout and maxReceiveCount, and the sender's environment: the template's variables resolved to the world's
 * queues, ledger table and API-credentials secret, and only the endpoints, region, the sender role's local
 * credentials and the simulator's URL added. The stack's IAM is checked (docs/test-world.md).
 */
async function deploy(synthesized: Synthesized): Promise<Deployment> {
  const { sender, ids, visibilityTimeoutSeconds, maxReceiveCount } = synthesized;
  const { sendQueueId, deadLetterQueueId, tableId, secretId } = ids;
  // The local clock (SQS visibility, eCourtDate's duplicate window) can be moved on; the function's is real.
  vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
  const world = await startWorld({
    apiClient: { id: CLIENT_ID, secret: CLIENT_SECRET },
    maxReceiveCount,
    sendQueueAttributes: { VisibilityTimeout: String(visibilityTimeoutSeconds) },
  });
  const { sqs: emulator, sendQueue, deadLetterQueue, dynamodb } = world;
  const iam = world.iam as LocalIam;
  const sim = world.simulator as Simulator;
  const queue = (q: EmulatedQueue): LocalResource => ({
    ref: q.url,
    attributes: { Arn: q.arn, QueueUrl: q.url, QueueName: q.name },
  });
  const local: Record<string, LocalResource> = {
    [sendQueueId]: queue(sendQueue),
    [deadLetterQueueId]: queue(deadLetterQueue),
    [tableId]: { ref: world.ledgerTableName, attributes: { Arn: localTableArn(world.ledgerTableName) } },
    [secretId]: { ref: stubSecretArn(world.apiCredentialsSecretId) },
  };
  const environment = {
    ...resolveEnvironment(sender.variables, local),
    // eCourtDate's URL of the stage, replaced by the simulator's.
    [ENV.baseUrl]: sim.url,
    [ENV.sqsEndpoint]: emulator.endpoint,
    [ENV.dynamodbEndpoint]: dynamodb.endpoint,
    [ENV.secretsManagerEndpoint]: world.secrets.url,
    AWS_REGION: 'us-east-1',
    // The function's execution role, as Lambda gives it to the function through its environment.
    AWS_ACCESS_KEY_ID: iam.credentials.sender.accessKeyId,
    AWS_SECRET_ACCESS_KEY: iam.credentials.sender.secretAccessKey,
  };
  const ledger = new JobLedger({
    client: dynamodb.client,
    tableName: world.ledgerTableName,
    ttlSeconds: 86_400,
  });
  const poller = new SQSClient({
    endpoint: emulator.endpoint,
    useQueueUrlAsEndpoint: false,
    region: 'us-east-1',
    credentials: iam.credentials.sender,
  });
  return { world, sender, environment, emulator, sendQueue, deadLetterQueue, ledger, sim, iam, poller };
}

beforeAll(() => {
  synthesized = synthSender();
});

beforeEach(async () => {
  world = await deploy(synthesized);
});

afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((runtime) => runtime.close()));
  world?.poller.destroy();
  await world?.world.close();
  vi.useRealTimers();
  // A call the stack's IAM denies the deployed sender fails the test that made it.
  const denied = world?.iam.gate.denials() ?? [];
  if (denied.length > 0) throw new Error(describeDenials(denied));
});

describe('the bundle cdk deploy uploads', () => {
  it("is the sender asset of the synthesised assembly, an ESM bundle for nodejs24.x behind the template's handler", () => {
    expect(synthesized.sender.runtime).toBe('nodejs24.x');
    expect(synthesized.sender.handler).toBe('index.handler');
    expect(existsSync(join(synthesized.sender.assetDirectory, 'index.mjs'))).toBe(true);
  });

  it('refuses to run with a variable that references a resource with no local stand-in, naming the variable', () => {
    const variables = { ...synthesized.sender.variables, EVENT_BUS_NAME: { Ref: 'RelayEventBus' } };
    const local = Object.fromEntries(Object.values(synthesized.ids).map((id) => [id, { ref: 'local' }]));

    expect(() => resolveEnvironment(variables, local)).toThrow(/^EVENT_BUS_NAME: .*RelayEventBus/);
  });

  it('delivers a job: eCourtDate gets exactly one POST, the ledger says delivered, the message is deleted', async () => {
    const runtime = senderRuntime();
    await enqueue(jobBody({ id: 'bundle-ok' }, { to: '+15550109001' }));

    const result = await poll(runtime, world.sender.timeoutSeconds * 1000);

    expect(result).toMatchObject({ received: 1, failed: [] });
    expect(result.deleted).toHaveLength(1);
    expect(sendsTo('+15550109001').map((r) => r.status)).toEqual([201]);
    expect(await world.ledger.get('bundle-ok')).toMatchObject({ status: 'delivered', sends: 1 });
    expect(await world.emulator.inspect(world.sendQueue.name)).toMatchObject({ ready: [], inflight: [] });
  });

  it('dead-letters an invalid job with its reason, unsent', async () => {
    const runtime = senderRuntime();
    await enqueue({ id: 'bundle-invalid', message: { to: '+15550109002' } });

    const result = await poll(runtime, world.sender.timeoutSeconds * 1000);

    expect(result.deleted).toHaveLength(1);
    const deadLetters = await receiveAll(world.deadLetterQueue.url);
    expect(deadLetters.map((m) => [attr(m, 'job_id'), attr(m, 'reason')])).toEqual([
      ['bundle-invalid', 'invalid_job'],
    ]);
    expect(sendsTo('+15550109002')).toEqual([]);
  });
});

describe('an invocation that outlives the function timeout', () => {
  /** Puts a job for `to` on the queue, with eCourtDate slow for it, and polls it into a short-timeout runtime. */
  async function timedOut(id: string, to: string): Promise<{ runtime: FunctionRuntime; result: PollResult }> {
    world.sim.script({
      match: { path: ONEOFFS, to },
      times: 1,
      delayMs: SLOW_ANSWER_MS,
      action: { kind: 'pass' },
    });
    // A lost attempt is resent no sooner than its backoff step after it started (docs/ledger.md). The function's
    // clock is the machine's, which the queue's fake time does not move: a 1 s step, as short as the timeout.
    const runtime = senderRuntime(SHORT_TIMEOUT_MS, { [ENV.backoffSeconds]: '1' });
    await enqueue(jobBody({ id }, { to }));
    const result = await poll(runtime, SHORT_TIMEOUT_MS);
    return { runtime, result };
  }

  /** Waits until eCourtDate has answered the (late) request to `to`: it created the message. */
  async function lateAnswer(to: string): Promise<void> {
    await vi.waitFor(() => expect(sendsTo(to)[0]?.status).toBe(201), { timeout: SLOW_ANSWER_MS * 3 });
  }

  it('fails its batch at the deadline with a timeout, and nothing is deleted', async () => {
    const { result } = await timedOut('bundle-slow-1', '+15550109003');

    // The sender has no early timeout (middy's is off): the invocation runs to the deadline, which ends it.
    expect(result.error).toBeInstanceOf(FunctionTimeoutError);
    expect(result.deleted).toEqual([]);
  });

  it('does nothing after the deadline: after eCourtDate answers late, nothing is settled, deleted or dead-lettered', async () => {
    await timedOut('bundle-slow-2', '+15550109004');
    // The request was in flight at the deadline; its answer comes to an ended environment.
    expect(sendsTo('+15550109004').map((r) => r.status)).toEqual(['pending']);

    await lateAnswer('+15550109004');

    expect(await world.ledger.get('bundle-slow-2')).toMatchObject({
      status: 'in_progress',
      attempt_open: true,
    });
    const queue = await world.emulator.inspect(world.sendQueue.name);
    expect(queue.inflight.map((e) => JSON.parse(e.message.body).id)).toEqual(['bundle-slow-2']);
    expect(await receiveAll(world.deadLetterQueue.url)).toEqual([]);
  });

  it('comes back after the visibility timeout and ends delivered, the message created once', async () => {
    const { runtime } = await timedOut('bundle-slow-3', '+15550109005');
    await lateAnswer('+15550109005');
    // Still hidden before the send queue's visibility timeout (six function timeouts, from the template).
    expect((await poll(runtime, SHORT_TIMEOUT_MS)).received).toBe(0);

    // The batch comes back to a cold start, which finds the old attempt lost. docs/contract.md: a lost attempt is
    // an unknown outcome, a resend inside the duplicate window gets 409.
    for (let polls = 0; polls < 5 && (await queueLength()) > 0; polls++) {
      await dueNow();
      await poll(runtime, SHORT_TIMEOUT_MS);
    }

    expect(await queueLength()).toBe(0);
    expect(world.sim.messages.filter((m) => m.body.to === '+15550109005')).toHaveLength(1);
    expect(
      sendsTo('+15550109005')
        .slice(1)
        .every((r) => r.status === 409),
    ).toBe(true);
    expect(await world.ledger.get('bundle-slow-3')).toMatchObject({ status: 'delivered' });
    expect(await receiveAll(world.deadLetterQueue.url)).toEqual([]);
  });
});

/** Messages on the send queue, visible, delayed or in flight. */
async function queueLength(): Promise<number> {
  const state = await world.emulator.inspect(world.sendQueue.name);
  return state.ready.length + state.delayed.length + state.inflight.length;
}

/** The local clock moves on until every hidden or delayed message of the send queue is due. */
async function dueNow(): Promise<void> {
  const state = await world.emulator.inspect(world.sendQueue.name);
  const now = Date.now();
  const due = [
    ...state.inflight.map((e) => e.visibilityDeadline),
    ...state.delayed.map((m) => m.delayUntil ?? now),
  ];
  vi.setSystemTime(Math.max(now, ...due) + 1_000);
}

/** Every message on a queue, received (and hidden for five minutes). */
async function receiveAll(queueUrl: string): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const out = await world.emulator.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ['All'],
        VisibilityTimeout: 300,
      }),
    );
    if (!out.Messages?.length) return all;
    all.push(...out.Messages);
  }
}
