/**
 * SQS fair queues in the test world: which ready messages a ReceiveMessage on a standard queue hands out first
 * when one message group (tenant) is noisy, as the SQS Developer Guide describes it ("How Amazon SQS fair queues
 * work"), and as docs/test-world.md ("Fair queues") says the world models it:
 *
 * - a group is noisy when it holds more than 10 % of the queue's in-flight messages and at least 30 of its own
 *   (concurrency share), or more than 10 % of the consumers' recent processing time (processing-time share:
 *   the time its messages spent in flight, received to deleted or visible again, over the last `recentMs`);
 * - messages of quiet groups go first, in queue order; then those of noisy groups, the group with the fewest
 *   in-flight messages first; a message without a group is a group of its own, so never noisy.
 *
 * Pure except for `FairQueueLoad`, which keeps a queue's recent processing time.
 */

/** The documented thresholds (SQS Developer Guide, "How Amazon SQS fair queues work"). */
export const FAIR_QUEUE_RULES = {
  /** A group with more than this share of the in-flight messages ... */
  concurrencyShare: 0.1,
  /** ... and at least this many of its own in flight is noisy. */
  minInFlight: 30,
  /** A group with more than this share of the recent processing time is noisy. */
  processingTimeShare: 0.1,
} as const;

/** A group's load: its messages in flight now, and its processing time (ms) over the recent window. */
export interface GroupLoad {
  readonly inFlight: number;
  readonly processingMs: number;
}

/** The noisy groups among `loads` (by group), by the rules of `FAIR_QUEUE_RULES`. */
export function noisyGroups(loads: ReadonlyMap<string, GroupLoad>): Set<string> {
  let inFlight = 0;
  let processingMs = 0;
  for (const load of loads.values()) {
    inFlight += load.inFlight;
    processingMs += load.processingMs;
  }
  const noisy = new Set<string>();
  for (const [group, load] of loads) {
    const byConcurrency =
      load.inFlight >= FAIR_QUEUE_RULES.minInFlight &&
      load.inFlight > FAIR_QUEUE_RULES.concurrencyShare * inFlight;
    const byProcessingTime =
      processingMs > 0 && load.processingMs > FAIR_QUEUE_RULES.processingTimeShare * processingMs;
    if (byConcurrency || byProcessingTime) noisy.add(group);
  }
  return noisy;
}

/**
 * `ready` (queue order) in the order a fair queue hands it out: quiet groups' messages first, then each noisy
 * group's, fewest in flight first; the order within a group is kept. A new array; `ready` is not changed.
 */
export function fairOrder<T>(
  ready: readonly T[],
  groupOf: (message: T) => string | undefined,
  loads: ReadonlyMap<string, GroupLoad>,
): T[] {
  const noisy = noisyGroups(loads);
  if (noisy.size === 0) return [...ready];
  const rank = (message: T): number => {
    const group = groupOf(message);
    if (group === undefined || !noisy.has(group)) return -1;
    return loads.get(group)?.inFlight ?? 0;
  };
  return ready
    .map((message, index) => ({ message, index, rank: rank(message) }))
    .sort((a, b) => a.rank - b.rank || a.index - b.index)
    .map((entry) => entry.message);
}

/**
 * One queue's load by group, kept across receives: each receive hands it the messages in flight now (`observe`),
 * and it counts, per group, the in-flight messages and the time messages spent in flight within the last
 * `recentMs` (a message that left flight since the last look is counted until then).
 */
export class FairQueueLoad {
  private readonly flying = new Map<string, { group: string; since: number }>();
  private finished: { group: string; from: number; to: number }[] = [];

  private readonly recentMs: number;

  /** `recentMs`: the window of recent processing time, ms of the clock `observe` is given. */
  constructor(recentMs: number) {
    this.recentMs = recentMs;
  }

  /**
   * The load by group at `now` (epoch ms), given the messages in flight now (`messageId`, `group`; those without a
   * group are left out: each is a group of its own).
   */
  observe(
    now: number,
    inFlight: Iterable<{ readonly messageId: string; readonly group: string | undefined }>,
  ): Map<string, GroupLoad> {
    const current = new Map<string, string>();
    for (const { messageId, group } of inFlight) if (group !== undefined) current.set(messageId, group);
    for (const [messageId, flight] of this.flying) {
      if (current.get(messageId) === flight.group) continue;
      this.finished.push({ group: flight.group, from: flight.since, to: now });
      this.flying.delete(messageId);
    }
    for (const [messageId, group] of current) {
      if (!this.flying.has(messageId)) this.flying.set(messageId, { group, since: now });
    }
    const horizon = now - this.recentMs;
    this.finished = this.finished.filter((span) => span.to > horizon);
    const loads = new Map<string, { inFlight: number; processingMs: number }>();
    const add = (group: string, inFlight: number, from: number, to: number) => {
      const load = loads.get(group) ?? { inFlight: 0, processingMs: 0 };
      load.inFlight += inFlight;
      load.processingMs += Math.max(0, to - Math.max(from, horizon));
      loads.set(group, load);
    };
    for (const span of this.finished) add(span.group, 0, span.from, span.to);
    for (const flight of this.flying.values()) add(flight.group, 1, flight.since, now);
    return loads;
  }

  /** A message just handed out: in flight from `now`. */
  received(now: number, messageId: string, group: string | undefined): void {
    if (group !== undefined && !this.flying.has(messageId)) this.flying.set(messageId, { group, since: now });
  }
}
