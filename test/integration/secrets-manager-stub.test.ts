import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type SecretsManagerStub,
  startSecretsManagerStub,
  stubSecretArn,
} from '#local/emulators/secrets-manager-stub.ts';

const SECRET_NAME = 'relay/ecourtdate-credentials';
const SECRET_VALUE = JSON.stringify({ client_id: 'sim-client', client_secret: 'sim-secret' });

describe('Secrets Manager stub, driven by the real SDK client', () => {
  let stub: SecretsManagerStub;
  let client: SecretsManagerClient;

  beforeEach(async () => {
    stub = await startSecretsManagerStub({ secrets: { [SECRET_NAME]: SECRET_VALUE } });
    client = new SecretsManagerClient({
      endpoint: stub.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
  });

  afterEach(async () => {
    client.destroy();
    await stub.close();
  });

  it('returns the secret string, ARN, current version stage and a Date for GetSecretValue by name', async () => {
    const out = await client.send(new GetSecretValueCommand({ SecretId: SECRET_NAME }));

    expect(out.SecretString).toBe(SECRET_VALUE);
    expect(out.Name).toBe(SECRET_NAME);
    expect(out.ARN).toBe(`arn:aws:secretsmanager:us-east-1:000000000000:secret:${SECRET_NAME}-AbCdEf`);
    expect(out.VersionStages).toEqual(['AWSCURRENT']);
    expect(out.VersionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(out.CreatedDate).toBeInstanceOf(Date);
    expect(stub.calls).toEqual([{ target: 'secretsmanager.GetSecretValue', secretId: SECRET_NAME }]);
  });

  it('finds the secret by the ARN it reports', async () => {
    const out = await client.send(new GetSecretValueCommand({ SecretId: stubSecretArn(SECRET_NAME) }));

    expect(out.SecretString).toBe(SECRET_VALUE);
  });

  it('surfaces an unknown secret as the SDK ResourceNotFoundException', async () => {
    const error = await client.send(new GetSecretValueCommand({ SecretId: 'nope' })).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ResourceNotFoundException);
    expect(error).toMatchObject({
      name: 'ResourceNotFoundException',
      message: "Secrets Manager can't find the specified secret.",
      $metadata: { httpStatusCode: 400 },
    });
  });

  it('serves the new value and a new version id after PutSecretValue', async () => {
    const before = await client.send(new GetSecretValueCommand({ SecretId: SECRET_NAME }));

    const put = await client.send(
      new PutSecretValueCommand({ SecretId: SECRET_NAME, SecretString: 'rotated' }),
    );
    const after = await client.send(new GetSecretValueCommand({ SecretId: SECRET_NAME }));

    expect(after.SecretString).toBe('rotated');
    expect(after.VersionId).toBe(put.VersionId);
    expect(after.VersionId).not.toBe(before.VersionId);
  });

  it('rejects PutSecretValue for a secret that does not exist, as AWS does', async () => {
    const error = await client
      .send(new PutSecretValueCommand({ SecretId: 'missing', SecretString: 'x' }))
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ResourceNotFoundException);
  });

  it('serves a value given to setSecret on the next call', async () => {
    stub.setSecret('other', 'value-2');

    const out = await client.send(new GetSecretValueCommand({ SecretId: 'other' }));

    expect(out.SecretString).toBe('value-2');
  });

  it('fails exactly the next N GetSecretValue calls with the injected error type, then recovers', async () => {
    stub.failNext(2, 'InternalServiceError');
    const attempt = () =>
      client.send(new GetSecretValueCommand({ SecretId: SECRET_NAME })).catch((e: unknown) => e);

    const first = await attempt();
    const second = await attempt();
    const third = await attempt();

    expect(first).toMatchObject({ name: 'InternalServiceError', $metadata: { httpStatusCode: 500 } });
    expect(second).toMatchObject({ name: 'InternalServiceError' });
    expect(third).toMatchObject({ SecretString: SECRET_VALUE });
  });

  it('fails only the calls for the secret failNext names, leaving another secret readable', async () => {
    stub.setSecret('relay/other', JSON.stringify({ secret: 'other' }));
    stub.failNext(1, 'InternalServiceError', { secretId: SECRET_NAME });
    const attempt = (secretId: string) =>
      client.send(new GetSecretValueCommand({ SecretId: secretId })).catch((e: unknown) => e);

    const other = await attempt('relay/other');
    const named = await attempt(SECRET_NAME);
    const again = await attempt(SECRET_NAME);

    expect(other).toMatchObject({ SecretString: JSON.stringify({ secret: 'other' }) });
    expect(named).toMatchObject({ name: 'InternalServiceError' });
    expect(again).toMatchObject({ SecretString: SECRET_VALUE });
  });

  it('answers an unsupported operation with UnknownOperationException', async () => {
    const response = await fetch(stub.url, {
      method: 'POST',
      headers: {
        'x-amz-target': 'secretsmanager.DeleteSecret',
        'content-type': 'application/x-amz-json-1.1',
      },
      body: JSON.stringify({ SecretId: SECRET_NAME }),
    });

    expect(response.status).toBe(400);
    expect(response.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
    expect(await response.json()).toMatchObject({ __type: 'UnknownOperationException' });
  });

  it('never records the secret value in its call log', async () => {
    await client.send(
      new PutSecretValueCommand({ SecretId: SECRET_NAME, SecretString: 'super-secret-value' }),
    );
    await client.send(new GetSecretValueCommand({ SecretId: SECRET_NAME }));

    expect(JSON.stringify(stub.calls)).not.toContain('super-secret-value');
    expect(stub.calls.map((call) => call.target)).toEqual([
      'secretsmanager.PutSecretValue',
      'secretsmanager.GetSecretValue',
    ]);
  });
});
