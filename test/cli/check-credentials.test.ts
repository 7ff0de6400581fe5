import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OUTPUT } from '#infra/stack-contract.ts';
import type { Simulator } from '#local/ecourtdate-simulator/index.ts';
import type { SecretsManagerStub } from '#local/emulators/secrets-manager-stub.ts';
import { LOCAL_RESOURCE_NAMES, startWorld, type World } from '#local/world.ts';
import { API_CLIENT_ITEM_ID, DynamoBudgetStore } from '#shared/ecourtdate/shared-budget.ts';
import { relay } from '#test/cli/run.ts';

/** The world's API-credentials secret (local/resource-names.ts), holding this client. */
const SECRET_ID = LOCAL_RESOURCE_NAMES.apiCredentialsSecretId;
const CLIENT_ID = 'relay-staging-client';
const CLIENT_SECRET = 'cs_4b1d9e7f2a6c8e0d1f3b5a7c9e1d3f5a';

let world: World;
let sim: Simulator;
let secrets: SecretsManagerStub;

beforeEach(async () => {
  world = await startWorld({
    apiClient: { id: CLIENT_ID, secret: CLIENT_SECRET },
    simulator: { knownAgencies: ['county-a'] },
  });
  if (world.simulator === undefined) throw new Error('the world started no simulator');
  sim = world.simulator;
  secrets = world.secrets;
});

afterEach(async () => {
  await world.close();
});

function check(...extra: string[]) {
  return relay(
    'check-credentials',
    '--secret-id',
    SECRET_ID,
    '--secrets-endpoint-url',
    secrets.url,
    '--ecourtdate-url',
    sim.url,
    ...extra,
  );
}

/** Runs the check told the stage's ledger table, and expects it to pass with one token request and one settings call. */
async function checkOnTheStageBudget(): Promise<void> {
  const run = await check(
    '--ledger-table',
    world.ledgerTableName,
    '--dynamodb-endpoint',
    world.dynamodb.endpoint,
  );
  expect(run.status).toBe(0);
  expect(sim.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /oauth/token', 'GET /v1/settings']);
}

describe('check-credentials: secret, token, GET /v1/settings (simulator and Secrets Manager stand-in)', () => {
  it("leases its requests' slots from the stage's budget when it is told the ledger table", async () => {
    // The senders' budget, as their leases leave it (docs/pacing.md): 900 a minute in slices of 1 s.
    const budget = new DynamoBudgetStore({ client: world.dynamodb.client, tableName: world.ledgerTableName });
    await budget.lease({
      budgetPerMinute: 900,
      sliceMs: 1000,
      fromSlice: Math.floor(Date.now() / 1000),
      want: 1,
      horizonSlices: 20,
    });
    const before = (await budget.read())?.version ?? 0;

    await checkOnTheStageBudget();
    // The token request and the settings call were counted by the budget: one lease or more.
    expect(((await budget.read())?.version ?? 0) - before).toBeGreaterThanOrEqual(1);
  });

  it.each([
    ['budget_per_minute', { N: '0' }],
    ['budget_slice_ms', { N: '-1' }],
  ])("paces itself when the stage's item holds a damaged %s, instead of failing", async (name, value) => {
    await world.dynamodb.client.send(
      new PutItemCommand({
        TableName: world.ledgerTableName,
        Item: {
          id: { S: API_CLIENT_ITEM_ID },
          budget_next_slot: { N: '1' },
          budget_version: { N: '1' },
          budget_per_minute: { N: '900' },
          budget_slice_ms: { N: '1000' },
          [name]: value,
        },
      }),
    );

    await checkOnTheStageBudget();
  });

  it('valid credentials: every step ok and the agency named, exit 0; nothing secret printed', async () => {
    const run = await check();

    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(
      /^ok {3}secret: read secret ecourtdate-relay\/local\/api-credentials: client_id rela…nt$/m,
    );
    expect(run.stdout).toMatch(/^ok {3}token: got a token from .*\/oauth\/token \(HTTP 201\)$/m);
    expect(run.stdout).toMatch(
      /^ok {3}settings: GET \/v1\/settings answered HTTP 200: agency .*\(county-a\)$/m,
    );
    expect(run.stdout).toContain('The relay can authenticate and reach its agency.');
    expect(run.stdout).not.toContain(CLIENT_SECRET);
    expect(run.stdout).not.toContain(CLIENT_ID);
    expect(run.stdout).not.toMatch(/eyJ/);
    expect(sim.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /oauth/token',
      'GET /v1/settings',
    ]);
  });

  it('--json: one object with the verdict and every step, nothing secret in it', async () => {
    const run = await check('--json');

    expect(run.status).toBe(0);
    const printed = JSON.parse(run.stdout);
    expect(printed).toMatchObject({ passed: true, ecourtdate_url: sim.url });
    expect(printed.steps.map((step: { step: string; ok: boolean }) => [step.step, step.ok])).toEqual([
      ['secret', true],
      ['token', true],
      ['settings', true],
    ]);
    expect(printed.steps[0]).toHaveProperty('advice', null);
    expect(run.stdout).not.toContain(CLIENT_SECRET);
    expect(run.stdout).not.toContain(CLIENT_ID);
  });

  it("a wrong secret: the token request gets 401, and the advice is eCourtDate's for 401; exit 1", async () => {
    secrets.setSecret(
      SECRET_ID,
      JSON.stringify({ client_id: CLIENT_ID, client_secret: 'an-old-rotated-secret' }),
    );

    const run = await check();

    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/^FAIL token: .*\/oauth\/token answered HTTP 401/m);
    expect(run.stdout).toContain('Console > APIs');
    expect(run.stdout).toContain('Staging and production credentials are not interchangeable');
    expect(run.stdout).toContain('revoked');
    expect(run.stdout).not.toContain('an-old-rotated-secret');
  });

  it('a refused token request: re-reads the secret and asks once more, as the sender does', async () => {
    secrets.setSecret(
      SECRET_ID,
      JSON.stringify({ client_id: CLIENT_ID, client_secret: 'an-old-rotated-secret' }),
    );

    await check();

    expect(secrets.calls.map((call) => call.secretId)).toEqual([SECRET_ID, SECRET_ID]);
    expect(sim.requests.map((r) => r.path)).toEqual(['/oauth/token', '/oauth/token']);
  });

  it('403 on /v1/settings: agency inactive, user token or permissions', async () => {
    sim.script({
      match: { path: '/v1/settings' },
      action: { kind: 'respond', status: 403, body: { message: 'Agency is inactive.' } },
    });

    const run = await check();

    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/^FAIL settings: GET \/v1\/settings answered HTTP 403: .*Agency is inactive/m);
    expect(run.stdout).toContain('the agency of this API client must be active');
    expect(run.stdout).toContain('not a user token');
  });

  it('404 "Agency Not Found": a Default Agency is missing', async () => {
    sim.script({
      match: { path: '/v1/settings' },
      action: { kind: 'respond', status: 404, body: { message: 'Agency Not Found' } },
    });

    const run = await check();

    expect(run.status).toBe(1);
    expect(run.stdout).toContain('Agency Not Found: set a Default Agency for this API client in the Console');
  });

  it('--agency-reference of an agency the client cannot reach: blames that agency, not the credentials', async () => {
    const run = await check('--agency-reference', 'county-z');

    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/^ok {3}settings: GET \/v1\/settings answered HTTP 200/m);
    expect(run.stdout).toMatch(
      /^FAIL agency: this API client cannot reach agency county-z: GET \/v1\/settings\?agency_reference=county-z answered HTTP 404/m,
    );
    expect(run.stdout).toContain('The credentials work (the steps above passed); only agency county-z');
    expect(run.stdout).toContain('The credentials work; only jobs for this agency_reference cannot be sent.');
    expect(run.stdout).not.toContain('cannot send with these credentials');
  });

  it('--agency-reference of an agency the client can reach: four steps ok, exit 0', async () => {
    const run = await check('--agency-reference', 'county-a');

    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(
      /^ok {3}agency: GET \/v1\/settings\?agency_reference=county-a answered HTTP 200/m,
    );
    expect(sim.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /oauth/token',
      'GET /v1/settings',
      'GET /v1/settings',
    ]);
  });

  it("a secret still holding the stack's placeholder: says to put the real credentials in it", async () => {
    secrets.setSecret(
      SECRET_ID,
      JSON.stringify({ client_id: 'REPLACE_WITH_ECOURTDATE_CLIENT_ID', client_secret: 'generated' }),
    );

    const run = await check();

    expect(run.status).toBe(1);
    expect(run.stdout).toContain('still holds the placeholder the stack created');
    expect(run.stdout).toContain('put-secret-value');
    expect(sim.requests).toHaveLength(0);
  });

  it('a secret that does not exist', async () => {
    const run = await relay(
      'check-credentials',
      '--secret-id',
      'no/such/secret',
      '--secrets-endpoint-url',
      secrets.url,
      '--ecourtdate-url',
      sim.url,
    );

    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/FAIL secret: cannot read secret no\/such\/secret: ResourceNotFoundException/);
    expect(run.stdout).toContain('No such secret in this account and region');
  });

  it('an API that refuses connections: names the cause and the host, and what to check', async () => {
    const closed = sim.url;
    await sim.close();

    const run = await relay(
      'check-credentials',
      '--secret-id',
      SECRET_ID,
      '--secrets-endpoint-url',
      secrets.url,
      '--ecourtdate-url',
      closed,
    );

    expect(run.status).toBe(1);
    const host = new URL(closed).host;
    expect(run.stdout).toMatch(
      /^FAIL token: no answer: the connection was refused \(ECONNREFUSED\) calling http:\/\/127\.0\.0\.1:\d+\/oauth\/token$/m,
    );
    expect(run.stdout).toContain(
      `Nothing accepts connections at ${host}: check the base URL's host and port.`,
    );
  });

  it("an API on a port fetch blocks (the Fetch standard's bad ports): names that, not a network fault", async () => {
    const run = await relay(
      'check-credentials',
      '--secret-id',
      SECRET_ID,
      '--secrets-endpoint-url',
      secrets.url,
      '--ecourtdate-url',
      'https://127.0.0.1:9',
    );

    expect(run.status).toBe(1);
    expect(run.stdout).toContain(
      'FAIL token: no answer: fetch refuses to connect to port 9 (a "bad port" of the Fetch standard',
    );
    expect(run.stdout).toContain('fetch never connects to the port of 127.0.0.1:9');
  });
});

describe('check-credentials --stage: the eCourtDate URL the stack was deployed with (CloudFormation mocked)', () => {
  let cloudformation: AwsClientStub<CloudFormationClient>;

  beforeEach(() => {
    cloudformation = mockClient(CloudFormationClient);
  });

  afterEach(() => {
    cloudformation.restore();
  });

  function stackOutputs(outputs: Record<string, string>) {
    cloudformation.on(DescribeStacksCommand, { StackName: 'EcourtdateRelay-staging' }).resolves({
      Stacks: [
        {
          StackName: 'EcourtdateRelay-staging',
          CreationTime: new Date(),
          StackStatus: 'UPDATE_COMPLETE',
          Outputs: Object.entries(outputs).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
        },
      ],
    });
  }

  it(`checks against the ${OUTPUT.ecourtdateBaseUrl} output, and says so`, async () => {
    stackOutputs({ [OUTPUT.secretName]: SECRET_ID, [OUTPUT.ecourtdateBaseUrl]: sim.url });

    const run = await relay('check-credentials', '--stage', 'staging', '--secrets-endpoint-url', secrets.url);

    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`API: ${sim.url} (from the stack output EcourtdateBaseUrl;`);
    expect(sim.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /oauth/token',
      'GET /v1/settings',
    ]);
  });

  it(`a stack deployed before the ${OUTPUT.ecourtdateBaseUrl} output: says to deploy or name the URL, exit 2`, async () => {
    stackOutputs({ [OUTPUT.secretName]: SECRET_ID });

    const run = await relay('check-credentials', '--stage', 'staging', '--secrets-endpoint-url', secrets.url);

    expect(run.status).toBe(2);
    expect(run.stderr).toContain(
      'stack EcourtdateRelay-staging has no EcourtdateBaseUrl output: deploy this version',
    );
    expect(run.stderr).toContain('--ecourtdate-url');
    expect(sim.requests).toHaveLength(0);
  });
});
