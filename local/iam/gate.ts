import { runSimulation } from '@cloud-copilot/iam-simulate';
import { LOCAL_ACCOUNT_ID, type PolicyStatement } from '#local/iam/template-policies.ts';

/** A function role the gate restricts: its access key ids and its resolved identity policy. */
export interface GatedRole {
  /** The role's name in the messages (the template's logical id), e.g. `SenderRole0DF9E891`. */
  readonly roleName: string;
  /** The session in the principal's ARN, as Lambda names it after the function. */
  readonly sessionName: string;
  /** Every access key id that signs as this role. */
  readonly accessKeyIds: readonly string[];
  readonly statements: readonly PolicyStatement[];
}

/** One request to authorize. */
export interface AuthorizeRequest {
  /** From the SigV4 `Authorization` header (`Credential=<AccessKeyId>/...`); unsigned requests pass. */
  readonly accessKeyId: string | undefined;
  /** The IAM action, e.g. `sqs:SendMessage`. */
  readonly action: string;
  /** The resource's ARN. */
  readonly resource: string;
  /** Request context keys (e.g. `kms:ViaService`). */
  readonly context?: Readonly<Record<string, string | string[]>>;
}

/** One call of a gated role, with the decision. */
export interface CheckedCall {
  readonly roleName: string;
  readonly action: string;
  readonly resource: string;
  readonly allowed: boolean;
}

export type IamDecision =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      /** AWS's message: `User: <principal> is not authorized to perform: <action> on resource: <arn> because ...`. */
      readonly message: string;
      readonly call: CheckedCall;
    };

export interface IamGate {
  /**
   * Whether the caller may make the request. Access keys the gate does not know (test code, the operator CLI,
   * the emulators' own clients) are not restricted; a registered function role is, by its identity policy
   * only (docs/test-world.md: what the check covers and what it does not).
   */
  authorize(request: AuthorizeRequest): Promise<IamDecision>;
  /** Every call of a gated role so far, oldest first, allowed or not. */
  calls(): readonly CheckedCall[];
  /** The denied calls so far, except those a test took with `takeDenials`. */
  denials(): readonly CheckedCall[];
  /** Returns the denials so far and forgets them: a test that expects a denial takes it and checks it. */
  takeDenials(): readonly CheckedCall[];
}

/** The principal ARN of a Lambda function's role session, as AWS names it in an access-denied message. */
export function assumedRoleArn(roleName: string, sessionName: string): string {
  return `arn:aws:sts::${LOCAL_ACCOUNT_ID}:assumed-role/${roleName}/${sessionName}`;
}

/**
 * A gate over `roles`, deciding with `@cloud-copilot/iam-simulate` (identity policies only). Decisions are
 * memoised per (role, action, resource, context). Throws (from `authorize`) when the simulator refuses the input
 * itself, e.g. an action IAM does not know: that is a bug of the caller, never a denial.
 */
export function createIamGate(roles: readonly GatedRole[]): IamGate {
  const byKey = new Map<string, GatedRole>();
  for (const role of roles) for (const key of role.accessKeyIds) byKey.set(key, role);
  const calls: CheckedCall[] = [];
  let denied: CheckedCall[] = [];
  const memo = new Map<string, Promise<boolean>>();
  return {
    async authorize(request) {
      const role = request.accessKeyId === undefined ? undefined : byKey.get(request.accessKeyId);
      if (!role) return { allowed: true };
      const memoKey = JSON.stringify([
        role.roleName,
        request.action,
        request.resource,
        request.context ?? {},
      ]);
      let decision = memo.get(memoKey);
      if (!decision) {
        decision = isAllowed(role.statements, request);
        memo.set(memoKey, decision);
      }
      const allowed = await decision;
      const call = { roleName: role.roleName, action: request.action, resource: request.resource, allowed };
      calls.push(call);
      if (allowed) return { allowed: true };
      denied.push(call);
      return {
        allowed: false,
        call,
        message: accessDeniedMessage(assumedRoleArn(role.roleName, role.sessionName), request),
      };
    },
    calls: () => [...calls],
    denials: () => [...denied],
    takeDenials() {
      const taken = denied;
      denied = [];
      return taken;
    },
  };
}

/** Whether `statements` (one identity policy) allow the request, as IAM evaluates them. */
export async function isAllowed(
  statements: readonly PolicyStatement[],
  request: Pick<AuthorizeRequest, 'action' | 'resource' | 'context'>,
): Promise<boolean> {
  const result = await runSimulation(
    {
      request: {
        principal: assumedRoleArn('LocalRole', 'local'),
        action: request.action,
        resource: { resource: request.resource, accountId: LOCAL_ACCOUNT_ID },
        contextVariables: { ...request.context },
      },
      identityPolicies: [{ name: 'role', policy: { Version: '2012-10-17', Statement: statements } }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (result.resultType === 'error') {
    throw new Error(
      `the IAM simulator refused ${request.action} on ${request.resource}: ${result.errors.message}`,
    );
  }
  return result.overallResult === 'Allowed';
}

function accessDeniedMessage(principal: string, request: AuthorizeRequest): string {
  return (
    `User: ${principal} is not authorized to perform: ${request.action} on resource: ${request.resource} ` +
    `because no identity-based policy allows the ${request.action} action`
  );
}

/**
 * The access key id of a SigV4-signed request: `Credential=<AccessKeyId>/<date>/<region>/<service>/aws4_request`
 * in the `Authorization` header; undefined for an unsigned request.
 */
export function accessKeyIdOf(headers: {
  readonly authorization?: string | string[] | undefined;
}): string | undefined {
  const header = Array.isArray(headers.authorization) ? headers.authorization[0] : headers.authorization;
  return header?.match(/Credential=([^/,\s]+)\//)?.[1];
}

/** One line per distinct denied (role, action, resource), for an error that fails a test. */
export function describeDenials(denials: readonly CheckedCall[]): string {
  const lines = [...new Set(denials.map((d) => `${d.roleName}: ${d.action} on ${d.resource}`))];
  return `the stack's IAM denied ${denials.length} call(s) of a function role:\n${lines.join('\n')}`;
}
