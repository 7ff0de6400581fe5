import { LOG_MESSAGE } from '#shared/sender/runtime.ts';
import { type Facts, personalData, sentTwice, sqsRefusals } from '#test/chaos/checks.ts';
import type { ChaosFigures } from '#test/chaos/summary.ts';

/** Counts what a run did and what it broke. */
export function figuresOf(
  facts: Facts,
  scenario: string,
  seed: number,
  waveSize = Number.POSITIVE_INFINITY,
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
  return {
    scenario,
    seed,
    jobs: evidence.settings.jobs.length,
    messages_enqueued: evidence.lines.length,
    time_scale: evidence.settings.timeScale,
    instances: evidence.settings.concurrency,
    seconds: Math.round(evidence.wallSeconds),
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
    faults_injected: {
      ...sortKeys(faults),
      instances_killed: kills,
      invocation_timeouts: evidence.kills.length - kills,
      secret_outages: evidence.secretOutages,
      token_outages: evidence.tokenOutages,
      sqs_redeliveries: evidence.redeliveries,
      copies_during_backoff: evidence.copies.length,
      upstream_resends: evidence.lines.length - evidence.settings.jobs.length,
    },
  };
}

function sortKeys(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}
