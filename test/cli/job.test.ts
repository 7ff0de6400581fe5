import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OUTPUT } from '#infra/stack-contract.ts';
import type { DynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import { LOCAL_RESOURCE_NAMES, startWorld, type World } from '#local/world.ts';
import { JobLedger, type SettleInput } from '#shared/ledger/ledger.ts';
import type { AttemptClass } from '#shared/policy.ts';
import { relay, relayWithEnv } from '#test/cli/run.ts';

/** The world's ledger table (local/resource-names.ts). */
const TABLE = LOCAL_RESOURCE_NAMES.ledgerTable;
/** 2026-12-01T15:00:00.000Z */
const T0 = Date.UTC(2026, 11, 1, 15, 0, 0);
const MINUTE = 60_000;
const UUID = '3f2a9c1e-6b7d-4e8f-9a0b-1c2d3e4f5a6b';

let world: World;
let db: DynamoDbEmulator;
let ledger: JobLedger;

/** What a send that reached the messages endpoint was, for the ledger's counts. */
function sent(flags: Partial<AttemptClass> = {}): AttemptClass {
  return {
    sent: true,
    retryable: false,
    serverError500: false,
    rateLimited: false,
    notSent: false,
    unknownOutcome: false,
    ...flags,
  };
}

/** One attempt through the ledger as the sender makes it: claim at `at`, settle half a second later. */
async function attempt(jobId: string, at: number, result: Omit<SettleInput, 'entry' | 'now'>) {
  const claim = await ledger.claim({
    jobId,
    bodyHash: `hash-${jobId}`,
    messageId: `msg-${jobId}`,
    now: at,
    leaseUntil: at + MINUTE,
  });
  if (claim.kind !== 'claimed') throw new Error(`expected a claim of ${jobId}, got ${claim.kind}`);
  const settled = await ledger.settle({
    entry: claim.entry,
    now: at + 500,
    messageId: `msg-${jobId}`,
    ...result,
  });
  if (settled.kind !== 'written')
    throw new Error(`expected the settle of ${jobId} written, got ${settled.kind}`);
}

function job(id: string, ...extra: string[]) {
  return relay('job', id, '--ledger-table', TABLE, '--dynamodb-endpoint', db.endpoint, ...extra);
}

beforeAll(async () => {
  world = await startWorld();
  db = world.dynamodb;
  ledger = new JobLedger({ client: db.client, tableName: TABLE, ttlSeconds: 30 * 86_400 });

  await attempt('cms-1-delivered', T0, {
    attempt: sent(),
    lastStatus: '201',
    outcome: { type: 'delivered', uuid: UUID },
  });

  // A job whose budget ran out after answers that may have created the message (a 503, a 504, a 500): the sender
  // dead-letters it unknown_outcome, ended by retries_exhausted (docs/contract.md), with its redrive token.
  await attempt('cms-2-exhausted', T0, {
    attempt: sent({ retryable: true, unknownOutcome: true }),
    lastStatus: '503',
    outcome: { type: 'retry', delaySeconds: 60, cause: 'unknown_outcome' },
  });
  await attempt('cms-2-exhausted', T0 + MINUTE, {
    attempt: sent({ rateLimited: true }),
    lastStatus: '429',
    outcome: { type: 'retry', delaySeconds: 60, cause: 'rate_limited' },
  });
  await attempt('cms-2-exhausted', T0 + 2 * MINUTE, {
    attempt: sent({ retryable: true, unknownOutcome: true }),
    lastStatus: '504',
    outcome: { type: 'retry', delaySeconds: 120, cause: 'unknown_outcome' },
  });
  await attempt('cms-2-exhausted', T0 + 4 * MINUTE, {
    attempt: sent({ retryable: true, serverError500: true, unknownOutcome: true }),
    lastStatus: '500',
    outcome: { type: 'dead_letter', reason: 'unknown_outcome', endedBy: 'retries_exhausted' },
    detail: 'HTTP 500 after 3 attempts; ended by retries_exhausted',
    deadLetterToken: 'dl-token-cms-2',
  });

  // A 504 (unknown outcome), then a 409 inside the duplicate window: the first attempt did create the message.
  await attempt('cms-5-created-then-504', T0, {
    attempt: sent({ retryable: true, unknownOutcome: true }),
    lastStatus: '504',
    outcome: { type: 'retry', delaySeconds: 60, cause: 'unknown_outcome' },
  });
  await attempt('cms-5-created-then-504', T0 + MINUTE, {
    attempt: sent(),
    lastStatus: '409',
    outcome: { type: 'duplicate' },
  });

  // The hearing moved: a second version of a delivered job came under the same id, and was refused id_conflict.
  await attempt('cms-6-changed', T0, {
    attempt: sent(),
    lastStatus: '201',
    outcome: { type: 'delivered', uuid: UUID },
  });
  for (const at of [T0 + MINUTE, T0 + 2 * MINUTE]) {
    const refused = await ledger.claim({
      jobId: 'cms-6-changed',
      bodyHash: 'moved-to-0930-body-hash',
      messageId: `msg-cms-6-v2-${at}`,
      now: at,
      leaseUntil: at + MINUTE,
    });
    if (refused.kind !== 'conflict') throw new Error(`expected a conflict, got ${refused.kind}`);
  }

  const open = await ledger.claim({
    jobId: 'cms-3-open',
    bodyHash: 'hash-3',
    messageId: 'msg-3',
    now: T0,
    leaseUntil: T0 + MINUTE,
  });
  if (open.kind !== 'claimed') throw new Error(`expected a claim, got ${open.kind}`);
});

afterAll(async () => {
  await world?.close();
});

describe('job ID: the job ledger entry (dynalite, entries written through JobLedger)', () => {
  it('a delivered job: status, uuid, one send, its first attempt and its history line', async () => {
    const run = await job('cms-1-delivered');

    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^job {17}cms-1-delivered$/m);
    expect(run.stdout).toMatch(/^status {14}delivered$/m);
    expect(run.stdout).toMatch(/^generation {10}1$/m);
    expect(run.stdout).toMatch(
      /^attempts {12}1 sent, 0 retryable, 0 HTTP 500, 0 429 wait\(s\), 0 not sent$/m,
    );
    expect(run.stdout).toMatch(/^unknown outcome {5}no$/m);
    expect(run.stdout).toMatch(new RegExp(`^uuid {16}${UUID}$`, 'm'));
    expect(run.stdout).toMatch(/^first attempt {7}2026-12-01T15:00:00\.000Z$/m);
    expect(run.stdout).toMatch(/^last status {9}201$/m);
    expect(run.stdout).toMatch(/^dead-letter reason {2}-$/m);
    expect(run.stdout).toMatch(/^2026-12-01T15:00:00\.500Z {2}1 {11}201 {5}delivered$/m);
  });

  it('a dead-lettered job: the reason, the last status, attempts per class and the unknown outcome', async () => {
    const run = await job('cms-2-exhausted');

    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^status {14}dead_lettered$/m);
    expect(run.stdout).toMatch(
      /^attempts {12}4 sent, 3 retryable, 1 HTTP 500, 1 429 wait\(s\), 0 not sent$/m,
    );
    expect(run.stdout).toMatch(/^unknown outcome {5}yes: an attempt may have created the message/m);
    expect(run.stdout).toMatch(/^last status {9}500$/m);
    expect(run.stdout).toMatch(/^dead-letter reason {2}unknown_outcome$/m);
    expect(run.stdout).toMatch(/^2026-12-01T15:01:00\.500Z +1 +429 +retry in 60 s \(rate_limited\)$/m);
    expect(run.stdout).toMatch(
      /^2026-12-01T15:04:00\.500Z +1 +500 +dead_lettered \(unknown_outcome\) +HTTP 500 after 3 attempts; ended by retries_exhausted$/m,
    );
  });

  it('--json: one object with exactly what an operator may see of the entry, snake_case, numbers as numbers', async () => {
    const run = await job('cms-2-exhausted', '--json');

    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      job_id: 'cms-2-exhausted',
      status: 'dead_lettered',
      generation: 1,
      attempts: 4,
      retryable_attempts: 3,
      server_500_attempts: 1,
      rate_limit_waits: 1,
      not_sent_attempts: 0,
      unknown_outcome: true,
      uuid: null,
      first_attempt_at: '2026-12-01T15:00:00.000Z',
      last_status: 500,
      reason: 'unknown_outcome',
      body: 'hash-cms-2-e',
      refused_versions: null,
      history: [
        {
          at: '2026-12-01T15:00:00.500Z',
          generation: 1,
          status: 503,
          outcome: 'retry',
          reason: null,
          retry_cause: 'unknown_outcome',
          retry_in_seconds: 60,
          detail: null,
        },
        {
          at: '2026-12-01T15:01:00.500Z',
          generation: 1,
          status: 429,
          outcome: 'retry',
          reason: null,
          retry_cause: 'rate_limited',
          retry_in_seconds: 60,
          detail: null,
        },
        {
          at: '2026-12-01T15:02:00.500Z',
          generation: 1,
          status: 504,
          outcome: 'retry',
          reason: null,
          retry_cause: 'unknown_outcome',
          retry_in_seconds: 120,
          detail: null,
        },
        {
          at: '2026-12-01T15:04:00.500Z',
          generation: 1,
          status: 500,
          outcome: 'dead_lettered',
          reason: 'unknown_outcome',
          retry_cause: null,
          retry_in_seconds: null,
          detail: 'HTTP 500 after 3 attempts; ended by retries_exhausted',
        },
      ],
      delivery_status: null,
      delivery_history: [],
    });
  });

  it('a job whose 504 a later 409 settled: duplicate, and its outcome no longer unknown', async () => {
    const text = await job('cms-5-created-then-504');
    const json = await job('cms-5-created-then-504', '--json');

    expect(text.stdout).toMatch(/^status {14}duplicate$/m);
    expect(text.stdout).toMatch(/^unknown outcome {5}no$/m);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'duplicate', unknown_outcome: false });
  });

  it('a job whose id came again with another body: the accepted version stays, the refused one is shown', async () => {
    const run = await job('cms-6-changed');

    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^status {14}delivered$/m);
    expect(run.stdout).toMatch(/^body {16}hash-cms-6-c \(the version that holds this id\)$/m);
    expect(run.stdout).toMatch(
      /^refused versions {4}2 records with another body, refused id_conflict and dead-lettered, not sent; the latest: body moved-to-093 at 2026-12-01T15:02:00\.000Z\. Send a new version under a new id/m,
    );
  });

  it('--json: a refused version is counted with its fingerprint and time, the accepted one unchanged', async () => {
    const run = await job('cms-6-changed', '--json');

    expect(JSON.parse(run.stdout)).toMatchObject({
      status: 'delivered',
      uuid: UUID,
      body: 'hash-cms-6-c',
      refused_versions: { count: 2, latest_body: 'moved-to-093', latest_at: '2026-12-01T15:02:00.000Z' },
    });
  });

  it('a job whose first attempt is still open: in progress, no history yet', async () => {
    const run = await job('cms-3-open');

    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^status {14}in_progress$/m);
    expect(run.stdout).toContain('History, oldest first:\n(no attempt recorded yet)');
  });

  it('a job the ledger does not know: says so, exit 1', async () => {
    const run = await job('cms-404');

    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('has no entry for job cms-404: the sender never received it');
    // An invalid job never gets an entry: the operator is sent to the dead-letter queue, where it is.
    expect(run.stderr).toContain('dead-lettered invalid_job without an entry: relay dlq list shows it');
    expect(run.stderr).toContain('or the entry expired');
  });

  it('a job the ledger does not know, with --json: one object saying so on stdout, exit 1', async () => {
    const run = await job('cms-404', '--json');

    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout)).toEqual({ job_id: 'cms-404', found: false });
    expect(run.stderr).toContain('has no entry for job cms-404');
  });

  it('a table that does not exist: names it, exit 2', async () => {
    const run = await relay(
      'job',
      'cms-1-delivered',
      '--ledger-table',
      'no-such-table',
      '--dynamodb-endpoint',
      db.endpoint,
    );

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('no table no-such-table in the resources given on the command line');
  });

  it('finds DynamoDB at AWS_ENDPOINT_URL_DYNAMODB when --dynamodb-endpoint is not given', async () => {
    const run = await relayWithEnv(
      { AWS_ENDPOINT_URL_DYNAMODB: db.endpoint },
      'job',
      'cms-1-delivered',
      '--ledger-table',
      TABLE,
    );

    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^status {14}delivered$/m);
  });
});

describe('job ID --stage: the table named by the stack output (CloudFormation mocked)', () => {
  let cloudformation: AwsClientStub<CloudFormationClient>;

  beforeEach(() => {
    cloudformation = mockClient(CloudFormationClient);
  });

  afterEach(() => {
    cloudformation.restore();
  });

  it(`reads the ledger table named by ${OUTPUT.ledgerTableName}`, async () => {
    cloudformation.on(DescribeStacksCommand, { StackName: 'EcourtdateRelay-production' }).resolves({
      Stacks: [
        {
          StackName: 'EcourtdateRelay-production',
          CreationTime: new Date(),
          StackStatus: 'UPDATE_COMPLETE',
          Outputs: [{ OutputKey: OUTPUT.ledgerTableName, OutputValue: TABLE }],
        },
      ],
    });

    const run = await relay(
      'job',
      'cms-1-delivered',
      '--stage',
      'production',
      '--dynamodb-endpoint',
      db.endpoint,
    );

    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^uuid {16}${UUID}$`, 'm'));
  });
});
