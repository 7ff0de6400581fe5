import { describe, expect, it } from 'vitest';
import {
  loadStageConfig,
  PRODUCTION_BASE_URLS,
  perInstanceRequestsPerMinute,
  requiredFunctionTimeoutSeconds,
  SETTINGS,
  worstCaseBackoffSeconds,
} from '#infra/config.ts';
import { DEFAULT_ALARM_THRESHOLDS } from '#shared/alarm-definitions.ts';
import { ConfigError } from '#shared/errors.ts';

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
      productionRegion: undefined,
      onCallEmail: undefined,
      maxConcurrency: 2,
      requestsPerMinute: 900,
      batchSize: 10,
      maxBatchingWindowSeconds: 5,
      backoffSeconds: [60, 120, 240, 480],
      maxAttempts: 5,
      duplicateWindowSeconds: 1800,
      httpTimeoutMs: 10_000,
      functionTimeoutSeconds: 360,
      memorySizeMb: 256,
      maxReceiveCount: 200,
      ledgerTtlDays: 30,
      secret: { kind: 'create', name: 'ecourtdate-relay/staging/api-client' },
      eventBusName: undefined,
      eventSources: ['ecourtdate-relay.upstream'],
      logLevel: 'INFO',
      logRetentionDays: 30,
      retainData: false,
      terminationProtection: false,
      alarmThresholds: DEFAULT_ALARM_THRESHOLDS,
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
      secret: { kind: 'create', name: 'ecourtdate-relay/production/api-client' },
    });
  });

  it.each(Object.entries(PRODUCTION_BASE_URLS))('maps productionRegion=%s to %s', (region, url) => {
    expect(production({ productionRegion: region })).toMatchObject({
      baseUrl: url,
      productionRegion: region,
    });
  });

  it('divides the requests/minute budget between the concurrent instances, rounding down', () => {
    expect(perInstanceRequestsPerMinute(staging())).toBe(450);
    expect(perInstanceRequestsPerMinute(production())).toBe(180);
    expect(perInstanceRequestsPerMinute(production({ requestsPerMinute: '1000', maxConcurrency: '3' }))).toBe(
      333,
    );
  });
});

describe('overrides', () => {
  it('reads numbers, lists and text from -c strings as from cdk.json values', () => {
    const fromStrings = production({
      maxConcurrency: '10',
      requestsPerMinute: '600',
      backoffSeconds: '30, 90',
      eventSources: 'cms.court-a,jms.court-a',
      onCallEmail: 'oncall@court.example',
      logLevel: 'debug',
      logRetentionDays: '90',
    });
    const fromJson = production({
      maxConcurrency: 10,
      requestsPerMinute: 600,
      backoffSeconds: [30, 90],
      eventSources: ['cms.court-a', 'jms.court-a'],
      onCallEmail: 'oncall@court.example',
      logLevel: 'DEBUG',
      logRetentionDays: 90,
    });
    expect(fromStrings).toEqual(fromJson);
    expect(fromStrings).toMatchObject({
      maxConcurrency: 10,
      requestsPerMinute: 600,
      backoffSeconds: [30, 90],
      eventSources: ['cms.court-a', 'jms.court-a'],
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

  it('reads the ledger TTL and the duplicate window', () => {
    expect(production({ ledgerTtlDays: '7', duplicateWindowSeconds: '1200' })).toMatchObject({
      ledgerTtlDays: 7,
      duplicateWindowSeconds: 1200,
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
  it('fits a full batch on the 401 path with every send timing out, paced, plus start-up', () => {
    // 10 jobs x 3 sends x 10 s, 30 requests at 450/min, 30 s start-up.
    expect(
      requiredFunctionTimeoutSeconds({
        batchSize: 10,
        httpTimeoutMs: 10_000,
        perInstanceRequestsPerMinute: 450,
      }),
    ).toBe(334);
    expect(staging().functionTimeoutSeconds).toBe(360);
  });

  it('follows a smaller batch and a shorter HTTP timeout', () => {
    expect(staging({ batchSize: '5', httpTimeoutMs: '5000' }).functionTimeoutSeconds).toBe(120);
  });

  it('accepts an explicit timeout at or above the requirement', () => {
    expect(staging({ functionTimeoutSeconds: '600' }).functionTimeoutSeconds).toBe(600);
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
    expect(staging({ duplicateWindowSeconds: '991' }).duplicateWindowSeconds).toBe(991);
    expect(() => staging({ duplicateWindowSeconds: '990' })).toThrow(
      /^backoffSeconds: with maxAttempts 5, the retries of backoffSeconds 60,120,240,480 take up to 990 s \(10% jitter included\), which must stay below duplicateWindowSeconds \(990 s\)/,
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

describe('invalid settings fail the synth, naming the setting', () => {
  it.each([
    [{ stage: undefined }, 'stage', /is required: one of staging, production/],
    [{ stage: 'prod' }, 'stage', /expected one of staging, production, got "prod"/],
    [{ stage: 'staging', productionRegion: 'us-east' }, 'productionRegion', /production stage only/],
    [{ stage: 'production', productionRegion: 'eu-west' }, 'productionRegion', /expected one of us-east/],
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
      { stage: 'production', baseUrl: 'https://api.ecourtdate.com', productionRegion: 'us-east' },
      'baseUrl',
      /either baseUrl or productionRegion/,
    ],
    [{ stage: 'staging', onCallEmail: 'on-call' }, 'onCallEmail', /expected one e-mail address/],
    [{ stage: 'staging', onCallEmail: 'a@b.example,c@d.example' }, 'onCallEmail', /one e-mail address/],
    [{ stage: 'staging', maxConcurrency: '1' }, 'maxConcurrency', /from 2 to 1000, got 1/],
    [{ stage: 'staging', maxConcurrency: 'ten' }, 'maxConcurrency', /whole number, got "ten"/],
    [{ stage: 'staging', requestsPerMinute: '1001' }, 'requestsPerMinute', /from 1 to 1000/],
    [
      { stage: 'staging', requestsPerMinute: '10', maxConcurrency: '20' },
      'requestsPerMinute',
      /less than 1 request a minute each/,
    ],
    [{ stage: 'staging', batchSize: '11' }, 'batchSize', /from 1 to 10/],
    [
      { stage: 'staging', requestsPerMinute: '2', httpTimeoutMs: '30000' },
      'batchSize',
      /more than Lambda's 900 s/,
    ],
    [{ stage: 'staging', maxBatchingWindowSeconds: '301' }, 'maxBatchingWindowSeconds', /from 0 to 300/],
    [
      { stage: 'staging', backoffSeconds: '60,soon' },
      'backoffSeconds',
      /comma-separated list of whole numbers/,
    ],
    [{ stage: 'staging', backoffSeconds: '50000' }, 'backoffSeconds', /from 0 to 43200/],
    [{ stage: 'staging', maxAttempts: '0' }, 'maxAttempts', /from 1 to 100/],
    [{ stage: 'staging', httpTimeoutMs: '500' }, 'httpTimeoutMs', /from 1000 to 120000/],
    [{ stage: 'staging', functionTimeoutSeconds: '60' }, 'functionTimeoutSeconds', /expected at least 334/],
    [{ stage: 'staging', memorySizeMb: '64' }, 'memorySizeMb', /from 128 to 10240/],
    [{ stage: 'staging', maxReceiveCount: '1001' }, 'maxReceiveCount', /from 2 to 1000/],
    [{ stage: 'staging', maxReceiveCount: '5' }, 'maxReceiveCount', /must exceed maxAttempts \(5\)/],
    [{ stage: 'staging', ledgerTtlDays: '0' }, 'ledgerTtlDays', /from 1 to 365, got 0/],
    [{ stage: 'staging', ledgerTtlDays: '366' }, 'ledgerTtlDays', /from 1 to 365, got 366/],
    [{ stage: 'staging', ledgerTtlDays: '7.5' }, 'ledgerTtlDays', /whole number, got "7.5"/],
    [{ stage: 'staging', duplicateWindowSeconds: '59' }, 'duplicateWindowSeconds', /from 60 to 1800, got 59/],
    // eCourtDate's window is 30 minutes: a longer setting would let resends fall outside it.
    [{ stage: 'staging', duplicateWindowSeconds: '3600' }, 'duplicateWindowSeconds', /from 60 to 1800/],
    [{ stage: 'staging', ledgerThrottleThreshold: '0' }, 'ledgerThrottleThreshold', /from 1 to/],
    [{ stage: 'staging', secretName: 'has space' }, 'secretName', /expected 1-512 characters/],
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
      /known settings: stage, productionRegion, baseUrl/,
    );
  });

  it('knows every alarm threshold as a setting', () => {
    expect(SETTINGS).toEqual(expect.arrayContaining(Object.keys(DEFAULT_ALARM_THRESHOLDS)));
  });
});
