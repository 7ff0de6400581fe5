import { describe, expect, it } from 'vitest';
import {
  CRASH_RECOVERY_MARGIN_SECONDS,
  crashRecoverySeconds,
  loadStageConfig,
  PRODUCTION_BASE_URLS,
  requiredFunctionTimeoutSeconds,
  SETTINGS,
  worstCaseBackoffSeconds,
} from '#infra/config.ts';
import { perInstanceRequestsPerMinute, sendQueueVisibilityTimeoutSeconds } from '#infra/stack-contract.ts';
import { DEFAULT_ALARM_THRESHOLDS } from '#shared/alarm-definitions.ts';
import { AWS_CALL_LIMITS, awsCallWorstCaseMs } from '#shared/clients/aws-call-limits.ts';
import { MAX_HIDE_SECONDS } from '#shared/config.ts';
import { ConfigError } from '#shared/errors.ts';

/** Runs `load` and returns the ConfigError it must raise; fails the test if it raises none. */
function configErrorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but the configuration was accepted');
}

const staging = (overrides: Record<string, unknown> = {}) =>
  loadStageConfig({ stage: 'staging', ...overrides });
const production = (overrides: Record<string, unknown> = {}) =>
  loadStageConfig({ stage: 'production', ...overrides });

describe('stage defaults', () => {
  it('gives staging the staging API, two instances and disposable data', () => {
    expect(staging()).toEqual({
      stage: 'staging',
      stackName: 'EcourtdateRelay-staging',
      baseUrl: 'https://staging.api.ecourtdate.com',
      ecourtdateRegion: undefined,
      onCallEmail: undefined,
      onCallHttpsEndpoint: undefined,
      onCallTopicArn: undefined,
      maxConcurrency: 2,
      requestsPerMinute: 900,
      batchSize: 10,
      maxBatchingWindowSeconds: 5,
      backoffSeconds: [60, 120, 240, 480],
      maxAttempts: 5,
      duplicateWindowSeconds: 1800,
      httpTimeoutMs: 10_000,
      functionTimeoutSeconds: 220,
      memorySizeMb: 256,
      maxReceiveCount: 10,
      rateLimitHintMaxSeconds: 300,
      ledgerTtlDays: 30,
      sendQueueRetentionDays: 4,
      deadLetterRetentionDays: 14,
      producerAccounts: [],
      dataKmsKey: { kind: 'none' },
      secret: { kind: 'create', name: 'ecourtdate-relay/staging/api-credentials' },
      eventBusName: undefined,
      publishJobSettled: false,
      traceSubsegments: false,
      eventSources: ['ecourtdate-relay.upstream.staging'],
      logLevel: 'INFO',
      logRetentionDays: 30,
      retainData: false,
      terminationProtection: false,
      alarmThresholds: DEFAULT_ALARM_THRESHOLDS,
      webhook: {
        enabled: false,
        secret: { kind: 'create', name: 'ecourtdate-relay/staging/webhook-signing-key' },
        allowedIps: [],
        maxBodyBytes: 65_536,
        rateLimit: 50,
        burstLimit: 100,
        dedupeDays: 7,
        signatureFailureThreshold: 5,
      },
    });
  });

  it('gives production the multi-region API, five instances, retained data and termination protection', () => {
    expect(production()).toMatchObject({
      stackName: 'EcourtdateRelay-production',
      baseUrl: 'https://api.ecourtdate.com',
      maxConcurrency: 5,
      logRetentionDays: 365,
      retainData: true,
      terminationProtection: true,
      secret: { kind: 'create', name: 'ecourtdate-relay/production/api-credentials' },
    });
  });

  it.each(Object.entries(PRODUCTION_BASE_URLS))('maps ecourtdateRegion=%s to %s', (region, url) => {
    expect(production({ ecourtdateRegion: region })).toMatchObject({
      baseUrl: url,
      ecourtdateRegion: region,
    });
  });

  it('divides the requests/minute budget between the concurrent instances, rounding down', () => {
    expect(perInstanceRequestsPerMinute(staging())).toBe(450);
    expect(perInstanceRequestsPerMinute(production())).toBe(180);
    expect(perInstanceRequestsPerMinute(production({ requestsPerMinute: '948', maxConcurrency: '3' }))).toBe(
      316,
    );
  });
});

describe('overrides', () => {
  it('reads numbers, lists and text from -c strings as from cdk.json values', () => {
    const fromStrings = production({
      maxConcurrency: '10',
      requestsPerMinute: '600',
      backoffSeconds: '30, 90',
      eventSources: 'cms.court-a.production,jms.court-a.production',
      onCallEmail: 'oncall@court.example',
      logLevel: 'debug',
      logRetentionDays: '90',
    });
    const fromJson = production({
      maxConcurrency: 10,
      requestsPerMinute: 600,
      backoffSeconds: [30, 90],
      eventSources: ['cms.court-a.production', 'jms.court-a.production'],
      onCallEmail: 'oncall@court.example',
      logLevel: 'DEBUG',
      logRetentionDays: 90,
    });
    expect(fromStrings).toEqual(fromJson);
    expect(fromStrings).toMatchObject({
      maxConcurrency: 10,
      requestsPerMinute: 600,
      backoffSeconds: [30, 90],
      eventSources: ['cms.court-a.production', 'jms.court-a.production'],
      onCallEmail: 'oncall@court.example',
      logLevel: 'DEBUG',
      logRetentionDays: 90,
    });
  });

  it('accepts an explicit https base URL without a trailing slash', () => {
    expect(production({ baseUrl: 'https://us-east.api.ecourtdate.com/' }).baseUrl).toBe(
      'https://us-east.api.ecourtdate.com',
    );
    expect(production({ baseUrl: 'https://proxy.court.example' }).baseUrl).toBe(
      'https://proxy.court.example',
    );
  });

  it('uses an existing secret by name instead of creating one', () => {
    expect(staging({ existingSecretName: 'court-a/ecourtdate' }).secret).toEqual({
      kind: 'existing',
      name: 'court-a/ecourtdate',
    });
    const key = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    expect(staging({ existingSecretName: 'court-a/ecourtdate', secretKmsKeyArn: key }).secret).toEqual({
      kind: 'existing',
      name: 'court-a/ecourtdate',
      kmsKeyArn: key,
    });
    expect(staging({ secretName: 'court-a/relay' }).secret).toEqual({
      kind: 'create',
      name: 'court-a/relay',
    });
  });

  it('reads a named event bus, and "default" as the default bus', () => {
    expect(staging({ eventBusName: 'court-a-bus' }).eventBusName).toBe('court-a-bus');
    expect(staging({ eventBusName: 'default' }).eventBusName).toBeUndefined();
  });

  it('reads every alarm threshold', () => {
    const thresholds = {
      forbiddenThreshold: '2',
      serverErrorRatePercent: '12.5',
      serverErrorMinCalls: '20',
      serverErrorPeriods: '4',
      authFailureThreshold: '3',
      deadLetterThreshold: '5',
      oldestMessageAgeSeconds: '7200',
      senderErrorThreshold: '2',
      senderThrottleThreshold: '10',
      ledgerSystemErrorThreshold: '4',
      ledgerThrottleThreshold: '25',
    };
    expect(staging(thresholds).alarmThresholds).toEqual({
      forbiddenThreshold: 2,
      serverErrorRatePercent: 12.5,
      serverErrorMinCalls: 20,
      serverErrorPeriods: 4,
      authFailureThreshold: 3,
      deadLetterThreshold: 5,
      oldestMessageAgeSeconds: 7200,
      senderErrorThreshold: 2,
      senderThrottleThreshold: 10,
      ledgerSystemErrorThreshold: 4,
      ledgerThrottleThreshold: 25,
    });
  });

  it("reads the queue's maxReceiveCount and the cap on 429 wait hints", () => {
    expect(staging({ maxReceiveCount: '20', rateLimitHintMaxSeconds: '120' })).toMatchObject({
      maxReceiveCount: 20,
      rateLimitHintMaxSeconds: 120,
    });
  });

  it('reads the ledger TTL and the duplicate window', () => {
    expect(production({ ledgerTtlDays: '15', duplicateWindowSeconds: '1700' })).toMatchObject({
      ledgerTtlDays: 15,
      duplicateWindowSeconds: 1700,
    });
    expect(staging({ ledgerTtlDays: 365, duplicateWindowSeconds: 1800 })).toMatchObject({
      ledgerTtlDays: 365,
      duplicateWindowSeconds: 1800,
    });
  });

  it('ignores the CDK CLI and feature-flag context keys', () => {
    expect(() =>
      staging({
        '@aws-cdk/core:checkSecretUsage': true,
        'aws:cdk:bundling-stacks': [],
        'cli-telemetry': false,
      }),
    ).not.toThrow();
  });
});

describe('the function timeout', () => {
  it("fits one job's worst case: 3 sends and 3 token requests timing out, 6 AWS calls at their worst, start-up", () => {
    const awsCallSeconds = awsCallWorstCaseMs(AWS_CALL_LIMITS) / 1000;
    expect(requiredFunctionTimeoutSeconds({ httpTimeoutMs: 10_000 })).toBe(10 + 6 * 10 + 6 * awsCallSeconds);
    expect(staging().functionTimeoutSeconds).toBe(220);
  });

  it('counts the AWS calls at the given worst case', () => {
    expect(requiredFunctionTimeoutSeconds({ httpTimeoutMs: 10_000, awsCallMs: 1000 })).toBe(10 + 60 + 6);
  });

  it('does not grow with the batch size or shrink with the rate limit: the jobs of a batch go concurrently', () => {
    const timeout = staging().functionTimeoutSeconds;

    expect(staging({ batchSize: '1' }).functionTimeoutSeconds).toBe(timeout);
    expect(staging({ requestsPerMinute: '10' }).functionTimeoutSeconds).toBe(timeout);
  });

  it('follows a shorter HTTP timeout, rounded up to whole 10 s', () => {
    // 10 + 6 x 5.5 + 150 = 193 s.
    expect(staging({ httpTimeoutMs: '5500' }).functionTimeoutSeconds).toBe(200);
  });

  it('accepts an explicit timeout at or above the requirement', () => {
    expect(staging({ functionTimeoutSeconds: '230' }).functionTimeoutSeconds).toBe(230);
  });
});

describe('crash recovery and the duplicate window', () => {
  it('adds the visibility timeout (six function timeouts), the batching window and one invocation', () => {
    expect(crashRecoverySeconds({ functionTimeoutSeconds: 220, maxBatchingWindowSeconds: 5 })).toBe(
      6 * 220 + 5 + 220,
    );
  });

  it.each(['staging', 'production'])(
    'brings a crashed batch of the %s defaults back inside the duplicate window, with the margin',
    (stage) => {
      const config = loadStageConfig({ stage });

      expect(sendQueueVisibilityTimeoutSeconds(config)).toBe(1320);
      expect(crashRecoverySeconds(config) + CRASH_RECOVERY_MARGIN_SECONDS).toBeLessThanOrEqual(
        config.duplicateWindowSeconds,
      );
    },
  );

  it('accepts the longest explicit function timeout that still fits', () => {
    // 6 x 240 + 5 + 240 + 60 = 1745 s.
    expect(staging({ functionTimeoutSeconds: '240' }).functionTimeoutSeconds).toBe(240);
  });

  it.each([
    [{ functionTimeoutSeconds: '250' }, 'functionTimeoutSeconds', /come back 1755 s after/],
    [{ httpTimeoutMs: '15000' }, 'httpTimeoutMs', /come back 1755 s after/],
    [
      { duplicateWindowSeconds: '1500' },
      'duplicateWindowSeconds',
      /inside duplicateWindowSeconds \(1500 s\)/,
    ],
    [{ maxBatchingWindowSeconds: '300' }, 'maxBatchingWindowSeconds', /maxBatchingWindowSeconds 300 s/],
  ])('refuses %o, naming %s', (overrides, setting, message) => {
    const error = configErrorOf(() => staging(overrides));

    expect(error.variable).toBe(setting);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/unknown_outcome; lower httpTimeoutMs or functionTimeoutSeconds/);
  });
});

describe('the backoff schedule and the duplicate window', () => {
  it('adds the delays after attempts 1 to maxAttempts - 1, each with the most jitter', () => {
    // 60, 120, 240, 480 s, each +10 %: the default schedule takes up to 16.5 minutes.
    expect(
      worstCaseBackoffSeconds({ backoffSeconds: [60, 120, 240, 480], maxAttempts: 5, backoffJitter: 0.1 }),
    ).toBe(990);
  });

  it('repeats the last step when there are more retries than steps', () => {
    expect(worstCaseBackoffSeconds({ backoffSeconds: [60, 120], maxAttempts: 4, backoffJitter: 0.1 })).toBe(
      66 + 132 + 132,
    );
  });

  it('ignores steps past the last retry, and has nothing to add with a single attempt', () => {
    expect(
      worstCaseBackoffSeconds({ backoffSeconds: [60, 120, 240], maxAttempts: 2, backoffJitter: 0.5 }),
    ).toBe(90);
    expect(worstCaseBackoffSeconds({ backoffSeconds: [600], maxAttempts: 1, backoffJitter: 0.1 })).toBe(0);
  });

  it('rounds each delay up to whole seconds, as the sender does', () => {
    expect(worstCaseBackoffSeconds({ backoffSeconds: [1, 1], maxAttempts: 3, backoffJitter: 0.1 })).toBe(4);
  });

  it('accepts a schedule that ends 1 s inside the window, and refuses one that reaches it', () => {
    // 111 + 221 + 441 + 881 s (each rounded up): longer than a crash recovery (1605 s with its margin), so the backoff decides.
    const backoffSeconds = '100,200,400,800';
    expect(staging({ backoffSeconds, duplicateWindowSeconds: '1655' }).duplicateWindowSeconds).toBe(1655);
    expect(() => staging({ backoffSeconds, duplicateWindowSeconds: '1654' })).toThrow(
      /^backoffSeconds: with maxAttempts 5, the retries of backoffSeconds 100,200,400,800 take up to 1654 s \(10% jitter included\), which must stay below duplicateWindowSeconds \(1654 s\)/,
    );
  });

  it.each([
    [
      { maxAttempts: '7' },
      /with maxAttempts 7, .* up to 2046 s .*\(1800 s\).*shorten backoffSeconds or lower maxAttempts/,
    ],
    [{ backoffSeconds: '600,1200', maxAttempts: '3' }, /backoffSeconds 600,1200 take up to 1980 s/],
    [{ duplicateWindowSeconds: '900' }, /up to 990 s .*duplicateWindowSeconds \(900 s\)/],
  ])('fails for %o, naming backoffSeconds and maxAttempts', (overrides, message) => {
    let error: unknown;
    try {
      staging(overrides);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('backoffSeconds');
    expect((error as ConfigError).message).toMatch(message);
    expect((error as ConfigError).message).toMatch(/maxAttempts/);
  });
});

describe('retention, producer accounts and the data key', () => {
  it('takes shorter queue retention and a ledger TTL just above the dead letters', () => {
    expect(
      staging({ sendQueueRetentionDays: '2', deadLetterRetentionDays: '3', ledgerTtlDays: '4' }),
    ).toMatchObject({ sendQueueRetentionDays: 2, deadLetterRetentionDays: 3, ledgerTtlDays: 4 });
  });

  it('bounds the oldest-message alarm by the send queue retention it is given', () => {
    const error = configErrorOf(() =>
      staging({ sendQueueRetentionDays: '2', oldestMessageAgeSeconds: String(2 * 86_400) }),
    );
    expect(error.variable).toBe('oldestMessageAgeSeconds');
    expect(error.message).toMatch(/from 60 to 172799/);
  });

  it('reads producer accounts as a list of 12-digit ids, each once', () => {
    expect(staging({ producerAccounts: '111122223333, 444455556666,111122223333' }).producerAccounts).toEqual(
      ['111122223333', '444455556666'],
    );
  });

  it('reads dataKmsKey as none, create or an existing key by ARN', () => {
    const arn = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    expect(staging({ dataKmsKey: 'none' }).dataKmsKey).toEqual({ kind: 'none' });
    expect(staging({ dataKmsKey: 'create' }).dataKmsKey).toEqual({ kind: 'create' });
    expect(staging({ dataKmsKey: arn }).dataKmsKey).toEqual({ kind: 'existing', arn });
  });
});

describe('invalid settings fail the synth, naming the setting', () => {
  it.each([
    [{ stage: undefined }, 'stage', /is required: one of staging, production/],
    [{ stage: 'prod' }, 'stage', /expected one of staging, production, got "prod"/],
    [{ stage: 'staging', ecourtdateRegion: 'us-east' }, 'ecourtdateRegion', /production stage only/],
    [{ stage: 'production', ecourtdateRegion: 'eu-west' }, 'ecourtdateRegion', /expected one of us-east/],
    [
      { stage: 'production', ecourtdateRegion: 'us-east-1' },
      'ecourtdateRegion',
      /expected eCourtDate's region .*got the AWS region "us-east-1": the AWS region comes from your AWS profile/,
    ],
    [
      { stage: 'production', productionRegion: 'us-east' },
      'productionRegion',
      /was renamed ecourtdateRegion/,
    ],
    [{ stage: 'production', baseUrl: 'http://api.ecourtdate.com' }, 'baseUrl', /https:\/\//],
    [{ stage: 'production', baseUrl: 'http://localhost:8080' }, 'baseUrl', /https:\/\/ only/],
    [{ stage: 'production', baseUrl: 'not a url' }, 'baseUrl', /absolute URL/],
    [
      { stage: 'production', baseUrl: 'https://staging.api.ecourtdate.com' },
      'baseUrl',
      /must not use the staging API/,
    ],
    [
      { stage: 'staging', baseUrl: 'https://us-west.api.ecourtdate.com' },
      'baseUrl',
      /must not use a production API/,
    ],
    [
      { stage: 'production', baseUrl: 'https://api.ecourtdate.com', ecourtdateRegion: 'us-east' },
      'baseUrl',
      /either baseUrl or ecourtdateRegion/,
    ],
    [{ stage: 'staging', onCallEmail: 'on-call' }, 'onCallEmail', /expected one e-mail address/],
    [{ stage: 'staging', onCallEmail: 'a@b.example,c@d.example' }, 'onCallEmail', /one e-mail address/],
    [{ stage: 'staging', maxConcurrency: '1' }, 'maxConcurrency', /from 2 to 1000, got 1/],
    [{ stage: 'staging', maxConcurrency: 'ten' }, 'maxConcurrency', /whole number, got "ten"/],
    [{ stage: 'staging', requestsPerMinute: '1001' }, 'requestsPerMinute', /from 1 to 1000/],
    [
      { stage: 'staging', requestsPerMinute: '949' },
      'requestsPerMinute',
      /997 requests in one 60 s window.*at most 948/,
    ],
    [{ stage: 'staging', batchSize: '11' }, 'batchSize', /from 1 to 10/],
    [{ stage: 'staging', httpTimeoutMs: '30000' }, 'httpTimeoutMs', /dead-lettered unknown_outcome/],
    [{ stage: 'staging', maxBatchingWindowSeconds: '301' }, 'maxBatchingWindowSeconds', /from 0 to 300/],
    [
      { stage: 'staging', backoffSeconds: '60,soon' },
      'backoffSeconds',
      /comma-separated list of whole numbers/,
    ],
    // SQS holds a received message for 12 h from the receive: MAX_HIDE_SECONDS is what is left to hide it.
    [
      { stage: 'staging', backoffSeconds: String(MAX_HIDE_SECONDS + 1) },
      'backoffSeconds',
      /whole numbers from 0 to 42000, got "42001"/,
    ],
    [{ stage: 'staging', backoffSeconds: '60,,120' }, 'backoffSeconds', /comma-separated list/],
    [{ stage: 'staging', maxAttempts: '0' }, 'maxAttempts', /from 1 to 100/],
    [{ stage: 'staging', httpTimeoutMs: '500' }, 'httpTimeoutMs', /from 1000 to 120000/],
    [{ stage: 'staging', functionTimeoutSeconds: '60' }, 'functionTimeoutSeconds', /expected at least 220/],
    [{ stage: 'staging', memorySizeMb: '64' }, 'memorySizeMb', /from 128 to 10240/],
    [{ stage: 'staging', maxReceiveCount: '1001' }, 'maxReceiveCount', /from 4 to 1000/],
    // The sender refuses fewer than 4 (it re-queues a fresh copy some receives before the limit).
    [
      { stage: 'staging', maxReceiveCount: '3', maxAttempts: '2' },
      'maxReceiveCount',
      /from 4 to 1000, got 3/,
    ],
    [{ stage: 'staging', rateLimitHintMaxSeconds: '59' }, 'rateLimitHintMaxSeconds', /from 60 to 42000/],
    [
      { stage: 'staging', rateLimitHintMaxSeconds: String(MAX_HIDE_SECONDS + 1) },
      'rateLimitHintMaxSeconds',
      /from 60 to 42000, got 42001/,
    ],
    [{ stage: 'staging', maxReceiveCount: '5' }, 'maxReceiveCount', /must exceed maxAttempts \(5\)/],
    [{ stage: 'staging', ledgerTtlDays: '0' }, 'ledgerTtlDays', /from 1 to 365, got 0/],
    [{ stage: 'staging', ledgerTtlDays: '366' }, 'ledgerTtlDays', /from 1 to 365, got 366/],
    [{ stage: 'staging', ledgerTtlDays: '7.5' }, 'ledgerTtlDays', /whole number, got "7.5"/],
    // A redrive is judged by the job's ledger entry: it must outlive the dead letters (14 days).
    [
      { stage: 'staging', ledgerTtlDays: '14' },
      'ledgerTtlDays',
      /must exceed the dead-letter queue's retention \(deadLetterRetentionDays 14 days\)/,
    ],
    // The ledger must outlive a shortened dead-letter retention too.
    [
      { stage: 'staging', deadLetterRetentionDays: '7', ledgerTtlDays: '7' },
      'ledgerTtlDays',
      /deadLetterRetentionDays 7 days.*raise ledgerTtlDays or lower deadLetterRetentionDays/,
    ],
    [{ stage: 'staging', sendQueueRetentionDays: '1' }, 'sendQueueRetentionDays', /from 2 to 13, got 1/],
    [{ stage: 'staging', deadLetterRetentionDays: '15' }, 'deadLetterRetentionDays', /from 3 to 14, got 15/],
    // SQS counts a dead letter's age from its first enqueue: a shorter dead-letter retention expires it early.
    [
      { stage: 'staging', sendQueueRetentionDays: '5', deadLetterRetentionDays: '5' },
      'deadLetterRetentionDays',
      /must exceed sendQueueRetentionDays \(5 days\)/,
    ],
    [{ stage: 'staging', producerAccounts: '12345678901' }, 'producerAccounts', /12-digit AWS account ids/],
    [
      { stage: 'staging', producerAccounts: '111122223333,arn:aws:iam::444455556666:root' },
      'producerAccounts',
      /got "arn:aws:iam::444455556666:root"/,
    ],
    [
      { stage: 'staging', dataKmsKey: 'arn:aws:kms:us-east-1:123456789012:alias/relay' },
      'dataKmsKey',
      /"create" or a KMS key ARN/,
    ],
    [{ stage: 'staging', dataKmsKey: 'yes' }, 'dataKmsKey', /"create" or a KMS key ARN/],
    [{ stage: 'staging', duplicateWindowSeconds: '59' }, 'duplicateWindowSeconds', /from 60 to 1800, got 59/],
    // eCourtDate's window is 30 minutes: a longer setting would let resends fall outside it.
    [{ stage: 'staging', duplicateWindowSeconds: '3600' }, 'duplicateWindowSeconds', /from 60 to 1800/],
    [{ stage: 'staging', ledgerThrottleThreshold: '0' }, 'ledgerThrottleThreshold', /from 1 to/],
    [{ stage: 'staging', secretName: 'has space' }, 'secretName', /expected 1-512 characters/],
    // Secrets Manager appends "-" and six characters to every ARN: a name ending that way is ambiguous.
    [{ stage: 'staging', secretName: 'court/api-client' }, 'secretName', /hyphen and six characters/],
    [{ stage: 'staging', existingSecretName: 'relay-secret' }, 'existingSecretName', /like the suffix/],
    [
      { stage: 'staging', secretKmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:alias/relay' },
      'secretKmsKeyArn',
      /not an alias/,
    ],
    [
      { stage: 'staging', existingSecretName: 'a', secretName: 'b' },
      'existingSecretName',
      /either secretName/,
    ],
    [
      { stage: 'staging', eventBusName: 'arn:aws:events:us-east-1:1:event-bus/x' },
      'eventBusName',
      /not an ARN/,
    ],
    [{ stage: 'staging', eventSources: 'aws.s3' }, 'eventSources', /reserved for AWS services/],
    // Both stages' rules may share a bus: a source that does not name its stage could cross over.
    [
      { stage: 'production', eventSources: 'cms.court-a' },
      'eventSources',
      /end each source in ".production"/,
    ],
    [{ stage: 'staging', eventSources: 'cms.court-a.production' }, 'eventSources', /does not name the stage/],
    [{ stage: 'staging', eventSources: ' , ' }, 'eventSources', /at least one event source/],
    [{ stage: 'staging', logLevel: 'VERBOSE' }, 'logLevel', /expected one of TRACE, DEBUG/],
    [{ stage: 'staging', logRetentionDays: '10' }, 'logRetentionDays', /expected one of 1, 3, 5/],
    [{ stage: 'staging', forbiddenThreshold: '0' }, 'forbiddenThreshold', /from 1 to/],
    [{ stage: 'staging', serverErrorRatePercent: '120' }, 'serverErrorRatePercent', /from 1 to 100/],
    [{ stage: 'staging', serverErrorPeriods: '1.5' }, 'serverErrorPeriods', /whole number/],
    [{ stage: 'staging', oldestMessageAgeSeconds: '400000' }, 'oldestMessageAgeSeconds', /from 60 to 345599/],
    [{ stage: 'staging', maxConcurency: '10' }, 'maxConcurency', /is not a setting of this app/],
    [{ stage: 'staging', maxConcurrency: { value: 10 } }, 'maxConcurrency', /expected a single value/],
  ])('%o -> %s', (context, setting, message) => {
    let error: unknown;
    try {
      loadStageConfig(context);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(setting);
    expect((error as ConfigError).message).toMatch(message);
  });

  it('lists the known settings when a setting is unknown', () => {
    expect(() => staging({ onCallMail: 'a@b.example' })).toThrow(
      /known settings: stage, ecourtdateRegion, baseUrl/,
    );
  });

  it('knows every alarm threshold as a setting', () => {
    expect(SETTINGS).toEqual(expect.arrayContaining(Object.keys(DEFAULT_ALARM_THRESHOLDS)));
  });
});
