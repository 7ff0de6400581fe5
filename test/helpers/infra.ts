import { readFileSync } from 'node:fs';
import { App, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { REPO_ROOT } from '#infra/constructs/relay-function.ts';
import { buildRelayApp } from '#infra/relay-app.ts';
import type { RelayStack } from '#infra/stacks/relay-stack.ts';

/** The context cdk.json gives the CLI (default stage, feature flags), so tests synthesise what `cdk synth` does. */
export const CDK_JSON_CONTEXT: Readonly<Record<string, unknown>> = JSON.parse(
  readFileSync(`${REPO_ROOT}cdk.json`, 'utf8'),
).context;

/**
 * The least context production synthesises with: the stage and one on-call destination, which production
 * requires (docs/deploy.md, "On-call").
 */
export const PRODUCTION = { stage: 'production', onCallEmail: 'oncall@court.example' } as const;

export interface SynthOptions {
  /**
   * Bundle the sender with esbuild (a few seconds). Off by default: the stack's properties do not depend on
   * the bundle, and a skipped bundle keeps a fresh synth per test cheap.
   */
  readonly bundle?: boolean;
}

export interface SynthesizedRelay {
  readonly app: App;
  readonly stack: RelayStack;
  readonly template: Template;
}

/**
 * Builds a fresh relay app with the given CDK context (as `-c key=value` would) and synthesises it, cdk-nag
 * included: a finding that is not acknowledged throws here.
 *
 * @example
 * const { template } = synthRelay({ stage: 'production', ecourtdateRegion: 'us-east' });
 */
export function synthRelay(
  context: Record<string, unknown> = {},
  options: SynthOptions = {},
): SynthesizedRelay {
  const app = new App({
    context: {
      ...CDK_JSON_CONTEXT,
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
      ...context,
    },
  });
  // CDK bundles as it builds the stack's assets.
  const stack = options.bundle ? withoutBundlingProgress(() => buildRelayApp(app)) : buildRelayApp(app);
  return { app, stack, template: Template.fromStack(stack) };
}

/**
 * Runs `synth` without CDK's `Bundling asset <path>...` progress lines on stderr, which CDK writes for every
 * bundled asset whatever the log level (the test output stays quiet). Everything else written to stderr, a
 * failed bundle's esbuild errors included, passes through. Returns what `synth` returns.
 */
export function withoutBundlingProgress<T>(synth: () => T): T {
  const write = process.stderr.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) =>
    typeof chunk === 'string' && /^Bundling asset .*\.\.\.\n$/.test(chunk)
      ? true
      : Reflect.apply(write, process.stderr, [chunk, ...rest])) as typeof process.stderr.write;
  try {
    return synth();
  } finally {
    process.stderr.write = write;
  }
}

/** The one resource of a type whose properties match, with its logical id. Fails unless exactly one matches. */
export function onlyResource(
  template: Template,
  type: string,
  props: Record<string, unknown> = {},
): { id: string; properties: Record<string, unknown> } {
  const found = template.findResources(type, { Properties: props });
  const ids = Object.keys(found);
  if (ids.length !== 1)
    throw new Error(`expected one ${type} matching, found ${ids.length}: ${ids.join(', ')}`);
  const [id] = ids as [string];
  return { id, properties: (found[id] as { Properties: Record<string, unknown> }).Properties };
}

/** Logical id of a construct's CloudFormation resource, e.g. `logicalId(stack, stack.sendQueues.queue)`. */
export function logicalId(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  const child = construct.node.defaultChild;
  if (!child) throw new Error('construct has no CloudFormation resource');
  return stack.getLogicalId(child as Parameters<Stack['getLogicalId']>[0]);
}

/**
 * A CloudWatch dashboard body (a Fn::Join of literal JSON and references) parsed to JSON, each reference
 * replaced by a `{ref}` placeholder string.
 */
export function dashboardBody(template: Template): { widgets: Record<string, unknown>[] } {
  const { properties } = onlyResource(template, 'AWS::CloudWatch::Dashboard');
  const body = properties.DashboardBody as { 'Fn::Join': [string, unknown[]] } | string;
  const text =
    typeof body === 'string'
      ? body
      : body['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : '{ref}')).join('');
  return JSON.parse(text);
}

/** One IAM policy statement as it appears in the template. */
export interface StatementJson {
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Sid?: string;
  readonly Condition?: unknown;
}

/** `{ 'Fn::GetAtt': [id, attribute] }`, as the template writes a resource attribute. */
export const getAtt = (id: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [id, attribute] });
/** `{ Ref: id }`, as the template writes a resource's name, URL or ARN. */
export const ref = (id: string) => ({ Ref: id });

/** The sender function's environment variables. */
export function senderEnvironment(template: Template): Record<string, unknown> {
  // The sender is the function the send queue triggers (a stage with webhooks on has a receiver too).
  const { properties } = onlyResource(template, 'AWS::Lambda::Function', {
    Description: Match.stringLikeRegexp('relay sender'),
  });
  return (properties.Environment as { Variables: Record<string, unknown> }).Variables;
}

/** The statements of the sender role's one policy (a stage with webhooks on has the receiver's too). */
export function senderStatements(template: Template): StatementJson[] {
  const { properties } = onlyResource(template, 'AWS::IAM::Policy', {
    PolicyName: Match.stringLikeRegexp('^SenderRole'),
  });
  return (properties.PolicyDocument as { Statement: StatementJson[] }).Statement;
}
