/**
 * Staging and production deployed into one account and region (docs/deploy.md): both stages synthesised side
 * by side take only their own send jobs and share no physical name.
 */
import { describe, expect, it } from 'vitest';
import { defaultEventSource, STAGES } from '#infra/config.ts';
import { PRODUCTION, synthRelay } from '#test/helpers/infra.ts';

/** Properties CloudFormation uses as physical names. */
const NAME_PROPERTIES = [
  'Name',
  'AlarmName',
  'DashboardName',
  'QueueName',
  'TableName',
  'FunctionName',
  'TopicName',
  'LogGroupName',
  'RuleName',
  'RegistryName',
];

function synthBoth(context: Record<string, Record<string, unknown>> = {}) {
  return STAGES.map((stage) =>
    synthRelay({ ...(stage === 'production' ? PRODUCTION : { stage }), webhooks: 'true', ...context[stage] }),
  );
}

/** Every string physical name a template sets, with the stack's own name. */
function physicalNames(synth: ReturnType<typeof synthRelay>): string[] {
  const resources = synth.template.toJSON().Resources as Record<
    string,
    { Properties?: Record<string, unknown> }
  >;
  const names = Object.values(resources).flatMap((resource) =>
    NAME_PROPERTIES.map((key) => resource.Properties?.[key]).filter(
      (v): v is string => typeof v === 'string',
    ),
  );
  return [synth.stack.stackName, ...names];
}

/** The event patterns of the stack's rules on the default bus (or the named one). */
function rulePatterns(synth: ReturnType<typeof synthRelay>) {
  const rules = synth.template.findResources('AWS::Events::Rule');
  return Object.values(rules).map((rule) => {
    const properties = (rule as { Properties: Record<string, unknown> }).Properties;
    return {
      bus: properties.EventBusName ?? 'default',
      pattern: properties.EventPattern as { source: string[]; 'detail-type': string[] },
    };
  });
}

/**
 * Every metric the stack's alarms watch, as an identity: namespace, name and dimensions. A dimension naming one
 * of the stack's own resources (a Ref or GetAtt) is that stack's alone, so it is qualified by the stack's name.
 */
function alarmMetricIdentities(synth: ReturnType<typeof synthRelay>): string[] {
  const alarms = synth.template.findResources('AWS::CloudWatch::Alarm');
  const stack = synth.stack.stackName;
  const identity = (metric: { Namespace?: unknown; MetricName?: unknown; Dimensions?: unknown }) => {
    const dimensions = ((metric.Dimensions ?? []) as { Name: string; Value: unknown }[]).map(
      ({ Name, Value }) =>
        `${Name}=${typeof Value === 'string' ? Value : `${stack}:${JSON.stringify(Value)}`}`,
    );
    return `${String(metric.Namespace)}/${String(metric.MetricName)}{${dimensions.sort().join(',')}}`;
  };
  return Object.values(alarms).flatMap((alarm) => {
    const properties = (alarm as { Properties: Record<string, unknown> }).Properties;
    if (properties.MetricName !== undefined) return [identity(properties)];
    return ((properties.Metrics ?? []) as { MetricStat?: { Metric: Record<string, unknown> } }[])
      .filter((metric) => metric.MetricStat !== undefined)
      .map((metric) => identity(metric.MetricStat?.Metric ?? {}));
  });
}

describe('two stages in one account and region', () => {
  it('each stage’s alarms watch only that stage’s metrics: the relay’s own carry the stage as a dimension', () => {
    const [staging, production] = synthBoth().map(alarmMetricIdentities) as [string[], string[]];
    expect(staging.some((id) => id.includes('stage=staging'))).toBe(true);
    expect(production.filter((id) => staging.includes(id))).toEqual([]);
  });

  it('each stage’s rule takes only its own source, on the bus both share', () => {
    const [staging, production] = synthBoth().map(rulePatterns) as [
      ReturnType<typeof rulePatterns>,
      ReturnType<typeof rulePatterns>,
    ];
    expect(staging.map((r) => r.pattern.source)).toEqual([[defaultEventSource('staging')]]);
    expect(production.map((r) => r.pattern.source)).toEqual([[defaultEventSource('production')]]);
    const stagingSources = new Set(staging.flatMap((r) => r.pattern.source));
    expect(production.flatMap((r) => r.pattern.source).filter((s) => stagingSources.has(s))).toEqual([]);
  });

  it('sources a court sets for each stage stay apart: the synth refuses one that does not name its stage', () => {
    const [staging, production] = synthBoth({
      staging: { eventSources: 'cms.court-a.staging' },
      production: { eventSources: 'cms.court-a.production' },
    }).map(rulePatterns);
    expect(staging?.[0]?.pattern.source).toEqual(['cms.court-a.staging']);
    expect(production?.[0]?.pattern.source).toEqual(['cms.court-a.production']);
    expect(() => synthRelay({ stage: 'production', eventSources: 'cms.court-a.staging' })).toThrow(
      /does not name the stage/,
    );
  });

  it('share no physical name: stacks, secrets, alarms, dashboards', () => {
    const [staging, production] = synthBoth().map(physicalNames) as [string[], string[]];
    expect(staging.length).toBeGreaterThan(10);
    expect(production.filter((name) => staging.includes(name))).toEqual([]);
  });
});
