import { type AlarmThresholds, DEFAULT_ALARM_THRESHOLDS } from '#shared/alarm-definitions.ts';
import { DEFAULTS, MAX_VISIBILITY_TIMEOUT_SECONDS, parseBaseUrl } from '#shared/config.ts';
import { ConfigError } from '#shared/errors.ts';

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
export type ProductionRegion = keyof typeof PRODUCTION_BASE_URLS;

/** The EventBridge `detail-type` upstream systems publish send jobs with. */
export const EVENT_DETAIL_TYPE = 'eCourtDate Send Message';
export const DEFAULT_EVENT_SOURCE = 'ecourtdate-relay.upstream';

/**
 * Attempts one job can take inside one invocation on the 401 path: the send, a resend with a new token, and a
 * resend after re-reading the secret (design.md, "What each response does").
 */
export const SENDS_PER_JOB_WORST_CASE = 3;
/** Cold start, secret read and the token request on top of the sends. */
const INVOCATION_OVERHEAD_SECONDS = 30;
const LAMBDA_MAX_TIMEOUT_SECONDS = 900;
/** SQS keeps send jobs this long; it must outlive the sender's own 24 h retry limit (MAX_AGE_SECONDS). */
export const SEND_QUEUE_RETENTION_DAYS = 4;
export const DEAD_LETTER_RETENTION_DAYS = 14;
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
  readonly productionRegion: ProductionRegion | undefined;
  /** Subscribed to the on-call topic when set (the recipient must confirm the subscription e-mail). */
  readonly onCallEmail: string | undefined;
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
  /** Days the job ledger keeps a job's entry (and its idempotency record) after the last change (1-365). */
  readonly ledgerTtlDays: number;
  /** `create`: the stack owns the secret (placeholder value). `existing`: an existing secret, by name. */
  readonly secret: { readonly kind: 'create' | 'existing'; readonly name: string };
  /** Event bus of the rule; undefined for the account's default bus. */
  readonly eventBusName: string | undefined;
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
  'productionRegion',
  'baseUrl',
  'onCallEmail',
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
  'ledgerTtlDays',
  'secretName',
  'existingSecretName',
  'eventBusName',
  'eventSources',
  'logLevel',
  'logRetentionDays',
  ...(Object.keys(DEFAULT_ALARM_THRESHOLDS) as (keyof AlarmThresholds)[]),
] as const;

/**
 * Reads and validates the stage configuration from CDK context (`app.node.getAllContext()`).
 * Throws `ConfigError` naming the first bad setting.
 *
 * @example
 * const config = loadStageConfig({ stage: 'production', productionRegion: 'us-east', maxConcurrency: '10' });
 */
export function loadStageConfig(context: Context): StageConfig {
  rejectUnknownSettings(context);
  const stage = oneOf(context, 'stage', STAGES, undefined);
  const defaults = STAGE_DEFAULTS[stage];

  const productionRegion = optionalOneOf(context, 'productionRegion', keysOf(PRODUCTION_BASE_URLS));
  if (productionRegion !== undefined && stage !== 'production') {
    throw new ConfigError('productionRegion', 'applies to the production stage only');
  }
  const baseUrl = resolveBaseUrl(context, stage, productionRegion);

  const maxConcurrency = int(context, 'maxConcurrency', defaults.maxConcurrency, 2, 1000);
  // eCourtDate allows 1,000 requests a minute per API client, token requests included.
  const requestsPerMinute = int(context, 'requestsPerMinute', DEFAULTS.requestsPerMinute, 1, 1000);
  if (Math.floor(requestsPerMinute / maxConcurrency) < 1) {
    throw new ConfigError(
      'requestsPerMinute',
      `${requestsPerMinute} shared by maxConcurrency ${maxConcurrency} instances leaves less than 1 request a minute each`,
    );
  }
  const batchSize = int(context, 'batchSize', 10, 1, 10);
  const maxBatchingWindowSeconds = int(context, 'maxBatchingWindowSeconds', 5, 0, 300);
  const backoffSeconds = intList(
    context,
    'backoffSeconds',
    DEFAULTS.backoffSeconds,
    0,
    MAX_VISIBILITY_TIMEOUT_SECONDS,
  );
  const maxAttempts = int(context, 'maxAttempts', DEFAULTS.maxAttempts, 1, 100);
  const duplicateWindowSeconds = int(
    context,
    'duplicateWindowSeconds',
    DEFAULTS.duplicateWindowSeconds,
    60,
    ECOURTDATE_DUPLICATE_WINDOW_SECONDS,
  );
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
  const httpTimeoutMs = int(context, 'httpTimeoutMs', DEFAULTS.httpTimeoutMs, 1000, 120_000);

  const required = requiredFunctionTimeoutSeconds({
    batchSize,
    httpTimeoutMs,
    perInstanceRequestsPerMinute: Math.floor(requestsPerMinute / maxConcurrency),
  });
  if (required > LAMBDA_MAX_TIMEOUT_SECONDS) {
    throw new ConfigError(
      'batchSize',
      `a batch of ${batchSize} needs up to ${required} s at httpTimeoutMs ${httpTimeoutMs}, more than Lambda's ` +
        `${LAMBDA_MAX_TIMEOUT_SECONDS} s; lower batchSize or httpTimeoutMs, or raise requestsPerMinute`,
    );
  }
  const functionTimeoutSeconds = int(
    context,
    'functionTimeoutSeconds',
    Math.min(LAMBDA_MAX_TIMEOUT_SECONDS, Math.ceil(required / 30) * 30),
    1,
    LAMBDA_MAX_TIMEOUT_SECONDS,
  );
  if (functionTimeoutSeconds < required) {
    throw new ConfigError(
      'functionTimeoutSeconds',
      `${functionTimeoutSeconds} s cannot finish a worst-case batch (${batchSize} jobs x ${SENDS_PER_JOB_WORST_CASE} ` +
        `sends at ${httpTimeoutMs} ms, paced); expected at least ${required}`,
    );
  }
  const memorySizeMb = int(context, 'memorySizeMb', 256, 128, 10_240);
  // 200: the sender dead-letters on its own with a reason; SQS's redrive is only for jobs that crash the
  // function every time. 429 waits (60 s and more, until the job expires after 24 h) each cost a receive, so the
  // net must sit far above the sender's retry limit or it would dead-letter healthy, rate-limited jobs.
  const maxReceiveCount = int(context, 'maxReceiveCount', 200, 2, 1000);
  if (maxReceiveCount <= maxAttempts) {
    throw new ConfigError(
      'maxReceiveCount',
      `must exceed maxAttempts (${maxAttempts}) so that the sender's own retry limit decides, got ${maxReceiveCount}`,
    );
  }
  const ledgerTtlDays = int(context, 'ledgerTtlDays', DEFAULTS.ledgerTtlDays, 1, 365);

  return {
    stage,
    stackName: stackNameOf(stage),
    baseUrl,
    productionRegion,
    onCallEmail: optionalEmail(context, 'onCallEmail'),
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
    ledgerTtlDays,
    secret: resolveSecret(context, stage),
    eventBusName: resolveEventBusName(context),
    eventSources: resolveEventSources(context),
    logLevel: oneOf(context, 'logLevel', LOG_LEVELS, 'INFO', (raw) => raw.toUpperCase()),
    logRetentionDays: oneOf(
      context,
      'logRetentionDays',
      LOG_RETENTION_DAYS,
      defaults.logRetentionDays,
      Number,
    ),
    retainData: defaults.retainData,
    terminationProtection: defaults.terminationProtection,
    alarmThresholds: resolveAlarmThresholds(context),
  };
}

/** The CloudFormation stack of a stage; the operator CLI finds a deployed stage by it. */
export function stackNameOf(stage: Stage): string {
  return `EcourtdateRelay-${stage}`;
}

/** Requests per minute each sender instance may spend: the budget shared by the concurrent instances. */
export function perInstanceRequestsPerMinute(
  config: Pick<StageConfig, 'requestsPerMinute' | 'maxConcurrency'>,
) {
  return Math.floor(config.requestsPerMinute / config.maxConcurrency);
}

/**
 * The longest one invocation can take: every job of a full batch on the 401 path, each send timing out, paced
 * to the instance's share of the rate limit, plus start-up.
 */
export function requiredFunctionTimeoutSeconds(input: {
  batchSize: number;
  httpTimeoutMs: number;
  perInstanceRequestsPerMinute: number;
}): number {
  const sends = input.batchSize * SENDS_PER_JOB_WORST_CASE;
  const waiting = (sends * input.httpTimeoutMs) / 1000;
  const pacing = (sends * 60) / input.perInstanceRequestsPerMinute;
  return Math.ceil(waiting + pacing + INVOCATION_OVERHEAD_SECONDS);
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

function rejectUnknownSettings(context: Context): void {
  const known = new Set<string>(SETTINGS);
  for (const key of Object.keys(context)) {
    // CDK's own keys carry ':' or '@' or '-' ("@aws-cdk/core:...", "aws:cdk:..."); plain camelCase is ours.
    if (/^[a-z][A-Za-z0-9]*$/.test(key) && !known.has(key)) {
      throw new ConfigError(key, `is not a setting of this app; known settings: ${SETTINGS.join(', ')}`);
    }
  }
}

function resolveBaseUrl(context: Context, stage: Stage, region: ProductionRegion | undefined): string {
  const raw = text(context, 'baseUrl');
  if (raw === undefined) {
    return stage === 'staging' ? STAGING_BASE_URL : PRODUCTION_BASE_URLS[region ?? 'multi'];
  }
  if (region !== undefined) {
    throw new ConfigError('baseUrl', 'set either baseUrl or productionRegion, not both');
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

const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

function resolveSecret(context: Context, stage: Stage): StageConfig['secret'] {
  const existing = text(context, 'existingSecretName');
  const created = text(context, 'secretName');
  if (existing !== undefined && created !== undefined) {
    throw new ConfigError(
      'existingSecretName',
      'set either secretName (created by the stack) or existingSecretName',
    );
  }
  const name = existing ?? created ?? `ecourtdate-relay/${stage}/api-client`;
  const setting = existing !== undefined ? 'existingSecretName' : 'secretName';
  if (!SECRET_NAME.test(name)) {
    throw new ConfigError(setting, `expected 1-512 characters of A-Z a-z 0-9 / _ + = . @ -, got "${name}"`);
  }
  return { kind: existing !== undefined ? 'existing' : 'create', name };
}

function resolveEventBusName(context: Context): string | undefined {
  const name = text(context, 'eventBusName');
  if (name === undefined || name === 'default') return undefined;
  if (!/^[A-Za-z0-9._\-/]{1,256}$/.test(name)) {
    throw new ConfigError(
      'eventBusName',
      `expected the name of an event bus in this account (not an ARN), got "${name}"`,
    );
  }
  return name;
}

function resolveEventSources(context: Context): string[] {
  const sources = list(context, 'eventSources') ?? [DEFAULT_EVENT_SOURCE];
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
  }
  return sources;
}

function resolveAlarmThresholds(context: Context): AlarmThresholds {
  const d = DEFAULT_ALARM_THRESHOLDS;
  const maxAge = SEND_QUEUE_RETENTION_DAYS * 86_400;
  return {
    forbiddenThreshold: int(context, 'forbiddenThreshold', d.forbiddenThreshold, 1, 100_000),
    serverErrorRatePercent: num(context, 'serverErrorRatePercent', d.serverErrorRatePercent, 1, 100),
    serverErrorMinCalls: int(context, 'serverErrorMinCalls', d.serverErrorMinCalls, 1, 100_000),
    // 5-minute periods; CloudWatch caps periods x evaluation periods at one day, 2 hours is plenty.
    serverErrorPeriods: int(context, 'serverErrorPeriods', d.serverErrorPeriods, 1, 24),
    authFailureThreshold: int(context, 'authFailureThreshold', d.authFailureThreshold, 1, 100_000),
    deadLetterThreshold: int(context, 'deadLetterThreshold', d.deadLetterThreshold, 1, 100_000),
    oldestMessageAgeSeconds: int(
      context,
      'oldestMessageAgeSeconds',
      d.oldestMessageAgeSeconds,
      60,
      maxAge - 1,
    ),
    senderErrorThreshold: int(context, 'senderErrorThreshold', d.senderErrorThreshold, 1, 100_000),
    senderThrottleThreshold: int(context, 'senderThrottleThreshold', d.senderThrottleThreshold, 1, 100_000),
    ledgerSystemErrorThreshold: int(
      context,
      'ledgerSystemErrorThreshold',
      d.ledgerSystemErrorThreshold,
      1,
      100_000,
    ),
    ledgerThrottleThreshold: int(context, 'ledgerThrottleThreshold', d.ledgerThrottleThreshold, 1, 100_000),
  };
}

// --- value readers: context values are strings from `-c`, or JSON values from cdk.json ---

function keysOf<T extends object>(object: T): (keyof T & string)[] {
  return Object.keys(object) as (keyof T & string)[];
}

function text(context: Context, key: string): string | undefined {
  const raw = context[key];
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string' && typeof raw !== 'number') {
    throw new ConfigError(key, `expected a single value, got ${JSON.stringify(raw)}`);
  }
  const value = String(raw).trim();
  return value === '' ? undefined : value;
}

function num(
  context: Context,
  key: string,
  fallback: number,
  min: number,
  max: number,
  integer = false,
): number {
  const raw = text(context, key);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new ConfigError(key, `expected ${integer ? 'a whole number' : 'a number'}, got "${raw}"`);
  }
  if (value < min || value > max)
    throw new ConfigError(key, `expected a value from ${min} to ${max}, got ${value}`);
  return value;
}

function int(context: Context, key: string, fallback: number, min: number, max: number): number {
  return num(context, key, fallback, min, max, true);
}

function list(context: Context, key: string): string[] | undefined {
  const raw = context[key];
  if (raw === undefined || raw === null) return undefined;
  const items = Array.isArray(raw)
    ? raw
    : typeof raw === 'string' || typeof raw === 'number'
      ? String(raw).split(',')
      : undefined;
  if (items === undefined)
    throw new ConfigError(key, `expected a comma-separated list, got ${JSON.stringify(raw)}`);
  return items.map((item) => String(item).trim()).filter((item) => item !== '');
}

function intList(
  context: Context,
  key: string,
  fallback: readonly number[],
  min: number,
  max: number,
): number[] {
  const items = list(context, key);
  if (items === undefined) return [...fallback];
  const values = items.map(Number);
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < min || v > max)) {
    throw new ConfigError(
      key,
      `expected a comma-separated list of whole numbers from ${min} to ${max}, got "${items.join(',')}"`,
    );
  }
  return values;
}

function oneOf<T extends string | number>(
  context: Context,
  key: string,
  allowed: readonly T[],
  fallback: T | undefined,
  normalize: (raw: string) => string | number = (raw) => raw,
): T {
  const raw = text(context, key);
  if (raw === undefined) {
    if (fallback === undefined) throw new ConfigError(key, `is required: one of ${allowed.join(', ')}`);
    return fallback;
  }
  const value = normalize(raw);
  const match = allowed.find((candidate) => candidate === value);
  if (match === undefined) throw new ConfigError(key, `expected one of ${allowed.join(', ')}, got "${raw}"`);
  return match;
}

function optionalOneOf<T extends string>(
  context: Context,
  key: string,
  allowed: readonly T[],
): T | undefined {
  return text(context, key) === undefined ? undefined : oneOf(context, key, allowed, undefined);
}

function optionalEmail(context: Context, key: string): string | undefined {
  const value = text(context, key);
  if (value !== undefined && !/^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/.test(value)) {
    throw new ConfigError(key, `expected one e-mail address, got "${value}"`);
  }
  return value;
}
