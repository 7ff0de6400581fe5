import { readSecretSetting, type SecretSetting } from '#infra/secret-setting.ts';
import {
  sendQueueVisibilityTimeoutSeconds,
  VISIBILITY_TIMEOUT_FUNCTION_TIMEOUTS,
} from '#infra/stack-contract.ts';
import { WEBHOOK_SETTINGS } from '#infra/webhook-config.ts';
import { type AlarmThresholds, DEFAULT_ALARM_THRESHOLDS } from '#shared/alarm-definitions.ts';
import { AWS_CALL_LIMITS, awsCallWorstCaseMs } from '#shared/clients/aws-call-limits.ts';
import {
  DEFAULTS,
  LAMBDA_MAX_TIMEOUT_SECONDS,
  MAX_BATCHING_WINDOW_SECONDS,
  parseBaseUrl,
  RANGES,
  SENDS_PER_JOB_WORST_CASE,
} from '#shared/config.ts';
import { ConfigError } from '#shared/errors.ts';
import { type SettingsReader, settingsReader } from '#shared/settings.ts';

/**
 * Stage configuration of the CDK app: one typed place for everything that differs between staging and
 * production or that an operator may override with `-c <setting>=<value>` (or in cdk.json "context").
 * Every value is validated here, at synth, and a bad one fails with a `ConfigError` naming the setting.
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
}

type Context = Readonly<Record<string, unknown>>;

/** Per-stage defaults of the settings that differ. */
const STAGE_DEFAULTS = {
  staging: { maxConcurrency: 2, logRetentionDays: 30, retainData: false, terminationProtection: false },
  production: { maxConcurrency: 5, logRetentionDays: 365, retainData: true, terminationProtection: true },
} as const satisfies Record<Stage, object>;

/** Every setting the app reads from CDK context; anything else that looks like one is a typo. */
export const SETTINGS = [
  'stage',
  'ecourtdateRegion',
  'baseUrl',
  'onCallEmail',
  'runbookBaseUrl',
  'maxConcurrency',
  'requestsPerMinute',
  'batchSize',
  'maxBatchingWindowSeconds',
  'backoffSeconds',
  'maxAttempts',
  'duplicateWindowSeconds',
  'httpTimeoutMs',
  'functionTimeoutSeconds',
  'memorySizeMb',
  'maxReceiveCount',
  'rateLimitHintMaxSeconds',
  'ledgerTtlDays',
  'sendQueueRetentionDays',
  'deadLetterRetentionDays',
  'producerAccounts',
  'dataKmsKey',
  'secretName',
  'existingSecretName',
  'secretKmsKeyArn',
  'eventBusName',
  'publishJobSettled',
  'traceSubsegments',
  'eventSources',
  'logLevel',
  'logRetentionDays',
  ...(Object.keys(DEFAULT_ALARM_THRESHOLDS) as (keyof AlarmThresholds)[]),
  ...WEBHOOK_SETTINGS,
] as const;

/**
 * Reads and validates the stage configuration from CDK context (`app.node.getAllContext()`).
 * Throws `ConfigError` naming the first bad setting.
 *
 * @example
 * const config = loadStageConfig({ stage: 'production', ecourtdateRegion: 'us-east', maxConcurrency: '10' });
 */
export function loadStageConfig(context: Context): StageConfig {
  rejectUnknownSettings(context);
  const read = settingsReader(context);
  const stage = read.oneOf('stage', STAGES, undefined);
  const defaults = STAGE_DEFAULTS[stage];

  const regionText = read.text('ecourtdateRegion');
  // An AWS region (us-east-1) is chosen by the AWS profile or CDK_DEFAULT_REGION, never by this setting.
  if (regionText !== undefined && /^[a-z]{2}(-gov)?-[a-z]+-\d$/.test(regionText)) {
    throw new ConfigError(
      'ecourtdateRegion',
      `expected eCourtDate's region (${keysOf(PRODUCTION_BASE_URLS).join(', ')}), got the AWS region "${regionText}": ` +
        'the AWS region comes from your AWS profile or CDK_DEFAULT_REGION (docs/deploy.md, "First deploy")',
    );
  }
  const ecourtdateRegion =
    regionText === undefined
      ? undefined
      : read.oneOf('ecourtdateRegion', keysOf(PRODUCTION_BASE_URLS), undefined);
  if (ecourtdateRegion !== undefined && stage !== 'production') {
    throw new ConfigError('ecourtdateRegion', 'applies to the production stage only');
  }
  const baseUrl = resolveBaseUrl(read, stage, ecourtdateRegion);

  const maxConcurrency = read.number('maxConcurrency', defaults.maxConcurrency, { min: 2, max: 1000 });
  // eCourtDate allows 1,000 requests a minute per API client, token requests included.
  const requestsPerMinute = read.number('requestsPerMinute', DEFAULTS.requestsPerMinute, {
    min: 1,
    max: 1000,
  });
  if (Math.floor(requestsPerMinute / maxConcurrency) < 1) {
    throw new ConfigError(
      'requestsPerMinute',
      `${requestsPerMinute} shared by maxConcurrency ${maxConcurrency} instances leaves less than 1 request a minute each`,
    );
  }
  const batchSize = read.number('batchSize', 10, { min: 1, max: 10 });
  const maxBatchingWindowSeconds = read.number('maxBatchingWindowSeconds', 5, {
    min: 0,
    max: MAX_BATCHING_WINDOW_SECONDS,
  });
  const backoffSeconds = read.numberList(
    'backoffSeconds',
    DEFAULTS.backoffSeconds,
    RANGES.backoffStepSeconds,
  );
  const maxAttempts = read.number('maxAttempts', DEFAULTS.maxAttempts, RANGES.maxAttempts);
  const duplicateWindowSeconds = read.number('duplicateWindowSeconds', DEFAULTS.duplicateWindowSeconds, {
    min: 60,
    max: ECOURTDATE_DUPLICATE_WINDOW_SECONDS,
  });
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
  const httpTimeoutMs = read.number('httpTimeoutMs', DEFAULTS.httpTimeoutMs, { min: 1000, max: 120_000 });

  const required = requiredFunctionTimeoutSeconds({ httpTimeoutMs });
  if (required > LAMBDA_MAX_TIMEOUT_SECONDS) {
    throw new ConfigError(
      'httpTimeoutMs',
      `one job's worst case takes ${required} s at httpTimeoutMs ${httpTimeoutMs}, more than Lambda's ` +
        `${LAMBDA_MAX_TIMEOUT_SECONDS} s; lower httpTimeoutMs`,
    );
  }
  const functionTimeoutSeconds = read.number(
    'functionTimeoutSeconds',
    Math.min(LAMBDA_MAX_TIMEOUT_SECONDS, Math.ceil(required / 10) * 10),
    { min: 1, max: LAMBDA_MAX_TIMEOUT_SECONDS },
  );
  if (functionTimeoutSeconds < required) {
    throw new ConfigError(
      'functionTimeoutSeconds',
      `${functionTimeoutSeconds} s cannot finish one job's worst case (${SENDS_PER_JOB_WORST_CASE} sends and ` +
        `${SENDS_PER_JOB_WORST_CASE} token requests at ${httpTimeoutMs} ms, and its AWS calls); expected at least ` +
        `${required}`,
    );
  }
  checkCrashRecovery(read, { functionTimeoutSeconds, maxBatchingWindowSeconds, duplicateWindowSeconds });
  const memorySizeMb = read.number('memorySizeMb', 256, { min: 128, max: 10_240 });
  // 10: the sender dead-letters on its own, with a reason, and re-queues a job that waits long as a fresh copy,
  // so SQS's redrive only catches jobs that crash the function every time: 10 receives end such a loop within
  // hours (AWS advises at least 5), with room for the sender's retries.
  const maxReceiveCount = read.number('maxReceiveCount', 10, RANGES.maxReceiveCount);
  if (maxReceiveCount <= maxAttempts) {
    throw new ConfigError(
      'maxReceiveCount',
      `must exceed maxAttempts (${maxAttempts}) so that the sender's own retry limit decides, got ${maxReceiveCount}`,
    );
  }
  const rateLimitHintMaxSeconds = read.number(
    'rateLimitHintMaxSeconds',
    DEFAULTS.rateLimitHintMaxSeconds,
    RANGES.rateLimitHintMaxSeconds,
  );
  const { sendQueueRetentionDays, deadLetterRetentionDays } = resolveRetention(read);
  const ledgerTtlDays = read.number('ledgerTtlDays', DEFAULTS.ledgerTtlDays, RANGES.ledgerTtlDays);
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
    onCallEmail: optionalEmail(read, 'onCallEmail'),
    runbookBaseUrl: optionalHttpsUrl(read, 'runbookBaseUrl'),
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
    producerAccounts: resolveProducerAccounts(read),
    dataKmsKey: resolveDataKmsKey(read),
    secret: resolveSecret(read, stage),
    eventBusName: resolveEventBusName(read),
    publishJobSettled: read.flag('publishJobSettled', false),
    traceSubsegments: read.flag('traceSubsegments', false),
    eventSources: resolveEventSources(read, stage),
    logLevel: read.oneOf('logLevel', LOG_LEVELS, 'INFO', (raw) => raw.toUpperCase()),
    logRetentionDays: read.oneOf('logRetentionDays', LOG_RETENTION_DAYS, defaults.logRetentionDays, Number),
    retainData: defaults.retainData,
    terminationProtection: defaults.terminationProtection,
    alarmThresholds: resolveAlarmThresholds(read, sendQueueRetentionDays),
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
  read: SettingsReader,
  stage: Pick<StageConfig, 'functionTimeoutSeconds' | 'maxBatchingWindowSeconds' | 'duplicateWindowSeconds'>,
): void {
  const recovery = crashRecoverySeconds(stage);
  if (recovery + CRASH_RECOVERY_MARGIN_SECONDS <= stage.duplicateWindowSeconds) return;
  const changed = ['functionTimeoutSeconds', 'duplicateWindowSeconds', 'maxBatchingWindowSeconds'].find(
    (setting) => read.text(setting) !== undefined,
  );
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
    if (renamed !== undefined) throw new ConfigError(key, `was renamed ${renamed}: use -c ${renamed}=...`);
    // CDK's own keys carry ':' or '@' or '-' ("@aws-cdk/core:...", "aws:cdk:..."); plain camelCase is ours.
    if (/^[a-z][A-Za-z0-9]*$/.test(key) && !known.has(key)) {
      throw new ConfigError(key, `is not a setting of this app; known settings: ${SETTINGS.join(', ')}`);
    }
  }
}

function resolveBaseUrl(read: SettingsReader, stage: Stage, region: EcourtdateRegion | undefined): string {
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

function resolveSecret(read: SettingsReader, stage: Stage): StageConfig['secret'] {
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

function resolveEventBusName(read: SettingsReader): string | undefined {
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

function resolveEventSources(read: SettingsReader, stage: Stage): string[] {
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
function resolveRetention(read: SettingsReader): {
  sendQueueRetentionDays: number;
  deadLetterRetentionDays: number;
} {
  const sendQueueRetentionDays = read.number(
    'sendQueueRetentionDays',
    SEND_QUEUE_RETENTION_DAYS,
    RETENTION_DAYS_RANGES.sendQueueRetentionDays,
  );
  const deadLetterRetentionDays = read.number(
    'deadLetterRetentionDays',
    DEAD_LETTER_RETENTION_DAYS,
    RETENTION_DAYS_RANGES.deadLetterRetentionDays,
  );
  if (deadLetterRetentionDays <= sendQueueRetentionDays) {
    throw new ConfigError(
      'deadLetterRetentionDays',
      `must exceed sendQueueRetentionDays (${sendQueueRetentionDays} days): SQS counts a dead letter's age from its first enqueue on the send queue, got ${deadLetterRetentionDays}; raise deadLetterRetentionDays or lower sendQueueRetentionDays`,
    );
  }
  return { sendQueueRetentionDays, deadLetterRetentionDays };
}

/** `producerAccounts`: 12-digit AWS account ids, comma-separated, each once. */
function resolveProducerAccounts(read: SettingsReader): string[] {
  const accounts = read.list('producerAccounts') ?? [];
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
function resolveDataKmsKey(read: SettingsReader): DataKmsKeySetting {
  const value = read.text('dataKmsKey');
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

function resolveAlarmThresholds(read: SettingsReader, sendQueueRetentionDays: number): AlarmThresholds {
  const d = DEFAULT_ALARM_THRESHOLDS;
  const maxAge = sendQueueRetentionDays * 86_400;
  const count = (name: keyof AlarmThresholds) => read.number(name, d[name], { min: 1, max: 100_000 });
  return {
    forbiddenThreshold: count('forbiddenThreshold'),
    serverErrorRatePercent: read.number('serverErrorRatePercent', d.serverErrorRatePercent, {
      min: 1,
      max: 100,
      integer: false,
    }),
    serverErrorMinCalls: count('serverErrorMinCalls'),
    // 5-minute periods; CloudWatch caps periods x evaluation periods at one day, 2 hours is plenty.
    serverErrorPeriods: read.number('serverErrorPeriods', d.serverErrorPeriods, { min: 1, max: 24 }),
    authFailureThreshold: count('authFailureThreshold'),
    deadLetterThreshold: count('deadLetterThreshold'),
    oldestMessageAgeSeconds: read.number('oldestMessageAgeSeconds', d.oldestMessageAgeSeconds, {
      min: 60,
      max: maxAge - 1,
    }),
    senderErrorThreshold: count('senderErrorThreshold'),
    senderThrottleThreshold: count('senderThrottleThreshold'),
    ledgerSystemErrorThreshold: count('ledgerSystemErrorThreshold'),
    ledgerThrottleThreshold: count('ledgerThrottleThreshold'),
  };
}

function keysOf<T extends object>(object: T): (keyof T & string)[] {
  return Object.keys(object) as (keyof T & string)[];
}

function optionalHttpsUrl(read: SettingsReader, key: string): string | undefined {
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

function optionalEmail(read: SettingsReader, key: string): string | undefined {
  const value = read.text(key);
  if (value !== undefined && !/^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/.test(value)) {
    throw new ConfigError(key, `expected one e-mail address, got "${value}"`);
  }
  return value;
}
