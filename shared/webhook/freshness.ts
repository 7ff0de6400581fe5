import type { Retention } from '#shared/webhook/dedupe.ts';
import { MAX_FUTURE_SKEW_MS } from '#shared/webhook/payload.ts';

/**
 * Replays (docs/webhooks.md, "Replays"). eCourtDate signs the body and nothing else: no timestamp, no nonce, so a
 * captured delivery verifies for ever. The dedupe record stops a copy only while it is kept, so a delivery is
 * dated by its own payload, and a copy is either refused by that date or caught by a record kept long enough:
 * - a delivery whose own time (the newest instant its time fields name, up to a day ahead of the receive time) is
 *   older than the replay horizon is refused: published no more;
 * - any other dated delivery's record is kept until a window after the later of its receipt and the latest
 *   instant it names, which is after any moment a copy of it could still pass the horizon;
 * - a delivery nothing dates (no time field, or only times more than a day ahead) has its record kept for good;
 * - a copy that finds the record of another copy (same key, other times: a retry stamped anew, or one without
 *   the time) has it kept at least as long as its own times need (`replayCover`): otherwise the copy's own replay
 *   would claim afresh once the first copy's record is gone.
 */

/** The margin between the dedupe window and the replay horizon, seconds: clocks of different containers. */
export const REPLAY_MARGIN_SECONDS = 3600;

/**
 * The replay horizon for a dedupe window of `windowSeconds` (`webhookDedupeDays`): the window less
 * `REPLAY_MARGIN_SECONDS`, or less half the window when that is shorter. Seconds.
 *
 * @example replayHorizonSeconds(7 * 86_400) === 7 * 86_400 - 3600 // 6 days 23 hours
 */
export function replayHorizonSeconds(windowSeconds: number): number {
  return windowSeconds - Math.min(REPLAY_MARGIN_SECONDS, Math.floor(windowSeconds / 2));
}

/** How a delivery stands against replays. */
export type Freshness =
  /** Dated and within the horizon: claim it, with a record kept as `retention` says. */
  | { readonly kind: 'fresh'; readonly retention: Retention }
  /** Its own time is older than the horizon: a replay, or a delivery too late to tell from one. */
  | { readonly kind: 'stale'; readonly ageSeconds: number };

/**
 * Judges a delivery by the instants its payload names (`times`, epoch ms; `NormalisedWebhook.times`), at its
 * receive time `receivedAt` (epoch ms), for a dedupe window of `windowSeconds`. Pure.
 *
 * @example judgeFreshness([Date.now() - 8 * 86_400_000], Date.now(), 7 * 86_400).kind === 'stale'
 */
export function judgeFreshness(
  times: readonly number[],
  receivedAt: number,
  windowSeconds: number,
): Freshness {
  const plausible = times.filter((at) => at <= receivedAt + MAX_FUTURE_SKEW_MS);
  if (plausible.length === 0) return { kind: 'fresh', retention: 'forever' };
  const own = Math.max(...plausible);
  const ageSeconds = Math.floor((receivedAt - own) / 1000);
  if (ageSeconds > replayHorizonSeconds(windowSeconds)) return { kind: 'stale', ageSeconds };
  const latest = Math.max(receivedAt, ...times);
  return { kind: 'fresh', retention: { until: Math.ceil(latest / 1000) + windowSeconds } };
}

/**
 * How long the record another copy of a delivery made must be kept for this copy's own replays to meet it: a
 * window after the latest instant this copy names (`times`, epoch ms), or for good when nothing dates it (no
 * time within a day of `receivedAt`), as `judgeFreshness` keeps the record this copy would make. Unlike that, the
 * receipt does not count: a copy's replay is refused by its own times once they are past the horizon, so a copy
 * that names no later instant than the record's first copy needs no longer record, and costs no write. Pure.
 *
 * @example replayCover([], Date.now(), 7 * 86_400) === 'forever'
 */
export function replayCover(times: readonly number[], receivedAt: number, windowSeconds: number): Retention {
  if (!times.some((at) => at <= receivedAt + MAX_FUTURE_SKEW_MS)) return 'forever';
  return { until: Math.ceil(Math.max(...times) / 1000) + windowSeconds };
}
