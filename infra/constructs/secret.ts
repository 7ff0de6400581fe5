import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { SecretSetting } from '#infra/secret-setting.ts';

/**
 * The stack's handle on an existing secret, by name. Its customer-managed key, if any, is granted to the reader
 * by `RelayFunction.readSecret` (the key's account is not the stack's business: the grant names the key ARN).
 */
export function existingSecret(scope: Construct, id: string, setting: SecretSetting): secretsmanager.ISecret {
  return secretsmanager.Secret.fromSecretNameV2(scope, id, setting.name);
}

/** The customer-managed key a created secret is encrypted with, or undefined for the AWS managed key. */
export function secretKey(scope: Construct, id: string, setting: SecretSetting): kms.IKey | undefined {
  return setting.kmsKeyArn === undefined
    ? undefined
    : kms.Key.fromKeyArn(scope, `${id}Key`, setting.kmsKeyArn);
}
