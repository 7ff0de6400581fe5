import { readSecretSetting, type SecretSetting } from '#infra/secret-setting.ts';
import { ConfigError } from '#shared/errors.ts';
import { parseIpAllowlist } from '#shared/webhook/allowlist.ts';
import { MAX_BODY_BYTES_LIMIT, WEBHOOK_DEFAULTS } from '#shared/webhook/config.ts';

/**
 * Stage settings of the webhook receiver (docs/webhooks.md, "Stage settings"), read from CDK context like the
 * rest of the stage configuration (`-c webhooks=true`, or cdk.json "context"), validated at synth with a
 * `ConfigError` naming the setting. CDK-free: the operator CLI and the local run read the names from here.
 */

/** Every webhook setting the app reads from CDK context (`infra/config.ts` accepts these too). */
export const WEBHOOK_SETTINGS = [
  'webhooks',
  'webhookSecretName',
  'existingWebhookSecretName',
  'webhookSecretKmsKeyArn',
  'webhookAllowedIps',
  'webhookMaxBodyBytes',
  'webhookRateLimit',
  'webhookBurstLimit',
  'webhookDedupeDays',
  'webhookSignatureFailureThreshold',
] as const;

/** The names of the receiver's stack outputs; the CLI and docs/deploy.md ("Stack outputs") read them by name: keep them stable. */
export const WEBHOOK_OUTPUT = {
  url: 'WebhookUrl',
  secretName: 'WebhookSecretName',
  functionName: 'WebhookFunctionName',
} as const;

/** The webhook route on the HTTP API; the local gateway serves the same path (local/lambda/webhook-gateway.ts). */
export const WEBHOOK_ROUTE_PATH = '/ecourtdate/webhook';

/** The receiver's function timeout: eCourtDate wants an answer "within a few seconds" (docs/webhooks.md). */
export const WEBHOOK_FUNCTION_TIMEOUT_SECONDS = 10;
/**
 * How long one invocation holds a delivery while it publishes: three function timeouts, so a live holder (even
 * one whose SDK calls retried) is never taken over, while a crashed one frees the delivery within seconds.
 */
export const WEBHOOK_LEASE_SECONDS = 3 * WEBHOOK_FUNCTION_TIMEOUT_SECONDS;

export interface WebhookStageConfig {
  /** Deploy the receiver, and have the sender write the uuid index (one write per delivered job). */
  readonly enabled: boolean;
  /** `create`: the stack generates a 24-character secret. `existing`: an existing secret, by name. */
  readonly secret: SecretSetting;
  /** Source IPs / CIDR ranges allowed to post; empty = allowlist off. */
  readonly allowedIps: readonly string[];
  readonly maxBodyBytes: number;
  /** API Gateway steady-state limit, requests per second. */
  readonly rateLimit: number;
  /** API Gateway burst limit, requests. */
  readonly burstLimit: number;
  /** Days a delivery's uuid is remembered against redeliveries. */
  readonly dedupeDays: number;
  /** Signature failures in 5 minutes that page on-call. */
  readonly signatureFailureThreshold: number;
}

export const WEBHOOK_STAGE_DEFAULTS = {
  rateLimit: 50,
  burstLimit: 100,
  dedupeDays: 7,
  // One forged or mistyped request is noise; a wrong secret fails every delivery and passes this in minutes.
  signatureFailureThreshold: 5,
} as const;

type Context = Readonly<Record<string, unknown>>;

/**
 * Reads and validates the webhook settings of a stage.
 *
 * @example
 * const webhook = loadWebhookStageConfig({ webhooks: 'true', webhookAllowedIps: '203.0.113.10,203.0.113.11' }, 'production');
 */
export function loadWebhookStageConfig(context: Context, stage: string): WebhookStageConfig {
  const enabled = bool(context, 'webhooks', false);
  const rateLimit = int(context, 'webhookRateLimit', WEBHOOK_STAGE_DEFAULTS.rateLimit, 1, 10_000);
  const burstLimit = int(context, 'webhookBurstLimit', WEBHOOK_STAGE_DEFAULTS.burstLimit, 1, 5_000);
  if (burstLimit < rateLimit) {
    throw new ConfigError(
      'webhookBurstLimit',
      `must be at least webhookRateLimit (${rateLimit}), got ${burstLimit}`,
    );
  }
  const allowedIps = list(context, 'webhookAllowedIps');
  try {
    parseIpAllowlist(allowedIps.join(','));
  } catch (error) {
    throw new ConfigError('webhookAllowedIps', (error as Error).message);
  }
  return {
    enabled,
    secret: resolveSecret(context, stage),
    allowedIps,
    maxBodyBytes: int(
      context,
      'webhookMaxBodyBytes',
      WEBHOOK_DEFAULTS.maxBodyBytes,
      1024,
      MAX_BODY_BYTES_LIMIT,
    ),
    rateLimit,
    burstLimit,
    dedupeDays: int(context, 'webhookDedupeDays', WEBHOOK_STAGE_DEFAULTS.dedupeDays, 1, 365),
    signatureFailureThreshold: int(
      context,
      'webhookSignatureFailureThreshold',
      WEBHOOK_STAGE_DEFAULTS.signatureFailureThreshold,
      1,
      100_000,
    ),
  };
}

function resolveSecret(context: Context, stage: string): WebhookStageConfig['secret'] {
  return readSecretSetting(
    {
      created: text(context, 'webhookSecretName'),
      existing: text(context, 'existingWebhookSecretName'),
      kmsKey: text(context, 'webhookSecretKmsKeyArn'),
    },
    { created: 'webhookSecretName', existing: 'existingWebhookSecretName', kmsKey: 'webhookSecretKmsKeyArn' },
    `ecourtdate-relay/${stage}/webhook-signing-key`,
  );
}

function text(context: Context, key: string): string | undefined {
  const raw = context[key];
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
    throw new ConfigError(key, `expected a single value, got ${JSON.stringify(raw)}`);
  }
  const value = String(raw).trim();
  return value === '' ? undefined : value;
}

function bool(context: Context, key: string, fallback: boolean): boolean {
  const value = text(context, key)?.toLowerCase();
  if (value === undefined) return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new ConfigError(key, `expected true or false, got "${value}"`);
}

function int(context: Context, key: string, fallback: number, min: number, max: number): number {
  const raw = text(context, key);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new ConfigError(key, `expected a whole number, got "${raw}"`);
  if (value < min || value > max)
    throw new ConfigError(key, `expected a value from ${min} to ${max}, got ${value}`);
  return value;
}

function list(context: Context, key: string): string[] {
  const raw = context[key];
  if (raw === undefined || raw === null) return [];
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
  if (items === undefined)
    throw new ConfigError(key, `expected a comma-separated list, got ${JSON.stringify(raw)}`);
  return items.map((item) => String(item).trim()).filter((item) => item !== '');
}
