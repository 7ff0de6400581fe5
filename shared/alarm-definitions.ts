import { heldMetric, METRIC } from '#shared/metric-names.ts';

/**
 * The relay's on-call alarms as plain data: what each one watches, how, and when it fires. The CDK stack turns
 * every definition into a CloudWatch alarm, and the local pipeline evaluates the same definitions over the counts
 * of a local run (local/cloudwatch/alarm-evaluation.ts), so an alarm means the same thing in both places. No CDK
 * import here, and no evaluation: only the stack and the local run's evaluator read these.
 */

/** The CloudWatch comparison operators the relay uses. */
export type AlarmComparison =
  | 'GreaterThanOrEqualToThreshold'
  | 'GreaterThanThreshold'
  | 'LessThanThreshold'
  | 'LessThanOrEqualToThreshold';

/** CloudWatch's `TreatMissingData` values. */
export type MissingDataTreatment = 'notBreaching' | 'breaching' | 'ignore' | 'missing';

export type AlarmStatistic = 'Sum' | 'Maximum' | 'Average' | 'Minimum' | 'SampleCount';

/**
 * Where a metric comes from. `relay` is the sender's own EMF metrics (namespace `METRICS_NAMESPACE`, dimension
 * `service`); the others are the AWS metrics of one of the stack's resources (`AWS/SQS` by queue name,
 * `AWS/Lambda` by function name, `AWS/DynamoDB` by table name), which the stack resolves to the real resource.
 */
export type AlarmMetricSource =
  | 'relay'
  | 'sendQueue'
  | 'deadLetterQueue'
  | 'eventsDeadLetterQueue'
  | 'senderFunction'
  | 'ledgerTable';

export interface AlarmMetric {
  /** The metric's variable in `expression` (CloudWatch requires a lowercase first letter). */
  readonly id: string;
  readonly source: AlarmMetricSource;
  readonly metricName: string;
  readonly statistic: AlarmStatistic;
  /**
   * Dimensions besides the resource's own, e.g. `{ Operation: 'GetItem' }`: DynamoDB publishes `SystemErrors`
   * and `ThrottledRequests` per table and operation only.
   */
  readonly dimensions?: Readonly<Record<string, string>>;
}

export interface AlarmDefinition {
  /** Stable id: part of the CloudWatch alarm name and the runbook heading in docs/runbook.md. Never rename. */
  readonly id: string;
  /** One line for the alarm description and the notification: what it means. */
  readonly description: string;
  /** Metrics the alarm reads. Without `expression` the alarm watches the single metric. */
  readonly metrics: readonly AlarmMetric[];
  /**
   * CloudWatch metric math over the metrics' ids. Only the subset the local evaluator understands
   * (local/cloudwatch/metric-math.ts: numbers, ids, `+ - * /`, comparisons, `IF`, `FILL`), so a local run can
   * evaluate every alarm; test/local/alarm-evaluation.test.ts checks each definition parses.
   */
  readonly expression?: string;
  /** Label of the math expression on graphs. */
  readonly expressionLabel?: string;
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly comparison: AlarmComparison;
  readonly threshold: number;
  readonly treatMissingData: MissingDataTreatment;
}

/** The thresholds an operator can tune (CDK context settings of the same name). */
export interface AlarmThresholds {
  /** 403 responses in 5 minutes that page on-call. eCourtDate: "set up monitoring for 403 responses". */
  readonly forbiddenThreshold: number;
  /** Share of calls (in %) that were 5xx or transport errors, per 5-minute period. */
  readonly serverErrorRatePercent: number;
  /** Calls a 5-minute period needs before its 5xx share counts (a single failed call is not a spike). */
  readonly serverErrorMinCalls: number;
  /** Consecutive 5-minute periods the 5xx share must stay at or above the threshold. */
  readonly serverErrorPeriods: number;
  /** Jobs whose 401 outlived a token refresh and a secret re-read, in 5 minutes. */
  readonly authFailureThreshold: number;
  /** Messages visible in a dead-letter queue. */
  readonly deadLetterThreshold: number;
  /** Age of the oldest message in the send queue, in seconds. */
  readonly oldestMessageAgeSeconds: number;
  /** Sender Lambda errors (crashes, timeouts; not per-record failures) in 5 minutes. */
  readonly senderErrorThreshold: number;
  /** Sender Lambda throttles in 5 minutes. */
  readonly senderThrottleThreshold: number;
  /** DynamoDB system errors (HTTP 500) on the ledger table in 5 minutes. */
  readonly ledgerSystemErrorThreshold: number;
  /** Throttled requests to the ledger table in 5 minutes. */
  readonly ledgerThrottleThreshold: number;
}

export const DEFAULT_ALARM_THRESHOLDS: AlarmThresholds = {
  forbiddenThreshold: 1,
  serverErrorRatePercent: 20,
  serverErrorMinCalls: 5,
  serverErrorPeriods: 3,
  authFailureThreshold: 1,
  deadLetterThreshold: 1,
  // Retries back off up to 480 s and 429 waits repeat, so a healthy queue can hold minutes-old jobs;
  // an hour means delivery has stalled.
  oldestMessageAgeSeconds: 3600,
  senderErrorThreshold: 1,
  senderThrottleThreshold: 1,
  ledgerSystemErrorThreshold: 1,
  ledgerThrottleThreshold: 1,
};

/**
 * `NoisyAgency`: a message group (agency) that SQS counts as noisy on the fair send queue in each of 3
 * consecutive 5-minute periods. A burst held behind the other agencies for 15 minutes is worth a look, not a page
 * at its first minute (docs/runbook.md, "NoisyAgency"). Not a stage setting.
 */
export const NOISY_AGENCY_ALARM = { threshold: 1, periods: 3 } as const;

/** The ids of the alarms, as used in alarm names, stack tests and docs/runbook.md. */
export const ALARM_ID = {
  forbidden: 'Forbidden403',
  serverErrors: 'ServerErrorRate',
  authFailing: 'AuthFailing',
  ecourtdateUnavailable: 'EcourtdateUnavailable',
  deadLetterQueue: 'DeadLetterQueueNotEmpty',
  eventsDeadLetterQueue: 'EventsDeadLetterQueueNotEmpty',
  oldestMessage: 'OldestMessageTooOld',
  noisyAgency: 'NoisyAgency',
  senderErrors: 'SenderErrors',
  senderThrottles: 'SenderThrottles',
  ledgerSystemErrors: 'LedgerSystemErrors',
  ledgerThrottles: 'LedgerThrottles',
} as const;

/**
 * The DynamoDB operations the sender makes on the ledger table: conditional PutItem (claim, settle), a consistent
 * GetItem (the circuit breaker's state; where the emulator cannot return the item a failed condition found), and
 * UpdateItem: the `api-client` item's writes (the shared rate budget's leases, a 429's `blocked_until`, the
 * circuit breaker's conditional writes; docs/pacing.md) and, with webhooks on, the uuid index write
 * (docs/webhooks.md, "Before the index"). The stack grants the sender exactly these.
 */
export const SENDER_LEDGER_OPERATIONS = ['GetItem', 'PutItem', 'UpdateItem'] as const;

/**
 * Every DynamoDB operation made on the ledger table (the sender's, and the webhook receiver's UpdateItem of a
 * job's delivery status): the ledger alarms watch them all.
 */
export const LEDGER_OPERATIONS = ['GetItem', 'PutItem', 'UpdateItem'] as const;

const FIVE_MINUTES = 300;

/**
 * One breaching period of the last three alarms (M of N: 1 of 3), for the math alarms a single period decides:
 * a datapoint that arrives late still counts while it is in the range.
 */
export const ANY_OF_THREE = { evaluationPeriods: 3, datapointsToAlarm: 1 } as const;

/**
 * One ledger-table metric per operation, summed. DynamoDB publishes a datapoint only for the operations that had
 * one; metric math counts a missing one as 0 when another has a datapoint (no `FILL`, which CloudWatch's docs
 * warn can hold an alarm in one state when data arrives late).
 */
function perOperationSum(
  prefix: string,
  metricName: string,
): Pick<AlarmDefinition, 'metrics' | 'expression'> {
  const metrics = LEDGER_OPERATIONS.map(
    (operation): AlarmMetric => ({
      id: `${prefix}${operation}`,
      source: 'ledgerTable',
      metricName,
      statistic: 'Sum',
      dimensions: { Operation: operation },
    }),
  );
  return { metrics, expression: metrics.map((metric) => metric.id).join(' + ') };
}

/**
 * Builds every alarm definition from the thresholds.
 *
 * @example
 * const definitions = alarmDefinitions({ ...DEFAULT_ALARM_THRESHOLDS, forbiddenThreshold: 3 });
 */
export function alarmDefinitions(thresholds: AlarmThresholds = DEFAULT_ALARM_THRESHOLDS): AlarmDefinition[] {
  const t = thresholds;
  const everyPeriod = (periods: number) => ({ evaluationPeriods: periods, datapointsToAlarm: periods });
  return [
    {
      id: ALARM_ID.forbidden,
      description:
        `eCourtDate answered 403 Forbidden ${t.forbiddenThreshold}+ times in 5 minutes: agency inactive, ` +
        'API client revoked or lacking permission, or a user token in place of API client credentials.',
      metrics: [{ id: 'forbidden', source: 'relay', metricName: METRIC.forbidden, statistic: 'Sum' }],
      periodSeconds: FIVE_MINUTES,
      ...everyPeriod(1),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: t.forbiddenThreshold,
      // The sender emits no datapoint in a period without 403s: no data is healthy.
      treatMissingData: 'notBreaching',
    },
    {
      id: ALARM_ID.serverErrors,
      description:
        `${t.serverErrorRatePercent}%+ of eCourtDate calls failed with 5xx or in transport for ` +
        `${t.serverErrorPeriods} consecutive 5-minute periods (periods with fewer than ` +
        `${t.serverErrorMinCalls} calls count as healthy).`,
      metrics: [
        { id: 'calls', source: 'relay', metricName: METRIC.apiCalls, statistic: 'Sum' },
        { id: 'errors5xx', source: 'relay', metricName: METRIC.responses5xx, statistic: 'Sum' },
        { id: 'transport', source: 'relay', metricName: METRIC.transportErrors, statistic: 'Sum' },
      ],
      // A period with calls but no 5xx has no Responses5xx datapoint: metric math counts it as 0. IF: a few calls
      // with one failure is not a spike (and no call no ratio).
      expression: `IF(calls >= ${t.serverErrorMinCalls}, 100 * (errors5xx + transport) / calls, 0)`,
      expressionLabel: '5xx and transport errors (% of calls)',
      periodSeconds: FIVE_MINUTES,
      ...everyPeriod(t.serverErrorPeriods),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: t.serverErrorRatePercent,
      treatMissingData: 'notBreaching',
    },
    {
      id: ALARM_ID.authFailing,
      description:
        'eCourtDate kept answering 401 after a new token and a fresh read of the secret: the API client was ' +
        'revoked or rotated, or the secret holds credentials of the other environment (staging vs production). ' +
        'The circuit breaker holds the jobs (no attempt spent) until a probe gets through.',
      metrics: [
        { id: 'authFailures', source: 'relay', metricName: METRIC.authFailures, statistic: 'Sum' },
        // The circuit breaker holds jobs while the credentials are refused: few new failures, but still failing.
        { id: 'heldAuth', source: 'relay', metricName: heldMetric('auth'), statistic: 'Sum' },
      ],
      expression: 'authFailures + heldAuth',
      expressionLabel: 'auth failures and jobs held for them',
      periodSeconds: FIVE_MINUTES,
      ...everyPeriod(1),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: t.authFailureThreshold,
      treatMissingData: 'notBreaching',
    },
    {
      id: ALARM_ID.ecourtdateUnavailable,
      description:
        'eCourtDate unavailable: the circuit breaker is open and N jobs are held (the value: jobs waiting in the ' +
        'send queue). Nothing is sent and no attempt is spent; a probe (GET /v1/settings) closes it when ' +
        'eCourtDate answers again. Check status.ecourtdate.com.',
      metrics: [
        { id: 'held', source: 'relay', metricName: heldMetric('unavailable'), statistic: 'Sum' },
        {
          id: 'visible',
          source: 'sendQueue',
          metricName: 'ApproximateNumberOfMessagesVisible',
          statistic: 'Maximum',
        },
        {
          id: 'inFlight',
          source: 'sendQueue',
          metricName: 'ApproximateNumberOfMessagesNotVisible',
          statistic: 'Maximum',
        },
        {
          id: 'delayed',
          source: 'sendQueue',
          metricName: 'ApproximateNumberOfMessagesDelayed',
          statistic: 'Maximum',
        },
      ],
      // No hold in the period: 0 (healthy). A hold: the jobs waiting, at least 1 (the held job itself).
      expression: 'IF(held > 0, IF(visible + inFlight + delayed > 0, visible + inFlight + delayed, 1), 0)',
      expressionLabel: 'jobs held',
      periodSeconds: FIVE_MINUTES,
      ...ANY_OF_THREE,
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      treatMissingData: 'notBreaching',
    },
    {
      id: ALARM_ID.deadLetterQueue,
      description:
        'Jobs are waiting in the dead-letter queue: each was refused by eCourtDate, ran out of retries or ' +
        'expired. Read its reason attribute, fix the cause, then redrive.',
      metrics: [
        {
          id: 'visible',
          source: 'deadLetterQueue',
          metricName: 'ApproximateNumberOfMessagesVisible',
          statistic: 'Maximum',
        },
      ],
      periodSeconds: FIVE_MINUTES,
      ...everyPeriod(1),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: t.deadLetterThreshold,
      // SQS stops publishing metrics for a queue nobody touches for 6 hours, even one that still holds
      // messages: keep the last state instead of turning OK while jobs sit there.
      treatMissingData: 'ignore',
    },
    {
      id: ALARM_ID.eventsDeadLetterQueue,
      description:
        'EventBridge could not deliver send jobs to the send queue; the failed events wait in the EventBridge ' +
        'dead-letter queue with ERROR_CODE and ERROR_MESSAGE attributes.',
      metrics: [
        {
          id: 'visible',
          source: 'eventsDeadLetterQueue',
          metricName: 'ApproximateNumberOfMessagesVisible',
          statistic: 'Maximum',
        },
      ],
      periodSeconds: FIVE_MINUTES,
      ...everyPeriod(1),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: t.deadLetterThreshold,
      treatMissingData: 'ignore',
    },
    {
      id: ALARM_ID.oldestMessage,
      description:
        `The oldest job in the send queue is ${t.oldestMessageAgeSeconds}+ seconds old: delivery has stalled ` +
        '(sender failing or throttled, eCourtDate rate-limiting or down).',
      metrics: [
        { id: 'age', source: 'sendQueue', metricName: 'ApproximateAgeOfOldestMessage', statistic: 'Maximum' },
      ],
      periodSeconds: FIVE_MINUTES,
      ...everyPeriod(1),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: t.oldestMessageAgeSeconds,
      // Same as the dead-letter queues: a stalled queue with no readers may stop reporting.
      treatMissingData: 'ignore',
    },
    {
      id: ALARM_ID.noisyAgency,
      description:
        `SQS has counted ${NOISY_AGENCY_ALARM.threshold}+ agency (message group) of the fair send queue as noisy for ` +
        `${NOISY_AGENCY_ALARM.periods * 5} minutes: one agency's burst waits behind the others' jobs (docs/runbook.md, ` +
        '"NoisyAgency").',
      metrics: [
        {
          id: 'noisy',
          source: 'sendQueue',
          metricName: 'ApproximateNumberOfNoisyGroups',
          statistic: 'Maximum',
        },
      ],
      periodSeconds: FIVE_MINUTES,
      ...everyPeriod(NOISY_AGENCY_ALARM.periods),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: NOISY_AGENCY_ALARM.threshold,
      // SQS reports the fair-queue metrics only while the queue is active: an idle queue has no noisy agency.
      treatMissingData: 'notBreaching',
    },
    {
      id: ALARM_ID.senderErrors,
      description:
        'The sender Lambda failed whole invocations (crash, timeout, bad configuration). Per-job failures are ' +
        'retried or dead-lettered and do not count here.',
      metrics: [{ id: 'errors', source: 'senderFunction', metricName: 'Errors', statistic: 'Sum' }],
      periodSeconds: FIVE_MINUTES,
      ...everyPeriod(1),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: t.senderErrorThreshold,
      // Lambda publishes no datapoint without invocations: an idle relay is healthy.
      treatMissingData: 'notBreaching',
    },
    {
      id: ALARM_ID.senderThrottles,
      description:
        'The sender Lambda was throttled: the account or function concurrency limit is exhausted, so jobs wait.',
      metrics: [{ id: 'throttles', source: 'senderFunction', metricName: 'Throttles', statistic: 'Sum' }],
      periodSeconds: FIVE_MINUTES,
      ...everyPeriod(1),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: t.senderThrottleThreshold,
      treatMissingData: 'notBreaching',
    },
    {
      id: ALARM_ID.ledgerSystemErrors,
      description:
        'DynamoDB answered requests to the job ledger table with internal server errors. The sender re-queues the ' +
        'records concerned as fresh copies after the first backoff step (carrying any answer eCourtDate gave), so ' +
        'jobs are delayed, not lost.',
      ...perOperationSum('systemErrors', 'SystemErrors'),
      expressionLabel: 'ledger system errors',
      periodSeconds: FIVE_MINUTES,
      ...ANY_OF_THREE,
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: t.ledgerSystemErrorThreshold,
      // DynamoDB publishes no datapoint without errors: none is healthy.
      treatMissingData: 'notBreaching',
    },
    {
      id: ALARM_ID.ledgerThrottles,
      description:
        'DynamoDB throttled requests to the job ledger table. The table is on-demand and the relay uses a tiny ' +
        'share of it, so a limit is in the way (a maximum set on the table, one item hit in a loop, a lowered ' +
        'table quota); records that stay throttled are re-queued as fresh copies after the first backoff step.',
      ...perOperationSum('throttled', 'ThrottledRequests'),
      expressionLabel: 'ledger throttled requests',
      periodSeconds: FIVE_MINUTES,
      ...ANY_OF_THREE,
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: t.ledgerThrottleThreshold,
      treatMissingData: 'notBreaching',
    },
  ];
}
