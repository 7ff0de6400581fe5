import { ConfigError } from '#shared/errors.ts';
import { type Bounds, settingsReader } from '#shared/settings.ts';

/**
 * The sender's configuration, read and validated once at cold start. This module is the only reader of
 * `process.env` in the relay; everything else takes a typed `SenderConfig`.
 *
 * Environment variables (the CDK stack sets them; the local pipeline and tests set them too):
 *
 * | variable | meaning | default |
 * |---|---|---|
 * | `ECOURTDATE_BASE_URL` | eCourtDate API base, `https://` only (plain `http://` to loopback for local runs) | required |
 * | `ECOURTDATE_SECRET_ID` | Secrets Manager id/ARN of `{"client_id","client_secret"}` | required |
 * | `SEND_QUEUE_URL` | the send queue (for `ChangeMessageVisibility`) | required |
 * | `DEAD_LETTER_QUEUE_URL` | where the relay dead-letters jobs explicitly | required |
 * | `REQUESTS_PER_MINUTE` | the stage's budget of eCourtDate requests a minute, shared by every instance through the ledger table's `api-client` item (docs/pacing.md) | 900 |
| `FALLBACK_REQUESTS_PER_MINUTE` | this instance's share of the reserve (1,000 less the budget) while the `api-client` item does not answer; 0: send nothing until it does | 0 |
 * | `BACKOFF_SECONDS` | comma list, delay after attempt 1, 2, ... (last repeats), each at most `MAX_HIDE_SECONDS` | 60,120,240,480 |
 * | `BACKOFF_JITTER` | extra random delay, as a fraction of the backoff step (0-1) | 0.1 |
 * | `MAX_ATTEMPTS` | attempts before 5xx/timeouts/auth failures dead-letter `retries_exhausted` | 5 |
 * | `SERVER_ERROR_MAX_ATTEMPTS` | attempts for a plain 500 ("retry once") | 2 |
 * | `SERVER_ERROR_RETRY_SECONDS` | delay before retrying a 500 | 60 |
 * | `RATE_LIMIT_WAIT_SECONDS` | minimum wait after a 429 | 60 |
 * | `MAX_AGE_SECONDS` | a job with no `expires_at` stops being retried this long after first receipt | 86400 |
 * | `HTTP_TIMEOUT_MS` | per-request timeout towards eCourtDate | 10000 |
 * | `SECRET_TTL_SECONDS` | how long the secret is cached per container | 300 |
 * | `TOKEN_RENEW_BEFORE_SECONDS` | renew the cached token this long before it expires | 300 |
 * | `RATE_LIMIT_HINT_MAX_SECONDS` | a 429's wait hint above this is capped to it and logged as suspect (eCourtDate's window is one minute) | 300 |
 * | `WEBHOOKS_ENABLED` | `true` when the stage receives eCourtDate's webhooks: delivered jobs are indexed by message uuid | false |
 * | `PUBLISH_JOB_SETTLED` | `true`: put an `eCourtDate Job Settled` event on `EVENT_BUS_NAME` for every settled job | false |
 * | `EVENT_BUS_NAME` | the bus for `PUBLISH_JOB_SETTLED` (required with it) | unset |
 * | `MAX_RECEIVE_COUNT` | the send queue's redrive `maxReceiveCount`: a record re-queued as a fresh copy well before it | 50 |
 * | `DUPLICATE_WINDOW_SECONDS` | eCourtDate's duplicate window: a resend after an unknown outcome is only made inside it | 1800 |
 * | `LEDGER_TABLE_NAME` | DynamoDB table of the job ledger and the idempotency records | required |
 * | `LEDGER_TTL_DAYS` | how long a job's ledger entry is kept after its last change | 30 |
 * | `TIME_SCALE` | divide every delay and window by this, the pacing interval included (local demos and tests only) | 1 |
 * | `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_EVENTBRIDGE` | emulator endpoints (local runs and tests) | unset |
 */
export interface SenderConfig {
  readonly baseUrl: URL;
  readonly secretId: string;
  readonly sendQueueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly ledgerTableName: string;
  readonly ledgerTtlSeconds: number;
  /** The stage's budget, requests a minute, shared by every instance (docs/pacing.md). */
  readonly requestsPerMinute: number;
  /** This instance's share of the reserve while the budget's item does not answer, requests a minute. */
  readonly fallbackRequestsPerMinute: number;
  readonly backoffSeconds: readonly number[];
  readonly backoffJitter: number;
  readonly maxAttempts: number;
  readonly serverErrorMaxAttempts: number;
  readonly serverErrorRetrySeconds: number;
  readonly rateLimitWaitSeconds: number;
  /** A 429 wait hint above this many seconds is capped to it and logged as suspect. */
  readonly rateLimitHintMaxSeconds: number;
  /** The send queue's redrive `maxReceiveCount`; the sender re-queues a fresh copy long before reaching it. */
  readonly maxReceiveCount: number;
  /**
   * The stage receives eCourtDate's webhooks: a delivered job's message uuid is indexed to its job id (one more
   * write per delivered job), so that status updates become the job's delivery status (docs/webhooks.md).
   */
  readonly webhooksEnabled: boolean;
  /**
   * The bus to put an `eCourtDate Job Settled` event on for every settled job (docs/webhooks.md, "Events on the
   * bus"); undefined when that is off (the default).
   */
  readonly jobSettledBus: string | undefined;
  readonly maxAgeSeconds: number;
  readonly duplicateWindowSeconds: number;
  readonly httpTimeoutMs: number;
  readonly secretTtlSeconds: number;
  readonly tokenRenewBeforeSeconds: number;
  readonly timeScale: number;
  readonly endpoints: {
    readonly sqs?: string | undefined;
    readonly secretsManager?: string | undefined;
    readonly dynamodb?: string | undefined;
    readonly eventBridge?: string | undefined;
  };
}

/** The names of the environment variables above, shared with the CDK stack and the local pipeline. */
export const ENV = {
  baseUrl: 'ECOURTDATE_BASE_URL',
  secretId: 'ECOURTDATE_SECRET_ID',
  sendQueueUrl: 'SEND_QUEUE_URL',
  deadLetterQueueUrl: 'DEAD_LETTER_QUEUE_URL',
  ledgerTableName: 'LEDGER_TABLE_NAME',
  ledgerTtlDays: 'LEDGER_TTL_DAYS',
  requestsPerMinute: 'REQUESTS_PER_MINUTE',
  fallbackRequestsPerMinute: 'FALLBACK_REQUESTS_PER_MINUTE',
  backoffSeconds: 'BACKOFF_SECONDS',
  backoffJitter: 'BACKOFF_JITTER',
  maxAttempts: 'MAX_ATTEMPTS',
  serverErrorMaxAttempts: 'SERVER_ERROR_MAX_ATTEMPTS',
  serverErrorRetrySeconds: 'SERVER_ERROR_RETRY_SECONDS',
  rateLimitWaitSeconds: 'RATE_LIMIT_WAIT_SECONDS',
  rateLimitHintMaxSeconds: 'RATE_LIMIT_HINT_MAX_SECONDS',
  maxReceiveCount: 'MAX_RECEIVE_COUNT',
  webhooksEnabled: 'WEBHOOKS_ENABLED',
  publishJobSettled: 'PUBLISH_JOB_SETTLED',
  eventBusName: 'EVENT_BUS_NAME',
  eventBridgeEndpoint: 'AWS_ENDPOINT_URL_EVENTBRIDGE',
  maxAgeSeconds: 'MAX_AGE_SECONDS',
  duplicateWindowSeconds: 'DUPLICATE_WINDOW_SECONDS',
  httpTimeoutMs: 'HTTP_TIMEOUT_MS',
  secretTtlSeconds: 'SECRET_TTL_SECONDS',
  tokenRenewBeforeSeconds: 'TOKEN_RENEW_BEFORE_SECONDS',
  timeScale: 'TIME_SCALE',
  sqsEndpoint: 'AWS_ENDPOINT_URL_SQS',
  secretsManagerEndpoint: 'AWS_ENDPOINT_URL_SECRETS_MANAGER',
  dynamodbEndpoint: 'AWS_ENDPOINT_URL_DYNAMODB',
} as const;

/** Defaults of the tunable settings; the CDK stage config starts from the same values. */
export const DEFAULTS = {
  requestsPerMinute: 900,
  fallbackRequestsPerMinute: 0,
  backoffSeconds: [60, 120, 240, 480],
  backoffJitter: 0.1,
  maxAttempts: 5,
  serverErrorMaxAttempts: 2,
  serverErrorRetrySeconds: 60,
  rateLimitWaitSeconds: 60,
  rateLimitHintMaxSeconds: 300,
  maxReceiveCount: 50,
  maxAgeSeconds: 86_400,
  duplicateWindowSeconds: 1800,
  httpTimeoutMs: 10_000,
  secretTtlSeconds: 300,
  tokenRenewBeforeSeconds: 300,
  ledgerTtlDays: 30,
  timeScale: 1,
} as const;

/** The largest visibility timeout SQS accepts (12 hours, counted from the ReceiveMessage; SQS API reference). */
export const MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200;

/** The largest `DelaySeconds` SQS accepts on SendMessage (15 minutes; SQS API reference). */
export const MAX_DELAY_SECONDS = 900;

/** Lambda's maximum function timeout, seconds. */
export const LAMBDA_MAX_TIMEOUT_SECONDS = 900;

/** The event source mapping's maximum batching window, seconds (the receive may precede the invocation by this). */
export const MAX_BATCHING_WINDOW_SECONDS = 300;

/**
 * The longest the sender ever hides a received record, seconds: SQS's 12 h counted from the receive, less the
 * longest a record can have waited since (the batching window and a whole invocation). Longer waits are kept by
 * the job ledger's next-attempt time, which hides an early copy again (docs/ledger.md).
 */
export const MAX_HIDE_SECONDS =
  MAX_VISIBILITY_TIMEOUT_SECONDS - LAMBDA_MAX_TIMEOUT_SECONDS - MAX_BATCHING_WINDOW_SECONDS;

/**
 * Requests one job can make to the messages endpoint in one attempt: the first send, a resend with a renewed
 * token after a 401, and a resend after re-reading the secret (docs/contract.md, the 401 row).
 */
export const SENDS_PER_JOB_WORST_CASE = 3;

/**
 * The accepted range of each numeric sender setting, for `loadSenderConfig` and for the CDK stage settings that
 * reach the sender (`infra/config.ts` uses the same bounds, or narrower ones). Every delay the sender hides a
 * received record for stays within `MAX_HIDE_SECONDS`, which SQS can hold.
 */
export const RANGES = {
  ledgerTtlDays: { min: 1, max: 365 },
  requestsPerMinute: { min: 1, max: 100_000 },
  fallbackRequestsPerMinute: { min: 0, max: 100_000 },
  backoffStepSeconds: { min: 0, max: MAX_HIDE_SECONDS },
  backoffJitter: { min: 0, max: 1, integer: false },
  maxAttempts: { min: 1, max: 100 },
  serverErrorMaxAttempts: { min: 1, max: 100 },
  serverErrorRetrySeconds: { min: 0, max: MAX_HIDE_SECONDS },
  rateLimitWaitSeconds: { min: 0, max: MAX_HIDE_SECONDS },
  // eCourtDate's rate-limit window is one minute: a cap below it would cut honest hints.
  rateLimitHintMaxSeconds: { min: 60, max: MAX_HIDE_SECONDS },
  // The sender re-queues a fresh copy some receives before the limit, so it needs a few to work with.
  maxReceiveCount: { min: 4, max: 1000 },
  maxAgeSeconds: { min: 1, max: 14 * 86_400 },
  duplicateWindowSeconds: { min: 60, max: 86_400 },
  httpTimeoutMs: { min: 1, max: 900_000 },
  secretTtlSeconds: { min: 0, max: 86_400 },
  tokenRenewBeforeSeconds: { min: 0, max: 3_000 },
  timeScale: { min: 1, max: 100_000 },
} as const satisfies Record<string, Bounds>;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads and validates the sender configuration. Throws `ConfigError` naming the first bad variable.
 *
 * @example
 * const config = loadSenderConfig(process.env);
 */
export function loadSenderConfig(env: Env): SenderConfig {
  const read = settingsReader(env);
  const number = (name: keyof typeof ENV & keyof typeof RANGES & keyof typeof DEFAULTS) =>
    read.number(ENV[name], DEFAULTS[name], RANGES[name]);
  return {
    baseUrl: parseBaseUrl(read.requiredText(ENV.baseUrl), ENV.baseUrl),
    secretId: read.requiredText(ENV.secretId),
    sendQueueUrl: url(read.requiredText(ENV.sendQueueUrl), ENV.sendQueueUrl),
    deadLetterQueueUrl: url(read.requiredText(ENV.deadLetterQueueUrl), ENV.deadLetterQueueUrl),
    ledgerTableName: read.requiredText(ENV.ledgerTableName),
    webhooksEnabled: read.flag(ENV.webhooksEnabled, false),
    jobSettledBus: read.flag(ENV.publishJobSettled, false) ? read.requiredText(ENV.eventBusName) : undefined,
    ledgerTtlSeconds: number('ledgerTtlDays') * 86_400,
    requestsPerMinute: number('requestsPerMinute'),
    fallbackRequestsPerMinute: number('fallbackRequestsPerMinute'),
    backoffSeconds: read.numberList(ENV.backoffSeconds, DEFAULTS.backoffSeconds, RANGES.backoffStepSeconds),
    backoffJitter: number('backoffJitter'),
    maxAttempts: number('maxAttempts'),
    serverErrorMaxAttempts: number('serverErrorMaxAttempts'),
    serverErrorRetrySeconds: number('serverErrorRetrySeconds'),
    rateLimitWaitSeconds: number('rateLimitWaitSeconds'),
    rateLimitHintMaxSeconds: number('rateLimitHintMaxSeconds'),
    maxReceiveCount: number('maxReceiveCount'),
    maxAgeSeconds: number('maxAgeSeconds'),
    duplicateWindowSeconds: number('duplicateWindowSeconds'),
    httpTimeoutMs: number('httpTimeoutMs'),
    secretTtlSeconds: number('secretTtlSeconds'),
    tokenRenewBeforeSeconds: number('tokenRenewBeforeSeconds'),
    timeScale: number('timeScale'),
    endpoints: {
      sqs: optionalUrl(read.text(ENV.sqsEndpoint), ENV.sqsEndpoint),
      secretsManager: optionalUrl(read.text(ENV.secretsManagerEndpoint), ENV.secretsManagerEndpoint),
      dynamodb: optionalUrl(read.text(ENV.dynamodbEndpoint), ENV.dynamodbEndpoint),
      eventBridge: optionalUrl(read.text(ENV.eventBridgeEndpoint), ENV.eventBridgeEndpoint),
    },
  };
}

/** True for hosts that never leave the machine, where plain http is allowed. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/**
 * Validates an eCourtDate base URL: `https://` anywhere, `http://` only to loopback; no query or fragment.
 * Returns the URL with any trailing slash removed from its path.
 */
export function parseBaseUrl(raw: string, variable: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    // The value may carry user:password; quote it only with that part masked.
    const shown = raw.replace(/\/\/[^/@\s]*@/, '//***@');
    throw new ConfigError(
      variable,
      `expected an absolute URL such as https://api.ecourtdate.com, got "${shown}"`,
    );
  }
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname))) {
    throw new ConfigError(
      variable,
      `expected an https:// URL (plain http:// is allowed only to loopback hosts), got "${parsed.protocol}//${parsed.host}"`,
    );
  }
  if (parsed.username || parsed.password) {
    throw new ConfigError(variable, 'must not carry credentials; they belong in the secret');
  }
  if (parsed.search || parsed.hash) {
    throw new ConfigError(variable, 'expected a base URL without query string or fragment');
  }
  parsed.pathname = parsed.pathname.replace(/\/+$/, '');
  return parsed;
}

function url(value: string, name: string): string {
  try {
    new URL(value);
  } catch {
    throw new ConfigError(name, `expected a URL, got "${value}"`);
  }
  return value;
}

function optionalUrl(value: string | undefined, name: string): string | undefined {
  return value === undefined ? undefined : url(value, name);
}
