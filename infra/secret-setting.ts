import { ConfigError } from '#shared/errors.ts';

/**
 * A Secrets Manager secret the stack uses: created by the stack, or an existing one by name; either may be
 * encrypted with a customer-managed KMS key, whose ARN the stack then needs to grant `kms:Decrypt` (through
 * Secrets Manager only).
 */
export interface SecretSetting {
  readonly kind: 'create' | 'existing';
  readonly name: string;
  /** The customer-managed key's ARN (`arn:aws:kms:<region>:<account>:key/<id>`); undefined: the AWS managed key. */
  readonly kmsKeyArn?: string | undefined;
}

/** The names of the three settings of one secret, for the errors. */
export interface SecretSettingNames {
  readonly created: string;
  readonly existing: string;
  readonly kmsKey: string;
}

/** What Secrets Manager allows in a name: 1-512 of these characters (Secrets Manager API reference, CreateSecret). */
const ALLOWED = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
/**
 * A name ending in a hyphen and six characters looks like the random suffix Secrets Manager appends to every
 * secret's ARN, so lookups by a partial ARN become ambiguous; AWS says never to end a name that way (Secrets
 * Manager User Guide, "Find secrets": the ARN suffix).
 */
const SUFFIX_LIKE = /-[^/]{6}$/;
/** A KMS key ARN (not an alias: IAM policies grant on keys, not on aliases). */
const KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;

/**
 * Reads one secret's settings: `created` (the name of a secret the stack creates), `existing` (the name of one
 * it uses), and `kmsKey` (the ARN of the customer-managed key it is, or is to be, encrypted with), with
 * `defaultName` when neither name is set. Throws `ConfigError` naming the setting: both names set, a name
 * Secrets Manager refuses, a name that ends like an ARN suffix, a key that is not a key ARN.
 *
 * @example
 * readSecretSetting({ existing: 'court/ecd-api', created: undefined, kmsKey: undefined },
 *   { created: 'secretName', existing: 'existingSecretName', kmsKey: 'secretKmsKeyArn' }, 'relay/api-credentials');
 * // → { kind: 'existing', name: 'court/ecd-api', kmsKeyArn: undefined }
 */
export function readSecretSetting(
  values: {
    readonly created: string | undefined;
    readonly existing: string | undefined;
    readonly kmsKey: string | undefined;
  },
  settings: SecretSettingNames,
  defaultName: string,
): SecretSetting {
  const { created, existing, kmsKey } = values;
  if (existing !== undefined && created !== undefined) {
    throw new ConfigError(
      settings.existing,
      `set either ${settings.created} (created by the stack) or ${settings.existing}`,
    );
  }
  const name = existing ?? created ?? defaultName;
  const setting = existing !== undefined ? settings.existing : settings.created;
  if (!ALLOWED.test(name)) {
    throw new ConfigError(setting, `expected 1-512 characters of A-Z a-z 0-9 / _ + = . @ -, got "${name}"`);
  }
  if (SUFFIX_LIKE.test(name)) {
    throw new ConfigError(
      setting,
      `"${name}" ends with a hyphen and six characters, like the suffix Secrets Manager adds to every secret's ARN, which makes lookups by name ambiguous; choose a name that does not (e.g. end it in "-credentials")`,
    );
  }
  if (kmsKey !== undefined && !KEY_ARN.test(kmsKey)) {
    throw new ConfigError(
      settings.kmsKey,
      `expected the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<key id>; not an alias), got "${kmsKey}"`,
    );
  }
  return { kind: existing !== undefined ? 'existing' : 'create', name, kmsKeyArn: kmsKey };
}
