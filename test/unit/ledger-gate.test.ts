import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  appendHistory,
  firstEntry,
  type GateVerdict,
  gate,
  LEDGER_HISTORY_MAX,
  type LedgerEntry,
  type LedgerEvent,
  NOT_DUE_TOLERANCE_MS,
  priorOf,
} from '#shared/ledger/gate.ts';
import { JobLedger, LedgerConflictError, type SettleInput, settledEntry } from '#shared/ledger/ledger.ts';
import { JOB_KEY_PREFIX } from '#shared/ledger/schema.ts';
import { classifyAttempt, FIRST_ATTEMPT } from '#shared/policy.ts';
import { claimInput, ledgerEntry, response, secretFailure, T0, transport } from '#test/helpers/factories.ts';

const SECOND = 1_000;
const MINUTE = 60_000;
/** The TTL the claim or settle under test writes, epoch seconds. */
const EXPIRATION = Math.floor(T0 / 1000) + 31 * 86_400;

/** The claim's entry, or fails the test naming the verdict it got instead. */
function claimed(verdict: GateVerdict): { entry: LedgerEntry; lost: boolean } {
  if (verdict.kind !== 'claim') throw new Error(`expected a claim, got ${verdict.kind}`);
  return verdict;
}

/** An entry whose attempt was claimed at `startedAt` with a lease to `leaseUntil`, and has not reported yet. */
function openAttempt(
  startedAt: number,
  leaseUntil: number,
  overrides: Partial<LedgerEntry> = {},
): LedgerEntry {
  return ledgerEntry({
    status: 'in_progress',
    attempt_open: true,
    attempt_started_at: startedAt,
    lease_until: leaseUntil,
    updated_at: startedAt,
    ...overrides,
  });
}

/** An entry dead-lettered from send-queue message `messageId`. */
function deadLettered(messageId: string, overrides: Partial<LedgerEntry> = {}): LedgerEntry {
  return ledgerEntry({
    status: 'dead_lettered',
    dead_letter_reason: 'retries_exhausted',
    dead_letter_message_id: messageId,
    next_attempt_at: undefined,
    retryable: 5,
    server_500: 1,
    rate_limited: 2,
    not_sent: 3,
    sends: 7,
    ...overrides,
  });
}

describe('gate: what a record may do with a job whose ledger entry exists (README, "The job ledger")', () => {
  describe('id conflict', () => {
    it('the same id with a different body is a conflict, never a claim', () => {
      const verdict = gate(ledgerEntry(), claimInput({ bodyHash: 'another-body' }), EXPIRATION);
      expect(verdict).toEqual({ kind: 'conflict', entry: ledgerEntry() });
    });

    it('is a conflict even after the first job was delivered', () => {
      const delivered = ledgerEntry({ status: 'delivered' });
      expect(gate(delivered, claimInput({ bodyHash: 'another-body' }), EXPIRATION).kind).toBe('conflict');
    });

    it('is a conflict even while the first job is in flight', () => {
      const inFlight = openAttempt(T0, T0 + 10 * MINUTE);
      expect(gate(inFlight, claimInput({ bodyHash: 'another-body' }), EXPIRATION).kind).toBe('conflict');
    });
  });

  describe('settled', () => {
    it.each(['delivered', 'duplicate'] as const)(
      'a %s job is settled: acknowledged without a send',
      (status) => {
        const entry = ledgerEntry({ status });
        expect(gate(entry, claimInput(), EXPIRATION)).toEqual({ kind: 'settled', entry });
      },
    );
  });

  describe('dead_letter_again', () => {
    it('the very message that was dead-lettered, back because the ack was lost, is dead-lettered again', () => {
      const entry = deadLettered('msg-1');
      expect(gate(entry, claimInput({ messageId: 'msg-1' }), EXPIRATION)).toEqual({
        kind: 'dead_letter_again',
        entry,
      });
    });

    it('is so even when that message carries the relay dead-letter attributes', () => {
      const entry = deadLettered('msg-1');
      expect(gate(entry, claimInput({ messageId: 'msg-1', redriven: true }), EXPIRATION).kind).toBe(
        'dead_letter_again',
      );
    });
  });

  describe('in flight: another invocation holds the lease', () => {
    it('a copy arriving while the lease holds waits until the lease ends', () => {
      const entry = openAttempt(T0, T0 + 5 * MINUTE);
      expect(gate(entry, claimInput({ now: T0 + MINUTE }), EXPIRATION)).toEqual({
        kind: 'in_flight',
        entry,
        until: T0 + 5 * MINUTE,
      });
    });

    it('a millisecond before the lease ends is still in flight', () => {
      const entry = openAttempt(T0, T0 + 5 * MINUTE);
      expect(gate(entry, claimInput({ now: T0 + 5 * MINUTE - 1 }), EXPIRATION).kind).toBe('in_flight');
    });
  });

  describe('lost: the lease ended and the attempt never reported (its instance stopped)', () => {
    const entry = openAttempt(T0 + 2 * MINUTE, T0 + 7 * MINUTE, { retryable: 1, unknown_at: T0 });
    const input = claimInput({ now: T0 + 7 * MINUTE });

    it('from the instant the lease ends, the next copy claims the job and is told the attempt was lost', () => {
      expect(claimed(gate(entry, input, EXPIRATION)).lost).toBe(true);
    });

    it('the lost attempt spends the backoff budget', () => {
      expect(claimed(gate(entry, input, EXPIRATION)).entry.retryable).toBe(2);
    });

    it("the lost attempt's outcome is unknown; the window still counts from the earliest unknown outcome", () => {
      expect(claimed(gate(entry, input, EXPIRATION)).entry).toMatchObject({
        unknown_outcome: true,
        unknown_at: T0,
        last_status: 'lost',
      });
    });

    it('a lost attempt after only known outcomes is dated from when it was claimed', () => {
      const lost = openAttempt(T0 + 2 * MINUTE, T0 + 7 * MINUTE, {
        unknown_outcome: false,
        unknown_at: undefined,
      });
      expect(claimed(gate(lost, input, EXPIRATION)).entry.unknown_at).toBe(T0 + 2 * MINUTE);
    });

    it('a lost first attempt makes an unknown outcome of a job that had none', () => {
      const first = openAttempt(T0, T0 + 5 * MINUTE, {
        retryable: 0,
        sends: 0,
        unknown_outcome: false,
        unknown_at: undefined,
      });
      expect(claimed(gate(first, claimInput({ now: T0 + 6 * MINUTE }), EXPIRATION)).entry).toMatchObject({
        retryable: 1,
        unknown_outcome: true,
        unknown_at: T0,
      });
    });

    it('without a claim time, the unknown outcome is dated from the last write', () => {
      const old = openAttempt(T0, T0 + 5 * MINUTE, {
        attempt_started_at: undefined,
        updated_at: T0 + SECOND,
        unknown_at: undefined,
      });
      expect(claimed(gate(old, claimInput({ now: T0 + 6 * MINUTE }), EXPIRATION)).entry.unknown_at).toBe(
        T0 + SECOND,
      );
    });

    it('the history records the lost attempt', () => {
      const history = claimed(gate(entry, input, EXPIRATION)).entry.history;
      expect(history.at(-1)).toMatchObject({ at: T0 + 7 * MINUTE, status: 'lost', outcome: 'unknown' });
    });

    it('an entry without a lease time is lost at once', () => {
      const noLease = openAttempt(T0, T0, { lease_until: undefined });
      expect(claimed(gate(noLease, claimInput({ now: T0 }), EXPIRATION)).lost).toBe(true);
    });
  });

  describe("not due: a copy arriving during the job's backoff", () => {
    const entry = ledgerEntry({ next_attempt_at: T0 + 10 * MINUTE });

    it('is hidden until the next-attempt time, unsent', () => {
      expect(gate(entry, claimInput({ now: T0 + SECOND }), EXPIRATION)).toEqual({
        kind: 'not_due',
        entry,
        until: T0 + 10 * MINUTE,
      });
    });

    it('is hidden until a millisecond more than the tolerance before the next-attempt time', () => {
      const now = T0 + 10 * MINUTE - NOT_DUE_TOLERANCE_MS - 1;
      expect(gate(entry, claimInput({ now }), EXPIRATION).kind).toBe('not_due');
    });

    it('within the tolerance before the next-attempt time, it is due: SQS shows a hidden record a little early', () => {
      const now = T0 + 10 * MINUTE - NOT_DUE_TOLERANCE_MS;
      expect(claimed(gate(entry, claimInput({ now }), EXPIRATION)).lost).toBe(false);
    });

    it('a next-attempt time beyond what SQS can hide (hours) still holds', () => {
      const far = ledgerEntry({ next_attempt_at: T0 + 20 * 3_600_000 });
      expect(gate(far, claimInput({ now: T0 + 12 * 3_600_000 }), EXPIRATION).kind).toBe('not_due');
    });
  });

  describe('claim of a due retry', () => {
    const entry = ledgerEntry({ next_attempt_at: T0 + MINUTE });
    const input = claimInput({ now: T0 + 2 * MINUTE, leaseUntil: T0 + 7 * MINUTE });

    it('opens the attempt under a lease, as the next version, keeping every count', () => {
      expect(gate(entry, input, EXPIRATION)).toEqual({
        kind: 'claim',
        lost: false,
        entry: {
          ...entry,
          status: 'in_progress',
          attempt_open: true,
          attempt_started_at: T0 + 2 * MINUTE,
          lease_until: T0 + 7 * MINUTE,
          version: entry.version + 1,
          expiration: EXPIRATION,
          updated_at: T0 + 2 * MINUTE,
        },
      });
    });

    it('an entry without a next-attempt time is due at once', () => {
      const any = ledgerEntry({ next_attempt_at: undefined });
      expect(gate(any, claimInput({ now: T0 }), EXPIRATION).kind).toBe('claim');
    });
  });

  describe("a new generation after a dead letter: an operator's redrive", () => {
    const entry = deadLettered('msg-1', { unknown_outcome: true, unknown_at: T0 });
    const now = T0 + 3 * 3_600_000;
    const redrive = claimInput({ messageId: 'msg-2', now, redriven: true });

    it('starts a new generation with a fresh budget, from now', () => {
      expect(claimed(gate(entry, redrive, EXPIRATION)).entry).toMatchObject({
        generation: entry.generation + 1,
        first_attempt_at: now,
        sends: 0,
        retryable: 0,
        server_500: 0,
        rate_limited: 0,
        not_sent: 0,
        status: 'in_progress',
        attempt_open: true,
      });
    });

    it('clears the dead-letter reason, its message id and any next-attempt time', () => {
      const next = claimed(gate(entry, redrive, EXPIRATION)).entry;
      expect([next.dead_letter_reason, next.dead_letter_message_id, next.next_attempt_at]).toEqual([
        undefined,
        undefined,
        undefined,
      ]);
    });

    it('keeps that an unknown outcome happened: a message created by any generation still answers 409', () => {
      expect(claimed(gate(entry, redrive, EXPIRATION)).entry.unknown_outcome).toBe(true);
    });

    it("clears the unknown outcome's time: a person checked and decided", () => {
      const verdict = claimed(gate(entry, redrive, EXPIRATION));
      expect(verdict.entry.unknown_at).toBeUndefined();
      expect(verdict.entry.history.at(-1)).toMatchObject({ outcome: 'redriven', generation: 2 });
    });

    it('is not a lost attempt', () => {
      expect(claimed(gate(entry, redrive, EXPIRATION)).lost).toBe(false);
    });

    it('an upstream resend (no dead-letter attributes) is dead-lettered again instead', () => {
      expect(gate(entry, claimInput({ messageId: 'msg-2', now }), EXPIRATION).kind).toBe('dead_letter_again');
    });
  });

  it('every claim writes the next version, the new TTL and the time', () => {
    const entry = ledgerEntry({ version: 41, next_attempt_at: undefined });
    expect(claimed(gate(entry, claimInput({ now: T0 + MINUTE }), EXPIRATION)).entry).toMatchObject({
      version: 42,
      expiration: EXPIRATION,
      updated_at: T0 + MINUTE,
    });
  });
});

describe('firstEntry: the entry a first claim creates', () => {
  const input = claimInput({ now: T0, leaseUntil: T0 + 5 * MINUTE });

  it('opens the first attempt of generation 1 with every count at zero', () => {
    expect(firstEntry(input, EXPIRATION, JOB_KEY_PREFIX)).toEqual({
      id: `job#${input.jobId}`,
      job_id: input.jobId,
      status: 'in_progress',
      body_hash: input.bodyHash,
      generation: 1,
      version: 1,
      first_attempt_at: T0,
      sends: 0,
      retryable: 0,
      server_500: 0,
      rate_limited: 0,
      not_sent: 0,
      unknown_outcome: false,
      attempt_open: true,
      attempt_started_at: T0,
      lease_until: T0 + 5 * MINUTE,
      history: [],
      expiration: EXPIRATION,
      updated_at: T0,
    });
  });

  it('has the counts of a first attempt', () => {
    expect(priorOf(firstEntry(input, EXPIRATION, JOB_KEY_PREFIX))).toEqual(FIRST_ATTEMPT);
  });
});

describe('priorOf: the counts the policy judges by', () => {
  it('maps each count of the entry', () => {
    const entry = ledgerEntry({
      retryable: 2,
      server_500: 1,
      rate_limited: 3,
      not_sent: 4,
      unknown_outcome: true,
    });
    expect(priorOf(entry)).toEqual({
      retryable: 2,
      serverErrors500: 1,
      rateLimited: 3,
      notSent: 4,
      unknownOutcome: true,
    });
  });

  it('reads an entry written before not_sent existed as zero not-sent attempts', () => {
    const { not_sent: _dropped, ...older } = ledgerEntry({ not_sent: 9 });
    expect(priorOf(older as LedgerEntry).notSent).toBe(0);
  });
});

describe('appendHistory', () => {
  const event = (at: number): LedgerEvent => ({ at, generation: 1, status: '503', outcome: 'retry' });

  it('appends the newest last', () => {
    expect(appendHistory([event(1)], event(2)).map((e) => e.at)).toEqual([1, 2]);
  });

  it(`keeps only the newest ${LEDGER_HISTORY_MAX}`, () => {
    const full = Array.from({ length: LEDGER_HISTORY_MAX }, (_, i) => event(i));
    const next = appendHistory(full, event(99));
    expect(next).toHaveLength(LEDGER_HISTORY_MAX);
    expect([next[0]?.at, next.at(-1)?.at]).toEqual([1, 99]);
  });

  it('does not change the history it was given', () => {
    const history = [event(1)];
    appendHistory(history, event(2));
    expect(history).toHaveLength(1);
  });
});

describe('settledEntry: the entry after an attempt settled', () => {
  const startedAt = T0 + 2 * MINUTE;
  const now = startedAt + 3 * SECOND;
  /** The claimed second attempt of the job in `ledgerEntry` (one 503 before). */
  const claimedEntry = openAttempt(startedAt, startedAt + 5 * MINUTE, { version: 4 });
  const settle = (input: Partial<SettleInput> & Pick<SettleInput, 'outcome'>) =>
    settledEntry({ entry: claimedEntry, now, ...input }, EXPIRATION);

  it('closes the attempt and clears its lease, as the next version', () => {
    expect(settle({ outcome: { type: 'delivered' } })).toMatchObject({
      attempt_open: false,
      lease_until: undefined,
      version: 5,
      expiration: EXPIRATION,
      updated_at: now,
    });
  });

  describe('status per outcome', () => {
    it.each([
      ['delivered', { type: 'delivered' } as const, 'delivered'],
      ['duplicate', { type: 'duplicate' } as const, 'duplicate'],
      ['a retry', { type: 'retry', delaySeconds: 60, cause: 'unknown_outcome' } as const, 'retrying'],
      ['a dead letter', { type: 'dead_letter', reason: 'forbidden' } as const, 'dead_lettered'],
    ])('%s is status %s', (_name, outcome, status) => {
      expect(settle({ outcome }).status).toBe(status);
    });
  });

  describe('counts per class of attempt', () => {
    const countsAfter = (attempt: SettleInput['attempt']) => {
      const e = settle({ outcome: { type: 'retry', delaySeconds: 60, cause: 'server_error' }, attempt });
      return {
        sends: e.sends - claimedEntry.sends,
        retryable: e.retryable - claimedEntry.retryable,
        server_500: e.server_500 - claimedEntry.server_500,
        rate_limited: e.rate_limited - claimedEntry.rate_limited,
        not_sent: e.not_sent - claimedEntry.not_sent,
      };
    };
    const zero = { sends: 0, retryable: 0, server_500: 0, rate_limited: 0, not_sent: 0 };

    it.each([
      ['a 503', classifyAttempt(response(503)), { ...zero, sends: 1, retryable: 1 }],
      ['a 500', classifyAttempt(response(500)), { ...zero, sends: 1, retryable: 1, server_500: 1 }],
      ['a 408', classifyAttempt(response(408)), { ...zero, sends: 1, retryable: 1 }],
      ['a timeout', classifyAttempt(transport('timeout')), { ...zero, sends: 1, retryable: 1 }],
      ['a 429', classifyAttempt(response(429)), { ...zero, sends: 1, rate_limited: 1 }],
      ['a persistent 401', classifyAttempt(response(401)), { ...zero, sends: 1, not_sent: 1 }],
      [
        'a token-endpoint 429',
        classifyAttempt(response(429, { stage: 'token' })),
        { ...zero, rate_limited: 1 },
      ],
      ['a token-endpoint timeout', classifyAttempt(transport('timeout', 'token')), { ...zero, not_sent: 1 }],
      ['a secret failure', classifyAttempt(secretFailure()), { ...zero, not_sent: 1 }],
      ['no attempt (deferred, or refused before the send)', undefined, zero],
    ])('%s', (_name, attempt, added) => {
      expect(countsAfter(attempt)).toEqual(added);
    });

    it('reads an entry written before not_sent existed as zero not-sent attempts', () => {
      const { not_sent: _dropped, ...older } = claimedEntry;
      const e = settledEntry(
        {
          entry: older as LedgerEntry,
          now,
          attempt: classifyAttempt(secretFailure()),
          outcome: { type: 'retry', delaySeconds: 60, cause: 'credentials' },
        },
        EXPIRATION,
      );
      expect(e.not_sent).toBe(1);
    });
  });

  describe('unknown outcome', () => {
    const known = openAttempt(startedAt, startedAt + 5 * MINUTE, {
      unknown_outcome: false,
      unknown_at: undefined,
    });
    const retry60 = { type: 'retry', delaySeconds: 60, cause: 'unknown_outcome' } as const;

    it('an attempt with an unknown outcome marks the job, dated from when the attempt was claimed', () => {
      const e = settledEntry(
        { entry: known, now, attempt: classifyAttempt(response(502)), outcome: retry60 },
        EXPIRATION,
      );
      expect([e.unknown_outcome, e.unknown_at]).toEqual([true, startedAt]);
    });

    it('a later unknown outcome keeps the earlier time: the duplicate window counts from the earliest', () => {
      const e = settle({ attempt: classifyAttempt(transport('connection')), outcome: retry60 });
      expect(e.unknown_at).toBe(T0);
    });

    it('an attempt with a known outcome keeps the earlier unknown outcome and its time', () => {
      const e = settle({
        attempt: classifyAttempt(response(429)),
        outcome: { type: 'retry', delaySeconds: 60, cause: 'rate_limited' },
      });
      expect([e.unknown_outcome, e.unknown_at]).toEqual([true, T0]);
    });

    it('a 408 is a known outcome', () => {
      const e = settledEntry(
        { entry: known, now, attempt: classifyAttempt(response(408)), outcome: retry60 },
        EXPIRATION,
      );
      expect([e.unknown_outcome, e.unknown_at]).toEqual([false, undefined]);
    });
  });

  describe('next attempt time', () => {
    it('a retry records now plus the delay as the earliest time of the next attempt', () => {
      const e = settle({ outcome: { type: 'retry', delaySeconds: 60, cause: 'unknown_outcome' } });
      expect(e.next_attempt_at).toBe(now + 60 * SECOND);
    });

    it('keeps the whole delay, even beyond what SQS can hide a record for', () => {
      const e = settle({ outcome: { type: 'retry', delaySeconds: 50_000, cause: 'unknown_outcome' } });
      expect(e.next_attempt_at).toBe(now + 50_000 * SECOND);
    });

    it.each([
      ['delivered', { type: 'delivered' } as const],
      ['duplicate', { type: 'duplicate' } as const],
      ['a dead letter', { type: 'dead_letter', reason: 'expired' } as const],
    ])('%s has none', (_name, outcome) => {
      expect(settle({ outcome }).next_attempt_at).toBeUndefined();
    });
  });

  describe('dead letter', () => {
    it('records the reason and the send-queue message that was dead-lettered', () => {
      const e = settle({ outcome: { type: 'dead_letter', reason: 'unknown_outcome' }, messageId: 'msg-7' });
      expect([e.dead_letter_reason, e.dead_letter_message_id]).toEqual(['unknown_outcome', 'msg-7']);
    });

    it('any other outcome clears both', () => {
      const earlier = { ...claimedEntry, dead_letter_reason: 'expired', dead_letter_message_id: 'msg-1' };
      const e = settledEntry(
        { entry: earlier, now, outcome: { type: 'delivered' }, messageId: 'msg-7' },
        EXPIRATION,
      );
      expect([e.dead_letter_reason, e.dead_letter_message_id]).toEqual([undefined, undefined]);
    });
  });

  describe('uuid and last status', () => {
    it("a delivery keeps eCourtDate's uuid", () => {
      expect(settle({ outcome: { type: 'delivered', uuid: 'u-9' } }).uuid).toBe('u-9');
    });

    it('a delivery proven by a 409 (no uuid) keeps any uuid known before', () => {
      const withUuid = { ...claimedEntry, uuid: 'u-1' };
      expect(settledEntry({ entry: withUuid, now, outcome: { type: 'delivered' } }, EXPIRATION).uuid).toBe(
        'u-1',
      );
    });

    it('records the last status given', () => {
      expect(settle({ outcome: { type: 'duplicate' }, lastStatus: '409' }).last_status).toBe('409');
    });

    it('keeps the previous last status when none is given (nothing was attempted)', () => {
      expect(settle({ outcome: { type: 'dead_letter', reason: 'expired' } }).last_status).toBe('503');
    });
  });

  describe('history', () => {
    it('appends the retry with its delay and cause', () => {
      const e = settle({
        outcome: { type: 'retry', delaySeconds: 120, cause: 'unknown_outcome' },
        lastStatus: '504',
      });
      expect(e.history.at(-1)).toEqual({
        at: now,
        generation: 1,
        status: '504',
        outcome: 'retry in 120 s (unknown_outcome)',
      });
    });

    it('appends a dead letter by its reason, and a status of none when nothing was attempted', () => {
      const e = settle({ outcome: { type: 'dead_letter', reason: 'expired' } });
      expect(e.history.at(-1)).toMatchObject({ status: 'none', outcome: 'expired' });
    });

    it('cuts a long detail to 160 characters', () => {
      const e = settle({ outcome: { type: 'dead_letter', reason: 'bad_request' }, detail: 'x'.repeat(500) });
      expect(e.history.at(-1)?.detail).toHaveLength(160);
    });
  });
});

describe('the gate after a settle: a backoff survives duplicate copies', () => {
  const startedAt = T0;
  const now = T0 + 2 * SECOND;
  const claimedFirst = openAttempt(startedAt, startedAt + 5 * MINUTE, {
    version: 1,
    sends: 0,
    retryable: 0,
    unknown_outcome: false,
    unknown_at: undefined,
    next_attempt_at: undefined,
    history: [],
  });

  it.each([
    ['a 500', response(500), { type: 'retry', delaySeconds: 60, cause: 'unknown_outcome' } as const],
    ['a 429', response(429), { type: 'retry', delaySeconds: 60, cause: 'rate_limited' } as const],
  ])(
    'after %s, a copy arriving 0.2 s later is hidden until the next attempt, unsent',
    (_name, result, outcome) => {
      const settled = settledEntry(
        { entry: claimedFirst, now, attempt: classifyAttempt(result), outcome },
        EXPIRATION,
      );
      const verdict = gate(settled, claimInput({ now: now + 200, messageId: 'msg-copy' }), EXPIRATION);
      expect(verdict).toMatchObject({ kind: 'not_due', until: now + 60 * SECOND });
    },
  );

  it('the record itself, back when its visibility timeout ends, is claimed', () => {
    const settled = settledEntry(
      {
        entry: claimedFirst,
        now,
        attempt: classifyAttempt(response(503)),
        outcome: { type: 'retry', delaySeconds: 60, cause: 'unknown_outcome' },
      },
      EXPIRATION,
    );
    expect(gate(settled, claimInput({ now: now + 60 * SECOND }), EXPIRATION).kind).toBe('claim');
  });
});

describe('JobLedger: one conditional write to claim, one to settle (DynamoDB mocked)', () => {
  const doc = mockClient(DynamoDBDocumentClient);
  const ledger = new JobLedger({
    client: new DynamoDBClient({}),
    tableName: 'relay-ledger',
    ttlSeconds: 86_400,
  });
  const input = claimInput({ now: T0 + 2 * MINUTE });
  const conditionFailed = (item?: LedgerEntry) =>
    new ConditionalCheckFailedException({
      message: 'The conditional request failed',
      $metadata: {},
      ...(item ? { Item: marshall(item, { removeUndefinedValues: true }) } : {}),
    });

  afterEach(() => {
    doc.reset();
  });

  it("a job's first claim is one write, conditional on no entry, that returns the entry it finds", async () => {
    doc.on(PutCommand).resolves({});
    const result = await ledger.claim(input);
    expect(result).toMatchObject({ kind: 'claimed', lost: false, entry: { version: 1, generation: 1 } });
    expect(doc.calls()).toHaveLength(1);
    expect(doc.commandCalls(PutCommand)[0]?.args[0].input).toMatchObject({
      TableName: 'relay-ledger',
      ConditionExpression: 'attribute_not_exists(id)',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
  });

  it('a first-attempt job costs two requests in all, both writes: the claim and the settle', async () => {
    doc.on(PutCommand).resolves({});
    const result = await ledger.claim(input);
    if (result.kind !== 'claimed') throw new Error(`expected a claim, got ${result.kind}`);
    await ledger.settle({ entry: result.entry, now: input.now + SECOND, outcome: { type: 'delivered' } });
    expect(doc.calls()).toHaveLength(2);
    expect(doc.commandCalls(PutCommand)[1]?.args[0].input).toMatchObject({
      ConditionExpression: 'version = :expected',
      ExpressionAttributeValues: { ':expected': 1 },
    });
  });

  it('a retry costs three requests, none a read: the claim that finds the entry, the claim on its version, the settle', async () => {
    const existing = ledgerEntry({ version: 3, next_attempt_at: T0 + MINUTE });
    doc.on(PutCommand).rejectsOnce(conditionFailed(existing)).resolves({});
    const result = await ledger.claim(input);
    if (result.kind !== 'claimed') throw new Error(`expected a claim, got ${result.kind}`);
    await ledger.settle({ entry: result.entry, now: input.now + SECOND, outcome: { type: 'delivered' } });
    expect(doc.calls()).toHaveLength(3);
    expect(doc.commandCalls(GetCommand)).toHaveLength(0);
    expect(doc.commandCalls(PutCommand)[1]?.args[0].input).toMatchObject({
      ExpressionAttributeValues: { ':expected': 3 },
    });
  });

  it("the gate's verdict on an entry it may not claim costs the one failed write, and nothing else", async () => {
    doc.on(PutCommand).rejects(conditionFailed(ledgerEntry({ status: 'delivered' })));
    expect(await ledger.claim(input)).toMatchObject({ kind: 'settled' });
    expect(doc.calls()).toHaveLength(1);
  });

  it('another writer changing the entry between the two claim writes makes the record busy', async () => {
    doc.on(PutCommand).rejectsOnce(conditionFailed(ledgerEntry())).rejects(conditionFailed());
    expect(await ledger.claim(input)).toEqual({ kind: 'busy' });
  });

  it('without the failed item in the answer (an emulator), it reads the entry with a consistent read', async () => {
    doc.on(PutCommand).rejectsOnce(conditionFailed()).resolves({});
    doc.on(GetCommand).resolves({ Item: ledgerEntry() });
    expect(await ledger.claim(input)).toMatchObject({ kind: 'claimed' });
    expect(doc.commandCalls(GetCommand)[0]?.args[0].input).toMatchObject({
      Key: { id: 'job#cms-48213-reminder-1' },
      ConsistentRead: true,
    });
  });

  it('settling an entry another writer changed throws LedgerConflictError', async () => {
    doc.on(PutCommand).rejects(conditionFailed());
    const entry = openAttempt(T0, T0 + 5 * MINUTE);
    await expect(
      ledger.settle({ entry, now: T0 + SECOND, outcome: { type: 'delivered' } }),
    ).rejects.toBeInstanceOf(LedgerConflictError);
  });

  it("a DynamoDB failure is thrown as the SDK's error: nothing was claimed", async () => {
    const throttled = new Error('Rate of requests exceeds the allowed throughput');
    doc.on(PutCommand).rejects(throttled);
    await expect(ledger.claim(input)).rejects.toThrow('Rate of requests exceeds the allowed throughput');
  });

  it('writes the TTL as epoch seconds, ttlSeconds after now', async () => {
    doc.on(PutCommand).resolves({});
    await ledger.claim(input);
    expect(doc.commandCalls(PutCommand)[0]?.args[0].input.Item).toMatchObject({
      expiration: Math.floor(input.now / 1000) + 86_400,
    });
  });
});

describe("a copy of a dead-lettered job that is not an operator's redrive", () => {
  const parked = ledgerEntry({
    status: 'dead_lettered',
    dead_letter_reason: 'unknown_outcome',
    dead_letter_message_id: 'msg-old',
    unknown_outcome: true,
    unknown_at: T0,
  });

  it.each(['unknown_outcome', 'retries_exhausted', 'bad_request'])(
    'is dead-lettered again (%s), never claimed: a copy never undoes a dead letter',
    (reason) => {
      const entry = { ...parked, dead_letter_reason: reason };
      expect(gate(entry, claimInput({ messageId: 'msg-new', now: T0 + MINUTE }), EXPIRATION)).toEqual({
        kind: 'dead_letter_again',
        entry,
      });
    },
  );

  it("an operator's redrive starts a new generation and clears the unknown outcome's time", () => {
    const verdict = gate(
      parked,
      claimInput({ messageId: 'msg-new', now: T0 + MINUTE, redriven: true }),
      EXPIRATION,
    );
    expect(verdict).toMatchObject({ kind: 'claim', entry: { generation: parked.generation + 1 } });
    expect(verdict.kind === 'claim' ? verdict.entry.unknown_at : 'x').toBeUndefined();
  });
});
