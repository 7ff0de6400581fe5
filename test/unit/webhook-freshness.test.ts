import { describe, expect, it } from 'vitest';
import { judgeFreshness, replayCover, replayHorizonSeconds } from '#shared/webhook/freshness.ts';

const DAY_S = 86_400;
const DAY_MS = DAY_S * 1000;
const WINDOW_S = 7 * DAY_S;
const NOW = Date.UTC(2026, 11, 7, 12, 0, 0);

describe('replayHorizonSeconds', () => {
  it('is the dedupe window less an hour: 6 days 23 hours for the default 7 days', () => {
    expect(replayHorizonSeconds(WINDOW_S)).toBe(WINDOW_S - 3600);
  });

  it('is half a window shorter than two hours', () => {
    expect(replayHorizonSeconds(60)).toBe(30);
  });
});

describe('judgeFreshness', () => {
  it('refuses a delivery whose newest time is older than the horizon', () => {
    expect(judgeFreshness([NOW - 8 * DAY_MS], NOW, WINDOW_S)).toEqual({
      kind: 'stale',
      ageSeconds: 8 * DAY_S,
    });
  });

  it('dates a delivery by its newest time, so a recent updated_at beside an old created_at keeps it fresh', () => {
    expect(judgeFreshness([NOW - 30 * DAY_MS, NOW - 60_000], NOW, WINDOW_S).kind).toBe('fresh');
  });

  it('keeps the record a window after the latest instant named, when that is after the receipt', () => {
    const ahead = NOW + 20 * 3_600_000;

    expect(judgeFreshness([ahead], NOW, WINDOW_S)).toEqual({
      kind: 'fresh',
      retention: { until: ahead / 1000 + WINDOW_S },
    });
  });

  it('keeps the record of a delivery nothing dates for good', () => {
    expect(judgeFreshness([], NOW, WINDOW_S)).toEqual({ kind: 'fresh', retention: 'forever' });
    expect(judgeFreshness([NOW + 2 * DAY_MS], NOW, WINDOW_S)).toEqual({
      kind: 'fresh',
      retention: 'forever',
    });
  });

  it('keeps a record until after the last moment any copy could still pass the horizon', () => {
    const times = [NOW - DAY_MS, NOW + 3 * DAY_MS];
    const first = judgeFreshness(times, NOW, WINDOW_S);
    if (first.kind !== 'fresh' || first.retention === 'forever') throw new Error('expected a dated record');

    for (let at = NOW; at < NOW + 30 * DAY_MS; at += 3_600_000) {
      const copy = judgeFreshness(times, at, WINDOW_S);
      if (copy.kind === 'fresh') expect(Math.floor(at / 1000)).toBeLessThanOrEqual(first.retention.until);
    }
  });
});

describe('replayCover', () => {
  it('is a window after the latest instant a copy names, its receipt left out', () => {
    const ahead = NOW + 20 * 3_600_000;

    expect(replayCover([NOW - DAY_MS, ahead], NOW + DAY_MS, WINDOW_S)).toEqual({
      until: ahead / 1000 + WINDOW_S,
    });
  });

  it('is for good for a copy nothing dates', () => {
    expect(replayCover([], NOW, WINDOW_S)).toBe('forever');
    expect(replayCover([NOW + 2 * DAY_MS], NOW, WINDOW_S)).toBe('forever');
  });
});
