import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type EventSourceMapping, startEventSourceMapping } from '#local/lambda/event-source-mapping.ts';
import { messageGroupOfBody } from '#shared/sqs/message-group.ts';
import { FUNCTION_TIMEOUT_MS, type Harness, startHarness } from '#test/helpers/relay-harness.ts';

// docs/pacing.md, "Fairness": a burst of one agency beside a few jobs of another, through the fair send queue
// (the strict SQS layer's fair receive, docs/test-world.md, "Fair queues"), Lambda's event source mapping and the
// real sender.
describe('one agency burst beside a few jobs of another', () => {
  let h: Harness | undefined;
  let mapping: EventSourceMapping | undefined;
  afterEach(async () => {
    await mapping?.stop();
    await h?.close();
    mapping = undefined;
    h = undefined;
  });

  const job = (agency: string, n: number) =>
    JSON.stringify({
      id: `${agency}-${n}`,
      message: {
        to: `+1555${agency === 'county-a' ? '1' : '2'}${String(n).padStart(6, '0')}`,
        content: 'Reminder',
      },
      agency_reference: agency,
    });

  it('serves the 5 jobs of county-b, sent after 450 of county-a, within the first quarter of the burst', async () => {
    const harness = await startHarness();
    h = harness;
    const bodies = [
      ...Array.from({ length: 450 }, (_, i) => job('county-a', i)),
      ...Array.from({ length: 5 }, (_, i) => job('county-b', i)),
    ];
    for (let start = 0; start < bodies.length; start += 10) {
      await harness.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: harness.sendQueue.url,
          Entries: bodies.slice(start, start + 10).map((body, index) => ({
            Id: String(index),
            MessageBody: body,
            MessageGroupId: messageGroupOfBody(body),
          })),
        }),
      );
    }
    mapping = startEventSourceMapping({
      queue: harness.sendQueue,
      instances: [0, 1, 2].map((i) => ({
        name: `sender-${i}`,
        handler: harness.createInstance(),
        sqs: harness.sqs,
      })),
      functionTimeoutMs: FUNCTION_TIMEOUT_MS,
    });
    const served = () =>
      harness
        .sends()
        .filter((request) => request.path === '/v1/messages/oneoffs')
        .map((request) => request.query.agency_reference);
    await vi.waitFor(() => expect(served().filter((agency) => agency === 'county-b')).toHaveLength(5), {
      timeout: 60_000,
      interval: 50,
    });

    const lastOfCountyB = served().lastIndexOf('county-b') + 1;
    expect(lastOfCountyB).toBeLessThanOrEqual(450 / 4);
    expect(harness.emulator.refusals()).toEqual([]);
  }, 120_000);
});
