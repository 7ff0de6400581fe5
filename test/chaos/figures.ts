import { LOG_MESSAGE } from '#shared/sender/runtime.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/attributes.ts';
import {
  deadLetterCopies,
  deadLettersForAnEndedOutage,
  type Facts,
  jobSettledEventsWrong,
  newFaultEvents,
  personalData,
  replaysPublished,
  sentTwice,
  sqsRefusals,
  statusesBeforeIndex,
  statusesLost,
  unsettledInLedger,
} from '#test/chaos/checks.ts';
import type { ChaosFigures } from '#test/chaos/summary.ts';
import type { ChaosEvidence } from '#test/chaos/world.ts';

/**
 * The invocations the event source mapping ended at the function timeout, by the planned timeout fault the
 * instance met during its batch (test/chaos/faults.ts, `TimeoutFault`), `other` when it met none.
 */
export function invocationTimeoutsByCause(evidence: ChaosEvidence): Record<string, number> {
  const byCause: Record<string, number> = {};
  for (const kill of evidence.kills) {
    if (kill.cause !== 'invocation-timeout') continue;
    const cause = kill.fault ?? 'other';
    byCause[cause] = (byCause[cause] ?? 0) + 1;
  }
  return sortKeys(byCause);
}

/** Counts what a run did and what it broke. */
export function figuresOf(
  facts: Facts,
  scenario: string,
  seed: number,
  waveSize = Number.POSITIVE_INFINITY,
  elapsedSeconds?: number,
): ChaosFigures {
  const { evidence } = facts;
  const faults: Record<string, number> = {};
  for (const post of evidence.posts) faults[post.fault] = (faults[post.fault] ?? 0) + 1;
  delete faults.ok;
  for (const request of evidence.requests) {
    if (request.faultApplied === 'token-endpoint-503' || request.faultApplied === 'storm') {
      faults[request.faultApplied] = (faults[request.faultApplied] ?? 0) + 1;
    }
  }
  const reasons: Record<string, number> = {};
  let bare = 0;
  for (const letter of evidence.deadLetters) {
    const reason = letter.attributes.reason;
    if (reason === undefined) bare += 1;
    else reasons[reason] = (reasons[reason] ?? 0) + 1;
  }
  const kills = evidence.kills.filter((kill) => kill.cause !== 'invocation-timeout').length;
  const excused = evidence.settings.jobs.filter((job) => facts.heldBackAfterUnknown(job.id)).length;
  const slowed = evidence.settings.jobs.filter((job) => facts.slowedByOutage(job.id)).length;
  const afterRedrive: Record<string, number> = {};
  for (const letter of evidence.redrives.flatMap((redrive) => redrive.deadLetters)) {
    const reason = letter.attributes[DLQ_ATTRIBUTE.reason] ?? '(none)';
    afterRedrive[reason] = (afterRedrive[reason] ?? 0) + 1;
  }
  const settledEvents = evidence.events.filter((event) => event.detailType === 'eCourtDate Job Settled');
  const refused = Object.fromEntries(Object.entries(evidence.faults.refused).filter(([, n]) => n > 0));
  return {
    scenario,
    seed,
    jobs: evidence.settings.jobs.length,
    messages_enqueued: evidence.lines.length,
    time_scale: evidence.settings.timeScale,
    instances: evidence.settings.concurrency,
    // The run's real duration, when its waves overlapped; else every run's together.
    seconds: Math.round(elapsedSeconds ?? evidence.wallSeconds),
    waves: Math.max(1, Math.ceil(evidence.settings.jobs.length / waveSize)),
    summary: evidence.report.summary,
    lost: evidence.report.summary.unsettled,
    sent_twice: sentTwice(facts).length,
    messages_created: evidence.messages.length,
    dead_letters_by_reason: sortKeys(reasons),
    dead_letters_without_reason: bare,
    sqs_refusals: evidence.refusals === undefined ? null : sqsRefusals(facts).length,
    personal_data_findings: personalData(facts).length,
    api_calls: evidence.report.api_calls,
    max_receives_per_job: Math.max(0, ...evidence.receives.values()),
    held_back_after_unknown_outcome: excused,
    requeued_copies: evidence.logLines.filter((line) => line.includes(`"message":"${LOG_MESSAGE.requeued}"`))
      .length,
    slowed_by_outage_after_unknown_outcome: slowed,
    // Requests planned to succeed that got no answer from a live instance: the machine too busy for the HTTP
    // timeout (a world less faithful than it should be when this is not near zero).
    unplanned_timeouts: evidence.posts.filter(
      (post) =>
        (post.fault === 'ok' || post.fault === 'latency') && !post.answered && !facts.touched.has(post.jobId),
    ).length,
    lost_to_double_faults: { answers: facts.answerDropped.size, events: facts.pendingDropped.size },
    unsettled_in_ledger: unsettledInLedger(facts).length,
    dead_letters: {
      before_redrive: evidence.deadLetters.length,
      jobs_with_two_copies: deadLetterCopies(facts),
      redriven: evidence.redrives.reduce((n, redrive) => n + redrive.redriven.length, 0),
      deleted_as_sent: evidence.redrives.reduce((n, redrive) => n + redrive.deletedAsSent.length, 0),
      after_redrive: evidence.redrives.reduce((n, redrive) => n + redrive.deadLetters.length, 0),
      after_redrive_by_reason: sortKeys(afterRedrive),
      new_generations: [...facts.entries.values()].reduce(
        (n, entry) => n + Math.max(0, Number(entry.generation ?? 1) - 1),
        0,
      ),
    },
    webhooks: {
      deliveries: evidence.webhookDeliveries.filter((delivery) => !delivery.forged).length,
      statuses_before_the_index: statusesBeforeIndex(facts),
      statuses_lost: statusesLost(facts).length,
      replays: evidence.replays.reduce((n, replay) => n + replay.posts.length, 0),
      replays_published: replaysPublished(facts).length,
      records_expired_before_the_replays: evidence.replays.reduce((n, replay) => n + replay.expiredItems, 0),
    },
    job_settled_events: {
      published: settledEvents.length,
      replayed: settledEvents.filter((event) => (event.detail as { replayed?: unknown }).replayed === true)
        .length,
      wrong: jobSettledEventsWrong(facts).length,
    },
    outages: { count: evidence.faults.outages.length, refused_attempts: refused },
    timeouts: {
      by_cause: invocationTimeoutsByCause(evidence),
      slow_dynamodb_windows: evidence.faults.slowWindows.length,
      attempts_slowed: sortKeys({ ...evidence.faults.slowed }),
    },
    faults_injected: {
      ...sortKeys(faults),
      instances_killed: kills,
      invocation_timeouts: evidence.kills.length - kills,
      secret_outages: evidence.secretOutages,
      token_outages: evidence.tokenOutages,
      sqs_redeliveries: evidence.redeliveries,
      copies_during_backoff: evidence.copies.length,
      upstream_resends: evidence.lines.length - evidence.settings.jobs.length,
      ...Object.fromEntries(
        newFaultEvents(facts).map(([name, n]) => [name.replaceAll(' ', '_').replace(/[^\w]/g, ''), n]),
      ),
    },
    ...(evidence.apiOutages === undefined
      ? {}
      : {
          api_outages: evidence.apiOutages.map((outage) => ({
            kind: outage.kind,
            requests_during: { ...outage.inside },
          })),
          dead_letters_for_an_ended_outage: deadLettersForAnEndedOutage(facts).length,
        }),
    ...(evidence.churned === undefined ? {} : { containers_churned: evidence.churned }),
  };
}

function sortKeys(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}
