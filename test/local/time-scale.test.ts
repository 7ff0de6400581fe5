import { describe, expect, it } from 'vitest';
import { DEMO_TIME_SCALE } from '#local/pipeline/options.ts';
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

/** What a job of the demo may meet: the simulator's one scripted hang, and one 429 holding its instance back. */
const demo = { timeouts: 1, deferrals: 1 };

describe('how fast a local run can go and still decide as the deployed relay does', () => {
  it('the demo (3 s HTTP timeout): 38x at most, so the default time scale is faithful', () => {
    expect(faithfulTimeScaleLimit(defaults(3_000), demo)).toBe(38);
    expect(DEMO_TIME_SCALE).toBeLessThanOrEqual(38);
  });

  it('at the limit the whole retry chain lands inside the duplicate window; one step faster it does not', () => {
    expect(retryChainFits(defaults(3_000, 38), demo)).toBe(true);
    expect(retryChainFits(defaults(3_000, 39), demo)).toBe(false);
  });

  it('60x: the rounded-up backoffs and one 429 hold-back no longer fit the 30 s window', () => {
    expect(retryChainFits(defaults(3_000, 60), { timeouts: 0, deferrals: 1 })).toBe(false);
  });

  it('600x: a 3 s timeout alone outlasts the 3 s window', () => {
    expect(retryChainFits(defaults(3_000, 600), { timeouts: 1, deferrals: 0 })).toBe(false);
  });

  it('a real API, where every attempt may time out after the deployed 10 s: 9x at most', () => {
    expect(faithfulTimeScaleLimit(defaults(10_000), { timeouts: 4, deferrals: 1 })).toBe(9);
  });

  it('a longer HTTP timeout allows less speed-up', () => {
    expect(faithfulTimeScaleLimit(defaults(6_000), demo)).toBeLessThan(
      faithfulTimeScaleLimit(defaults(3_000), demo),
    );
  });

  it('stops at the scale asked about', () => {
    expect(faithfulTimeScaleLimit(defaults(3_000), demo, 20)).toBe(20);
  });
});
