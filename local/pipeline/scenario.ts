import { createThen, type FaultRule, type Simulator } from '#local/ecourtdate-simulator/index.ts';
import type { StartOptions } from '#local/pipeline/options.ts';

/** The sample jobs `npm start` sends when no `--jobs` file is given. */
export const SAMPLE_JOBS_FILE = 'examples/jobs.jsonl';

/** The built-in simulator's API client, whose credentials the local secret holds. Not a real credential. */
export const SCENARIO_CLIENT = { id: 'relay-local-client', secret: 'relay-local-simulator-secret' } as const;

/**
 * Agencies the built-in simulator knows. The first is the API client's default agency; any other
 * `agency_reference` gets 404 "Agency Not Found", as from eCourtDate.
 */
export const SCENARIO_AGENCIES = ['county-a', 'county-b'] as const;

const ONEOFFS = '/v1/messages/oneoffs';

/** A recipient that makes the built-in simulator misbehave, and how (listed in docs/operating.md). */
export interface MagicRecipient {
  readonly to: string;
  readonly behaviour: string;
  readonly rule: Omit<FaultRule, 'match' | 'name'>;
}

/**
 * The built-in simulator's script: messages to these recipients meet these answers (on
 * `POST /v1/messages/oneoffs` only). Other recipients are simply created (201), subject to the simulator's
 * real checks: token, agency, body validation, the 30-minute duplicate window and the rate limit.
 */
export const MAGIC_RECIPIENTS: readonly MagicRecipient[] = [
  {
    to: '+15550100400',
    behaviour: '400 naming the field `to`',
    rule: {
      action: {
        kind: 'respond',
        status: 400,
        body: {
          message: 'The to field must be a valid phone number.',
          errors: { to: ['The to field must be a valid phone number.'] },
        },
      },
    },
  },
  {
    to: '+15550100401',
    behaviour: '401 once (an expired token): renewed and resent in the same invocation',
    rule: { times: 1, action: { kind: 'respond', status: 401, body: { message: 'Unauthenticated.' } } },
  },
  {
    to: '+15550100402',
    behaviour:
      '401 three times: token renewal and a secret re-read do not help, so it is retried later ' +
      '(an auth failure, for the AuthFailing alarm), then accepted',
    rule: { times: 3, action: { kind: 'respond', status: 401, body: { message: 'Unauthenticated.' } } },
  },
  {
    to: '+15550100403',
    behaviour: '403 "Agency is inactive."',
    rule: { action: { kind: 'respond', status: 403, body: { message: 'Agency is inactive.' } } },
  },
  {
    to: '+15550100405',
    behaviour: '405 Method Not Allowed',
    rule: {
      action: {
        kind: 'respond',
        status: 405,
        body: { message: 'The POST method is not supported for this route.' },
      },
    },
  },
  {
    to: '+15550100408',
    behaviour: 'hangs once (no answer: the request times out), then created',
    rule: { times: 1, action: { kind: 'hang' } },
  },
  {
    to: '+15550100429',
    behaviour: '429 once, then created after the wait',
    rule: { times: 1, action: { kind: 'respond', status: 429, body: { message: 'Too Many Attempts.' } } },
  },
  {
    to: '+15550100444',
    behaviour: 'connection dropped once, then created',
    rule: { times: 1, action: { kind: 'drop' } },
  },
  {
    to: '+15550100500',
    behaviour: '500 once, then created',
    rule: { times: 1, action: { kind: 'respond', status: 500, body: { message: 'Server Error' } } },
  },
  {
    to: '+15550100501',
    behaviour: '500 every time',
    rule: { action: { kind: 'respond', status: 500, body: { message: 'Server Error' } } },
  },
  {
    to: '+15550100503',
    behaviour: '503 every time',
    rule: { action: { kind: 'respond', status: 503, body: { message: 'Service Unavailable' } } },
  },
  {
    to: '+15550100504',
    behaviour: 'created, but answered 504 once (the retry then meets the duplicate check: 409)',
    rule: { times: 1, action: createThen({ kind: 'respond', status: 504, body: 'Gateway Timeout' }) },
  },
  {
    to: '+15550100505',
    behaviour: 'created, but answered 504 every time',
    rule: { action: createThen({ kind: 'respond', status: 504, body: 'Gateway Timeout' }) },
  },
];

/** The recipient of the sample job `ok-1`, which `duplicate-of-ok-1` repeats. */
export const DUPLICATED_RECIPIENT = '+15551230001';

/**
 * Scripts the built-in simulator for the sample jobs: the magic recipients, plus one ordering rule. The sample's
 * `duplicate-of-ok-1` repeats `ok-1` for the same (default) agency, named explicitly; its requests are held
 * for 1.5 s (less than the demo's 3 s HTTP timeout), so that `ok-1`, the first job of the first batch, always
 * reaches eCourtDate first and the copy meets the 409 on its first attempt.
 */
export function scriptScenario(sim: Simulator): void {
  for (const magic of MAGIC_RECIPIENTS) {
    sim.script({
      name: `${magic.to}: ${magic.behaviour}`,
      match: { path: ONEOFFS, to: magic.to },
      ...magic.rule,
    });
  }
  sim.script({
    name: 'a later copy of ok-1 (agency named explicitly) arrives 1.5 s late',
    match: { path: ONEOFFS, to: DUPLICATED_RECIPIENT, agencyReference: SCENARIO_AGENCIES[0] },
    delayMs: 1_500,
    action: { kind: 'pass' },
  });
}

/**
 * Schedules the run's outages (`--outage`, `--auth-outage`) on the built-in simulator: each starts at the first
 * request to the messages endpoint (the first jobs are then in flight), or `--outage-at` after `now` (epoch ms,
 * the run's start), and lasts its duration in eCourtDate's time, which the simulator divides by the time scale
 * (docs/test-world.md, "Outages in the simulator").
 */
export function scheduleOutages(
  sim: Simulator,
  options: Pick<StartOptions, 'outages' | 'outageAtSeconds' | 'timeScale'>,
  now: number,
): void {
  for (const outage of options.outages ?? []) {
    sim.scheduleOutage({
      name: outage.kind === 'auth' ? '--auth-outage' : '--outage',
      kind: outage.kind,
      start:
        options.outageAtSeconds === undefined
          ? { atRequest: { path: ONEOFFS } }
          : now + (options.outageAtSeconds * 1000) / options.timeScale,
      durationSeconds: outage.durationSeconds,
      ...(outage.retryAfter ? { retryAfter: 'remaining' as const } : {}),
    });
  }
}
