import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { CachedSecret } from '#shared/clients/cached-secret.ts';
import { fakeClock, SECRET_ID, secretReads, secretsManager } from '#test/helpers/unit-factories.ts';

const TTL_MS = 300_000;

/** A secret whose value is its SecretString; 'bad' does not parse. */
function cached(values: (string | undefined)[]) {
  const clock = fakeClock();
  const { client, mock } = secretsManager(values);
  const seen: string[] = [];
  const secret = new CachedSecret<string>({
    client,
    secretId: SECRET_ID,
    ttlMs: TTL_MS,
    now: clock.now,
    parse: (text, id) => {
      if (text === 'bad') throw new Error(`secret ${id} does not parse`);
      return text ?? '';
    },
    readError: (name, cause) => new Error(`could not read ${SECRET_ID}: ${name}`, { cause }),
    onRead: (value) => seen.push(value),
  });
  return { clock, mock, secret, seen };
}

describe('CachedSecret', () => {
  it('reads once per ttl, and concurrent callers share the read', async () => {
    const { clock, mock, secret } = cached(['v1', 'v2']);

    expect(await Promise.all([secret.get(), secret.get()])).toEqual(['v1', 'v1']);
    clock.advance(TTL_MS - 1);
    expect(await secret.get()).toBe('v1');
    clock.advance(1);
    expect(await secret.get()).toBe('v2');
    expect(secretReads(mock)).toBe(2);
    expect(secret.reads).toBe(2);
  });

  it('re-reads a value older than maxAgeMs, and at once with 0', async () => {
    const { clock, mock, secret } = cached(['v1', 'v2', 'v3']);
    await secret.get();
    clock.advance(1_000);

    expect(await secret.get(5_000)).toBe('v1');
    expect(await secret.get(1_000)).toBe('v2');
    expect(await secret.get(0)).toBe('v3');
    expect(secretReads(mock)).toBe(3);
  });

  it('keeps the last value when a later read does not parse, and calls onRead only with parsed values', async () => {
    const { clock, secret, seen } = cached(['v1', 'bad']);
    await secret.get();
    clock.advance(TTL_MS);

    await expect(secret.get()).rejects.toThrow(`secret ${SECRET_ID} does not parse`);
    expect(secret.lastKnown).toBe('v1');
    expect(seen).toEqual(['v1']);
  });

  it("turns a failed GetSecretValue into readError's error, from the AWS error's name only", async () => {
    const { mock, secret } = cached(['v1']);
    const failure = Object.assign(new Error('AccessDenied for arn:aws:secretsmanager:...:secret:x'), {
      name: 'AccessDeniedException',
    });
    mock.on(GetSecretValueCommand).rejects(failure);

    const error = (await secret.get().catch((e: unknown) => e)) as Error;
    expect(error.message).toBe(`could not read ${SECRET_ID}: AccessDeniedException`);
    expect(error.cause).toBe(failure);
    expect(secret.lastKnown).toBeUndefined();
  });
});
