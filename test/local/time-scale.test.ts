import { describe, expect, it } from 'vitest';
import { faithfulTimeScaleLimit, retryChainFits } from '#local/pipeline/time-scale.ts';
import { loadSenderConfig, type SenderConfig } from '#shared/config.ts';

/** The sender's default settings (backoff 60, 120, 240, 480 s + 10 % jitter, 5 attempts, 30-minute window). */
function defaults(httpTimeoutMs: number, timeScale = 1): SenderConfig {
  return loadSenderConfig({
    ECOURTDATE_BASE_URL: 'https://staging.api.ecourtdate.com',
    ECOURTDATE_SECRET_ID: 'secret',
    SEND_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/1/send',
    DEAD_LETTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/1/dlq',
    LEDGER_TABLE_NAME: 'ledger',
    HTTP_TIMEOUT_MS: String(httpTimeoutMs),
    TIME_SCALE: String(timeScale),
  });
}

describe('how fast a local run can go and still decide as the deployed relay does', () => {
  it('the demo (3 s HTTP timeout, one scripted hang per job): 61x, so the default 60x is faithful', () => {
    expect(faithfulTimeScaleLimit(defaults(3_000), 1)).toBe(61);
  });

  it('at the limit the whole retry chain after a timeout lands inside the duplicate window; one step faster it does not', () => {
    expect(retryChainFits(defaults(3_000, 61), 1)).toBe(true);
    expect(retryChainFits(defaults(3_000, 62), 1)).toBe(false);
  });

  it('600x, where a 3 s timeout outlasts the 3 s window: not faithful', () => {
    expect(retryChainFits(defaults(3_000, 600), 1)).toBe(false);
  });

  it('a real API, where every attempt may time out after the deployed 10 s: 10x at most', () => {
    expect(faithfulTimeScaleLimit(defaults(10_000), 4)).toBe(10);
  });

  it('a longer HTTP timeout allows less speed-up', () => {
    expect(faithfulTimeScaleLimit(defaults(6_000), 1)).toBeLessThan(
      faithfulTimeScaleLimit(defaults(3_000), 1),
    );
  });

  it('stops at the scale asked about', () => {
    expect(faithfulTimeScaleLimit(defaults(3_000), 1, 20)).toBe(20);
  });
});
