/**
 * The functions' role policies, read from the synthesised CloudFormation template, with their references
 * resolved to the local resources (docs/test-world.md, "The stack's IAM").
 */

/** The local account and region every emulator forms its ARNs with. */
export const LOCAL_ACCOUNT_ID = '000000000000';
export const LOCAL_IAM_REGION = 'us-east-1';

/** One statement as the template writes it: values may still hold `Ref`, `Fn::GetAtt`, `Fn::Join`, ... */
export interface TemplateStatement {
  readonly Effect: string;
  readonly Action: string | readonly string[];
  readonly Resource?: unknown;
  readonly Condition?: unknown;
  readonly Sid?: string;
}

/** One statement with every reference resolved: what the simulator evaluates. */
export interface PolicyStatement {
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: readonly string[];
  readonly Resource: readonly string[];
  readonly Condition?: Record<string, Record<string, string | string[]>>;
  readonly Sid?: string;
}

/** A role's policies as the template holds them, before resolution. */
export interface TemplateRole {
  /** The role's logical id (its local name: the simulator's principal is `assumed-role/<logical id>/...`). */
  readonly logicalId: string;
  /** Statements of every `AWS::IAM::Policy` attached to the role and of its inline `Policies`, in order. */
  readonly statements: readonly TemplateStatement[];
  /**
   * Managed policy ARNs attached to the role (e.g. AWSLambdaBasicExecutionRole). Not evaluated: they grant
   * CloudWatch Logs and X-Ray only, which the local world does not emulate.
   */
  readonly managedPolicyArns: readonly unknown[];
}

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

/**
 * The policies of the role `roleLogicalId` in `template` (a CloudFormation template as JSON): the statements of
 * every `AWS::IAM::Policy` whose `Roles` names it and of the role's own inline `Policies`. Throws when the
 * template has no such role.
 */
export function rolePolicies(template: { Resources?: Resources }, roleLogicalId: string): TemplateRole {
  const resources = template.Resources ?? {};
  const role = resources[roleLogicalId];
  if (role?.Type !== 'AWS::IAM::Role') throw new Error(`the template has no IAM role ${roleLogicalId}`);
  const statements: TemplateStatement[] = [];
  const inline = (role.Properties?.Policies ?? []) as {
    PolicyDocument: { Statement: TemplateStatement[] };
  }[];
  for (const policy of inline) statements.push(...policy.PolicyDocument.Statement);
  for (const resource of Object.values(resources)) {
    if (resource.Type !== 'AWS::IAM::Policy') continue;
    const roles = (resource.Properties?.Roles ?? []) as unknown[];
    if (!roles.some((entry) => isRef(entry, roleLogicalId))) continue;
    const document = resource.Properties?.PolicyDocument as { Statement: TemplateStatement[] };
    statements.push(...document.Statement);
  }
  const managedPolicyArns = (role.Properties?.ManagedPolicyArns ?? []) as unknown[];
  return { logicalId: roleLogicalId, statements, managedPolicyArns };
}

/** What a logical id resolves to locally: `Ref` and the attributes `Fn::GetAtt` may ask for (e.g. `Arn`). */
export interface LocalResource {
  readonly ref: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/**
 * Resolves `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select` and `Fn::Split` in `value` against
 * `resources` (logical id → local resource) and the pseudo parameters of the local account
 * (`AWS::Partition`, `AWS::Region`, `AWS::AccountId`, `AWS::URLSuffix`). Throws naming the logical id or
 * attribute it cannot resolve: a reference is never widened to a wildcard.
 */
export function resolveIntrinsics(
  value: unknown,
  resources: Readonly<Record<string, LocalResource>>,
): unknown {
  const ref = (id: string): string => {
    const pseudo = PSEUDO_PARAMETERS[id];
    if (pseudo !== undefined) return pseudo;
    const found = resources[id];
    if (!found) throw new Error(`cannot resolve Ref ${id}: no local resource stands for it`);
    return found.ref;
  };
  const getAtt = (id: string, attribute: string): string => {
    const found = resources[id]?.attributes[attribute];
    if (found === undefined)
      throw new Error(`cannot resolve Fn::GetAtt ${id}.${attribute}: no local resource stands for it`);
    return found;
  };
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (typeof node !== 'object' || node === null) return node;
    const entries = Object.entries(node as Record<string, unknown>);
    const [only] = entries;
    if (entries.length === 1 && only) {
      const [key, arg] = only;
      if (key === 'Ref') return ref(String(arg));
      if (key === 'Fn::GetAtt') {
        const [id, attribute] = Array.isArray(arg) ? arg : String(arg).split('.');
        return getAtt(String(id), String(attribute));
      }
      if (key === 'Fn::Join') {
        const [separator, parts] = arg as [string, unknown[]];
        return (walk(parts) as unknown[]).map(String).join(separator);
      }
      if (key === 'Fn::Select') {
        const [index, list] = arg as [unknown, unknown];
        return (walk(list) as unknown[])[Number(walk(index))];
      }
      if (key === 'Fn::Split') {
        const [separator, text] = arg as [string, unknown];
        return String(walk(text)).split(separator);
      }
      if (key === 'Fn::Sub') {
        const [text, vars] = Array.isArray(arg)
          ? (arg as [string, Record<string, unknown>])
          : [String(arg), {}];
        // `${!Literal}` is CloudFormation's escape for a literal `${Literal}`.
        return text.replace(/\$\{(!?)([^}]+)\}/g, (_, escaped: string, name: string) => {
          if (escaped) return `\${${name}}`;
          if (name in vars) return String(walk(vars[name]));
          const [id, attribute] = name.split('.');
          return attribute === undefined ? ref(String(id)) : getAtt(String(id), attribute);
        });
      }
      if (key.startsWith('Fn::')) throw new Error(`cannot resolve ${key}: not supported locally`);
    }
    return Object.fromEntries(entries.map(([key, inner]) => [key, walk(inner)]));
  };
  return walk(value);
}

/** A template statement with its references resolved and its lists normalised. */
export function resolveStatement(
  statement: TemplateStatement,
  resources: Readonly<Record<string, LocalResource>>,
): PolicyStatement {
  const resolved = resolveIntrinsics(statement, resources) as TemplateStatement;
  // The local statements keep Action and Resource only: a NotAction or NotResource would be silently dropped,
  // turning a Deny into one on nothing. None is in the stack today; one that appears must be supported first.
  for (const key of ['NotAction', 'NotResource', 'NotPrincipal']) {
    if (key in (statement as unknown as Record<string, unknown>)) {
      throw new Error(
        `a statement of the stack uses ${key}, which the local IAM check does not evaluate yet`,
      );
    }
  }
  const list = (value: unknown): string[] =>
    value === undefined ? [] : (Array.isArray(value) ? value : [value]).map(String);
  return {
    Effect: resolved.Effect === 'Deny' ? 'Deny' : 'Allow',
    Action: list(resolved.Action),
    Resource: list(resolved.Resource),
    ...(resolved.Condition === undefined
      ? {}
      : { Condition: resolved.Condition as PolicyStatement['Condition'] }),
    ...(resolved.Sid === undefined ? {} : { Sid: resolved.Sid }),
  };
}

const PSEUDO_PARAMETERS: Readonly<Record<string, string>> = {
  'AWS::Partition': 'aws',
  'AWS::Region': LOCAL_IAM_REGION,
  'AWS::AccountId': LOCAL_ACCOUNT_ID,
  'AWS::URLSuffix': 'amazonaws.com',
};

function isRef(value: unknown, logicalId: string): boolean {
  return typeof value === 'object' && value !== null && (value as { Ref?: unknown }).Ref === logicalId;
}

/** The local ARN of an SQS queue, as fauxqs forms it. */
export function localQueueArn(name: string, region = LOCAL_IAM_REGION): string {
  return `arn:aws:sqs:${region}:${LOCAL_ACCOUNT_ID}:${name}`;
}

/** The local ARN of a DynamoDB table, as dynalite forms it (region and account of the local world). */
export function localTableArn(name: string): string {
  return `arn:aws:dynamodb:${LOCAL_IAM_REGION}:${LOCAL_ACCOUNT_ID}:table/${name}`;
}

/** The local ARN of an EventBridge bus by name (a full ARN is returned as is). */
export function localEventBusArn(nameOrArn: string): string {
  return nameOrArn.startsWith('arn:')
    ? nameOrArn
    : `arn:aws:events:${LOCAL_IAM_REGION}:${LOCAL_ACCOUNT_ID}:event-bus/${nameOrArn}`;
}
