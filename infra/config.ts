import { readSecretSetting, type SecretSetting } from '#infra/secret-setting.ts';
import {
  type PerStage,
  type SettingTable,
  type TableReader,
  tableReader,
  unknownSetting,
} from '#infra/setting-table.ts';
import {
  sendQueueVisibilityTimeoutSeconds,
  VISIBILITY_TIMEOUT_FUNCTION_TIMEOUTS,
} from '#infra/stack-contract.ts';
import {
  readWebhookStageConfig,
  WEBHOOK_SETTING_TABLE,
  type WebhookStageConfig,
} from '#infra/webhook-config.ts';
import { type AlarmThresholds, DEFAULT_ALARM_THRESHOLDS } from '#shared/alarm-definitions.ts';
import { AWS_CALL_LIMITS, awsCallWorstCaseMs } from '#shared/clients/aws-call-limits.ts';
import { closestName } from '#shared/closest-name.ts';
import {
  DEFAULTS,
  LAMBDA_MAX_TIMEOUT_SECONDS,
  MAX_BATCHING_WINDOW_SECONDS,
  parseBaseUrl,
  RANGES,
  SENDS_PER_JOB_WORST_CASE,
} from '#shared/config.ts';
import {
  budgetWindowCeiling,
  MAX_BUDGET_PER_MINUTE,
  OPERATOR_REQUESTS_PER_MINUTE,
} from '#shared/ecourtdate/shared-budget.ts';
import { ConfigError } from '#shared/errors.ts';
import { settingsReader } from '#shared/settings.ts';

/**
 * Stage configuration of the CDK app: one typed place for everything that differs between staging and
 * production. Each stage's settings are committed in cdk.json's "stages" map (`"stages": { "production": {
 * "onCallEmail": ... } }`); `-c <setting>=<value>` overrides one for one deploy (docs/deploy.md, "Stage
 * settings"). Every setting is read once, here, through one table (`SETTING_TABLE`: reader, default, bounds),
 * webhook settings included, and validated at synth: a bad one fails with a `ConfigError` naming the setting.
 * Nothing in the stack or its constructs reads CDK context.
 */

export const STAGES = ['staging', 'production'] as const;
export type Stage = (typeof STAGES)[number];

export const STAGING_BASE_URL = 'https://staging.api.ecourtdate.com';

/** eCourtDate's production API per region; `multi` routes to the agency's region by itself. */
export const PRODUCTION_BASE_URLS = {
  'us-east': 'https://us-east.api.ecourtdate.com',
  'us-west': 'https://us-west.api.ecourtdate.com',
  'us-south': 'https://us-south.api.ecourtdate.com',
  'us-texas': 'https://us-texas.api.ecourtdate.com',
  multi: 'https://api.ecourtdate.com',
} as const;
export type EcourtdateRegion = keyof typeof PRODUCTION_BASE_URLS;

/** The EventBridge `detail-type` upstream systems publish send jobs with. */
export const EVENT_DETAIL_TYPE = 'eCourtDate Send Message';
/**
 * The EventBridge `source` a stage takes send jobs from by default: one per stage, so that on a bus both stages
 * share (one account, one region) each rule matches only its own stage's jobs.
 *
 * @example defaultEventSource('staging'); // 'ecourtdate-relay.upstream.staging'
 */
export function defaultEventSource(stage: Stage): string {
  return `ecourtdate-relay.upstream.${stage}`;
}

/**
 * Lambda's init phase may take up to 10 s; when it runs out, Lambda runs it again inside the first invocation,
 * on that invocation's timeout.
 */
const INVOCATION_OVERHEAD_SECONDS = 10;
/**
 * The AWS SDK calls one record makes at worst, one after the other: the job ledger's claim, a re-read and the
 * settle (DynamoDB); the secret's first read and its re-read on the 401 path (Secrets Manager); one SQS call to
 * hide, re-queue or dead-letter the record.
 */
export const AWS_CALLS_PER_RECORD_WORST_CASE = { dynamodb: 3, secretsManager: 2, sqs: 1 } as const;
/**
 * Kept between a crash recovery and the end of the duplicate window: clock differences between the relay and
 * eCourtDate, and the edge of eCourtDate's window.
 */
export const CRASH_RECOVERY_MARGIN_SECONDS = 60;
/**
 * Days SQS keeps send jobs by default (`sendQueueRetentionDays`); it must outlive the sender's own 24 h retry
 * limit (MAX_AGE_SECONDS), with a day to spare for an outage before a job's first receive.
 */
export const SEND_QUEUE_RETENTION_DAYS = 4;
/** Days both dead-letter queues keep a message by default (`deadLetterRetentionDays`): the SQS maximum. */
export const DEAD_LETTER_RETENTION_DAYS = 14;
/** The retention settings' bounds in whole days, inside SQS's 60 s to 14 days (docs/privacy.md). */
export const RETENTION_DAYS_RANGES = {
  sendQueueRetentionDays: { min: 2, max: 13 },
  deadLetterRetentionDays: { min: 3, max: 14 },
} as const;

/**
 * The customer-managed KMS key of the send queue, both dead-letter queues and the ledger table (`dataKmsKey`):
 * none (SQS-managed keys and DynamoDB's AWS-owned key), one the stack creates, or an existing key by ARN.
 */
export type DataKmsKeySetting =
  | { readonly kind: 'none' }
  | { readonly kind: 'create' }
  | { readonly kind: 'existing'; readonly arn: string };
/**
 * eCourtDate's duplicate window: a second request with the same content inside it answers 409 instead of
 * creating a message. `duplicateWindowSeconds` may narrow it, never widen it.
 */
export const ECOURTDATE_DUPLICATE_WINDOW_SECONDS = 1800;

export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The retention periods CloudWatch Logs accepts, in days. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

export interface StageConfig {
  readonly stage: Stage;
  /** `EcourtdateRelay-<stage>`. */
  readonly stackName: string;
  /** eCourtDate API base URL, https only. */
  readonly baseUrl: string;
  /** Production region the base URL came from; undefined for staging or an explicit `baseUrl`. */
  readonly ecourtdateRegion: EcourtdateRegion | undefined;
  /** Subscribed to the on-call topic when set (the recipient must confirm the subscription e-mail). */
  readonly onCallEmail: string | undefined;
  /**
   * An HTTPS endpoint subscribed to the on-call topic when set: a PagerDuty or Opsgenie SNS integration URL
   * (docs/deploy.md, "On-call"). Carries the integration's key: never logged or shown in an error.
   */
  readonly onCallHttpsEndpoint: string | undefined;
  /**
   * An existing SNS topic every alarm also notifies, on ALARM and on OK (e.g. the one AWS Chatbot relays to
   * Microsoft Teams or Slack; docs/deploy.md, "On-call"): `arn:aws:sns:<region>:<account>:<name>`.
   */
  readonly onCallTopicArn: string | undefined;
  /**
   * Where the repository's docs are served (`https://github.com/<org>/ecourtdate-relay/blob/main`), so that each
   * alarm description links its runbook entry (`<runbookBaseUrl>/docs/runbook.md#forbidden403`); undefined: the
   * link is the path in the repository.
   */
  readonly runbookBaseUrl: string | undefined;
  /** Most sender instances the SQS event source runs at once (2-1000). */
  readonly maxConcurrency: number;
  /** Requests per minute the whole relay may spend of the API client's 1,000/min. */
  readonly requestsPerMinute: number;
  readonly batchSize: number;
  readonly maxBatchingWindowSeconds: number;
  readonly backoffSeconds: readonly number[];
  readonly maxAttempts: number;
  /** The part of eCourtDate's duplicate window the sender relies on when it resends after an unknown outcome. */
  readonly duplicateWindowSeconds: number;
  readonly httpTimeoutMs: number;
  readonly functionTimeoutSeconds: number;
  readonly memorySizeMb: number;
  /** Receives before SQS itself moves a job to the dead-letter queue: the crash safety net. */
  readonly maxReceiveCount: number;
  /** A 429's wait hint above this many seconds is capped to it and logged as suspect. */
  readonly rateLimitHintMaxSeconds: number;
  /** Days the job ledger keeps a job's entry (and its uuid index item) after the last change (1-365). */
  readonly ledgerTtlDays: number;
  /** Days SQS keeps a send job on the send queue (2-13, less than `deadLetterRetentionDays`). */
  readonly sendQueueRetentionDays: number;
  /** Days SQS keeps a message on each dead-letter queue (3-14, less than `ledgerTtlDays`). */
  readonly deadLetterRetentionDays: number;
  /**
   * Other AWS accounts (12-digit ids) whose principals may send jobs: to the send queue, and with the stage's
   * sources to the bus of the rule (docs/deploy.md, "Producers in other accounts").
   */
  readonly producerAccounts: readonly string[];
  /** Customer-managed KMS key of the queues and the ledger table (docs/privacy.md, "Customer-managed key"). */
  readonly dataKmsKey: DataKmsKeySetting;
  /** `create`: the stack owns the secret (placeholder value). `existing`: an existing secret, by name. */
  readonly secret: SecretSetting;
  /** Event bus of the rule; undefined for the account's default bus. */
  readonly eventBusName: string | undefined;
  /**
   * Put an `eCourtDate Job Settled` event on the same bus for every settled job (docs/webhooks.md, "Events on
   * the bus"). Off by default.
   */
  readonly publishJobSettled: boolean;
  /**
   * X-Ray subsegments from Powertools Tracer in both functions (AWS SDK calls, requests to eCourtDate). Off by
   * default: the X-Ray SDK's context hook costs the sender about 40 % of its CPU per job, while Lambda's own
   * active tracing (each invocation's segment) stays on either way (docs/deploy.md, "X-Ray subsegments").
   */
  readonly traceSubsegments: boolean;
  readonly eventSources: readonly string[];
  readonly logLevel: LogLevel;
  readonly logRetentionDays: number;
  /** Keep the secret, queues, ledger table and logs when the stack is deleted (production). */
  readonly retainData: boolean;
  readonly terminationProtection: boolean;
  readonly alarmThresholds: AlarmThresholds;
  /** The webhook receiver's settings (docs/webhooks.md, "Stage settings"). */
  readonly webhook: WebhookStageConfig;
}

type Context = Readonly<Record<string, unknown>>;

/** What stays fixed per stage: production keeps its data and refuses deletion. */
const STAGE_DEFAULTS = {
  staging: { retainData: false, terminationProtection: false },
  production: { retainData: true, terminationProtection: true },
} as const satisfies Record<Stage, object>;

/** An alarm threshold that counts events: 1 to 100,000. */
const COUNT = { min: 1, max: 100_000 } as const;

/**
 * Every stage setting: its reader, default (per stage where they differ; none where it is optional or derived
 * in `loadStageConfig`) and bounds. docs/deploy.md ("Stage settings") has a row for each.
 */
export const SETTING_TABLE = {
  stage: { reader: 'oneOf', allowed: STAGES, default: undefined },
  // Refused when it looks like an AWS region (us-east-1); production only; excludes baseUrl.
  ecourtdateRegion: { reader: 'oneOf', allowed: keysOf(PRODUCTION_BASE_URLS), default: undefined },
  // https only; default from the stage and ecourtdateRegion.
  baseUrl: { reader: 'text' },
  onCallEmail: { reader: 'text' },
  onCallHttpsEndpoint: { reader: 'text' },
  onCallTopicArn: { reader: 'text' },
  runbookBaseUrl: { reader: 'text' },
  maxConcurrency: {
    reader: 'number',
    default: { staging: 2, production: 5 },
    bounds: { min: 2, max: 1000 },
  },
  // eCourtDate allows 1,000 requests a minute per API client, token requests included.
  requestsPerMinute: { reader: 'number', default: DEFAULTS.requestsPerMinute, bounds: { min: 1, max: 1000 } },
  batchSize: { reader: 'number', default: 10, bounds: { min: 1, max: 10 } },
  maxBatchingWindowSeconds: {
    reader: 'number',
    default: 5,
    bounds: { min: 0, max: MAX_BATCHING_WINDOW_SECONDS },
  },
  backoffSeconds: {
    reader: 'numberList',
    default: DEFAULTS.backoffSeconds,
    bounds: RANGES.backoffStepSeconds,
  },
  maxAttempts: { reader: 'number', default: DEFAULTS.maxAttempts, bounds: RANGES.maxAttempts },
  duplicateWindowSeconds: {
    reader: 'number',
    default: DEFAULTS.duplicateWindowSeconds,
    bounds: { min: 60, max: ECOURTDATE_DUPLICATE_WINDOW_SECONDS },
  },
  httpTimeoutMs: { reader: 'number', default: DEFAULTS.httpTimeoutMs, bounds: { min: 1000, max: 120_000 } },
  // Default derived from httpTimeoutMs (requiredFunctionTimeoutSeconds).
  functionTimeoutSeconds: {
    reader: 'number',
    default: undefined,
    bounds: { min: 1, max: LAMBDA_MAX_TIMEOUT_SECONDS },
  },
  memorySizeMb: { reader: 'number', default: 256, bounds: { min: 128, max: 10_240 } },
  // 10: the sender dead-letters on its own, with a reason, and re-queues a job that waits long as a fresh copy,
  // so SQS's redrive only catches jobs that crash the function every time: 10 receives end such a loop within
  // hours (AWS advises at least 5), with room for the sender's retries.
  maxReceiveCount: { reader: 'number', default: 10, bounds: RANGES.maxReceiveCount },
  rateLimitHintMaxSeconds: {
    reader: 'number',
    default: DEFAULTS.rateLimitHintMaxSeconds,
    bounds: RANGES.rateLimitHintMaxSeconds,
  },
  ledgerTtlDays: { reader: 'number', default: DEFAULTS.ledgerTtlDays, bounds: RANGES.ledgerTtlDays },
  // Less than deadLetterRetentionDays (resolveRetention).
  sendQueueRetentionDays: {
    reader: 'number',
    default: SEND_QUEUE_RETENTION_DAYS,
    bounds: RETENTION_DAYS_RANGES.sendQueueRetentionDays,
  },
  deadLetterRetentionDays: {
    reader: 'number',
    default: DEAD_LETTER_RETENTION_DAYS,
    bounds: RETENTION_DAYS_RANGES.deadLetterRetentionDays,
  },
  // 12-digit AWS account ids (resolveProducerAccounts).
  producerAccounts: { reader: 'list' },
  // `create` or a KMS key ARN (resolveDataKmsKey).
  dataKmsKey: { reader: 'text' },
  // Default `ecourtdate-relay/<stage>/api-credentials`.
  secretName: { reader: 'text' },
  existingSecretName: { reader: 'text' },
  secretKmsKeyArn: { reader: 'text' },
  eventBusName: { reader: 'text' },
  publishJobSettled: { reader: 'flag', default: false },
  traceSubsegments: { reader: 'flag', default: false },
  // Default `ecourtdate-relay.upstream.<stage>` (defaultEventSource).
  eventSources: { reader: 'list' },
  logLevel: {
    reader: 'oneOf',
    allowed: LOG_LEVELS,
    default: 'INFO',
    normalize: (raw: string) => raw.toUpperCase(),
  },
  logRetentionDays: {
    reader: 'oneOf',
    allowed: LOG_RETENTION_DAYS,
    default: { staging: 30, production: 365 } satisfies PerStage<number>,
    normalize: Number,
  },
  forbiddenThreshold: {
    reader: 'number',
    default: DEFAULT_ALARM_THRESHOLDS.forbiddenThreshold,
    bounds: COUNT,
  },
  serverErrorRatePercent: {
    reader: 'number',
    default: DEFAULT_ALARM_THRESHOLDS.serverErrorRatePercent,
    bounds: { min: 1, max: 100, integer: false },
  },
  serverErrorMinCalls: {
    reader: 'number',
    default: DEFAULT_ALARM_THRESHOLDS.serverErrorMinCalls,
    bounds: COUNT,
  },
  // 5-minute periods; CloudWatch caps periods x evaluation periods at one day, 2 hours is plenty.
  serverErrorPeriods: {
    reader: 'number',
    default: DEFAULT_ALARM_THRESHOLDS.serverErrorPeriods,
    bounds: { min: 1, max: 24 },
  },
  authFailureThreshold: {
    reader: 'number',
    default: DEFAULT_ALARM_THRESHOLDS.authFailureThreshold,
    bounds: COUNT,
  },
  deadLetterThreshold: {
    reader: 'number',
    default: DEFAULT_ALARM_THRESHOLDS.deadLetterThreshold,
    bounds: COUNT,
  },
  // Below the send queue's retention (resolveAlarmThresholds).
  oldestMessageAgeSeconds: {
    reader: 'number',
    default: DEFAULT_ALARM_THRESHOLDS.oldestMessageAgeSeconds,
    bounds: { min: 60, max: RETENTION_DAYS_RANGES.sendQueueRetentionDays.max * 86_400 - 1 },
  },
  senderErrorThreshold: {
    reader: 'number',
    default: DEFAULT_ALARM_THRESHOLDS.senderErrorThreshold,
    bounds: COUNT,
  },
  senderThrottleThreshold: {
    reader: 'number',
    default: DEFAULT_ALARM_THRESHOLDS.senderThrottleThreshold,
    bounds: COUNT,
  },
  ledgerSystemErrorThreshold: {
    reader: 'number',
    default: DEFAULT_ALARM_THRESHOLDS.ledgerSystemErrorThreshold,
    bounds: COUNT,
  },
  ledgerThrottleThreshold: {
    reader: 'number',
    default: DEFAULT_ALARM_THRESHOLDS.ledgerThrottleThreshold,
    bounds: COUNT,
  },
  ...WEBHOOK_SETTING_TABLE,
} as const satisfies SettingTable;

export type SettingName = keyof typeof SETTING_TABLE;
type StageSettings = TableReader<SettingName>;

/** Every setting the app reads; anything else that looks like one is a typo. */
export const SETTINGS = Object.keys(SETTING_TABLE) as SettingName[];

/** The context key of the committed per-stage settings: `"stages": { "<stage>": { "<setting>": value } }`. */
export const STAGES_KEY = 'stages';

/** The settings that give production an on-call destination; production needs at least one. */
export const ON_CALL_SETTINGS = ['onCallEmail', 'onCallHttpsEndpoint', 'onCallTopicArn'] as const;

/**
 * The settings one stage is built from: its entry of the "stages" map (cdk.json), with every setting given at the
 * top level of the context (`-c name=value`, or cdk.json "context" itself) on top, and the names of the settings
 * such an override replaced (to tell the operator, never the values). Throws `ConfigError` for a "stages" map
 * that is not an object of the two stages, or a name in it that is not a setting (with a did-you-mean).
 *
 * @example
 * stageSettings({ stage: 'production', maxConcurrency: '8', stages: { production: { maxConcurrency: 10 } } });
 * // → { stage: 'production', settings: { maxConcurrency: '8', stage: 'production' }, overridden: ['maxConcurrency'] }
 */
export function stageSettings(context: Context): {
  stage: Stage;
  settings: Readonly<Record<string, unknown>>;
  overridden: string[];
} {
  const { [STAGES_KEY]: stagesMap, ...topLevel } = context;
  rejectUnknownSettings(topLevel);
  const stages = readStagesMap(stagesMap);
  const stage = settingsReader(topLevel).oneOf('stage', STAGES, undefined);
  const committed = stages[stage] ?? {};
  const overridden = Object.keys(committed).filter((name) => topLevel[name] !== undefined);
  return { stage, settings: { ...committed, ...topLevel }, overridden };
}

/**
 * Reads and validates the stage configuration from CDK context (`app.node.getAllContext()`): the stage's entry
 * of the "stages" map with any top-level setting (`-c`) on top (`stageSettings`), each setting through
 * `SETTING_TABLE`. Throws `ConfigError` naming the first bad setting. An on-call destination is not required
 * here (a local run needs none): `requireOnCallDestination` is the synth's rule.
 *
 * @example
 * const config = loadStageConfig({ stage: 'production', ecourtdateRegion: 'us-east', maxConcurrency: '10' });
 */
export function loadStageConfig(context: Context): StageConfig {
  const { stage, settings: merged } = stageSettings(context);
  const settings: StageSettings = tableReader(SETTING_TABLE, settingsReader(merged), stage);
  const defaults = STAGE_DEFAULTS[stage];

  const regionText = settings.text('ecourtdateRegion');
  // An AWS region (us-east-1) is chosen by the AWS profile or CDK_DEFAULT_REGION, never by this setting.
  if (regionText !== undefined && /^[a-z]{2}(-gov)?-[a-z]+-\d$/.test(regionText)) {
    throw new ConfigError(
      'ecourtdateRegion',
      `expected eCourtDate's region (${keysOf(PRODUCTION_BASE_URLS).join(', ')}), got the AWS region "${regionText}": ` +
        'the AWS region comes from your AWS profile or CDK_DEFAULT_REGION (docs/deploy.md, "First deploy")',
    );
  }
  const ecourtdateRegion =
    regionText === undefined ? undefined : (settings.oneOf('ecourtdateRegion') as EcourtdateRegion);
  if (ecourtdateRegion !== undefined && stage !== 'production') {
    throw new ConfigError('ecourtdateRegion', 'applies to the production stage only');
  }
  const baseUrl = resolveBaseUrl(settings, stage, ecourtdateRegion);

  const maxConcurrency = settings.number('maxConcurrency');
  const requestsPerMinute = settings.number('requestsPerMinute');
  // The budget's requests in any 60 s window reach ceil(63·L/60): with the CLI's own 4 a minute, within eCourtDate's
  // limit only up to 948 (docs/pacing.md, "The guarantee"). The fallback's share is of the reserve left, and may be 0.
  if (requestsPerMinute > MAX_BUDGET_PER_MINUTE) {
    throw new ConfigError(
      'requestsPerMinute',
      `${requestsPerMinute} lets the shared budget put up to ${budgetWindowCeiling(requestsPerMinute)} requests in one 60 s window, which with the CLI's own ${OPERATOR_REQUESTS_PER_MINUTE} a minute is above eCourtDate's 1,000: set it to at most ${MAX_BUDGET_PER_MINUTE} (docs/pacing.md, "The guarantee")`,
    );
  }
  const batchSize = settings.number('batchSize');
  const maxBatchingWindowSeconds = settings.number('maxBatchingWindowSeconds');
  const backoffSeconds = settings.numberList('backoffSeconds');
  const maxAttempts = settings.number('maxAttempts');
  const duplicateWindowSeconds = settings.number('duplicateWindowSeconds');
  // The stack leaves BACKOFF_JITTER at the sender's default, so the worst case uses the same value.
  const backoff = { backoffSeconds, maxAttempts, backoffJitter: DEFAULTS.backoffJitter };
  const worstBackoff = worstCaseBackoffSeconds(backoff);
  if (worstBackoff >= duplicateWindowSeconds) {
    throw new ConfigError(
      'backoffSeconds',
      `with maxAttempts ${maxAttempts}, the retries of backoffSeconds ${backoffSeconds.join(',')} take up to ` +
        `${worstBackoff} s (${Math.round(DEFAULTS.backoffJitter * 100)}% jitter included), which must stay below ` +
        `duplicateWindowSeconds (${duplicateWindowSeconds} s): a resend after an unknown outcome would come ` +
        `after eCourtDate's duplicate window has closed; shorten backoffSeconds or lower maxAttempts`,
    );
  }
  const httpTimeoutMs = settings.number('httpTimeoutMs');

  const required = requiredFunctionTimeoutSeconds({ httpTimeoutMs });
  if (required > LAMBDA_MAX_TIMEOUT_SECONDS) {
    throw new ConfigError(
      'httpTimeoutMs',
      `one job's worst case takes ${required} s at httpTimeoutMs ${httpTimeoutMs}, more than Lambda's ` +
        `${LAMBDA_MAX_TIMEOUT_SECONDS} s; lower httpTimeoutMs`,
    );
  }
  const functionTimeoutSeconds = settings.number(
    'functionTimeoutSeconds',
    Math.min(LAMBDA_MAX_TIMEOUT_SECONDS, Math.ceil(required / 10) * 10),
  );
  if (functionTimeoutSeconds < required) {
    throw new ConfigError(
      'functionTimeoutSeconds',
      `${functionTimeoutSeconds} s cannot finish one job's worst case (${SENDS_PER_JOB_WORST_CASE} sends and ` +
        `${SENDS_PER_JOB_WORST_CASE} token requests at ${httpTimeoutMs} ms, and its AWS calls); expected at least ` +
        `${required}`,
    );
  }
  checkCrashRecovery(settings, { functionTimeoutSeconds, maxBatchingWindowSeconds, duplicateWindowSeconds });
  const memorySizeMb = settings.number('memorySizeMb');
  const maxReceiveCount = settings.number('maxReceiveCount');
  if (maxReceiveCount <= maxAttempts) {
    throw new ConfigError(
      'maxReceiveCount',
      `must exceed maxAttempts (${maxAttempts}) so that the sender's own retry limit decides, got ${maxReceiveCount}`,
    );
  }
  const rateLimitHintMaxSeconds = settings.number('rateLimitHintMaxSeconds');
  const { sendQueueRetentionDays, deadLetterRetentionDays } = resolveRetention(settings);
  const ledgerTtlDays = settings.number('ledgerTtlDays');
  // A redrive is judged against the job's ledger entry (docs/ledger.md): the entry must outlive every
  // dead letter that can still be redriven, so a late redrive never finds a job the relay has forgotten.
  if (ledgerTtlDays <= deadLetterRetentionDays) {
    throw new ConfigError(
      'ledgerTtlDays',
      `must exceed the dead-letter queue's retention (deadLetterRetentionDays ${deadLetterRetentionDays} days), so that a redriven job still finds its ledger entry, got ${ledgerTtlDays}; raise ledgerTtlDays or lower deadLetterRetentionDays`,
    );
  }

  return {
    stage,
    stackName: stackNameOf(stage),
    baseUrl,
    ecourtdateRegion,
    onCallEmail: optionalEmail(settings, 'onCallEmail'),
    onCallHttpsEndpoint: optionalHttpsEndpoint(settings, 'onCallHttpsEndpoint'),
    onCallTopicArn: optionalTopicArn(settings, 'onCallTopicArn'),
    runbookBaseUrl: optionalHttpsUrl(settings, 'runbookBaseUrl'),
    maxConcurrency,
    requestsPerMinute,
    batchSize,
    maxBatchingWindowSeconds,
    backoffSeconds,
    maxAttempts,
    duplicateWindowSeconds,
    httpTimeoutMs,
    functionTimeoutSeconds,
    memorySizeMb,
    maxReceiveCount,
    rateLimitHintMaxSeconds,
    ledgerTtlDays,
    sendQueueRetentionDays,
    deadLetterRetentionDays,
    producerAccounts: resolveProducerAccounts(settings),
    dataKmsKey: resolveDataKmsKey(settings),
    secret: resolveSecret(settings, stage),
    eventBusName: resolveEventBusName(settings),
    publishJobSettled: settings.flag('publishJobSettled'),
    traceSubsegments: settings.flag('traceSubsegments'),
    eventSources: resolveEventSources(settings, stage),
    logLevel: settings.oneOf('logLevel') as LogLevel,
    logRetentionDays: settings.oneOf('logRetentionDays') as number,
    retainData: defaults.retainData,
    terminationProtection: defaults.terminationProtection,
    alarmThresholds: resolveAlarmThresholds(settings, sendQueueRetentionDays),
    webhook: readWebhookStageConfig(settings, stage),
  };
}

/** The CloudFormation stack of a stage; the operator CLI finds a deployed stage by it. */
export function stackNameOf(stage: Stage): string {
  return `EcourtdateRelay-${stage}`;
}

/**
 * The longest one invocation can take, in whole seconds: start-up, then one job's worst case. The jobs of a batch
 * are sent concurrently, and pacing never makes an invocation overrun (a job whose pacing slot lies beyond the
 * remaining time is deferred, not sent), so neither the batch size nor the rate limit adds to it. One job at
 * worst takes the 401 path: `SENDS_PER_JOB_WORST_CASE` sends, each after a token request, every request running
 * to `httpTimeoutMs`; and its AWS calls (`AWS_CALLS_PER_RECORD_WORST_CASE`), each at `awsCallWorstCaseMs`.
 *
 * @example
 * requiredFunctionTimeoutSeconds({ httpTimeoutMs: 10_000 }); // 10 + 6 x 10 + 6 x 25 = 220
 */
export function requiredFunctionTimeoutSeconds(input: { httpTimeoutMs: number; awsCallMs?: number }): number {
  const awsCallMs = input.awsCallMs ?? awsCallWorstCaseMs(AWS_CALL_LIMITS);
  const { dynamodb, secretsManager, sqs } = AWS_CALLS_PER_RECORD_WORST_CASE;
  const requests = SENDS_PER_JOB_WORST_CASE * 2 * input.httpTimeoutMs;
  const awsCalls = (dynamodb + secretsManager + sqs) * awsCallMs;
  return Math.ceil(INVOCATION_OVERHEAD_SECONDS + (requests + awsCalls) / 1000);
}

/**
 * The longest from a job's receive to its resend after the invocation that held it crashed (a timeout, out of
 * memory), in seconds: SQS hides the record for the send queue's visibility timeout, counted from the receive;
 * the next receive may wait out the batching window; the resend leaves within one invocation. The request of
 * the crashed attempt left after the receive, so eCourtDate's duplicate window must cover this, with
 * `CRASH_RECOVERY_MARGIN_SECONDS` to spare, for a 409 to prove what the crashed attempt created.
 *
 * @example
 * crashRecoverySeconds({ functionTimeoutSeconds: 220, maxBatchingWindowSeconds: 5 }); // 1320 + 5 + 220 = 1545
 */
export function crashRecoverySeconds(
  stage: Pick<StageConfig, 'functionTimeoutSeconds' | 'maxBatchingWindowSeconds'>,
): number {
  return (
    sendQueueVisibilityTimeoutSeconds(stage) + stage.maxBatchingWindowSeconds + stage.functionTimeoutSeconds
  );
}

/**
 * Refuses a stage whose crash recovery cannot land inside the duplicate window. Names the setting the operator
 * changed (functionTimeoutSeconds, duplicateWindowSeconds, maxBatchingWindowSeconds), else httpTimeoutMs, which
 * the derived function timeout follows.
 */
function checkCrashRecovery(
  read: StageSettings,
  stage: Pick<StageConfig, 'functionTimeoutSeconds' | 'maxBatchingWindowSeconds' | 'duplicateWindowSeconds'>,
): void {
  const recovery = crashRecoverySeconds(stage);
  if (recovery + CRASH_RECOVERY_MARGIN_SECONDS <= stage.duplicateWindowSeconds) return;
  const changed = (
    ['functionTimeoutSeconds', 'duplicateWindowSeconds', 'maxBatchingWindowSeconds'] as const
  ).find((setting) => read.text(setting) !== undefined);
  const timeout = stage.functionTimeoutSeconds;
  throw new ConfigError(
    changed ?? 'httpTimeoutMs',
    `after a crash a job can come back ${recovery} s after its request left (visibility timeout ` +
      `${VISIBILITY_TIMEOUT_FUNCTION_TIMEOUTS} x ${timeout} s, maxBatchingWindowSeconds ` +
      `${stage.maxBatchingWindowSeconds} s, functionTimeoutSeconds ${timeout} s), which with a ` +
      `${CRASH_RECOVERY_MARGIN_SECONDS} s margin must fit inside duplicateWindowSeconds ` +
      `(${stage.duplicateWindowSeconds} s), or a 409 could no longer prove that a crashed attempt created the ` +
      `message and the job would be dead-lettered unknown_outcome; lower httpTimeoutMs or ` +
      `functionTimeoutSeconds, lower maxBatchingWindowSeconds, or raise duplicateWindowSeconds`,
  );
}

/**
 * The longest the sender's backoff can spread one job's attempts: the delays after attempts 1 to
 * `maxAttempts - 1` (the last step repeating), each with the most jitter and rounded up to whole seconds as
 * the sender does. Every resend after an unknown outcome relies on eCourtDate's duplicate window, so this must
 * stay below it.
 *
 * @example
 * worstCaseBackoffSeconds({ backoffSeconds: [60, 120], maxAttempts: 4, backoffJitter: 0.1 }); // 66 + 132 + 132
 */
export function worstCaseBackoffSeconds(input: {
  backoffSeconds: readonly number[];
  maxAttempts: number;
  backoffJitter: number;
}): number {
  const { backoffSeconds: steps } = input;
  let total = 0;
  for (let attempt = 1; attempt < input.maxAttempts; attempt++) {
    const step = steps[Math.min(attempt, steps.length) - 1] ?? 0;
    total += Math.ceil(step * (1 + input.backoffJitter));
  }
  return total;
}

/** Settings that were renamed, with the name to use now. */
const RENAMED_SETTINGS: Readonly<Record<string, string>> = { productionRegion: 'ecourtdateRegion' };

function rejectUnknownSettings(context: Context): void {
  const known = new Set<string>(SETTINGS);
  for (const key of Object.keys(context)) {
    const renamed = RENAMED_SETTINGS[key];
    if (renamed !== undefined) throw new ConfigError(key, `was renamed ${renamed}: use ${renamed}`);
    // CDK's own keys carry ':', '@', '/' or '-' ("@aws-cdk/core:...", "aws:cdk:...", "acknowledged-issue-numbers");
    // any other name is meant as one of ours, however it is cased or spelled (MaxConcurrency, max_concurrency).
    if (!/[:@/-]/.test(key) && key !== STAGES_KEY && !known.has(key)) {
      throw unknownSetting(key, 'in the context or -c', SETTINGS);
    }
  }
}

/**
 * The committed per-stage settings: cdk.json's `"stages": { "staging": {...}, "production": {...} }`, each entry
 * an object of settings (never `stage`, which `-c stage=...` chooses). Absent: no committed settings.
 */
function readStagesMap(raw: unknown): Partial<Record<Stage, Context>> {
  if (raw === undefined || raw === null) return {};
  const where = 'in cdk.json "context"';
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(
      STAGES_KEY,
      `expected an object of stages ${where} (docs/deploy.md, "Stage settings")`,
    );
  }
  const known: readonly string[] = SETTINGS.filter((name) => name !== 'stage');
  const stages: Partial<Record<Stage, Context>> = {};
  for (const [stage, entry] of Object.entries(raw)) {
    const name = `${STAGES_KEY}.${stage}`;
    if (!(STAGES as readonly string[]).includes(stage)) {
      const suggestion = closestName(stage, STAGES);
      throw new ConfigError(
        name,
        `is not a stage; expected ${STAGES.join(' or ')}` +
          (suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`),
      );
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new ConfigError(name, `expected an object of settings, e.g. { "maxConcurrency": 5 }`);
    }
    for (const setting of Object.keys(entry)) {
      if (setting === 'stage') {
        throw new ConfigError(
          `${name}.stage`,
          'the stage is chosen with -c stage=..., not in its own settings',
        );
      }
      if (!known.includes(setting)) {
        throw unknownSetting(setting, `in cdk.json "${name}"`, known);
      }
    }
    stages[stage as Stage] = entry as Context;
  }
  return stages;
}

/**
 * Refuses a production stage with no on-call destination (`ON_CALL_SETTINGS`): its alarms would page nobody.
 * The synth's rule (`buildRelayApp`); staging may have none. Throws `ConfigError` naming `onCallEmail` and where
 * to set it (docs/deploy.md, "On-call").
 *
 * @example
 * requireOnCallDestination(loadStageConfig({ stage: 'production', onCallEmail: 'oncall@court.example' })); // passes
 */
export function requireOnCallDestination(
  config: Pick<StageConfig, 'stage' | 'onCallEmail' | 'onCallHttpsEndpoint' | 'onCallTopicArn'>,
): void {
  if (config.stage !== 'production') return;
  if (ON_CALL_SETTINGS.some((setting) => config[setting] !== undefined)) return;
  throw new ConfigError(
    'onCallEmail',
    `production needs at least one on-call destination, or its alarms page nobody: set one or more of ` +
      `${ON_CALL_SETTINGS.join(', ')} in cdk.json "context" > "stages" > "production" and commit it ` +
      '(docs/deploy.md, "On-call")',
  );
}

function resolveBaseUrl(read: StageSettings, stage: Stage, region: EcourtdateRegion | undefined): string {
  const raw = read.text('baseUrl');
  if (raw === undefined) {
    return stage === 'staging' ? STAGING_BASE_URL : PRODUCTION_BASE_URLS[region ?? 'multi'];
  }
  if (region !== undefined) {
    throw new ConfigError('baseUrl', 'set either baseUrl or ecourtdateRegion, not both');
  }
  const url = parseBaseUrl(raw, 'baseUrl');
  if (url.protocol !== 'https:') {
    throw new ConfigError('baseUrl', `a deployed relay talks to eCourtDate over https:// only, got "${raw}"`);
  }
  const stagingHost = new URL(STAGING_BASE_URL).host;
  const productionHosts = Object.values(PRODUCTION_BASE_URLS).map((u) => new URL(u).host);
  // Staging and production credentials are not interchangeable: catch the mix-up before it becomes 401s.
  if (stage === 'production' && url.host === stagingHost) {
    throw new ConfigError(
      'baseUrl',
      `the production stage must not use the staging API (${STAGING_BASE_URL})`,
    );
  }
  if (stage === 'staging' && productionHosts.includes(url.host)) {
    throw new ConfigError('baseUrl', `the staging stage must not use a production API (${url.origin})`);
  }
  return url.href.replace(/\/$/, '');
}

function resolveSecret(read: StageSettings, stage: Stage): StageConfig['secret'] {
  return readSecretSetting(
    {
      created: read.text('secretName'),
      existing: read.text('existingSecretName'),
      kmsKey: read.text('secretKmsKeyArn'),
    },
    { created: 'secretName', existing: 'existingSecretName', kmsKey: 'secretKmsKeyArn' },
    `ecourtdate-relay/${stage}/api-credentials`,
  );
}

function resolveEventBusName(read: StageSettings): string | undefined {
  const name = read.text('eventBusName');
  if (name === undefined || name === 'default') return undefined;
  if (!/^[A-Za-z0-9._\-/]{1,256}$/.test(name)) {
    throw new ConfigError(
      'eventBusName',
      `expected the name of an event bus in this account (not an ARN), got "${name}"`,
    );
  }
  return name;
}

function resolveEventSources(read: StageSettings, stage: Stage): string[] {
  const sources = read.list('eventSources') ?? [defaultEventSource(stage)];
  if (sources.length === 0) throw new ConfigError('eventSources', 'expected at least one event source');
  for (const source of sources) {
    if (source.length > 256)
      throw new ConfigError('eventSources', `"${source}" is longer than 256 characters`);
    // EventBridge rejects PutEvents from customers with sources starting with "aws.".
    if (source.startsWith('aws.')) {
      throw new ConfigError(
        'eventSources',
        `"${source}": sources starting with "aws." are reserved for AWS services`,
      );
    }
    // Both stages' rules may listen on one bus: a source that does not name its stage could send staging's
    // test jobs to production (real people), or production's to staging.
    if (!source.endsWith(`.${stage}`)) {
      throw new ConfigError(
        'eventSources',
        `"${source}" does not name the stage: end each source in ".${stage}" (e.g. "${source}.${stage}"), so that one stage never takes the other's jobs`,
      );
    }
  }
  return sources;
}

/**
 * The queues' retention in days. A standard queue keeps a redriven message's first enqueue time, so the
 * dead-letter queue must keep messages longer than the send queue, or a dead letter could expire before it is
 * looked at (docs/privacy.md, "The queues").
 */
function resolveRetention(settings: StageSettings): {
  sendQueueRetentionDays: number;
  deadLetterRetentionDays: number;
} {
  const sendQueueRetentionDays = settings.number('sendQueueRetentionDays');
  const deadLetterRetentionDays = settings.number('deadLetterRetentionDays');
  if (deadLetterRetentionDays <= sendQueueRetentionDays) {
    throw new ConfigError(
      'deadLetterRetentionDays',
      `must exceed sendQueueRetentionDays (${sendQueueRetentionDays} days): SQS counts a dead letter's age from its first enqueue on the send queue, got ${deadLetterRetentionDays}; raise deadLetterRetentionDays or lower sendQueueRetentionDays`,
    );
  }
  return { sendQueueRetentionDays, deadLetterRetentionDays };
}

/** `producerAccounts`: 12-digit AWS account ids, comma-separated, each once. */
function resolveProducerAccounts(settings: StageSettings): string[] {
  const accounts = settings.list('producerAccounts') ?? [];
  for (const account of accounts) {
    if (!/^\d{12}$/.test(account)) {
      throw new ConfigError(
        'producerAccounts',
        `expected 12-digit AWS account ids, comma-separated (e.g. 111122223333,444455556666), got "${account}"`,
      );
    }
  }
  return [...new Set(accounts)];
}

/** `dataKmsKey`: `create`, or the ARN of a symmetric KMS key (`arn:aws:kms:<region>:<account>:key/<id>`). */
function resolveDataKmsKey(settings: StageSettings): DataKmsKeySetting {
  const value = settings.text('dataKmsKey');
  if (value === undefined || value === 'none') return { kind: 'none' };
  if (value === 'create') return { kind: 'create' };
  // A key ARN, not an alias: IAM grants and key policies name the key itself.
  if (!/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/.test(value)) {
    throw new ConfigError(
      'dataKmsKey',
      `expected "create" or a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>, not an alias), got "${value}"`,
    );
  }
  return { kind: 'existing', arn: value };
}

function resolveAlarmThresholds(settings: StageSettings, sendQueueRetentionDays: number): AlarmThresholds {
  const threshold = (name: keyof AlarmThresholds) => settings.number(name);
  const oldestMessageAgeSeconds = threshold('oldestMessageAgeSeconds');
  // The alarm must fire before SQS deletes the job at the send queue's retention.
  if (oldestMessageAgeSeconds >= sendQueueRetentionDays * 86_400) {
    throw new ConfigError(
      'oldestMessageAgeSeconds',
      `expected a whole number from 60 to ${sendQueueRetentionDays * 86_400 - 1}: below the send queue's retention (sendQueueRetentionDays ${sendQueueRetentionDays} days), got ${oldestMessageAgeSeconds}`,
    );
  }
  return {
    forbiddenThreshold: threshold('forbiddenThreshold'),
    serverErrorRatePercent: threshold('serverErrorRatePercent'),
    serverErrorMinCalls: threshold('serverErrorMinCalls'),
    serverErrorPeriods: threshold('serverErrorPeriods'),
    authFailureThreshold: threshold('authFailureThreshold'),
    deadLetterThreshold: threshold('deadLetterThreshold'),
    oldestMessageAgeSeconds,
    senderErrorThreshold: threshold('senderErrorThreshold'),
    senderThrottleThreshold: threshold('senderThrottleThreshold'),
    ledgerSystemErrorThreshold: threshold('ledgerSystemErrorThreshold'),
    ledgerThrottleThreshold: threshold('ledgerThrottleThreshold'),
  };
}

function keysOf<T extends object>(object: T): (keyof T & string)[] {
  return Object.keys(object) as (keyof T & string)[];
}

function optionalHttpsUrl(read: StageSettings, key: SettingName): string | undefined {
  const value = read.text(key);
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(key, `expected an https:// URL, got "${value}"`);
  }
  if (url.protocol !== 'https:') throw new ConfigError(key, `expected an https:// URL, got "${value}"`);
  return value.replace(/\/+$/, '');
}

/**
 * An SNS HTTPS subscription endpoint (a PagerDuty or Opsgenie integration URL). Its value carries the
 * integration's key, so no error repeats it.
 */
function optionalHttpsEndpoint(settings: StageSettings, key: SettingName): string | undefined {
  const value = settings.text(key);
  if (value === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:' || url.hostname === '') {
    throw new ConfigError(
      key,
      `expected an https:// URL (the value is not repeated here: it may carry an integration key), got one ` +
        `starting "${value.slice(0, 8)}"; copy the integration URL from PagerDuty or Opsgenie (docs/deploy.md, "On-call")`,
    );
  }
  return value;
}

/** An SNS topic's ARN, `arn:<partition>:sns:<region>:<account>:<name>` (names: 1-256 of A-Z a-z 0-9 _ -, `.fifo`). */
const TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:[A-Za-z0-9_-]{1,256}$/;

function optionalTopicArn(settings: StageSettings, key: SettingName): string | undefined {
  const value = settings.text(key);
  if (value !== undefined && !TOPIC_ARN.test(value)) {
    throw new ConfigError(
      key,
      `expected the ARN of a standard SNS topic (arn:aws:sns:<region>:<account>:<name>), got "${value}"`,
    );
  }
  return value;
}

function optionalEmail(read: StageSettings, key: SettingName): string | undefined {
  const value = read.text(key);
  if (value !== undefined && !/^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/.test(value)) {
    throw new ConfigError(key, `expected one e-mail address, got "${value}"`);
  }
  return value;
}
