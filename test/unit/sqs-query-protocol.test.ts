/**
 * The query protocol's form read as its JSON 1.0 twin (`parseQueryRequest`, docs/sqs-limits.md, "The strict SQS
 * layer"): whatever names a request's parameters carry, they stay the request's own.
 */
import { describe, expect, it } from 'vitest';
import { parseQueryRequest } from '#local/emulators/sqs-query-protocol.ts';

const FORM = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };
const parse = (form: string) => parseQueryRequest(FORM, Buffer.from(form));

describe('parseQueryRequest with parameter names that are Object.prototype members', () => {
  it('a __proto__ path in a parameter name changes no other object of the process', () => {
    parse('Action=SendMessage&QueueUrl=q&MessageBody=hi&__proto__.injectedByQuery=yes');

    expect(({} as Record<string, unknown>).injectedByQuery).toBeUndefined();
  });

  it('a message attribute named __proto__ is kept as sent, for the rules to judge', () => {
    const request = parse(
      'Action=SendMessage&QueueUrl=q&MessageBody=hi&MessageAttribute.1.Name=__proto__' +
        '&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=v',
    );

    expect(Object.entries(request?.body.MessageAttributes ?? {})).toEqual([
      ['__proto__', { DataType: 'String', StringValue: 'v' }],
    ]);
  });

  it('a parameter named constructor is an ordinary parameter, not a list or a map', () => {
    const request = parse('Action=SendMessage&QueueUrl=q&MessageBody=hi&constructor=x');

    expect(request?.body).toEqual({ QueueUrl: 'q', MessageBody: 'hi', constructor: 'x' });
  });
});
