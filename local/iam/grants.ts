import type { PolicyStatement } from '#local/iam/template-policies.ts';

/** One grant: one action on one resource pattern, as one Allow statement of a policy lists them. */
export interface Grant {
  readonly action: string;
  readonly resource: string;
}

/** Every (action, resource) pair the Allow statements of `statements` grant, in order, without repeats. */
export function grantsOf(statements: readonly PolicyStatement[]): Grant[] {
  const seen = new Map<string, Grant>();
  for (const statement of statements) {
    if (statement.Effect !== 'Allow') continue;
    for (const action of statement.Action) {
      for (const resource of statement.Resource) seen.set(`${action} ${resource}`, { action, resource });
    }
  }
  return [...seen.values()];
}

/**
 * `statements` with one grant taken out: `grant.action` no longer on `grant.resource`, everything else as it
 * was (a statement that granted it is split, keeping its other actions and resources and its condition).
 */
export function withoutGrant(statements: readonly PolicyStatement[], grant: Grant): PolicyStatement[] {
  return statements.flatMap((statement) => {
    if (
      statement.Effect !== 'Allow' ||
      !statement.Action.includes(grant.action) ||
      !statement.Resource.includes(grant.resource)
    ) {
      return [statement];
    }
    const otherActions = statement.Action.filter((action) => action !== grant.action);
    const otherResources = statement.Resource.filter((resource) => resource !== grant.resource);
    const kept: PolicyStatement[] = [];
    if (otherActions.length > 0) kept.push({ ...statement, Action: otherActions });
    if (otherResources.length > 0)
      kept.push({ ...statement, Action: [grant.action], Resource: otherResources });
    return kept;
  });
}
