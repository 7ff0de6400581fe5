import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseSenderEvent, type SenderSink, SinkLogger, SinkMetrics } from '#local/pipeline/observability.ts';

function sink() {
  const lines: string[] = [];
  const logs: Record<string, unknown>[] = [];
  const metrics: [string, number][] = [];
  const value: SenderSink = {
    write: (line) => lines.push(line),
    log: (attributes) => logs.push({ ...attributes }),
    metric: (name, n) => metrics.push([name, n]),
  };
  return { value, lines, logs, metrics };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("capturing the sender's logs and metrics in a local run", () => {
  it('reads the per-attempt log line as a typed event', () => {
    expect(
      parseSenderEvent({
        message: 'job dead-lettered',
        message_id: 'm-1',
        job_id: 'j-1',
        attempt: 2,
        status: 500,
        outcome: 'dead_letter',
        reason: 'retries_exhausted',
      }),
    ).toEqual({
      kind: 'dead_lettered',
      alreadySettled: false,
      messageId: 'm-1',
      jobId: 'j-1',
      attempt: 2,
      status: 500,
      outcome: 'dead_letter',
      reason: 'retries_exhausted',
      cause: undefined,
      uuid: undefined,
      retryInSeconds: undefined,
    });
  });

  it('reads a status kept as text (from the ledger) as a number, and knows an already settled job', () => {
    const event = parseSenderEvent({
      message: 'job already settled; acknowledged without sending',
      message_id: 'm-2',
      outcome: 'delivered',
      status: '201',
    });

    expect(event).toMatchObject({ kind: 'settled', alreadySettled: true, attempt: undefined, status: 201 });
  });

  it('ignores any other line', () => {
    expect(parseSenderEvent({ message: 'could not set the retry delay', job_id: 'j' })).toBeUndefined();
    expect(parseSenderEvent({ message: 'job settled' })).toBeUndefined();
  });

  it('the logger writes JSON lines to the sink, never to the console', () => {
    const console = vi.spyOn(globalThis.console, 'info');
    const stdout = vi.spyOn(process.stdout, 'write');
    const s = sink();

    new SinkLogger(s.value).info('job settled', {
      job_id: 'j-1',
      message_id: 'm-1',
      attempt: 1,
      outcome: 'delivered',
    });

    expect(console).not.toHaveBeenCalled();
    expect(stdout).not.toHaveBeenCalled();
    expect(JSON.parse(s.lines[0] ?? '{}')).toMatchObject({
      level: 'INFO',
      message: 'job settled',
      job_id: 'j-1',
    });
    expect(s.logs[0]).toMatchObject({ message: 'job settled', attempt: 1 });
  });

  it('metrics are counted as they are added and published as EMF into the sink, single metrics included', () => {
    const stdout = vi.spyOn(process.stdout, 'write');
    const s = sink();
    const metrics = new SinkMetrics(s.value);

    metrics.singleMetric().addMetric('ColdStart', MetricUnit.Count, 1);
    metrics.addMetric('Responses403', MetricUnit.Count, 1);
    metrics.addMetric('Responses403', MetricUnit.Count, 1);
    metrics.publishStoredMetrics();

    expect(stdout).not.toHaveBeenCalled();
    expect(s.metrics).toEqual([
      ['ColdStart', 1],
      ['Responses403', 1],
      ['Responses403', 1],
    ]);
    const blobs = s.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(blobs.map((blob) => '_aws' in blob)).toEqual([true, true]);
    expect(blobs[1]?.Responses403).toEqual([1, 1]);
  });
});
