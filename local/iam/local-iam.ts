import { stubSecretArn } from '#local/emulators/secrets-manager-stub.ts';
import { createIamGate, type GatedRole, type IamGate } from '#local/iam/gate.ts';
import { type StackPolicies, stackPolicies } from '#local/iam/stack-policies.ts';
import {
  LOCAL_ACCOUNT_ID,
  LOCAL_IAM_REGION,
  type LocalResource,
  localQueueArn,
  localTableArn,
  type PolicyStatement,
  resolveStatement,
} from '#local/iam/template-policies.ts';

/** Changes a role's resolved statements, e.g. a test removing one grant. */
export type PolicyEdit = (statements: readonly PolicyStatement[]) => readonly PolicyStatement[];

/** Static credentials, as the SDK takes them. */
export interface LocalCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** The sender role's local credentials: what the sender's SDK clients and its event source mapping sign with. */
export const SENDER_ROLE_CREDENTIALS: LocalCredentials = {
  accessKeyId: 'ASIALOCALSENDERROLE0',
  secretAccessKey: 'local',
};
/** The webhook receiver role's local credentials. */
export const RECEIVER_ROLE_CREDENTIALS: LocalCredentials = {
  accessKeyId: 'ASIALOCALRECEIVERROL',
  secretAccessKey: 'local',
};

/** The local names of the stack's resources the functions use. */
export interface LocalIamResources {
  /** Queue names; needed for the sender role. */
  readonly sendQueue?: string;
  readonly deadLetterQueue?: string;
  readonly ledgerTable: string;
  /** Secret names as the Secrets Manager stand-in holds them. */
  readonly apiSecret?: string;
  /** Needed for the receiver role. */
  readonly webhookSecret?: string;
}

export interface LocalIamOptions {
  /**
   * CDK context over cdk.json's: the stack this world stands for, e.g. `{ webhooks: true }`, or
   * `{ publishJobSettled: true, eventBusName: 'relay-bus' }` (the bus the local functions use).
   */
  readonly context?: Readonly<Record<string, unknown>>;
  readonly resources: LocalIamResources;
  /**
   * Further access key ids that sign as a role, e.g. the process's default credentials (`AWS_ACCESS_KEY_ID`) for
   * a function loaded from its environment as Lambda loads it, whose credentials come from the environment.
   */
  readonly extraAccessKeyIds?: { readonly sender?: readonly string[]; readonly receiver?: readonly string[] };
  /** Changes a role's resolved statements before use, e.g. a test removing one grant. */
  readonly statements?: {
    readonly sender?: PolicyEdit | undefined;
    readonly receiver?: PolicyEdit | undefined;
  };
}

/** The stack's IAM in a local world: give `gate` to every emulator (`iam` option), `credentials` to the functions. */
export interface LocalIam {
  readonly gate: IamGate;
  readonly credentials: { readonly sender: LocalCredentials; readonly receiver: LocalCredentials };
  /** The roles as the gate enforces them (statements resolved to the local resources). */
  readonly roles: { readonly sender?: GatedRole | undefined; readonly receiver?: GatedRole | undefined };
}

/**
 * Builds the gate of a local world from the synthesised stack (`stackPolicies`, cached on disk): the sender's
 * role when `resources` names the queues, the receiver's when the context turns webhooks on and `resources`
 * names the webhook secret. References resolve to the local resources' ARNs as the emulators form them.
 * Throws when a statement names a resource the local world has no stand-in for, or the synthesis fails.
 *
 * @example
 * const iam = await createLocalIam({ resources: { sendQueue: 'relay-send', deadLetterQueue: 'relay-dlq',
 *   ledgerTable: 'relay-ledger', apiSecret: 'ecourtdate-relay/test' } });
 * const sqs = await startSqsEmulator({ iam: iam.gate });
 */
export async function createLocalIam(options: LocalIamOptions): Promise<LocalIam> {
  const policies = await stackPolicies(options.context);
  const resources = localResources(policies, options.resources);
  const role = (
    name: 'sender' | 'receiver',
    credentials: LocalCredentials,
    sessionName: string,
  ): GatedRole | undefined => {
    const template = policies.roles[name];
    if (!template) return undefined;
    const resolved = template.statements.map((statement) => resolveStatement(statement, resources));
    return {
      roleName: template.logicalId,
      sessionName,
      accessKeyIds: [credentials.accessKeyId, ...(options.extraAccessKeyIds?.[name] ?? [])],
      statements: options.statements?.[name]?.(resolved) ?? resolved,
    };
  };
  const { sendQueue, webhookSecret } = options.resources;
  const sender = sendQueue === undefined ? undefined : role('sender', SENDER_ROLE_CREDENTIALS, 'sender');
  const receiver =
    webhookSecret === undefined ? undefined : role('receiver', RECEIVER_ROLE_CREDENTIALS, 'webhook-receiver');
  return {
    gate: createIamGate([sender, receiver].filter((found) => found !== undefined)),
    credentials: { sender: SENDER_ROLE_CREDENTIALS, receiver: RECEIVER_ROLE_CREDENTIALS },
    roles: { sender, receiver },
  };
}

/** Logical id → local resource, for every resource a role's statements may name. */
function localResources(policies: StackPolicies, local: LocalIamResources): Record<string, LocalResource> {
  const map: Record<string, LocalResource> = {};
  const queue = (logicalId: string, name: string | undefined) => {
    if (name === undefined) return;
    map[logicalId] = {
      ref: `https://sqs.${LOCAL_IAM_REGION}.amazonaws.com/${LOCAL_ACCOUNT_ID}/${name}`,
      attributes: { Arn: localQueueArn(name), QueueName: name },
    };
  };
  const secret = (logicalId: string | undefined, name: string | undefined) => {
    if (logicalId === undefined || name === undefined) return;
    map[logicalId] = { ref: stubSecretArn(name), attributes: {} };
  };
  const { logicalIds } = policies;
  queue(logicalIds.sendQueue, local.sendQueue);
  queue(logicalIds.deadLetterQueue, local.deadLetterQueue);
  map[logicalIds.ledgerTable] = {
    ref: local.ledgerTable,
    attributes: { Arn: localTableArn(local.ledgerTable) },
  };
  secret(logicalIds.apiSecret, local.apiSecret);
  secret(logicalIds.webhookSecret, local.webhookSecret);
  // CloudWatch Logs is not emulated: a log group gets a local ARN no call of the local world ever names.
  for (const [logicalId, type] of Object.entries(policies.resourceTypes)) {
    if (type !== 'AWS::Logs::LogGroup') continue;
    map[logicalId] = {
      ref: logicalId,
      attributes: { Arn: `arn:aws:logs:${LOCAL_IAM_REGION}:${LOCAL_ACCOUNT_ID}:log-group:${logicalId}:*` },
    };
  }
  return map;
}
