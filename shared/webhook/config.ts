import { ENV } from '#shared/config.ts';
import { ConfigError } from '#shared/errors.ts';
import { type IpAllowlist, parseIpAllowlist } from '#shared/webhook/allowlist.ts';

/**
 * The webhook receiver's configuration, read and validated once at cold start from the environment the stack
 * (or the local run) gives `functions/webhook.ts`. Everything else takes a typed `WebhookConfig`.
 *
 * | variable | meaning | default |
 * |---|---|---|
 * | `WEBHOOK_SECRET_ID` | Secrets Manager id/ARN of the shared secret (`{"secret": "..."}` or the plain string) | required |
 * | `EVENT_BUS_NAME` | the bus events are put on (`default` for the account's default bus) | required |
 * | `LEDGER_TABLE_NAME` | the job ledger table: dedupe records, uuid index, delivery status | required |
 * | `WEBHOOK_ALLOWED_IPS` | comma list of source IPs / CIDR ranges; empty = allowlist off | empty |
 * | `WEBHOOK_MAX_BODY_BYTES` | larger bodies answer 413 | 65536 |
 * | `WEBHOOK_DEDUPE_TTL_SECONDS` | how long a delivery's uuid is remembered | 604800 (7 days) |
 * | `WEBHOOK_LEASE_SECONDS` | how long one invocation holds a uuid while it publishes; above the function timeout | 30 |
 * | `WEBHOOK_SECRET_TTL_SECONDS` | how long the secret is cached per container | 300 |
 * | `AWS_ENDPOINT_URL_EVENTBRIDGE`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_DYNAMODB` | emulator endpoints (local runs and tests) | unset |
 */
export interface WebhookConfig {
  readonly secretId: string;
  readonly eventBusName: string;
  readonly ledgerTableName: string;
  readonly allowlist: IpAllowlist;
  /** Bytes of the raw (decoded) body. */
  readonly maxBodyBytes: number;
  readonly dedupeTtlSeconds: number;
  readonly leaseSeconds: number;
  readonly secretTtlSeconds: number;
  readonly endpoints: {
    readonly eventBridge?: string | undefined;
    readonly secretsManager?: string | undefined;
    readonly dynamodb?: string | undefined;
  };
}

/** The names of the variables above, shared with the stack and the local run. */
export const WEBHOOK_ENV = {
  secretId: 'WEBHOOK_SECRET_ID',
  eventBusName: 'EVENT_BUS_NAME',
  ledgerTableName: ENV.ledgerTableName,
  allowedIps: 'WEBHOOK_ALLOWED_IPS',
  maxBodyBytes: 'WEBHOOK_MAX_BODY_BYTES',
  dedupeTtlSeconds: 'WEBHOOK_DEDUPE_TTL_SECONDS',
  leaseSeconds: 'WEBHOOK_LEASE_SECONDS',
  secretTtlSeconds: 'WEBHOOK_SECRET_TTL_SECONDS',
  eventBridgeEndpoint: 'AWS_ENDPOINT_URL_EVENTBRIDGE',
  secretsManagerEndpoint: ENV.secretsManagerEndpoint,
  dynamodbEndpoint: ENV.dynamodbEndpoint,
} as const;

/**
 * The largest body the receiver can take: an EventBridge entry holds at most 256 KB (AWS EventBridge user guide,
 * "Calculating PutEvents event entry size"), and the event's `detail` carries the payload plus a few short
 * normalised fields.
 */
export const MAX_BODY_BYTES_LIMIT = 200 * 1024;

export const WEBHOOK_DEFAULTS = {
  maxBodyBytes: 64 * 1024,
  dedupeTtlSeconds: 7 * 86_400,
  leaseSeconds: 30,
  secretTtlSeconds: 300,
} as const;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads and validates the receiver's configuration. Throws `ConfigError` naming the first bad variable.
 *
 * @example
 * const config = loadWebhookConfig(process.env);
 */
export function loadWebhookConfig(env: Env): WebhookConfig {
  let allowlist: IpAllowlist;
  try {
    allowlist = parseIpAllowlist(env[WEBHOOK_ENV.allowedIps]);
  } catch (error) {
    throw new ConfigError(WEBHOOK_ENV.allowedIps, (error as Error).message);
  }
  return {
    secretId: required(env, WEBHOOK_ENV.secretId),
    eventBusName: required(env, WEBHOOK_ENV.eventBusName),
    ledgerTableName: required(env, WEBHOOK_ENV.ledgerTableName),
    allowlist,
    maxBodyBytes: int(
      env,
      WEBHOOK_ENV.maxBodyBytes,
      WEBHOOK_DEFAULTS.maxBodyBytes,
      1024,
      MAX_BODY_BYTES_LIMIT,
    ),
    dedupeTtlSeconds: int(
      env,
      WEBHOOK_ENV.dedupeTtlSeconds,
      WEBHOOK_DEFAULTS.dedupeTtlSeconds,
      60,
      365 * 86_400,
    ),
    leaseSeconds: int(env, WEBHOOK_ENV.leaseSeconds, WEBHOOK_DEFAULTS.leaseSeconds, 1, 900),
    secretTtlSeconds: int(env, WEBHOOK_ENV.secretTtlSeconds, WEBHOOK_DEFAULTS.secretTtlSeconds, 0, 86_400),
    endpoints: {
      eventBridge: optionalUrl(env, WEBHOOK_ENV.eventBridgeEndpoint),
      secretsManager: optionalUrl(env, WEBHOOK_ENV.secretsManagerEndpoint),
      dynamodb: optionalUrl(env, WEBHOOK_ENV.dynamodbEndpoint),
    },
  };
}

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(name, 'is required but not set');
  return value;
}

function optionalUrl(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  if (!value) return undefined;
  try {
    new URL(value);
  } catch {
    throw new ConfigError(name, `expected a URL, got "${value}"`);
  }
  return value;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  if (value < min || value > max) {
    throw new ConfigError(name, `expected a value from ${min} to ${max}, got ${value}`);
  }
  return value;
}
