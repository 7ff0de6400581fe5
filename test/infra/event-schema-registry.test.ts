/**
 * The stack registers the event contract (docs/contract.md, "The event contract"): a schema registry per stage
 * holding every file of `schemas/` as it is, and grants nobody anything on it.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { STAGES } from '#infra/config.ts';
import { EVENT_SCHEMA_FILES, readSchemaText } from '#infra/event-schemas.ts';
import { PRODUCTION, synthRelay } from '#test/helpers/infra.ts';

describe('the event schema registry', () => {
  it('is one registry per stage, named after the stage’s stack', () => {
    for (const stage of STAGES) {
      const { template, stack } = synthRelay(stage === 'production' ? PRODUCTION : { stage });
      template.resourceCountIs('AWS::EventSchemas::Registry', 1);
      template.hasResourceProperties('AWS::EventSchemas::Registry', { RegistryName: stack.stackName });
    }
  });

  it('holds every file of schemas/ as written, as JSONSchemaDraft4, in that registry', () => {
    const { template } = synthRelay({ stage: 'staging' });
    const [registryId] = Object.keys(template.findResources('AWS::EventSchemas::Registry'));
    template.resourceCountIs('AWS::EventSchemas::Schema', EVENT_SCHEMA_FILES.length);
    for (const { file, schemaName, detailType } of EVENT_SCHEMA_FILES) {
      template.hasResourceProperties('AWS::EventSchemas::Schema', {
        SchemaName: schemaName,
        Type: 'JSONSchemaDraft4',
        Content: readSchemaText(file),
        RegistryName: { 'Fn::GetAtt': [registryId, 'RegistryName'] },
        Description: Match.stringLikeRegexp(`^${detailType}`),
      });
    }
  });

  it('is granted to no role: nothing reads it at run time', () => {
    const { template } = synthRelay({ ...PRODUCTION, webhooks: 'true' });
    const policies = JSON.stringify(template.findResources('AWS::IAM::Policy'));
    const roles = JSON.stringify(template.findResources('AWS::IAM::Role'));
    expect(policies).not.toMatch(/schemas:/);
    expect(roles).not.toMatch(/schemas:/);
  });
});
