import type { RunPlan } from '#local/pipeline/plan.ts';
import { createProgress, type OutputStream } from '#local/pipeline/progress.ts';
import type { RunEnd } from '#local/pipeline/report.ts';
import type { LocalResources } from '#local/pipeline/resources.ts';
import type { Senders } from '#local/pipeline/senders.ts';
import type { JobTracker } from '#local/pipeline/tracker.ts';
import { JobLedger } from '#shared/ledger/ledger.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/attributes.ts';

/** How often the watch samples the queues and redraws the progress, ms. */
const TICK_MS = 200;

export interface WatchIO {
  /** Progress lines (or a bar in a terminal), the first transport failure, and the "interrupted" line. */
  readonly stdout: OutputStream;
  /** Aborted when the user asks to stop (Ctrl-C): the watch ends at once with what has settled. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Step 3 of a run: samples the queues every tick (the dead-letter queue's depth and the oldest job's age, for
 * the tracker and the alarms) and shows progress, until every job settled, the `--timeout` passed or the user
 * interrupted. With `--ecourtdate-url`, the first request that got no answer is named as soon as it happens, and
 * the watch ends at once (`unreachable`) when that failure is one retrying cannot fix (`Senders.unreachable`).
 * Prints "interrupted: N/M settled" when interrupted. Returns how the watch ended.
 */
export async function watchUntilSettled(
  plan: RunPlan,
  resources: LocalResources,
  senders: Senders,
  io: WatchIO,
): Promise<RunEnd> {
  const { tracker, monitor } = senders;
  // Reads only (get writes nothing, so the entries' time to live does not apply).
  const ledger = new JobLedger({
    client: resources.dynamodb.client,
    tableName: resources.world.ledgerTableName,
    ttlSeconds: 0,
  });
  const progress = createProgress(io.stdout);
  const deadline = senders.startedAt + plan.options.timeoutSeconds * 1000;
  let failureShown = false;
  const sample = async () => {
    const at = Date.now();
    try {
      const dlq = await resources.emulator.inspect(resources.deadLetterQueue.name);
      tracker.onDeadLetterQueue(dlq.ready.map((m) => m.messageId));
      tracker.onDeadLetters(
        dlq.ready.map((m) => ({
          jobId: m.messageAttributes?.[DLQ_ATTRIBUTE.jobId]?.StringValue,
          reason: m.messageAttributes?.[DLQ_ATTRIBUTE.reason]?.StringValue,
        })),
      );
      monitor.gauge('deadLetterQueue', 'ApproximateNumberOfMessagesVisible', dlq.ready.length, at);
      // The send queue's depth: what EcourtdateUnavailable reports as the jobs held.
      const send = await resources.emulator.inspect(resources.sendQueue.name);
      monitor.gauge('sendQueue', 'ApproximateNumberOfMessagesVisible', send.ready.length, at);
      monitor.gauge('sendQueue', 'ApproximateNumberOfMessagesNotVisible', send.inflight.length, at);
      monitor.gauge('sendQueue', 'ApproximateNumberOfMessagesDelayed', send.delayed.length, at);
    } catch {
      // The emulator is going away: nothing to sample.
    }
    await settleUnreportedFromLedger(resources, ledger, tracker);
    const oldest = tracker.oldestUnsettledAt();
    const ageSeconds = oldest === undefined ? 0 : ((at - oldest) / 1000) * plan.options.timeScale;
    monitor.gauge('sendQueue', 'ApproximateAgeOfOldestMessage', Math.floor(ageSeconds), at);
    const failure = senders.firstTransportFailure();
    if (failure !== undefined && !failureShown) {
      failureShown = true;
      progress.note(`First request without an answer: ${failure}`);
    }
    progress.update({
      counts: tracker.counts(),
      apiCalls: { send: senders.apiCalls.send, token: senders.apiCalls.token },
      elapsedMs: at - senders.startedAt,
    });
  };

  let ended: RunEnd;
  for (;;) {
    await sample();
    if (tracker.allSettled()) {
      ended = 'settled';
      break;
    }
    if (senders.unreachable() !== undefined) {
      ended = 'unreachable';
      break;
    }
    if (io.signal?.aborted) {
      ended = 'interrupted';
      break;
    }
    if (Date.now() >= deadline) {
      ended = 'timed_out';
      break;
    }
    await tick(io.signal);
  }
  progress.done();
  if (ended === 'interrupted') {
    const counts = tracker.counts();
    io.stdout.write(`interrupted: ${counts.settled}/${counts.total} settled\n`);
  }
  return ended;
}

/** Waits one tick, or less when the signal aborts meanwhile. */
function tick(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, TICK_MS);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * When none of the run's messages is left on the send queue, a job the tracker still holds unsettled was settled
 * by an invocation whose report never came (Lambda ended it at the function timeout): its outcome is the job
 * ledger's (docs/ledger.md). Reads the ledger for those jobs only; a failed read waits for the next tick.
 */
async function settleUnreportedFromLedger(
  resources: LocalResources,
  ledger: JobLedger,
  tracker: JobTracker,
): Promise<void> {
  const ids = tracker.unsettledIds();
  if (ids.length === 0) return;
  try {
    const queue = await resources.emulator.inspect(resources.sendQueue.name);
    if (queue.ready.length + queue.delayed.length + queue.inflight.length > 0) return;
    for (const id of ids) {
      const entry = await ledger.get(id);
      if (entry !== undefined) tracker.settleFromLedger(entry);
    }
  } catch {
    // The emulators are going away, or the table is busy: the next tick tries again.
  }
}
