import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MESSAGE_GROUP,
  messageGroupOf,
  messageGroupOfBody,
  recordMessageGroup,
} from '#shared/sqs/message-group.ts';

describe('the message group of a job', () => {
  it('is the agency_reference itself when SQS takes it as a group', () => {
    expect(messageGroupOf('county-a')).toBe('county-a');
  });

  it('is default without an agency_reference, or with a blank one', () => {
    expect(messageGroupOf(undefined)).toBe(DEFAULT_MESSAGE_GROUP);
    expect(messageGroupOf('  ')).toBe('default');
  });

  it('percent-encodes a reference with characters SQS refuses in a group, one group per reference', () => {
    expect(messageGroupOf('Cook County')).toBe('Cook%20County');
    expect(messageGroupOf('Cook County')).not.toBe(messageGroupOf('Cook_County'));
  });

  it('is a sha256 name when the encoding is longer than 128 characters, or impossible', () => {
    expect(messageGroupOf('é'.repeat(100))).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(messageGroupOf('\uD800')).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("of a body: its agency_reference's group, default for a body that is no job", () => {
    expect(messageGroupOfBody('{"id":"a","agency_reference":"county-b"}')).toBe('county-b');
    expect(messageGroupOfBody('{"id":"a"}')).toBe('default');
    expect(messageGroupOfBody('not json')).toBe('default');
    expect(messageGroupOfBody('{"agency_reference":7}')).toBe('default');
  });

  it('of a record: the MessageGroupId it was received with, none when absent', () => {
    expect(recordMessageGroup({ attributes: { MessageGroupId: 'county-a' } as never })).toBe('county-a');
    expect(recordMessageGroup({ attributes: {} as never })).toBeUndefined();
  });
});
