import { GetSecretValueCommand, ResourceNotFoundException } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { CredentialsSource, parseCredentials } from '#shared/ecourtdate/credentials.ts';
import { CredentialsError } from '#shared/errors.ts';
import {
  CLIENT_ID,
  CLIENT_SECRET,
  fakeClock,
  ROTATED_CLIENT_SECRET,
  SECRET_ID,
  secretReads,
  secretString,
  secretsManager,
} from '#test/helpers/unit-factories.ts';

const TTL_MS = 300_000;

function source(values?: (string | undefined)[]) {
  const clock = fakeClock();
  const { client, mock } = secretsManager(values);
  const credentials = new CredentialsSource({ client, secretId: SECRET_ID, ttlMs: TTL_MS, now: clock.now });
  return { clock, mock, credentials };
}

async function credentialsErrorOf(promise: Promise<unknown>): Promise<CredentialsError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof CredentialsError)) throw new Error(`expected a CredentialsError, got ${error}`);
  return error;
}

describe('CredentialsSource', () => {
  it('reads the secret by its id and returns the client credentials', async () => {
    const { credentials, mock } = source();

    expect(await credentials.get()).toEqual({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
    expect(mock.commandCalls(GetSecretValueCommand)[0]?.args[0].input).toEqual({ SecretId: SECRET_ID });
  });

  it('reads the secret once and serves it from cache within the TTL', async () => {
    const { credentials, mock, clock } = source();
    await credentials.get();
    clock.advance(TTL_MS - 1);

    await credentials.get();

    expect(secretReads(mock)).toBe(1);
    expect(credentials.reads).toBe(1);
  });

  it('re-reads the secret once the TTL has passed', async () => {
    const { credentials, mock, clock } = source([
      secretString(),
      secretString({ client_secret: ROTATED_CLIENT_SECRET }),
    ]);
    await credentials.get();
    clock.advance(TTL_MS);

    const second = await credentials.get();

    expect(secretReads(mock)).toBe(2);
    expect(second.clientSecret).toBe(ROTATED_CLIENT_SECRET);
  });

  it('re-reads at once with refresh: true, and caches what it read', async () => {
    const { credentials, mock } = source([
      secretString(),
      secretString({ client_secret: ROTATED_CLIENT_SECRET }),
    ]);
    await credentials.get();

    const refreshed = await credentials.get({ refresh: true });
    const cached = await credentials.get();

    expect(refreshed.clientSecret).toBe(ROTATED_CLIENT_SECRET);
    expect(cached.clientSecret).toBe(ROTATED_CLIENT_SECRET);
    expect(secretReads(mock)).toBe(2);
  });

  it('shares one read between concurrent callers', async () => {
    const { credentials, mock } = source();

    const all = await Promise.all(Array.from({ length: 10 }, () => credentials.get()));

    expect(secretReads(mock)).toBe(1);
    expect(new Set(all.map((c) => c.clientSecret))).toEqual(new Set([CLIENT_SECRET]));
  });

  it('shares one read between concurrent refreshing callers', async () => {
    const { credentials, mock } = source();
    await credentials.get();

    await Promise.all(Array.from({ length: 5 }, () => credentials.get({ refresh: true })));

    expect(secretReads(mock)).toBe(2);
  });

  it('does not cache a failed read: the next call tries again', async () => {
    const { credentials, mock } = source();
    mock
      .on(GetSecretValueCommand)
      .rejectsOnce(new ResourceNotFoundException({ message: 'not found', $metadata: {} }))
      .resolves({ SecretString: secretString(), $metadata: {} });

    await credentialsErrorOf(credentials.get());
    const second = await credentials.get();

    expect(second.clientId).toBe(CLIENT_ID);
    expect(secretReads(mock)).toBe(2);
  });

  it('turns ResourceNotFoundException into a CredentialsError naming the secret and the error', async () => {
    const { credentials, mock } = source();
    const sdkError = new ResourceNotFoundException({
      message: "Secrets Manager can't find the specified secret.",
      $metadata: { httpStatusCode: 400 },
    });
    mock.on(GetSecretValueCommand).rejects(sdkError);

    const error = await credentialsErrorOf(credentials.get());

    expect(error.message).toBe(
      `could not read the eCourtDate client secret ${SECRET_ID}: ResourceNotFoundException`,
    );
    expect(error.cause).toBe(sdkError);
  });

  it('turns AccessDeniedException into a CredentialsError naming the secret and the error', async () => {
    const { credentials, mock } = source();
    const sdkError = Object.assign(
      new Error('User is not authorized to perform secretsmanager:GetSecretValue'),
      {
        name: 'AccessDeniedException',
      },
    );
    mock.on(GetSecretValueCommand).rejects(sdkError);

    const error = await credentialsErrorOf(credentials.get());

    expect(error.message).toContain(SECRET_ID);
    expect(error.message).toContain('AccessDeniedException');
  });

  it('rejects a secret with no SecretString (a binary secret)', async () => {
    const { credentials } = source([undefined]);

    const error = await credentialsErrorOf(credentials.get());

    expect(error.message).toBe(`secret ${SECRET_ID} has no SecretString`);
  });
});

describe('parseCredentials', () => {
  const errorOf = (secret: string | undefined): CredentialsError => {
    try {
      parseCredentials(secret, SECRET_ID);
    } catch (error) {
      if (error instanceof CredentialsError) return error;
      throw error;
    }
    throw new Error('expected a CredentialsError, but the secret was accepted');
  };

  it('reads client_id and client_secret', () => {
    expect(parseCredentials(secretString(), SECRET_ID)).toEqual({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
    });
  });

  // Regression: a secret saved by a Windows editor starts with a byte order mark, and was
  // "not JSON" on every job.
  it('reads a secret that starts with a UTF-8 byte order mark', () => {
    expect(parseCredentials(`\uFEFF${secretString()}`, SECRET_ID)).toEqual({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
    });
  });

  it('reads a pretty-printed secret that starts with a byte order mark', () => {
    const pretty = JSON.stringify({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET }, null, 2);

    expect(parseCredentials(`\uFEFF${pretty}\r\n`, SECRET_ID).clientSecret).toBe(CLIENT_SECRET);
  });

  it('rejects a secret that is only a byte order mark, without quoting anything', () => {
    expect(errorOf('\uFEFF').message).toContain(`secret ${SECRET_ID} is not JSON`);
  });

  it('rejects a secret that is not JSON, without quoting it', () => {
    const error = errorOf(`client_id=${CLIENT_ID}&client_secret=${CLIENT_SECRET}`);

    expect(error.message).toContain(`secret ${SECRET_ID} is not JSON`);
    expect(error.message).not.toContain(CLIENT_SECRET);
    expect(error.message).not.toContain(CLIENT_ID);
  });

  it.each([
    ['a JSON string', JSON.stringify(CLIENT_SECRET)],
    ['JSON null', 'null'],
  ])('rejects %s, without quoting it', (_case, secret) => {
    const error = errorOf(secret);

    expect(error.message).toContain('not a JSON object');
    expect(error.message).not.toContain(CLIENT_SECRET);
  });

  it('rejects a missing client_id, naming the field and not the secret', () => {
    const error = errorOf(secretString({ client_id: undefined }));

    expect(error.message).toBe(`secret ${SECRET_ID}: field client_id is missing or empty`);
    expect(error.message).not.toContain(CLIENT_SECRET);
  });

  it('rejects an empty client_secret, naming the field and not the client id', () => {
    const error = errorOf(secretString({ client_secret: '' }));

    expect(error.message).toBe(`secret ${SECRET_ID}: field client_secret is missing or empty`);
    expect(error.message).not.toContain(CLIENT_ID);
  });

  it('rejects a client_secret that is not a string, without quoting it', () => {
    const error = errorOf(secretString({ client_secret: { value: CLIENT_SECRET } }));

    expect(error.message).toContain('client_secret');
    expect(error.message).not.toContain(CLIENT_SECRET);
  });

  it('rejects a blank client_id', () => {
    expect(errorOf(secretString({ client_id: '   ' })).message).toContain('client_id');
  });
});
