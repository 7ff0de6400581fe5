import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type SenderSink, SinkLogger, SinkMetrics, senderEventOf } from '#local/pipeline/observability.ts';
import type { Settlement } from '#shared/sender/runtime.ts';

function sink() {
  const lines: string[] = [];
  const metrics: [string, number][] = [];
  const value: SenderSink = {
    write: (line) => lines.push(line),
    metric: (name, n) => metrics.push([name, n]),
  };
  return { value, lines, metrics };
}

/** A record's settlement as the sender's batch adapter hands it over; override any field. */
function settlement(overrides: Partial<Settlement> = {}): Settlement {
  return {
    messageId: 'm-1',
    jobId: 'j-1',
    applied: 'acknowledged',
    batchItemFailure: false,
    outcome: { type: 'delivered', uuid: 'u-1' },
    alreadySettled: false,
    attempts: 1,
    lastStatus: 201,
    detail: undefined,
    responseExcerpt: undefined,
    requeuedAs: undefined,
    retryInSeconds: undefined,
    ...overrides,
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("capturing the sender's logs and metrics in a local run", () => {
  it("reads the sender's settlement of a record as a typed event", () => {
    expect(
      senderEventOf(
        settlement({
          applied: 'dead_lettered',
          attempts: 2,
          lastStatus: 500,
          outcome: { type: 'dead_letter', reason: 'unknown_outcome', endedBy: 'retries_exhausted' },
          detail: "an attempt's outcome is unknown (it may have created the message)",
          responseExcerpt: '{"message":"Server Error"}',
        }),
      ),
    ).toEqual({
      kind: 'dead_lettered',
      alreadySettled: false,
      messageId: 'm-1',
      jobId: 'j-1',
      attempt: 2,
      status: 500,
      detail: "an attempt's outcome is unknown (it may have created the message)",
      responseExcerpt: '{"message":"Server Error"}',
      requeuedAs: undefined,
      outcome: 'dead_letter',
      reason: 'unknown_outcome',
      cause: undefined,
      uuid: undefined,
      retryInSeconds: undefined,
    });
  });

  it('reads a status kept as text (from the ledger) as a number, and knows an already settled job', () => {
    const event = senderEventOf(
      settlement({ messageId: 'm-2', alreadySettled: true, attempts: 0, lastStatus: '201' }),
    );

    expect(event).toMatchObject({
      kind: 'settled',
      alreadySettled: true,
      attempt: 0,
      status: 201,
      uuid: 'u-1',
    });
  });

  it.each([
    ['timeout', 'timeout'],
    ['lost', 'lost'],
    ['none', undefined],
    [undefined, undefined],
  ])('keeps a status %s that is not an HTTP status as %s', (lastStatus, status) => {
    expect(senderEventOf(settlement({ lastStatus })).status).toBe(status);
  });

  it.each<[Settlement['applied'], string]>([
    ['acknowledged', 'settled'],
    ['dead_lettered', 'dead_lettered'],
    ['hidden', 'retried'],
    ['left', 'retried'],
    ['requeued', 'requeued'],
  ])('a record %s is a %s event', (applied, kind) => {
    expect(senderEventOf(settlement({ applied })).kind).toBe(kind);
  });

  it("a retry carries its cause, its delay and, re-queued, the fresh copy's message id", () => {
    const event = senderEventOf(
      settlement({
        applied: 'requeued',
        outcome: { type: 'retry', delaySeconds: 120, cause: 'rate_limited' },
        lastStatus: 429,
        requeuedAs: 'm-fresh',
        retryInSeconds: 120,
      }),
    );

    expect(event).toMatchObject({
      kind: 'requeued',
      outcome: 'retry',
      cause: 'rate_limited',
      reason: undefined,
      uuid: undefined,
      requeuedAs: 'm-fresh',
      retryInSeconds: 120,
      status: 429,
    });
  });

  it('a job without an id (an invalid one) keeps that unknown', () => {
    const event = senderEventOf(
      settlement({
        jobId: undefined,
        applied: 'dead_lettered',
        outcome: { type: 'dead_letter', reason: 'invalid_job' },
      }),
    );

    expect(event).toMatchObject({ jobId: undefined, reason: 'invalid_job' });
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
    expect(s.lines).toHaveLength(1);
    expect(JSON.parse(s.lines[0] ?? '{}')).toMatchObject({
      level: 'INFO',
      message: 'job settled',
      job_id: 'j-1',
      attempt: 1,
    });
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
