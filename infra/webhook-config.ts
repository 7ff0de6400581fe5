import { readSecretSetting, type SecretSetting } from '#infra/secret-setting.ts';
import type { SettingTable, TableReader } from '#infra/setting-table.ts';
import { ConfigError } from '#shared/errors.ts';
import { parseIpAllowlist } from '#shared/webhook/allowlist.ts';
import { MAX_BODY_BYTES_LIMIT, WEBHOOK_DEFAULTS } from '#shared/webhook/config.ts';

/**
 * Stage settings of the webhook receiver (docs/webhooks.md, "Stage settings"), read with the rest of the stage
 * configuration (`infra/config.ts`: cdk.json's "stages" map, or `-c webhooks=true` for one deploy), validated at
 * synth with a `ConfigError` naming the setting. CDK-free: the operator CLI and the local run read the names from here.
 */

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

/** The webhook settings as part of the stage's settings table (`infra/setting-table.ts`). */
export const WEBHOOK_SETTING_TABLE = {
  webhooks: { reader: 'flag', default: false },
  webhookSecretName: { reader: 'text' },
  existingWebhookSecretName: { reader: 'text' },
  webhookSecretKmsKeyArn: { reader: 'text' },
  webhookAllowedIps: { reader: 'list' },
  webhookMaxBodyBytes: {
    reader: 'number',
    default: WEBHOOK_DEFAULTS.maxBodyBytes,
    bounds: { min: 1024, max: MAX_BODY_BYTES_LIMIT },
  },
  webhookRateLimit: {
    reader: 'number',
    default: WEBHOOK_STAGE_DEFAULTS.rateLimit,
    bounds: { min: 1, max: 10_000 },
  },
  webhookBurstLimit: {
    reader: 'number',
    default: WEBHOOK_STAGE_DEFAULTS.burstLimit,
    bounds: { min: 1, max: 5_000 },
  },
  webhookDedupeDays: {
    reader: 'number',
    default: WEBHOOK_STAGE_DEFAULTS.dedupeDays,
    bounds: { min: 1, max: 365 },
  },
  webhookSignatureFailureThreshold: {
    reader: 'number',
    default: WEBHOOK_STAGE_DEFAULTS.signatureFailureThreshold,
    bounds: { min: 1, max: 100_000 },
  },
} as const satisfies SettingTable;

/** Every webhook setting the app reads (`infra/config.ts` accepts these too). */
export const WEBHOOK_SETTINGS = Object.keys(WEBHOOK_SETTING_TABLE) as (keyof typeof WEBHOOK_SETTING_TABLE)[];

/**
 * Reads and validates the webhook settings of a stage through the stage's table reader; `loadStageConfig`
 * calls it once, with the rest of the stage's settings. Throws `ConfigError` naming the setting.
 *
 * @example
 * const webhook = readWebhookStageConfig(settings, 'production'); // settings: TableReader over the stage's settings
 */
export function readWebhookStageConfig(
  settings: TableReader<keyof typeof WEBHOOK_SETTING_TABLE>,
  stage: string,
): WebhookStageConfig {
  const enabled = settings.flag('webhooks');
  const rateLimit = settings.number('webhookRateLimit');
  const burstLimit = settings.number('webhookBurstLimit');
  if (burstLimit < rateLimit) {
    throw new ConfigError(
      'webhookBurstLimit',
      `must be at least webhookRateLimit (${rateLimit}), got ${burstLimit}`,
    );
  }
  const allowedIps = settings.list('webhookAllowedIps') ?? [];
  try {
    parseIpAllowlist(allowedIps.join(','));
  } catch (error) {
    throw new ConfigError('webhookAllowedIps', (error as Error).message);
  }
  return {
    enabled,
    secret: readSecretSetting(
      {
        created: settings.text('webhookSecretName'),
        existing: settings.text('existingWebhookSecretName'),
        kmsKey: settings.text('webhookSecretKmsKeyArn'),
      },
      {
        created: 'webhookSecretName',
        existing: 'existingWebhookSecretName',
        kmsKey: 'webhookSecretKmsKeyArn',
      },
      `ecourtdate-relay/${stage}/webhook-signing-key`,
    ),
    allowedIps,
    maxBodyBytes: settings.number('webhookMaxBodyBytes'),
    rateLimit,
    burstLimit,
    dedupeDays: settings.number('webhookDedupeDays'),
    signatureFailureThreshold: settings.number('webhookSignatureFailureThreshold'),
  };
}
