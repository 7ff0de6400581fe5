import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '#infra/constructs/relay-function.ts';
import { rolePolicies, type TemplateRole } from '#local/iam/template-policies.ts';

/** The functions' role policies of one synthesised stack, and the logical ids their statements name. */
export interface StackPolicies {
  readonly roles: {
    readonly sender: TemplateRole;
    /** Only when the context turns webhooks on. */
    readonly receiver?: TemplateRole | undefined;
  };
  /** Logical ids of the resources the local world stands in for (absent: imported, named by ARN). */
  readonly logicalIds: {
    readonly sendQueue: string;
    readonly deadLetterQueue: string;
    readonly ledgerTable: string;
    readonly apiSecret?: string | undefined;
    readonly webhookSecret?: string | undefined;
  };
  /** Every resource of the template by logical id → its type and, for log groups, its name if set. */
  readonly resourceTypes: Readonly<Record<string, string>>;
}

/** Where synthesised policies are kept between processes: `RELAY_IAM_CACHE_DIR` or under node_modules/.cache. */
export function policyCacheDir(): string {
  return (
    process.env.RELAY_IAM_CACHE_DIR ?? join(REPO_ROOT, 'node_modules', '.cache', 'ecourtdate-relay', 'iam')
  );
}

/**
 * The role policies of the stack the CDK app synthesises with `context` over cdk.json's (as `-c key=value`
 * would), bundling skipped. A synthesis takes seconds, so the result is kept on disk, keyed by the SHA-256 of
 * every file under infra/, cdk.json, package-lock.json, this module and `context`: test files that run in
 * processes of their own synthesise once per combination. Concurrent writers are safe (a temporary file renamed
 * into place). Throws whatever the synthesis throws (an invalid context, a cdk-nag finding).
 */
export async function stackPolicies(context: Readonly<Record<string, unknown>> = {}): Promise<StackPolicies> {
  const key = cacheKey(context);
  const dir = policyCacheDir();
  const file = join(dir, `${key}.json`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as StackPolicies;
  } catch {
    // Not cached yet (or unreadable): synthesise.
  }
  const policies = await synthesise(context);
  mkdirSync(dir, { recursive: true });
  const temporary = join(dir, `${key}.${randomUUID()}.tmp`);
  writeFileSync(temporary, JSON.stringify(policies));
  renameSync(temporary, file);
  return policies;
}

async function synthesise(context: Readonly<Record<string, unknown>>): Promise<StackPolicies> {
  const [{ App, Stack }, { buildRelayApp }] = await Promise.all([
    import('aws-cdk-lib'),
    import('#infra/relay-app.ts'),
  ]);
  const cdkContext = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context?: object })
    .context;
  // The local world emulates no KMS (docs/test-world.md, "The stack's IAM"): a `dataKmsKey` in cdk.json would
  // only add grants on a key no local resource stands for, so the world's roles are the default stage's.
  const app = new App({
    context: { ...cdkContext, 'aws:cdk:bundling-stacks': [], dataKmsKey: 'none', ...context },
  });
  const stack = buildRelayApp(app);
  const template = app.synth().getStackByName(stack.stackName).template as {
    Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
  };
  const id = (construct: { node: { defaultChild?: unknown } } | undefined): string | undefined => {
    const child = construct?.node.defaultChild;
    return child
      ? Stack.of(stack).getLogicalId(child as Parameters<typeof stack.getLogicalId>[0])
      : undefined;
  };
  const roleId = (role: { node: { defaultChild?: unknown } }): string => {
    const found = id(role);
    if (!found) throw new Error('a function role has no CloudFormation resource');
    return found;
  };
  const { sendQueues } = stack;
  return {
    roles: {
      sender: rolePolicies(template, roleId(stack.sender.role as never)),
      receiver: stack.webhooks
        ? rolePolicies(template, roleId(stack.webhooks.receiver.role as never))
        : undefined,
    },
    logicalIds: {
      sendQueue: id(sendQueues.queue) ?? '',
      deadLetterQueue: id(sendQueues.deadLetterQueue) ?? '',
      ledgerTable: id(stack.ledgerTable) ?? '',
      apiSecret: id(stack.secret as never),
      webhookSecret: stack.webhooks ? id(stack.webhooks.secret as never) : undefined,
    },
    resourceTypes: Object.fromEntries(
      Object.entries(template.Resources).map(([logicalId, resource]) => [logicalId, resource.Type]),
    ),
  };
}

function cacheKey(context: Readonly<Record<string, unknown>>): string {
  const hash = createHash('sha256');
  const files = [
    ...listFiles(join(REPO_ROOT, 'infra')),
    // The grants and the functions' environment come partly from shared/ (the ledger operations, the env names).
    ...listFiles(join(REPO_ROOT, 'shared')),
    join(REPO_ROOT, 'cdk.json'),
    join(REPO_ROOT, 'package-lock.json'),
    join(REPO_ROOT, 'local', 'iam', 'stack-policies.ts'),
    join(REPO_ROOT, 'local', 'iam', 'template-policies.ts'),
  ];
  for (const file of files) {
    hash.update(relative(REPO_ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  hash.update(JSON.stringify(Object.entries(context).sort(([a], [b]) => a.localeCompare(b))));
  return hash.digest('hex');
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}
