/**
 * The EMF metrics the sender emits. The CDK alarms and dashboard, and the local pipeline's alarm evaluation,
 * use these names, so they live in one place. All are Count metrics in `METRICS_NAMESPACE` with the dimensions
 * `service` = `METRICS_SERVICE` (Powertools' default dimension) and, in a deployed stage, `stage` (`STAGE_ENV`),
 * summed over a period.
 */
export const METRICS_NAMESPACE = 'ECourtDateRelay';
export const METRICS_SERVICE = 'ecourtdate-relay';
/**
 * The variable that names a deployed function's stage (`staging`, `production`): its metrics carry it as the
 * dimension `stage` beside `service`, so that each stage's alarms and dashboard see only that stage's metrics.
 * Unset locally: the metrics then carry `service` only.
 */
export const STAGE_ENV = 'RELAY_STAGE';

/** The stage a deployed function runs in (`STAGE_ENV`), or undefined locally (unset or blank). */
export function deployedStage(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  return env[STAGE_ENV]?.trim() || undefined;
}

/** The dimensions of the relay's own metrics in a stage (as the alarms and the dashboard select them). */
export function relayDimensions(stage: string): { service: string; stage: string } {
  return { service: METRICS_SERVICE, stage };
}

export const METRIC = {
  /** Every HTTP request to the messages endpoint that got an answer or failed in transport. */
  apiCalls: 'ApiCalls',
  /** Responses with a 4xx status from the messages endpoint. */
  responses4xx: 'Responses4xx',
  /** Responses with a 5xx status from the messages or token endpoint. */
  responses5xx: 'Responses5xx',
  /** Timeouts and connection errors towards eCourtDate (outcome unknown). */
  transportErrors: 'TransportErrors',
  /** 403 responses (agency inactive, client revoked, user token). Alarmed on. */
  forbidden: 'Responses403',
  /** 429 responses (token endpoint included). */
  rateLimited: 'Responses429',
  /** 401 that persisted after a token refresh and a secret re-read. Alarmed on. */
  authFailures: 'AuthFailures',
  /** Requests to `/oauth/token`. */
  tokenRequests: 'TokenRequests',
  delivered: 'Delivered',
  duplicates: 'Duplicates',
  retried: 'Retried',
  /** Records not sent because the instance was waiting out a 429; they are retried, not counted as attempts. */
  deferred: 'Deferred',
  deadLettered: 'DeadLettered',
  /**
   * Records held by the open circuit breaker (not sent, no attempt spent); also per reason (`heldMetric`). The
   * EcourtdateUnavailable and AuthFailing alarms read them.
   */
  jobsHeld: 'JobsHeld',
  /** The circuit breaker's state as an instance saw it at the end of each invocation: 1 open, 0 closed (Maximum). */
  breakerOpen: 'BreakerOpen',
  /** Probes (`GET /v1/settings`) an instance ran while the breaker was open. */
  breakerProbes: 'BreakerProbes',
  /** A job that had already settled came again (redelivery, lost ack, upstream resend): acknowledged, not sent. */
  alreadySettled: 'AlreadySettled',
} as const;

/** Per-status-code metric, e.g. `Status201`, `Status503`: the "responses by status code" view. */
export function statusMetric(status: number): string {
  return `Status${status}`;
}

/** Per-reason held metric: `JobsHeld_unavailable`, `JobsHeld_auth`. */
export function heldMetric(reason: 'unavailable' | 'auth'): string {
  return `JobsHeld_${reason}`;
}

/** Per-reason dead-letter metric, e.g. `DeadLettered_forbidden`. */
export function deadLetterMetric(reason: string): string {
  return `DeadLettered_${reason}`;
}
