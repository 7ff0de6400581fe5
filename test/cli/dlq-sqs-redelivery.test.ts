import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DLQ_ATTRIBUTE } from '#shared/sqs/settle.ts';
import { relay } from '#test/cli/run.ts';

const DLQ_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/dlq';
const SEND_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/send';
const TARGET = ['--dlq-url', DLQ_URL, '--send-queue-url', SEND_URL, '--region', 'us-east-1'];

/** A dead letter as SQS returns it, received with `handle`; its job id is the message id. */
function deadLetter(id: string, reason: string, handle: string): Message {
  return {
    MessageId: id,
    ReceiptHandle: handle,
    Body: JSON.stringify({ id, message: { to: '+15550100403', content: 'Reminder' } }),
    Attributes: { SentTimestamp: '1000' },
    MessageAttributes: {
      [DLQ_ATTRIBUTE.reason]: { DataType: 'String', StringValue: reason },
      [DLQ_ATTRIBUTE.deadLetteredAt]: { DataType: 'String', StringValue: '2026-12-01T12:05:00.000Z' },
    },
  };
}

describe('dlq redrive and dlq delete when SQS delivers a message again (SQS client mocked)', () => {
  // Created per test: aws-sdk-client-mock patches every client of the class until restored.
  let sqs: AwsClientStub<SQSClient>;

  beforeEach(() => {
    sqs = mockClient(SQSClient);
    sqs.on(SendMessageCommand).resolves({ MessageId: 'sent' });
    sqs.on(DeleteMessageCommand).resolves({});
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [], Failed: [] });
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: {} });
  });

  afterEach(() => {
    sqs.restore();
  });

  it('a message sent and received again (its delete did not take) is deleted with its new handle, never sent twice', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({
        Messages: [deadLetter('m-1', 'forbidden', 'h-1'), deadLetter('m-2', 'expired', 'h-2')],
      })
      // Both come round again: the pass has been through the queue.
      .resolvesOnce({
        Messages: [deadLetter('m-1', 'forbidden', 'h-1b'), deadLetter('m-2', 'expired', 'h-2b')],
      })
      .resolves({ Messages: [] });

    const run = await relay('dlq', 'redrive', '--reason', 'forbidden', ...TARGET);

    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(1);
    expect(sqs.commandCalls(DeleteMessageCommand).map((c) => c.args[0].input.ReceiptHandle)).toEqual([
      'h-1',
      'h-1b',
    ]);
    expect(sqs.commandCalls(ReceiveMessageCommand)).toHaveLength(2);
    // The message left is shown again with the handle SQS gave it last.
    expect(
      sqs.commandCalls(ChangeMessageVisibilityBatchCommand).flatMap((c) => c.args[0].input.Entries ?? []),
    ).toEqual([{ Id: '0', ReceiptHandle: 'h-2b', VisibilityTimeout: 0 }]);
    expect(run.stdout).toContain('Sent 1 job(s) with reason forbidden back to the send queue');
    expect(run.stdout).toContain('1 other dead-lettered job(s) left where they were');
    expect(run.stdout).toContain(
      'Stopped before the end of the dead-letter queue: the jobs it left were shown again (their hide ran out), ' +
        'so it had been round the queue once. Run the same command again to send the rest',
    );
  });

  it('a receive that also brings new messages goes on: the pass ends only on a receive of messages it already had', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [deadLetter('m-1', 'expired', 'h-1')] })
      .resolvesOnce({
        Messages: [deadLetter('m-1', 'expired', 'h-1b'), deadLetter('m-2', 'forbidden', 'h-2')],
      })
      .resolves({ Messages: [] });

    const run = await relay('dlq', 'redrive', '--reason', 'forbidden', ...TARGET);

    expect(sqs.commandCalls(ReceiveMessageCommand)).toHaveLength(3);
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(1);
    expect(run.stdout).toContain('Sent 1 job(s) with reason forbidden');
    expect(run.stdout).not.toContain('Stopped before the end');
  });

  it('dlq delete: a message deleted and received again (its delete did not take) is deleted again, printed once', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({
        Messages: [deadLetter('m-1', 'unknown_outcome', 'h-1'), deadLetter('m-2', 'unknown_outcome', 'h-2')],
      })
      .resolvesOnce({ Messages: [deadLetter('m-1', 'unknown_outcome', 'h-1b')] })
      .resolves({ Messages: [] });

    const run = await relay('dlq', 'delete', '--job-id', 'm-1', ...TARGET);

    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
    expect(sqs.commandCalls(DeleteMessageCommand).map((c) => c.args[0].input.ReceiptHandle)).toEqual([
      'h-1',
      'h-1b',
    ]);
    expect(run.stdout.split('\n').filter((line) => line.startsWith('m-1'))).toEqual([
      'm-1     unknown_outcome  2026-12-01T12:05:00.000Z',
    ]);
    expect(run.stdout).toContain('Deleted 1 dead letter(s)');
    expect(run.stdout).toContain('1 other dead-lettered job(s) left where they were.');
  });
});
