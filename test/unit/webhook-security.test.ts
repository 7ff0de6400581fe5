import { describe, expect, it } from 'vitest';
import { ConfigError } from '#shared/errors.ts';
import { parseIpAllowlist } from '#shared/webhook/allowlist.ts';
import { loadWebhookConfig, MAX_BODY_BYTES_LIMIT } from '#shared/webhook/config.ts';
import { WebhookSecretError } from '#shared/webhook/errors.ts';
import { isJsonMediaType } from '#shared/webhook/request.ts';
import { parseWebhookSecret } from '#shared/webhook/secret.ts';
import { signBody, verifySignature } from '#shared/webhook/signature.ts';

const BODY = Buffer.from('{"uuid":"e1"}');

describe('verifySignature', () => {
  it('accepts the hex HMAC-SHA256 of the bytes under the secret', () => {
    expect(verifySignature(signBody('s3cret', BODY), BODY, ['s3cret'])).toBe(true);
  });

  it('accepts a signature under the previous secret during a rotation', () => {
    expect(verifySignature(signBody('old', BODY), BODY, ['new', 'old'])).toBe(true);
  });

  it.each([
    ['another secret', signBody('other', BODY)],
    ['a truncated digest', signBody('s3cret', BODY).slice(0, 63)],
    ['a non-hex value', 'z'.repeat(64)],
    ['an empty value', ''],
  ])('refuses %s', (_, header) => {
    expect(verifySignature(header, BODY, ['s3cret'])).toBe(false);
  });

  it('refuses a body changed by one byte', () => {
    expect(verifySignature(signBody('s3cret', BODY), Buffer.from('{"uuid":"e2"}'), ['s3cret'])).toBe(false);
  });
});

describe('parseWebhookSecret', () => {
  it('reads {"secret"} and {"previous_secret"}', () => {
    expect(parseWebhookSecret('{"secret":"a","previous_secret":"b"}', 'id')).toEqual({
      current: 'a',
      previous: 'b',
    });
  });

  it('takes a value that is not a JSON object as the secret itself', () => {
    expect(parseWebhookSecret('plain-secret', 'id')).toEqual({ current: 'plain-secret' });
  });

  it('refuses a JSON object without a secret, naming the field and not the value', () => {
    expect(() => parseWebhookSecret('{"secrte":"leaked-value"}', 'relay/webhook')).toThrowError(
      WebhookSecretError,
    );
    expect(() => parseWebhookSecret('{"secrte":"leaked-value"}', 'relay/webhook')).not.toThrowError(
      /leaked-value/,
    );
  });
});

describe('parseIpAllowlist', () => {
  it('matches addresses and CIDR ranges, IPv4 and IPv6', () => {
    const list = parseIpAllowlist('203.0.113.10, 198.51.100.0/24, 2001:db8::/32');

    expect(list.allows('203.0.113.10')).toBe(true);
    expect(list.allows('198.51.100.200')).toBe(true);
    expect(list.allows('2001:db8::1')).toBe(true);
    expect(list.allows('203.0.113.11')).toBe(false);
    expect(list.allows(undefined)).toBe(false);
  });

  it('is off when empty', () => {
    expect(parseIpAllowlist(' ').enabled).toBe(false);
    expect(parseIpAllowlist('').allows(undefined)).toBe(true);
  });

  it.each(['203.0.113', '10.0.0.0/33', 'example.com'])('refuses %s', (entry) => {
    expect(() => parseIpAllowlist(entry)).toThrowError(RangeError);
  });
});

describe('isJsonMediaType', () => {
  it.each([
    ['application/json', true],
    ['Application/JSON; charset=utf-8', true],
    ['application/vnd.ecd+json', true],
    ['text/plain', false],
    ['application/x-www-form-urlencoded', false],
    [undefined, false],
  ])('%s -> %s', (type, expected) => {
    expect(isJsonMediaType(type)).toBe(expected);
  });
});

describe('loadWebhookConfig', () => {
  const base = { WEBHOOK_SECRET_ID: 's', EVENT_BUS_NAME: 'b', LEDGER_TABLE_NAME: 't' };

  it('applies the defaults', () => {
    expect(loadWebhookConfig(base)).toMatchObject({
      maxBodyBytes: 65_536,
      leaseSeconds: 30,
      dedupeTtlSeconds: 604_800,
    });
  });

  it('names a missing variable', () => {
    expect(() => loadWebhookConfig({ ...base, EVENT_BUS_NAME: '' })).toThrowError(/EVENT_BUS_NAME/);
  });

  it('refuses a body limit that would not fit an EventBridge entry', () => {
    expect(() =>
      loadWebhookConfig({ ...base, WEBHOOK_MAX_BODY_BYTES: String(MAX_BODY_BYTES_LIMIT + 1) }),
    ).toThrowError(ConfigError);
  });

  it('names a bad allowlist entry', () => {
    expect(() => loadWebhookConfig({ ...base, WEBHOOK_ALLOWED_IPS: '1.2.3' })).toThrowError(
      /WEBHOOK_ALLOWED_IPS.*1\.2\.3/,
    );
  });
});
