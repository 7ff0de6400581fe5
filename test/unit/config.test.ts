import { describe, expect, it } from 'vitest';
import {
  DEFAULTS,
  ENV,
  isLoopbackHost,
  loadSenderConfig,
  MAX_HIDE_SECONDS,
  parseBaseUrl,
} from '#shared/config.ts';
import { ConfigError } from '#shared/errors.ts';

/** The required variables, set to production-like values. */
function requiredEnv(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    ECOURTDATE_BASE_URL: 'https://staging.api.ecourtdate.com',
    ECOURTDATE_SECRET_ID:
      'arn:aws:secretsmanager:us-east-1:123456789012:secret:ecourtdate-relay/staging-AbCdEf',
    SEND_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/ecourtdate-send',
    DEAD_LETTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/ecourtdate-send-dlq',
    LEDGER_TABLE_NAME: 'EcourtdateRelay-staging-Ledger',
    ...overrides,
  };
}

/** Loads `env` and returns the ConfigError it must raise; fails the test if it raises none. */
function configErrorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but the configuration was accepted');
}

function expectRejected(env: Record<string, string | undefined>, variable: string): ConfigError {
  const error = configErrorOf(() => loadSenderConfig(env));
  expect(error.variable).toBe(variable);
  expect(error.message.startsWith(`${variable}: `)).toBe(true);
  return error;
}

describe('loadSenderConfig', () => {
  it('fills every tunable setting with its documented default', () => {
    const config = loadSenderConfig(requiredEnv());

    expect(config).toEqual({
      baseUrl: new URL('https://staging.api.ecourtdate.com'),
      secretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ecourtdate-relay/staging-AbCdEf',
      sendQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/ecourtdate-send',
      deadLetterQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/ecourtdate-send-dlq',
      ledgerTableName: 'EcourtdateRelay-staging-Ledger',
      ledgerTtlSeconds: 30 * 86_400,
      requestsPerMinute: 900,
      fallbackRequestsPerMinute: 0,
      backoffSeconds: [60, 120, 240, 480],
      backoffJitter: 0.1,
      maxAttempts: 5,
      serverErrorMaxAttempts: 2,
      serverErrorRetrySeconds: 60,
      rateLimitWaitSeconds: 60,
      rateLimitHintMaxSeconds: 300,
      maxReceiveCount: 50,
      webhooksEnabled: false,
      maxAgeSeconds: 86_400,
      duplicateWindowSeconds: 1800,
      httpTimeoutMs: 10_000,
      secretTtlSeconds: 300,
      tokenRenewBeforeSeconds: 300,
      timeScale: 1,
      endpoints: { sqs: undefined, secretsManager: undefined, dynamodb: undefined },
    });
  });

  it('does not share the default backoff array with DEFAULTS', () => {
    const config = loadSenderConfig(requiredEnv());

    expect(config.backoffSeconds).toEqual(DEFAULTS.backoffSeconds);
    expect(config.backoffSeconds).not.toBe(DEFAULTS.backoffSeconds);
  });

  it.each([ENV.baseUrl, ENV.secretId, ENV.sendQueueUrl, ENV.deadLetterQueueUrl, ENV.ledgerTableName])(
    'fails naming %s when it is missing',
    (variable) => {
      const error = expectRejected(requiredEnv({ [variable]: undefined }), variable);
      expect(error.message).toBe(`${variable}: is required but not set`);
    },
  );

  it.each([ENV.baseUrl, ENV.secretId, ENV.sendQueueUrl, ENV.deadLetterQueueUrl, ENV.ledgerTableName])(
    'treats a blank %s as missing',
    (variable) => {
      expectRejected(requiredEnv({ [variable]: '   ' }), variable);
    },
  );

  it.each([ENV.sendQueueUrl, ENV.deadLetterQueueUrl])('fails naming %s when it is not a URL', (variable) => {
    expectRejected(requiredEnv({ [variable]: 'ecourtdate-send' }), variable);
  });

  it('reads every tunable setting from its variable', () => {
    const config = loadSenderConfig(
      requiredEnv({
        REQUESTS_PER_MINUTE: '450',
        BACKOFF_SECONDS: '30,90',
        BACKOFF_JITTER: '0.25',
        MAX_ATTEMPTS: '7',
        SERVER_ERROR_MAX_ATTEMPTS: '3',
        SERVER_ERROR_RETRY_SECONDS: '30',
        RATE_LIMIT_WAIT_SECONDS: '90',
        RATE_LIMIT_HINT_MAX_SECONDS: '120',
        MAX_RECEIVE_COUNT: '10',
        MAX_AGE_SECONDS: '3600',
        HTTP_TIMEOUT_MS: '5000',
        SECRET_TTL_SECONDS: '0',
        TOKEN_RENEW_BEFORE_SECONDS: '120',
        TIME_SCALE: '60',
        LEDGER_TTL_DAYS: '7',
      }),
    );

    expect(config).toMatchObject({
      requestsPerMinute: 450,
      backoffSeconds: [30, 90],
      backoffJitter: 0.25,
      maxAttempts: 7,
      serverErrorMaxAttempts: 3,
      serverErrorRetrySeconds: 30,
      rateLimitWaitSeconds: 90,
      rateLimitHintMaxSeconds: 120,
      maxReceiveCount: 10,
      maxAgeSeconds: 3600,
      httpTimeoutMs: 5000,
      secretTtlSeconds: 0,
      tokenRenewBeforeSeconds: 120,
      timeScale: 60,
      ledgerTtlSeconds: 7 * 86_400,
    });
  });

  it('uses the default for a numeric variable that is set but blank', () => {
    expect(loadSenderConfig(requiredEnv({ REQUESTS_PER_MINUTE: ' ' })).requestsPerMinute).toBe(900);
  });

  it.each([
    [ENV.requestsPerMinute, '0'],
    [ENV.requestsPerMinute, '100001'],
    [ENV.maxAttempts, '0'],
    [ENV.maxAttempts, '101'],
    [ENV.serverErrorMaxAttempts, '0'],
    [ENV.serverErrorRetrySeconds, '-1'],
    [ENV.rateLimitWaitSeconds, '-1'],
    [ENV.rateLimitHintMaxSeconds, '59'],
    [ENV.maxReceiveCount, '3'],
    [ENV.maxReceiveCount, '1001'],
    [ENV.maxAgeSeconds, '1209601'],
    [ENV.httpTimeoutMs, '0'],
    [ENV.secretTtlSeconds, '86401'],
    [ENV.tokenRenewBeforeSeconds, '3001'],
    [ENV.timeScale, '0'],
    [ENV.backoffJitter, '1.5'],
  ])('fails naming %s when it is out of range (%s)', (variable, value) => {
    const error = expectRejected(requiredEnv({ [variable]: value }), variable);
    expect(error.message).toContain('expected a value from');
  });

  it.each([
    [ENV.requestsPerMinute, '900.5'],
    [ENV.maxAttempts, 'five'],
    [ENV.httpTimeoutMs, '10s'],
    [ENV.timeScale, 'Infinity'],
    [ENV.backoffJitter, 'NaN'],
  ])('fails naming %s when it is not a usable number (%s)', (variable, value) => {
    const error = expectRejected(requiredEnv({ [variable]: value }), variable);
    expect(error.message).toContain(`got "${value}"`);
  });

  // SQS holds a received message for at most 12 h counted from the receive; MAX_HIDE_SECONDS is what is left
  // once the batching window and the invocation have passed.
  it.each([
    ENV.serverErrorRetrySeconds,
    ENV.rateLimitWaitSeconds,
    ENV.rateLimitHintMaxSeconds,
    ENV.backoffSeconds,
  ])('refuses %s above MAX_HIDE_SECONDS, the longest SQS can still hide a received record', (variable) => {
    const error = expectRejected(requiredEnv({ [variable]: String(MAX_HIDE_SECONDS + 1) }), variable);
    expect(error.message).toContain(`to ${MAX_HIDE_SECONDS}`);
  });

  it.each([ENV.serverErrorRetrySeconds, ENV.rateLimitWaitSeconds, ENV.rateLimitHintMaxSeconds])(
    'accepts %s of exactly MAX_HIDE_SECONDS',
    (variable) => {
      expect(() => loadSenderConfig(requiredEnv({ [variable]: String(MAX_HIDE_SECONDS) }))).not.toThrow();
    },
  );

  it('accepts a fractional BACKOFF_JITTER within 0-1', () => {
    expect(loadSenderConfig(requiredEnv({ BACKOFF_JITTER: '0.5' })).backoffJitter).toBe(0.5);
  });

  describe('BACKOFF_SECONDS', () => {
    it('reads a comma list, tolerating spaces', () => {
      expect(loadSenderConfig(requiredEnv({ BACKOFF_SECONDS: ' 30, 90 ,300 ' })).backoffSeconds).toEqual([
        30, 90, 300,
      ]);
    });

    it('reads a single step', () => {
      expect(loadSenderConfig(requiredEnv({ BACKOFF_SECONDS: '45' })).backoffSeconds).toEqual([45]);
    });

    it('accepts 0 s and the longest hide, MAX_HIDE_SECONDS', () => {
      expect(
        loadSenderConfig(requiredEnv({ BACKOFF_SECONDS: `0,${MAX_HIDE_SECONDS}` })).backoffSeconds,
      ).toEqual([0, MAX_HIDE_SECONDS]);
    });

    it.each(['60,abc', '-60', '60,1.5', '60,43200', 'sixty'])('rejects %j, naming the variable', (value) => {
      expectRejected(requiredEnv({ BACKOFF_SECONDS: value }), ENV.backoffSeconds);
    });

    // Regression test for a fixed bug (shared/config.ts, backoff()): Number('') is 0, so an empty item becomes a 0-second step, i.e.
    // an immediate retry, instead of a configuration error.
    it.each(['60,,120', '60,120,'])('rejects %j: an empty item is not a number of seconds', (value) => {
      expectRejected(requiredEnv({ BACKOFF_SECONDS: value }), ENV.backoffSeconds);
    });
  });

  describe('endpoints', () => {
    it('reads the SQS and Secrets Manager emulator endpoints', () => {
      const config = loadSenderConfig(
        requiredEnv({
          AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:4566',
          AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://127.0.0.1:4584',
        }),
      );

      expect(config.endpoints).toEqual({
        sqs: 'http://127.0.0.1:4566',
        secretsManager: 'http://127.0.0.1:4584',
      });
    });

    it('leaves a blank endpoint unset', () => {
      expect(loadSenderConfig(requiredEnv({ AWS_ENDPOINT_URL_SQS: '' })).endpoints.sqs).toBeUndefined();
    });

    it.each([ENV.sqsEndpoint, ENV.secretsManagerEndpoint])(
      'fails naming %s when it is not a URL',
      (variable) => {
        expectRejected(requiredEnv({ [variable]: 'localhost-4566' }), variable);
      },
    );
  });

  it('validates the base URL through parseBaseUrl, naming ECOURTDATE_BASE_URL', () => {
    expectRejected(requiredEnv({ ECOURTDATE_BASE_URL: 'http://api.ecourtdate.com' }), ENV.baseUrl);
  });
});

describe('parseBaseUrl', () => {
  const parse = (raw: string) => parseBaseUrl(raw, ENV.baseUrl);
  const rejection = (raw: string) => configErrorOf(() => parse(raw));

  it.each(['https://api.ecourtdate.com', 'https://staging.api.ecourtdate.com', 'https://10.0.0.5:8443'])(
    'accepts https to any host: %s',
    (raw) => {
      expect(parse(raw).href).toBe(new URL(raw).href);
    },
  );

  it.each(['http://127.0.0.1:8080', 'http://127.10.20.30', 'http://localhost:3000', 'http://[::1]:3000'])(
    'accepts plain http to the loopback host of %s',
    (raw) => {
      expect(parse(raw).protocol).toBe('http:');
    },
  );

  it.each([
    'http://api.ecourtdate.com',
    'http://10.0.0.5',
    'http://localhost.example.com',
    'http://127.0.0.1.nip.io',
    'http://0.0.0.0:3000',
  ])('rejects plain http to the non-loopback host of %s', (raw) => {
    const error = rejection(raw);
    expect(error.variable).toBe(ENV.baseUrl);
    expect(error.message).toContain('https://');
  });

  it.each(['ftp://api.ecourtdate.com', 'ws://127.0.0.1:3000'])('rejects the scheme of %s', (raw) => {
    expect(rejection(raw).variable).toBe(ENV.baseUrl);
  });

  it('rejects a URL that is not absolute, naming the variable', () => {
    expect(rejection('api.ecourtdate.com').variable).toBe(ENV.baseUrl);
  });

  it('rejects credentials in the URL without repeating them', () => {
    const error = rejection('https://relay:s3cr3t-pass@api.ecourtdate.com');

    expect(error.message).toBe(`${ENV.baseUrl}: must not carry credentials; they belong in the secret`);
    expect(error.message).not.toContain('s3cr3t-pass');
  });

  // Regression test for a fixed bug (shared/config.ts, parseBaseUrl): when new URL() throws, the error quotes the raw value, so a
  // malformed URL that carries credentials puts them in the cold-start error (and its log line).
  it('rejects an unparseable URL without repeating credentials it carries', () => {
    const error = rejection('https://relay:s3cr3t-pass@api ecourtdate.com');

    expect(error.variable).toBe(ENV.baseUrl);
    expect(error.message).not.toContain('s3cr3t-pass');
  });

  it.each(['https://api.ecourtdate.com/?agency=county-a', 'https://api.ecourtdate.com/#v1'])(
    'rejects a query string or fragment: %s',
    (raw) => {
      expect(rejection(raw).message).toContain('without query string or fragment');
    },
  );

  it.each([
    ['https://api.ecourtdate.com/county-a/', '/county-a'],
    ['https://api.ecourtdate.com/county-a//', '/county-a'],
    ['https://api.ecourtdate.com/county-a', '/county-a'],
  ])('trims the trailing slash of %s', (raw, pathname) => {
    expect(parse(raw).pathname).toBe(pathname);
  });
});

describe('isLoopbackHost', () => {
  it.each(['127.0.0.1', '127.255.0.9', 'localhost', '::1', '[::1]'])('%s is loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  it.each([
    '128.0.0.1',
    '10.0.0.1',
    '0.0.0.0',
    'localhost.example.com',
    '127.0.0.1.nip.io',
    '::2',
    'example.com',
  ])('%s is not loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });
});
