import { describe, expect, it } from 'vitest';
import { resolveIntrinsics, resolveStatement, rolePolicies } from '#local/iam/template-policies.ts';

const QUEUE = {
  ref: 'https://sqs.us-east-1.amazonaws.com/000000000000/q',
  attributes: { Arn: 'arn:aws:sqs:us-east-1:000000000000:q' },
};

describe('resolving the template’s references to the local resources', () => {
  it('resolves Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select/Fn::Split and the pseudo parameters', () => {
    const value = {
      a: { 'Fn::GetAtt': ['Queue1', 'Arn'] },
      b: {
        'Fn::Join': [
          '',
          [
            'arn:',
            { Ref: 'AWS::Partition' },
            ':events:',
            { Ref: 'AWS::Region' },
            ':',
            { Ref: 'AWS::AccountId' },
            ':event-bus/default',
          ],
        ],
      },
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Fn::Sub's own placeholders, not a template string.
      c: { 'Fn::Sub': 'x-${Queue1.Arn}-${AWS::URLSuffix}' },
      d: { 'Fn::Select': [2, { 'Fn::Split': ['/', { Ref: 'Queue1' }] }] },
    };
    expect(resolveIntrinsics(value, { Queue1: QUEUE })).toEqual({
      a: 'arn:aws:sqs:us-east-1:000000000000:q',
      b: 'arn:aws:events:us-east-1:000000000000:event-bus/default',
      c: 'x-arn:aws:sqs:us-east-1:000000000000:q-amazonaws.com',
      d: 'sqs.us-east-1.amazonaws.com',
    });
  });

  it('throws naming the logical id it cannot resolve, never widening it to a wildcard', () => {
    expect(() => resolveIntrinsics({ Ref: 'Missing9' }, {})).toThrow(/Missing9/);
    expect(() => resolveIntrinsics({ 'Fn::GetAtt': ['Queue1', 'Nope'] }, { Queue1: QUEUE })).toThrow(
      /Queue1\.Nope/,
    );
  });

  it("keeps CloudFormation's escape of Fn::Sub ($ then {!Name}) a literal placeholder", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Fn::Sub's own placeholders, not a template string.
    const sub = { 'Fn::Sub': 'arn:${AWS::Partition}:s3:::${!Bucket}' };
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal Fn::Sub leaves.
    expect(resolveIntrinsics(sub, {})).toBe('arn:aws:s3:::${Bucket}');
  });

  it('refuses a statement with NotAction, NotResource or NotPrincipal rather than dropping it into one that grants or denies something else', () => {
    for (const key of ['NotAction', 'NotResource', 'NotPrincipal']) {
      expect(() =>
        resolveStatement({ Effect: 'Deny', Action: 'sqs:SendMessage', [key]: 'x' } as never, {}),
      ).toThrow(new RegExp(key));
    }
  });

  it('collects the statements of every AWS::IAM::Policy attached to a role and of its inline policies', () => {
    const template = {
      Resources: {
        Role1: {
          Type: 'AWS::IAM::Role',
          Properties: {
            Policies: [
              { PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 'a:One', Resource: '*' }] } },
            ],
          },
        },
        Policy1: {
          Type: 'AWS::IAM::Policy',
          Properties: {
            Roles: [{ Ref: 'Role1' }],
            PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 'a:Two', Resource: '*' }] },
          },
        },
        Other: {
          Type: 'AWS::IAM::Policy',
          Properties: {
            Roles: [{ Ref: 'Role2' }],
            PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 'a:Three', Resource: '*' }] },
          },
        },
      },
    };
    expect(rolePolicies(template, 'Role1').statements.map((s) => s.Action)).toEqual(['a:One', 'a:Two']);
  });
});
