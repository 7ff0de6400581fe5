import type { CreateThenAction, FaultAction, FaultMatch, FaultRequestView, FaultRule } from './types.ts';

export interface FaultScript {
  add(rule: FaultRule): void;
  clear(): void;
  /** The first rule matching `req`, with one of its `times` used up (the rule is dropped at zero). */
  take(req: FaultRequestView): FaultRule | undefined;
}

/** An ordered list of scripted faults; first match wins. */
export function createFaultScript(): FaultScript {
  const rules: { rule: FaultRule; left: number }[] = [];
  return {
    add(rule) {
      const times = rule.times ?? Number.POSITIVE_INFINITY;
      if (!(times >= 1) || (Number.isFinite(times) && !Number.isInteger(times))) {
        throw new RangeError(`FaultRule.times must be a positive integer, got ${String(rule.times)}`);
      }
      if (rule.delayMs !== undefined && !(rule.delayMs >= 0)) {
        throw new RangeError(`FaultRule.delayMs must be >= 0, got ${String(rule.delayMs)}`);
      }
      rules.push({ rule, left: times });
    },
    clear() {
      rules.length = 0;
    },
    take(req) {
      const index = rules.findIndex(({ rule }) => matches(rule.match, req));
      const entry = rules[index];
      if (entry === undefined) return undefined;
      entry.left -= 1;
      if (entry.left <= 0) rules.splice(index, 1);
      return entry.rule;
    },
  };
}

/** The label recorded as `faultApplied`: the rule's name, else what it did. */
export function describeRule(rule: FaultRule): string {
  if (rule.name !== undefined) return rule.name;
  const delay = rule.delayMs ? ` after ${rule.delayMs} ms` : '';
  return `${describeAction(rule.action)}${delay}`;
}

function describeAction(action: FaultAction): string {
  switch (action.kind) {
    case 'respond':
      return `respond ${action.status}`;
    case 'create-then':
      return `create-then ${describeAction(action.then)}`;
    default:
      return action.kind;
  }
}

function matches(match: FaultRule['match'], req: FaultRequestView): boolean {
  if (match === undefined) return true;
  if (typeof match === 'function') return match(req);
  const body = isObject(req.body) ? req.body : {};
  const checks: [keyof FaultMatch, () => boolean][] = [
    ['path', () => req.path === match.path],
    ['method', () => req.method.toUpperCase() === match.method?.toUpperCase()],
    ['to', () => body.to === match.to],
    [
      'contentIncludes',
      () => typeof body.content === 'string' && body.content.includes(match.contentIncludes ?? ''),
    ],
    ['clientId', () => req.clientId === match.clientId],
    ['agencyReference', () => req.query.agency_reference === match.agencyReference],
  ];
  return checks.every(([field, check]) => match[field] === undefined || check());
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Builds a `create-then` action. Prefer it to an object literal: Biome's `noThenProperty` flags any literal
 * with a `then` key.
 *
 * @example
 * sim.script({ times: 1, action: createThen({ kind: 'respond', status: 504 }) });
 */
export function createThen(then: CreateThenAction['then']): CreateThenAction {
  return { kind: 'create-then', then };
}
