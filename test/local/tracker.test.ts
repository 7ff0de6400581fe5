import { describe, expect, it } from 'vitest';
import type { SenderEvent } from '#local/pipeline/observability.ts';
import { JobTracker, jobName } from '#local/pipeline/tracker.ts';
import { jobFingerprint, parseJob } from '#shared/job.ts';
import { jobBody, ledgerEntry } from '#test/helpers/factories.ts';

function event(kind: SenderEvent['kind'], messageId: string, extra: Partial<SenderEvent> = {}): SenderEvent {
  return {
    kind,
    alreadySettled: false,
    messageId,
    jobId: 'job-1',
    attempt: 1,
    status: undefined,
    detail: undefined,
    responseExcerpt: undefined,
    requeuedAs: undefined,
    outcome: kind === 'settled' ? 'delivered' : kind === 'dead_lettered' ? 'dead_letter' : 'retry',
    reason: undefined,
    cause: undefined,
    uuid: undefined,
    retryInSeconds: undefined,
    ...extra,
  };
}

describe('JobTracker', () => {
  it('counts two lines of the same job (same id and body, however spelled) as one job, settled once both are', () => {
    const tracker = new JobTracker(() => 0);
    const body = jobBody({ id: 'job-1' });
    const respelled = JSON.stringify({ message: body.message, id: 'job-1' });
    tracker.add({ line: 1, body: JSON.stringify(body), id: 'job-1' }, 'first');
    tracker.add({ line: 2, body: respelled, id: 'job-1' }, 'twin');
    tracker.add({ line: 3, body: JSON.stringify({ ...body, id: 'job-2' }), id: 'job-2' }, 'other');
    expect(tracker.jobs.map((job) => job.copyOfLine)).toEqual([undefined, 1, undefined]);

    tracker.onSenderEvent(event('settled', 'first', { uuid: 'u-1' }));
    tracker.onDeleted(['first']);
    expect(tracker.counts()).toMatchObject({ total: 2, delivered: 0, settled: 0 });
    tracker.onSenderEvent(event('settled', 'twin', { uuid: 'u-1', alreadySettled: true }));
    tracker.onDeleted(['twin']);
    expect(tracker.counts()).toMatchObject({ total: 2, delivered: 1, settled: 1 });
  });

  it("settles a job dead-lettered by an invocation that never reported the record's delete once its dead letter is on the queue, and not before", () => {
    const tracker = new JobTracker(() => 0);
    tracker.add({ line: 1, body: '{"id":"job-1","message":{"to":"+15550000465"}}', id: 'job-1' }, 'invalid');
    tracker.onSenderEvent(event('dead_lettered', 'invalid', { reason: 'invalid_job' }));
    tracker.onDeadLetters([
      { jobId: 'job-1', reason: 'bad_request' },
      { jobId: 'job-2', reason: 'invalid_job' },
    ]);
    expect(tracker.counts()).toMatchObject({ settled: 0 });

    tracker.onDeadLetters([{ jobId: 'job-1', reason: 'invalid_job' }]);

    expect(tracker.counts()).toMatchObject({ settled: 1, deadLettered: 1 });
  });

  it('counts a second body under one id as a job of its own (the ledger dead-letters it id_conflict)', () => {
    const tracker = new JobTracker(() => 0);
    const body = jobBody({ id: 'job-1' });
    tracker.add({ line: 1, body: JSON.stringify(body), id: 'job-1' }, 'first');
    tracker.add(
      { line: 2, body: JSON.stringify({ ...body, agency_reference: 'county-b' }), id: 'job-1' },
      'other',
    );
    expect(tracker.jobs.map((job) => job.copyOfLine)).toEqual([undefined, undefined]);
    expect(tracker.counts().total).toBe(2);
  });

  it("settles a job delivered when the attempt's carried 201 comes after a copy dead-lettered it unknown_outcome, and says that dead letter is stale", () => {
    const tracker = new JobTracker(() => 0);
    tracker.add({ line: 1, body: JSON.stringify(jobBody({ id: 'job-1' })), id: 'job-1' }, 'original');
    // The settle of the 201 failed: the answer rides on a fresh copy while DynamoDB refuses it.
    tracker.onSenderEvent(event('requeued', 'original', { requeuedAs: 'carried' }));
    tracker.onDeleted(['original']);
    // An SQS duplicate of the job found the lease over, counted the attempt lost and was dead-lettered.
    tracker.onSenderEvent(event('dead_lettered', 'duplicate', { reason: 'unknown_outcome', status: 'lost' }));
    tracker.onDeleted(['duplicate']);
    expect(tracker.jobs[0]).toMatchObject({ outcome: 'dead_lettered', reason: 'unknown_outcome' });

    tracker.onSenderEvent(event('settled', 'carried', { uuid: 'u-1' }));
    tracker.onDeleted(['carried']);

    expect(tracker.jobs[0]).toMatchObject({ outcome: 'delivered', reason: null, uuid: 'u-1' });
    expect(tracker.jobs[0]?.detail).toMatch(/dead letter is stale/);
  });

  it("names the message of a job a 409 settled delivered when the attempt's carried 201 is reported later", () => {
    const tracker = new JobTracker(() => 0);
    tracker.add({ line: 1, body: JSON.stringify(jobBody({ id: 'job-1' })), id: 'job-1' }, 'original');
    tracker.onSenderEvent(event('requeued', 'original', { requeuedAs: 'carried' }));
    tracker.onDeleted(['original']);
    tracker.onSenderEvent(event('settled', 'duplicate', { status: 409 }));
    tracker.onDeleted(['duplicate']);
    expect(tracker.jobs[0]).toMatchObject({ outcome: 'delivered', uuid: null });

    tracker.onSenderEvent(event('settled', 'carried', { uuid: 'u-1' }));

    expect(tracker.jobs[0]).toMatchObject({ outcome: 'delivered', uuid: 'u-1' });
  });

  it.each([
    ['a 409', { status: 409 }, 'settled'],
    ['an unknown_outcome dead letter', { reason: 'unknown_outcome', status: 'lost' }, 'dead_lettered'],
  ] as const)(
    "keeps the carried 201's uuid when its report comes before %s of another copy is deleted",
    (_, extra, kind) => {
      const tracker = new JobTracker(() => 0);
      tracker.add({ line: 1, body: JSON.stringify(jobBody({ id: 'job-1' })), id: 'job-1' }, 'original');
      tracker.onSenderEvent(event('requeued', 'original', { requeuedAs: 'carried' }));
      tracker.onDeleted(['original']);
      // Two instances report in turn: the carried copy's 201, then the other copy, before either is deleted.
      tracker.onSenderEvent(event('settled', 'carried', { uuid: 'u-1' }));
      tracker.onSenderEvent(event(kind, 'duplicate', extra));
      tracker.onDeleted(['carried', 'duplicate']);

      expect(tracker.jobs[0]).toMatchObject({ outcome: 'delivered', reason: null, uuid: 'u-1' });
    },
  );

  it('keeps a job dead-lettered for any other reason when a delivery of it is reported later', () => {
    const tracker = new JobTracker(() => 0);
    tracker.add({ line: 1, body: JSON.stringify(jobBody({ id: 'job-1' })), id: 'job-1' }, 'original');
    tracker.onSenderEvent(event('dead_lettered', 'original', { reason: 'expired' }));
    tracker.onDeleted(['original']);
    tracker.onSenderEvent(event('settled', 'original', { uuid: 'u-1' }));
    tracker.onDeleted(['original']);
    expect(tracker.jobs[0]).toMatchObject({ outcome: 'dead_lettered', reason: 'expired' });
  });

  it('follows a job the sender re-queued as a fresh copy to the copy, by the message id it logged', () => {
    const tracker = new JobTracker(() => 0);
    tracker.add({ line: 1, body: '{}', id: 'job-1' }, 'original');

    tracker.onSenderEvent(event('requeued', 'original', { requeuedAs: 'copy' }));
    tracker.onDeleted(['original']);
    expect(tracker.allSettled()).toBe(false);
    tracker.onSenderEvent(event('settled', 'copy', { uuid: 'u-1' }));
    tracker.onDeleted(['copy']);

    expect(tracker.jobs[0]).toMatchObject({
      outcome: 'delivered',
      uuid: 'u-1',
      messageId: 'copy',
      retries: 1,
    });
  });

  it('follows a copy whose making was never reported (its instance was ended at the function timeout)', () => {
    const tracker = new JobTracker(() => 0);
    tracker.add({ line: 1, body: '{}', id: 'job-1' }, 'original');
    tracker.add({ line: 2, body: '{}', id: 'job-2' }, 'other');

    // No requeued event: the ended container's report never arrived; its copy settles on another instance.
    expect(tracker.onSenderEvent(event('settled', 'unreported-copy', { uuid: 'u-1' }))).toBe(true);
    tracker.onDeleted(['unreported-copy']);

    expect(tracker.jobs[0]).toMatchObject({
      outcome: 'delivered',
      uuid: 'u-1',
      messageId: 'unreported-copy',
    });
    expect(tracker.jobs[1]).toMatchObject({ outcome: 'unsettled', messageId: 'other' });
  });

  it('settles, as the ledger says, a job whose last report never came; an entry still open settles nothing', () => {
    const tracker = new JobTracker(() => 0);
    tracker.add({ line: 1, body: '{}', id: 'job-1' }, 'original');
    tracker.add({ line: 2, body: '{}', id: 'job-2' }, 'other');

    tracker.settleFromLedger(
      ledgerEntry({ job_id: 'job-1', status: 'delivered', uuid: 'u-1', sends: 2, last_status: '409' }),
    );
    tracker.settleFromLedger(ledgerEntry({ job_id: 'job-2', status: 'retrying' }));

    expect(tracker.jobs[0]).toMatchObject({
      outcome: 'delivered',
      uuid: 'u-1',
      attempts: 2,
      lastStatus: 409,
    });
    expect(tracker.jobs[1]).toMatchObject({ outcome: 'unsettled' });
    expect(tracker.unsettledIds()).toEqual(['job-2']);
  });

  describe('two lines with one id and two bodies (docs/contract.md, "When a message changes")', () => {
    const atNine = JSON.stringify({
      id: 'job-1',
      message: { to: '+15551230001', content: 'Court at 9:00.' },
    });
    const moved = JSON.stringify({ id: 'job-1', message: { to: '+15551230001', content: 'Court at 9:30.' } });
    const hash = (body: string) => jobFingerprint(parseJob(body));

    it('the ledger settles only the line whose body it holds; the one it refused is dead-lettered id_conflict', () => {
      const tracker = new JobTracker(() => 0);
      tracker.add({ line: 1, body: atNine, id: 'job-1' }, 'm-1');
      tracker.add({ line: 2, body: moved, id: 'job-1' }, 'm-2');

      tracker.settleFromLedger(
        ledgerEntry({
          job_id: 'job-1',
          status: 'delivered',
          uuid: 'u-1',
          body_hash: hash(atNine),
          refused_count: 1,
          refused_body_hash: hash(moved),
          refused_at: Date.UTC(2027, 11, 1, 14),
        }),
      );

      expect(tracker.jobs[0]).toMatchObject({ outcome: 'delivered', uuid: 'u-1' });
      expect(tracker.jobs[1]).toMatchObject({ outcome: 'dead_lettered', reason: 'id_conflict', uuid: null });
      expect(tracker.jobs[1]?.detail).toContain('was refused at 2027-12-01T14:00:00.000Z');
      expect(tracker.counts()).toMatchObject({ delivered: 1, deadLettered: 1 });
    });

    it('a line whose body the ledger neither holds nor refused stays unsettled, never delivered', () => {
      const tracker = new JobTracker(() => 0);
      tracker.add({ line: 2, body: moved, id: 'job-1' }, 'm-2');

      tracker.settleFromLedger(
        ledgerEntry({ job_id: 'job-1', status: 'delivered', body_hash: hash(atNine) }),
      );

      expect(tracker.jobs[0]).toMatchObject({ outcome: 'unsettled' });
    });
  });

  it('follows a copy that another instance handled and deleted before the original was reported', () => {
    const tracker = new JobTracker(() => 0);
    tracker.add({ line: 1, body: '{}', id: 'job-1' }, 'original');

    // The copy's invocation reports first (the original's batch was still busy with other records): the copy of
    // an unsettled job is adopted by its job id at once.
    expect(tracker.onSenderEvent(event('settled', 'copy', { uuid: 'u-1' }))).toBe(true);
    tracker.onDeleted(['copy']);
    tracker.onSenderEvent(event('requeued', 'original', { requeuedAs: 'copy' }));
    tracker.onDeleted(['original']);

    expect(tracker.jobs[0]).toMatchObject({ outcome: 'delivered', uuid: 'u-1', messageId: 'copy' });
  });

  it('adopts the copy by job id when the sender did not log its message id', () => {
    const tracker = new JobTracker(() => 0);
    tracker.add({ line: 1, body: '{}', id: 'job-1' }, 'original');
    tracker.add({ line: 2, body: '{}', id: 'job-2' }, 'other');

    tracker.onSenderEvent(event('requeued', 'original'));
    tracker.onDeleted(['original']);
    expect(tracker.onSenderEvent(event('dead_lettered', 'copy', { reason: 'expired' }))).toBe(true);
    tracker.onDeleted(['copy']);

    expect(tracker.jobs.map((job) => [job.id, job.outcome, job.reason])).toEqual([
      ['job-1', 'dead_lettered', 'expired'],
      ['job-2', 'unsettled', null],
    ]);
  });

  it("keeps why a job failed: the detail and eCourtDate's answer", () => {
    const tracker = new JobTracker(() => 0);
    tracker.add({ line: 1, body: '{}', id: 'job-1' }, 'm-1');

    tracker.onSenderEvent(
      event('dead_lettered', 'm-1', {
        reason: 'bad_request',
        detail: 'refused',
        responseExcerpt: '{"to":"bad"}',
      }),
    );
    tracker.onDeleted(['m-1']);

    expect(tracker.jobs[0]).toMatchObject({
      reason: 'bad_request',
      detail: 'refused',
      responseExcerpt: '{"to":"bad"}',
    });
  });

  it('names a job without an id by its line', () => {
    expect(jobName({ id: undefined, line: 21 })).toBe('(no id) line 21');
    expect(jobName({ id: undefined, line: 22, invalidIdLabel: '(invalid id "has spaces")' })).toBe(
      '(invalid id "has spaces") line 22',
    );
    expect(jobName({ id: 'ok-1', line: 1 })).toBe('ok-1');
  });
});
