import { createLocalIam, type LocalIam, type LocalIamResources } from '#local/iam/local-iam.ts';
import type { PolicyStatement } from '#local/iam/template-policies.ts';

/** Changes a role's resolved statements, e.g. a test removing one grant. */
export type PolicyEdit = (statements: readonly PolicyStatement[]) => readonly PolicyStatement[];

/** The stack's IAM of a test world, with the edit a test asked for. */
export type SenderWorldIam = LocalIam & { readonly senderPolicy?: PolicyEdit };

/**
 * The CDK context of the stack a sender environment stands for: webhooks on with `WEBHOOKS_ENABLED=true`, the
 * `eCourtDate Job Settled` events on `EVENT_BUS_NAME` with `PUBLISH_JOB_SETTLED=true` (shared/config.ts).
 */
export function senderStackContext(env: Readonly<Record<string, string>> = {}): Record<string, unknown> {
  return {
    ...(env.WEBHOOKS_ENABLED === 'true' ? { webhooks: true } : {}),
    ...(env.PUBLISH_JOB_SETTLED === 'true'
      ? { publishJobSettled: true, ...(env.EVENT_BUS_NAME ? { eventBusName: env.EVENT_BUS_NAME } : {}) }
      : {}),
  };
}

/**
 * The gate of a world whose sender is loaded from its environment (test/helpers/relay-harness.ts): the stack
 * that `env` stands for, the sender role signing with its own key and with the process's default credentials
 * (`AWS_ACCESS_KEY_ID`), as a function loaded from its environment does in Lambda. The test's own clients use
 * the emulators' key (`local`), which is not restricted. Throws what `createLocalIam` throws.
 */
export function senderWorldIam(options: {
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly resources: LocalIamResources;
  readonly senderPolicy?: PolicyEdit | undefined;
}): Promise<SenderWorldIam> {
  const defaultKey = process.env.AWS_ACCESS_KEY_ID;
  return createLocalIam({
    context: senderStackContext(options.env),
    resources: options.resources,
    extraAccessKeyIds: { sender: defaultKey ? [defaultKey] : [] },
    statements: options.senderPolicy ? { sender: options.senderPolicy } : undefined,
  });
}

/**
 * The gate of a world whose webhook receiver is loaded from its environment (test/helpers/webhook-harness.ts):
 * the stack with webhooks on and the receiver's bus `EVENT_BUS_NAME`, the receiver role signing with its own key
 * and with the process's default credentials. Throws what `createLocalIam` throws.
 */
export function receiverWorldIam(options: {
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly resources: LocalIamResources;
  readonly receiverPolicy?: PolicyEdit | undefined;
}): Promise<LocalIam> {
  const defaultKey = process.env.AWS_ACCESS_KEY_ID;
  const bus = options.env?.EVENT_BUS_NAME;
  return createLocalIam({
    context: { webhooks: true, ...(bus && bus !== 'default' ? { eventBusName: bus } : {}) },
    resources: options.resources,
    extraAccessKeyIds: { receiver: defaultKey ? [defaultKey] : [] },
    statements: options.receiverPolicy ? { receiver: options.receiverPolicy } : undefined,
  });
}
