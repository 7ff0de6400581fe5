import { SendMessageCommand, SQSClient, SQSServiceException } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { firstDisallowedCharacter } from '#local/emulators/strict-sqs-rules.ts';
import { DLQ_ATTRIBUTE, sendToDeadLetterQueue, sqsSafeText } from '#shared/sqs/settle.ts';

// Seeded: a failure reproduces with the same inputs on every machine.
const RUNS = { seed: 20261201, numRuns: 500 };

// Any UTF-16 sequence, lone surrogates and noncharacters included: what a response body can decode to.
const anyText = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)) });

describe('sqsSafeText', () => {
  it('leaves only characters SQS accepts (checked by the strict layer, which shares no code with it)', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        expect(firstDisallowedCharacter(sqsSafeText(text))).toBeUndefined();
      }),
      RUNS,
    );
  });

  it('returns text SQS already accepts unchanged, characters beyond the BMP included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) => {
        fc.pre(firstDisallowedCharacter(text) === undefined);
        expect(sqsSafeText(text)).toBe(text);
      }),
      RUNS,
    );
  });

  it('replaces each refused character with one U+FFFD, keeping the length in code points', () => {
    expect(sqsSafeText('a\u0000b\u001bc\u0007d\ufffe\uffff\ud800e\udfff')).toBe(
      'a\ufffdb\ufffdc\ufffdd\ufffd\ufffd\ufffde\ufffd',
    );
  });
});

describe('sendToDeadLetterQueue when SQS refuses the attributes anyway', () => {
  const sqs = new SQSClient({ region: 'us-east-1' });
  const mock = mockClient(sqs);
  const info = {
    reason: 'client_error' as const,
    jobId: 'job-1',
    lastStatus: 400,
    attempts: 1,
    firstAttemptAt: Date.parse('2026-12-01T12:00:00Z'),
    detail: 'eCourtDate answered 400',
    responseExcerpt: '{"error":"bad"}',
  };
  const refusal = (name: string) =>
    new SQSServiceException({
      name,
      $fault: 'client',
      $metadata: { httpStatusCode: 400 },
      message: 'refused',
    });

  afterEach(() => mock.reset());

  it('sends once more without the free-text attributes, and says which were dropped', async () => {
    mock.on(SendMessageCommand).rejectsOnce(refusal('InvalidParameterValue')).resolves({ MessageId: 'm' });
    const { droppedAttributes } = await sendToDeadLetterQueue(sqs, 'https://dlq', '{"id":"job-1"}', info);
    expect(droppedAttributes).toEqual([DLQ_ATTRIBUTE.responseExcerpt, DLQ_ATTRIBUTE.detail]);
    const calls = mock.commandCalls(SendMessageCommand);
    expect(calls).toHaveLength(2);
    const second = calls[1]?.args[0].input.MessageAttributes ?? {};
    expect(Object.keys(second).sort()).toEqual(
      [
        DLQ_ATTRIBUTE.reason,
        DLQ_ATTRIBUTE.jobId,
        DLQ_ATTRIBUTE.lastStatus,
        DLQ_ATTRIBUTE.attempts,
        DLQ_ATTRIBUTE.firstAttemptAt,
        DLQ_ATTRIBUTE.deadLetteredAt,
      ].sort(),
    );
  });

  it('does not resend after a throttle or an outage: it throws, and the record stays on the send queue', async () => {
    mock.on(SendMessageCommand).rejects(refusal('RequestThrottled'));
    await expect(sendToDeadLetterQueue(sqs, 'https://dlq', '{"id":"job-1"}', info)).rejects.toThrow(
      'refused',
    );
    expect(mock.commandCalls(SendMessageCommand)).toHaveLength(1);
  });
});
