import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TIMEOUT_SECONDS,
  defaultTimeoutSeconds,
  parseDuration,
  parseStartOptions,
  UsageError,
} from '#local/pipeline/options.ts';

/** `npm start`'s outage options (docs/operating.md, "Outages"). */

describe('--outage and --auth-outage', () => {
  it('--outage 2h: a 503 outage of 7,200 s in eCourtDate’s time, starting at the first message request', () => {
    const options = parseStartOptions(['--outage', '2h']);

    expect(options.outages).toEqual([{ kind: 'unavailable', durationSeconds: 7200, retryAfter: false }]);
    expect(options.outageAtSeconds).toBeUndefined();
  });

  it('--auth-outage 30m: the API client revoked for 1,800 s', () => {
    const options = parseStartOptions(['--auth-outage', '30m']);

    expect(options.outages).toEqual([{ kind: 'auth', durationSeconds: 1800, retryAfter: false }]);
  });

  it('--outage-kind hang and drop choose what the API does; 503 is the default', () => {
    const kinds = ['hang', 'drop', '503'].map(
      (kind) => parseStartOptions(['--outage', '90s', '--outage-kind', kind]).outages?.[0]?.kind,
    );

    expect(kinds).toEqual(['hang', 'drop', 'unavailable']);
  });

  it('--outage-retry-after: the 503s carry Retry-After', () => {
    const options = parseStartOptions(['--outage', '1h', '--outage-retry-after']);

    expect(options.outages?.[0]?.retryAfter).toBe(true);
  });

  it('--outage-at 10m: the outages start 600 s of eCourtDate’s time into the run; 0s is allowed', () => {
    expect(parseStartOptions(['--outage', '1h', '--outage-at', '10m']).outageAtSeconds).toBe(600);
    expect(parseStartOptions(['--auth-outage', '1h', '--outage-at', '0s']).outageAtSeconds).toBe(0);
  });

  it('both outages at once: both are played', () => {
    const options = parseStartOptions(['--outage', '2h', '--auth-outage', '30m']);

    expect(options.outages?.map((outage) => outage.kind)).toEqual(['unavailable', 'auth']);
  });

  it('no outage option: no outage', () => {
    expect(parseStartOptions([]).outages).toEqual([]);
  });
});

describe('outage options that cannot work', () => {
  it.each([
    [['--outage', '2 hours'], /--outage: expected a duration above 0 .* got "2 hours"/],
    [['--outage', '0h'], /--outage: expected a duration above 0/],
    [['--auth-outage', '-5m'], /--auth-outage: expected a duration above 0/],
    [['--outage', '1h', '--outage-kind', '500'], /--outage-kind: expected one of 503, hang, drop, got "500"/],
    [['--outage-kind', 'hang'], /--outage-kind needs --outage DURATION/],
    [['--outage-retry-after'], /--outage-retry-after needs --outage DURATION/],
    [['--outage', '1h', '--outage-kind', 'hang', '--outage-retry-after'], /needs --outage-kind 503/],
    [['--outage-at', '10m'], /--outage-at needs --outage DURATION or --auth-outage DURATION/],
    [
      ['--outage', '1h', '--ecourtdate-url', 'https://staging.api.ecourtdate.com', '--jobs', 'x.jsonl'],
      /--outage plays an outage in the built-in simulator; it cannot be used with --ecourtdate-url/,
    ],
  ])('%j is refused, naming the option and what it expects', (argv, message) => {
    expect(() => parseStartOptions(argv)).toThrow(UsageError);
    expect(() => parseStartOptions(argv)).toThrow(message);
  });
});

describe('parseDuration', () => {
  it('reads seconds, minutes and hours, with a fraction', () => {
    expect(['45s', '30m', '2h', '1.5h'].map((raw) => parseDuration(raw, '--outage'))).toEqual([
      45, 1800, 7200, 5400,
    ]);
  });

  it('refuses a number without a unit', () => {
    expect(() => parseDuration('120', '--outage')).toThrow(/e\.g\. 90s, 30m, 2h/);
  });
});

describe('--timeout with an outage', () => {
  it("waits, by default, for the longest outage and the breaker's longest probe wait, scaled", () => {
    expect(parseStartOptions(['--outage', '2h']).timeoutSeconds).toBe(DEFAULT_TIMEOUT_SECONDS + 260);
    expect(parseStartOptions(['--outage', '2h', '--timeout', '50']).timeoutSeconds).toBe(50);
    expect(defaultTimeoutSeconds([], 0, 30)).toBe(DEFAULT_TIMEOUT_SECONDS);
    expect(defaultTimeoutSeconds([{ durationSeconds: 7200 }], 0, 30)).toBe(DEFAULT_TIMEOUT_SECONDS + 260);
    expect(defaultTimeoutSeconds([{ durationSeconds: 1800 }, { durationSeconds: 7200 }], 600, 30)).toBe(
      DEFAULT_TIMEOUT_SECONDS + 280,
    );
  });
});
