import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DynamoDbEmulator, startDynamoDbEmulator } from '#local/emulators/dynamodb-emulator.ts';
import {
  appendHistory,
  type ClaimInput,
  firstEntry,
  type GateVerdict,
  gate,
  isRedriveOf,
  LEDGER_HISTORY_MAX,
  type LedgerEntry,
  type LedgerEvent,
  NOT_DUE_TOLERANCE_MS,
  priorOf,
} from '#shared/ledger/gate.ts';
import { JobLedger, type SettleInput, settledEntry } from '#shared/ledger/ledger.ts';
import { JOB_KEY_PREFIX } from '#shared/ledger/schema.ts';
import { beforeSend, classifyAttempt, FIRST_ATTEMPT } from '#shared/policy.ts';
import {
  CLAIM_TOKEN,
  claimInput,
  job,
  ledgerEntry,
  response,
  secretFailure,
  senderConfig,
  T0,
  transport,
} from '#test/helpers/factories.ts';

const SECOND = 1_000;
const MINUTE = 60_000;
/** The TTL the claim or settle under test writes, epoch seconds. */
const EXPIRATION = Math.floor(T0 / 1000) + 31 * 86_400;
/** The redrive token the settle of `deadLettered`'s dead letter wrote, also on the dead-letter message. */
const REDRIVE_TOKEN = 'dl-token-of-the-dead-letter';

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

/** An entry dead-lettered from send-queue message `messageId`, with the redrive token `REDRIVE_TOKEN`. */
function deadLettered(messageId: string, overrides: Partial<LedgerEntry> = {}): LedgerEntry {
  return ledgerEntry({
    status: 'dead_lettered',
    dead_letter_reason: 'retries_exhausted',
    dead_letter_message_id: messageId,
    dead_letter_token: REDRIVE_TOKEN,
    next_attempt_at: undefined,
    retryable: 5,
    server_500: 1,
    rate_limited: 2,
    not_sent: 3,
    sends: 7,
    ...overrides,
  });
}

describe('gate: what a record may do with a job whose ledger entry exists (docs/ledger.md)', () => {
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

    it("is so even when that message carries the dead letter's redrive token", () => {
      const entry = deadLettered('msg-1');
      expect(
        gate(entry, claimInput({ messageId: 'msg-1', redriveToken: REDRIVE_TOKEN }), EXPIRATION).kind,
      ).toBe('dead_letter_again');
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

    it('an entry without a lease time is lost once its backoff step has passed', () => {
      const noLease = openAttempt(T0, T0, { lease_until: undefined, retryable: 0 });
      expect(gate(noLease, claimInput({ now: T0 }), EXPIRATION)).toMatchObject({
        kind: 'not_due',
        until: T0 + MINUTE,
      });
      expect(claimed(gate(noLease, claimInput({ now: T0 + MINUTE }), EXPIRATION)).lost).toBe(true);
    });

    describe('a lease that ends before the backoff step (a function timeout under a minute)', () => {
      // Claimed at T0 after no earlier failure; its invocation's deadline, the lease, ends 15 s later.
      const short = openAttempt(T0, T0 + 15 * SECOND, { retryable: 0, unknown_at: undefined });

      it('a copy at the end of the lease is hidden, unsent and uncounted, until the step after the claim', () => {
        expect(gate(short, claimInput({ now: T0 + 15 * SECOND }), EXPIRATION)).toEqual({
          kind: 'not_due',
          entry: short,
          until: T0 + MINUTE,
        });
      });

      it('the step is the backoff step of the attempt the lost one was (120 s after one earlier failure)', () => {
        const second = openAttempt(T0, T0 + 15 * SECOND, { retryable: 1, unknown_at: T0 - MINUTE });
        expect(gate(second, claimInput({ now: T0 + MINUTE }), EXPIRATION)).toMatchObject({
          kind: 'not_due',
          until: T0 + 2 * MINUTE,
        });
        expect(claimed(gate(second, claimInput({ now: T0 + 2 * MINUTE }), EXPIRATION)).lost).toBe(true);
      });

      it("the stage's steps, as the sender passes them (scaled in local runs), set the wait", () => {
        const input = claimInput({ now: T0 + 15 * SECOND, backoffStepsMs: [500, 1_000] });
        expect(claimed(gate(short, input, EXPIRATION)).lost).toBe(true);
      });
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
          attempt_token: CLAIM_TOKEN,
          write_token: CLAIM_TOKEN,
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

  describe("a new generation after a dead letter: an operator's redrive, carrying the dead letter's token", () => {
    const entry = deadLettered('msg-1', { unknown_outcome: true, unknown_at: T0 });
    const now = T0 + 3 * 3_600_000;
    const redrive = claimInput({ messageId: 'msg-2', now, redriveToken: REDRIVE_TOKEN });

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

    it('clears the dead-letter reason, its message id, its redrive token and any next-attempt time', () => {
      const next = claimed(gate(entry, redrive, EXPIRATION)).entry;
      expect([
        next.dead_letter_reason,
        next.dead_letter_message_id,
        next.dead_letter_token,
        next.next_attempt_at,
      ]).toEqual([undefined, undefined, undefined, undefined]);
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

    it("opens the new generation's attempt under the claim's own token", () => {
      expect(claimed(gate(entry, redrive, EXPIRATION)).entry).toMatchObject({
        attempt_token: CLAIM_TOKEN,
        write_token: CLAIM_TOKEN,
      });
    });

    it('an upstream resend (no redrive token) is dead-lettered again instead', () => {
      expect(gate(entry, claimInput({ messageId: 'msg-2', now }), EXPIRATION).kind).toBe('dead_letter_again');
    });

    it.each([
      ["another dead letter's token", 'dl-token-of-an-older-dead-letter'],
      ['an empty token', ''],
    ])('a redrive token that does not match (%s) is dead-lettered again, never claimed', (_name, token) => {
      expect(gate(entry, claimInput({ messageId: 'msg-2', now, redriveToken: token }), EXPIRATION)).toEqual({
        kind: 'dead_letter_again',
        entry,
      });
    });

    it('a dead letter recorded without a redrive token is dead-lettered again, whatever token a copy carries', () => {
      const untokened = deadLettered('msg-1', { dead_letter_token: undefined });
      for (const redriveToken of [undefined, REDRIVE_TOKEN]) {
        expect(gate(untokened, claimInput({ messageId: 'msg-2', now, redriveToken }), EXPIRATION).kind).toBe(
          'dead_letter_again',
        );
      }
    });

    describe('one redrive per dead letter: a second message carrying the same token', () => {
      /** The generation the first redrive started: its attempt open under a lease to now + 5 min. */
      const started = claimed(gate(entry, redrive, EXPIRATION)).entry;
      const second = (at: number, overrides: Partial<ClaimInput> = {}) =>
        claimInput({
          messageId: 'msg-3',
          now: at,
          redriveToken: REDRIVE_TOKEN,
          token: 'claim-token-of-the-second-copy',
          ...overrides,
        });
      /** The new generation after its first attempt got a 503: retrying in 60 s. */
      const retrying = settledEntry(
        {
          entry: started,
          now: now + SECOND,
          attempt: classifyAttempt(response(503)),
          outcome: { type: 'retry', delaySeconds: 60, cause: 'unknown_outcome' },
          lastStatus: '503',
        },
        EXPIRATION,
      );

      it("is in flight while the new generation's attempt is open: a copy, not a second generation", () => {
        expect(gate(started, second(now + MINUTE), EXPIRATION)).toEqual({
          kind: 'in_flight',
          entry: started,
          until: now + 5 * MINUTE,
        });
      });

      it("is not due during the new generation's backoff", () => {
        expect(gate(retrying, second(now + 30 * SECOND), EXPIRATION)).toEqual({
          kind: 'not_due',
          entry: retrying,
          until: now + SECOND + 60 * SECOND,
        });
      });

      it("once the new generation's retry is due, claims that generation's next attempt, without a fresh budget", () => {
        const verdict = claimed(gate(retrying, second(now + 2 * MINUTE), EXPIRATION));
        expect(verdict.lost).toBe(false);
        expect(verdict.entry).toMatchObject({
          generation: 2,
          first_attempt_at: now,
          sends: 1,
          retryable: 1,
          unknown_at: now,
          version: retrying.version + 1,
        });
        expect(verdict.entry.history.filter((e) => e.outcome === 'redriven')).toHaveLength(1);
      });

      it("after the new generation's lease ended unreported, claims that generation and counts the lost attempt", () => {
        const verdict = claimed(gate(started, second(now + 5 * MINUTE), EXPIRATION));
        expect(verdict.lost).toBe(true);
        expect(verdict.entry).toMatchObject({ generation: 2, retryable: 1, first_attempt_at: now });
      });

      it('after the new generation was delivered, is settled', () => {
        const delivered = settledEntry(
          { entry: started, now: now + SECOND, outcome: { type: 'delivered', uuid: 'u-2' } },
          EXPIRATION,
        );
        expect(gate(delivered, second(now + MINUTE), EXPIRATION)).toEqual({
          kind: 'settled',
          entry: delivered,
        });
      });

      it('after the new generation was dead-lettered, is dead-lettered again; only the new dead letter redrives', () => {
        const again = settledEntry(
          {
            entry: started,
            now: now + SECOND,
            attempt: classifyAttempt(response(400)),
            outcome: { type: 'dead_letter', reason: 'bad_request' },
            messageId: 'msg-2',
            deadLetterToken: 'dl-token-of-generation-2',
          },
          EXPIRATION,
        );
        expect(gate(again, second(now + MINUTE), EXPIRATION)).toEqual({
          kind: 'dead_letter_again',
          entry: again,
        });
        const third = gate(
          again,
          second(now + MINUTE, { redriveToken: 'dl-token-of-generation-2' }),
          EXPIRATION,
        );
        expect(claimed(third).entry.generation).toBe(3);
      });
    });
  });

  describe('isRedriveOf: the one redrive a dead letter allows', () => {
    const entry = deadLettered('msg-1');

    it("is a message other than the dead-lettered one, carrying the dead letter's token", () => {
      expect(isRedriveOf(entry, { messageId: 'msg-2', redriveToken: REDRIVE_TOKEN })).toBe(true);
    });

    it.each<[string, LedgerEntry, Pick<ClaimInput, 'messageId' | 'redriveToken'>]>([
      ['the dead-lettered message itself', entry, { messageId: 'msg-1', redriveToken: REDRIVE_TOKEN }],
      ['a message without a token', entry, { messageId: 'msg-2' }],
      ['another token', entry, { messageId: 'msg-2', redriveToken: 'dl-token-x' }],
      [
        'a dead letter without a token',
        deadLettered('msg-1', { dead_letter_token: undefined }),
        { messageId: 'msg-2', redriveToken: undefined },
      ],
      [
        'an entry that is not dead-lettered',
        ledgerEntry({ dead_letter_token: REDRIVE_TOKEN }),
        { messageId: 'msg-2', redriveToken: REDRIVE_TOKEN },
      ],
    ])('is not %s', (_name, existing, input) => {
      expect(isRedriveOf(existing, input)).toBe(false);
    });
  });

  describe('carried: a copy carrying the answer of the attempt still open (its settle could not be written)', () => {
    const ATTEMPT = 'attempt-token-of-the-open-attempt';
    const open = openAttempt(T0 + 2 * MINUTE, T0 + 7 * MINUTE, {
      attempt_token: ATTEMPT,
      write_token: ATTEMPT,
    });
    const carrying = (answered: boolean, overrides: Partial<ClaimInput> = {}) =>
      claimInput({
        now: T0 + 3 * MINUTE,
        messageId: 'msg-fresh-copy',
        carried: { token: ATTEMPT, answered },
        ...overrides,
      });

    it('with the answer, settles that attempt while its lease holds: no claim, no send, no write by the gate', () => {
      expect(gate(open, carrying(true), EXPIRATION)).toEqual({ kind: 'carried', entry: open });
    });

    it('with the answer, after the lease ended: still carried, never a lost attempt', () => {
      expect(gate(open, carrying(true, { now: T0 + 8 * MINUTE }), EXPIRATION)).toEqual({
        kind: 'carried',
        entry: open,
      });
    });

    it('without an answer (the attempt sent nothing), claims the next attempt at once: not in flight, not lost', () => {
      const verdict = claimed(gate(open, carrying(false), EXPIRATION));
      expect(verdict.lost).toBe(false);
      expect(verdict.entry).toMatchObject({
        sends: open.sends,
        retryable: open.retryable,
        unknown_at: open.unknown_at,
        attempt_open: true,
        attempt_token: CLAIM_TOKEN,
        version: open.version + 1,
      });
    });

    it("an earlier attempt's token is any copy: in flight while the lease holds, then the open attempt is lost", () => {
      const stale = { token: 'attempt-token-of-an-earlier-attempt', answered: true };
      expect(gate(open, carrying(true, { carried: stale }), EXPIRATION).kind).toBe('in_flight');
      expect(
        claimed(gate(open, carrying(true, { carried: stale, now: T0 + 7 * MINUTE }), EXPIRATION)).lost,
      ).toBe(true);
    });

    it('once the attempt has settled (none open), the carried answer is stale: the copy is judged as any copy', () => {
      const settled = settledEntry(
        {
          entry: open,
          now: T0 + 3 * MINUTE,
          attempt: classifyAttempt(response(503)),
          outcome: { type: 'retry', delaySeconds: 60, cause: 'unknown_outcome' },
        },
        EXPIRATION,
      );
      expect(gate(settled, carrying(true, { now: T0 + 3 * MINUTE + SECOND }), EXPIRATION)).toMatchObject({
        kind: 'not_due',
      });
    });

    it.each<[string, LedgerEntry, GateVerdict['kind']]>([
      ['a delivered job is settled', { ...open, status: 'delivered', attempt_open: false }, 'settled'],
      [
        'a dead-lettered job is dead-lettered again',
        deadLettered('msg-1', { attempt_token: ATTEMPT }),
        'dead_letter_again',
      ],
    ])('%s, whatever the copy carries', (_name, entry, kind) => {
      expect(gate(entry, carrying(true), EXPIRATION).kind).toBe(kind);
    });

    it('a different body is an id conflict, whatever the copy carries', () => {
      expect(gate(open, carrying(true, { bodyHash: 'another-body' }), EXPIRATION).kind).toBe('conflict');
    });

    it("beside a used answer, a claim of the copy's own chain found open (its write failed, yet applied) is its own: not in flight, not lost", () => {
      const ownClaim = openAttempt(T0 + 4 * MINUTE, T0 + 9 * MINUTE, { attempt_token: 'own-claim' });
      const beside = { token: ATTEMPT, answered: true, also: ['own-claim'] };
      for (const now of [T0 + 5 * MINUTE, T0 + 20 * MINUTE]) {
        const verdict = claimed(gate(ownClaim, carrying(true, { carried: beside, now }), EXPIRATION));
        expect(verdict.lost).toBe(false);
        expect(verdict.entry).toMatchObject({
          sends: ownClaim.sends,
          unknown_outcome: ownClaim.unknown_outcome,
        });
      }
    });

    it("a claim of the copy's own chain that counted the last attempt lost leaves the budget spent for the next claim: not sent", () => {
      const fourth = openAttempt(T0, T0 + MINUTE, { attempt_token: 'b', retryable: 4 });
      const ownLostCount = claimed(
        gate(
          fourth,
          claimInput({ now: T0 + 10 * MINUTE, leaseUntil: T0 + 11 * MINUTE, token: 'c' }),
          EXPIRATION,
        ),
      );
      expect(ownLostCount).toMatchObject({ lost: true, entry: { retryable: 5 } });
      const beside = { token: ATTEMPT, answered: true, also: ['c'] };
      const next = claimed(
        gate(ownLostCount.entry, carrying(true, { carried: beside, now: T0 + 11 * MINUTE }), EXPIRATION),
      );
      expect(next.lost).toBe(false);
      const verdict = beforeSend({
        claimed: {
          prior: priorOf(next.entry),
          firstAttemptAt: next.entry.first_attempt_at,
          unknownAt: next.entry.unknown_at,
          lost: next.lost,
        },
        job: job(),
        now: T0 + 11 * MINUTE,
        policy: senderConfig(),
      });
      expect(verdict).toMatchObject({
        type: 'settle',
        outcome: { type: 'dead_letter', reason: 'unknown_outcome' },
      });
    });

    it("a carried delivery for an attempt counted lost before a redrive still settles the job in the redrive's generation", () => {
      const lostThenDeadLettered = deadLettered('msg-1', {
        attempt_open: false,
        attempt_token: 'the-copy-that-counted-it-lost',
        lost_attempt_tokens: [ATTEMPT],
        unknown_outcome: true,
      });
      const redrive = claimInput({
        messageId: 'msg-dlq',
        now: T0 + 60 * MINUTE,
        redriveToken: REDRIVE_TOKEN,
      });
      const generation2 = claimed(gate(lostThenDeadLettered, redrive, EXPIRATION)).entry;
      expect(generation2.lost_attempt_tokens).toEqual([ATTEMPT]);
      const delivery = { token: ATTEMPT, answered: true, delivered: true };
      // While the redrive's attempt is out, and after a 409 proved the delivery (no uuid): the 201 settles it.
      for (const entry of [
        generation2,
        { ...generation2, status: 'delivered' as const, attempt_open: false },
      ]) {
        expect(gate(entry, carrying(true, { carried: delivery, now: T0 + 61 * MINUTE }), EXPIRATION)).toEqual(
          {
            kind: 'carried',
            entry,
            lostAttempt: true,
          },
        );
      }
    });

    it('keeps the first lost token through as many lost counts as the default attempt budget allows', () => {
      let entry = openAttempt(T0, T0 + MINUTE, { attempt_token: ATTEMPT });
      for (let count = 1; count <= 5; count++) {
        const now = T0 + count * 60 * MINUTE;
        entry = claimed(
          gate(entry, claimInput({ now, leaseUntil: now + MINUTE, token: `claim-${count}` }), EXPIRATION),
        ).entry;
      }
      expect(entry.lost_attempt_tokens).toEqual([ATTEMPT, 'claim-1', 'claim-2', 'claim-3', 'claim-4']);
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
      attempt_token: CLAIM_TOKEN,
      write_token: CLAIM_TOKEN,
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

    it('records the redrive token of the dead letter', () => {
      const e = settle({
        outcome: { type: 'dead_letter', reason: 'unknown_outcome', endedBy: 'retries_exhausted' },
        messageId: 'msg-7',
        deadLetterToken: 'dl-token-7',
      });
      expect(e.dead_letter_token).toBe('dl-token-7');
    });

    it('any other outcome clears all three', () => {
      const earlier = {
        ...claimedEntry,
        dead_letter_reason: 'expired',
        dead_letter_message_id: 'msg-1',
        dead_letter_token: 'dl-token-1',
      };
      const e = settledEntry(
        {
          entry: earlier,
          now,
          outcome: { type: 'delivered' },
          messageId: 'msg-7',
          deadLetterToken: 'dl-token-7',
        },
        EXPIRATION,
      );
      expect([e.dead_letter_reason, e.dead_letter_message_id, e.dead_letter_token]).toEqual([
        undefined,
        undefined,
        undefined,
      ]);
    });
  });

  describe('tokens', () => {
    it("writes the settle's own write token, keeping the claim's attempt token", () => {
      const tokened = { ...claimedEntry, attempt_token: 'claim-1', write_token: 'claim-1' };
      const e = settledEntry(
        { entry: tokened, now, outcome: { type: 'delivered' }, token: 'settle-1' },
        EXPIRATION,
      );
      expect([e.attempt_token, e.write_token]).toEqual(['claim-1', 'settle-1']);
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
        outcome: 'retry',
        retry_cause: 'unknown_outcome',
        retry_in_seconds: 120,
      });
    });

    it('appends a dead letter with its reason, and a status of none when nothing was attempted', () => {
      const e = settle({ outcome: { type: 'dead_letter', reason: 'expired' } });
      expect(e.history.at(-1)).toMatchObject({ status: 'none', outcome: 'dead_lettered', reason: 'expired' });
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

  // The mock replaces every document client's `send`: the tests against dynalite below need the real one.
  afterAll(() => {
    doc.restore();
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
      ConditionExpression:
        'version = :expected AND attribute_not_exists(delivery_version) AND attribute_not_exists(refused_count)',
      ExpressionAttributeValues: { ':expected': 1 },
    });
  });

  it('an id conflict costs the failed write and one note of the refused body, which leaves the version as found', async () => {
    const existing = ledgerEntry({ version: 3, status: 'delivered', refused_count: 1 });
    doc.on(PutCommand).rejectsOnce(conditionFailed(existing)).resolves({});
    const result = await ledger.claim({ ...input, bodyHash: 'another-body' });
    expect(result).toMatchObject({
      kind: 'conflict',
      entry: { version: 3, refused_count: 2, refused_body_hash: 'another-body', refused_at: input.now },
    });
    expect(doc.calls()).toHaveLength(2);
    const note = doc.commandCalls(PutCommand)[1]?.args[0].input;
    expect(note).toMatchObject({
      ConditionExpression:
        'version = :expected AND attribute_not_exists(delivery_version) AND refused_count = :refused',
      ExpressionAttributeValues: { ':expected': 3, ':refused': 1 },
      Item: { ...existing, refused_count: 2, refused_body_hash: 'another-body' },
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
    const changed = ledgerEntry({ version: 4, write_token: 'another-writers-token' });
    doc.on(PutCommand).rejectsOnce(conditionFailed(ledgerEntry())).rejects(conditionFailed(changed));
    expect(await ledger.claim(input)).toEqual({ kind: 'busy' });
    expect(doc.calls()).toHaveLength(2);
  });

  it("the claim writes its token as the attempt's and the write's", async () => {
    doc.on(PutCommand).resolves({});
    await ledger.claim(input);
    expect(doc.commandCalls(PutCommand)[0]?.args[0].input.Item).toMatchObject({
      attempt_token: CLAIM_TOKEN,
      write_token: CLAIM_TOKEN,
    });
  });

  it('without a token, the ledger makes a random one per claim', async () => {
    doc.on(PutCommand).resolves({});
    const { token: _none, ...untokened } = input;
    const first = await ledger.claim(untokened);
    const second = await ledger.claim(untokened);
    if (first.kind !== 'claimed' || second.kind !== 'claimed') throw new Error('expected two claims');
    expect(first.entry.attempt_token).toMatch(/^[0-9a-f-]{36}$/);
    expect(first.entry.write_token).toBe(first.entry.attempt_token);
    expect(second.entry.attempt_token).not.toBe(first.entry.attempt_token);
  });

  it('a first claim whose failed condition finds its own write token (its first try was applied) is claimed', async () => {
    const mine = firstEntry(input, Math.floor(input.now / 1000) + 86_400, JOB_KEY_PREFIX);
    doc.on(PutCommand).rejects(conditionFailed(mine));
    expect(await ledger.claim(input)).toEqual({ kind: 'claimed', entry: mine, lost: false });
    expect(doc.calls()).toHaveLength(1);
  });

  it("a claim whose second write's failed condition finds its own write token is claimed, not busy", async () => {
    const existing = ledgerEntry({ version: 3, next_attempt_at: T0 + MINUTE });
    const mine = claimed(gate(existing, input, Math.floor(input.now / 1000) + 86_400)).entry;
    doc.on(PutCommand).rejectsOnce(conditionFailed(existing)).rejects(conditionFailed(mine));
    expect(await ledger.claim(input)).toEqual({ kind: 'claimed', entry: mine, lost: false });
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

  it('settling an entry another writer changed is a conflict', async () => {
    const entry = openAttempt(T0, T0 + 5 * MINUTE, { write_token: 'claim-1' });
    const changed = { ...entry, version: entry.version + 1, write_token: 'another-writers-token' };
    doc.on(PutCommand).rejects(conditionFailed(changed));
    expect(await ledger.settle({ entry, now: T0 + SECOND, outcome: { type: 'delivered' } })).toEqual({
      kind: 'conflict',
    });
  });

  it('a settle returns the entry it wrote, with its own write token', async () => {
    doc.on(PutCommand).resolves({});
    const entry = openAttempt(T0, T0 + 5 * MINUTE, { write_token: 'claim-1' });
    const result = await ledger.settle({
      entry,
      now: T0 + SECOND,
      outcome: { type: 'delivered' },
      token: 'settle-1',
    });
    expect(result).toMatchObject({
      kind: 'written',
      entry: { status: 'delivered', write_token: 'settle-1' },
    });
    expect(doc.commandCalls(PutCommand)[0]?.args[0].input.Item).toEqual(
      result.kind === 'written' ? result.entry : undefined,
    );
  });

  it('a settle whose failed condition finds its own write token (its first try was applied) is written', async () => {
    const entry = openAttempt(T0, T0 + 5 * MINUTE, { write_token: 'claim-1' });
    const request = { entry, now: T0 + SECOND, outcome: { type: 'delivered' } as const, token: 'settle-1' };
    const mine = settledEntry(request, Math.floor(request.now / 1000) + 86_400);
    doc.on(PutCommand).rejects(conditionFailed(mine));
    expect(await ledger.settle(request)).toEqual({ kind: 'written', entry: mine });
  });

  it('without a token, every settle writes a new random write token', async () => {
    doc.on(PutCommand).resolves({});
    const entry = openAttempt(T0, T0 + 5 * MINUTE, { write_token: 'claim-1' });
    const settle = async () => {
      const result = await ledger.settle({ entry, now: T0 + SECOND, outcome: { type: 'delivered' } });
      return result.kind === 'written' ? result.entry.write_token : undefined;
    };
    const [a, b] = [await settle(), await settle()];
    expect(a).toMatch(/^[0-9a-f-]{36}$/);
    expect(b).not.toBe(a);
    expect(a).not.toBe('claim-1');
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
    dead_letter_token: REDRIVE_TOKEN,
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

  it("an operator's redrive (the dead letter's token) starts a new generation and clears the unknown outcome's time", () => {
    const verdict = gate(
      parked,
      claimInput({ messageId: 'msg-new', now: T0 + MINUTE, redriveToken: REDRIVE_TOKEN }),
      EXPIRATION,
    );
    expect(verdict).toMatchObject({ kind: 'claim', entry: { generation: parked.generation + 1 } });
    expect(verdict.kind === 'claim' ? verdict.entry.unknown_at : 'x').toBeUndefined();
  });
});

describe('JobLedger recognises its own write when DynamoDB applied it but the answer was lost (dynalite)', () => {
  const TABLE = 'relay-ledger-own-writes';
  const TTL_SECONDS = 86_400;
  let db: DynamoDbEmulator;
  const clients: DynamoDBClient[] = [];

  beforeAll(async () => {
    db = await startDynamoDbEmulator();
    await db.createLedgerTable(TABLE);
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.destroy();
  });

  afterAll(async () => {
    await db?.stop();
  });

  /** A client of its own (its middleware stack is the test's to change). */
  function dynamoClient(): DynamoDBClient {
    const client = new DynamoDBClient({
      endpoint: db.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    clients.push(client);
    return client;
  }

  function ledgerOn(client: DynamoDBClient = db.client): JobLedger {
    return new JobLedger({ client, tableName: TABLE, ttlSeconds: TTL_SECONDS });
  }

  /** Writes `entry` as it stands, unconditionally: a write that DynamoDB applied before anything else. */
  async function putEntry(entry: LedgerEntry): Promise<void> {
    await DynamoDBDocumentClient.from(db.client, { marshallOptions: { removeUndefinedValues: true } }).send(
      new PutCommand({ TableName: TABLE, Item: entry }),
    );
  }

  /**
   * DynamoDB applies the first try of the next PutItem of `client` whose request matches, then the connection
   * resets before its answer arrives, so the SDK sends it again (inside its own retry loop, as in AWS). Returns
   * how many tries were spoiled.
   */
  function loseNextPutAnswer(client: DynamoDBClient, match: (body: string) => boolean): () => number {
    let spoiled = 0;
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers?: Record<string, string>; body?: unknown };
        const headers = request.headers ?? {};
        const body =
          typeof request.body === 'string'
            ? request.body
            : request.body instanceof Uint8Array
              ? Buffer.from(request.body).toString('utf8')
              : '';
        const firstTry = /attempt=1;/.test(headers['amz-sdk-request'] ?? 'attempt=1;');
        const put = (headers['x-amz-target'] ?? '').endsWith('.PutItem');
        if (spoiled > 0 || !put || !firstTry || !match(body)) return next(args);
        spoiled += 1;
        await next(args);
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', $metadata: {} });
      },
      { step: 'deserialize', name: 'loseNextPutAnswer' },
    );
    return () => spoiled;
  }

  const claimOf = (jobId: string, overrides: Partial<ClaimInput> = {}): ClaimInput =>
    claimInput({ jobId, bodyHash: `hash-${jobId}`, messageId: `msg-${jobId}`, now: T0, ...overrides });

  async function claimedBy(ledger: JobLedger, input: ClaimInput): Promise<LedgerEntry> {
    const result = await ledger.claim(input);
    if (result.kind !== 'claimed') throw new Error(`expected a claim of ${input.jobId}, got ${result.kind}`);
    return result.entry;
  }

  it('a settle whose write is already in the table under its own write token counts as written', async () => {
    const ledger = ledgerOn();
    const entry = await claimedBy(ledger, claimOf('own-settle', { token: 'claim-1' }));
    const request: SettleInput = {
      entry,
      now: T0 + SECOND,
      outcome: { type: 'delivered', uuid: 'u-1' },
      lastStatus: '201',
      token: 'settle-1',
    };
    const applied = settledEntry(request, Math.floor(request.now / 1000) + TTL_SECONDS);
    await putEntry(applied);

    expect(await ledger.settle(request)).toEqual({ kind: 'written', entry: applied });
    expect(await ledger.get('own-settle')).toEqual(applied);
  });

  it("a settle after another writer's write (another write token) is a conflict, and leaves that write", async () => {
    const ledger = ledgerOn();
    const entry = await claimedBy(ledger, claimOf('taken-over', { token: 'claim-1' }));
    const other = { ...entry, version: entry.version + 1, write_token: 'another-writers-token' };
    await putEntry(other);

    const result = await ledger.settle({
      entry,
      now: T0 + SECOND,
      outcome: { type: 'delivered' },
      token: 'settle-1',
    });

    expect(result).toEqual({ kind: 'conflict' });
    expect(await ledger.get('taken-over')).toEqual(other);
  });

  it('a first claim whose entry is already in the table under its own token is claimed, not in flight', async () => {
    const ledger = ledgerOn();
    const input = claimOf('own-first-claim', { token: 'claim-1' });
    const applied = firstEntry(input, Math.floor(input.now / 1000) + TTL_SECONDS, JOB_KEY_PREFIX);
    await putEntry(applied);

    expect(await ledger.claim(input)).toEqual({ kind: 'claimed', entry: applied, lost: false });
    // Any other claim at that moment is a copy: the attempt is in flight.
    expect(await ledger.claim({ ...input, token: 'claim-2', messageId: 'msg-copy' })).toMatchObject({
      kind: 'in_flight',
    });
  });

  it('a claim of a due retry whose conditional write DynamoDB applied but whose answer was lost is claimed, not busy', async () => {
    const jobId = 'lost-claim-answer';
    const existing = ledgerEntry({
      id: JOB_KEY_PREFIX + jobId,
      job_id: jobId,
      body_hash: `hash-${jobId}`,
      next_attempt_at: T0 - MINUTE,
    });
    await putEntry(existing);
    const client = dynamoClient();
    const spoiled = loseNextPutAnswer(client, (body) => body.includes('version = :expected'));

    const result = await ledgerOn(client).claim(claimOf(jobId, { token: 'claim-1' }));

    expect(spoiled()).toBe(1);
    expect(result).toMatchObject({
      kind: 'claimed',
      lost: false,
      entry: { version: existing.version + 1, attempt_token: 'claim-1', write_token: 'claim-1' },
    });
    expect(await ledgerOn().get(jobId)).toEqual(result.kind === 'claimed' ? result.entry : undefined);
  });

  it('a settle whose conditional write DynamoDB applied but whose answer was lost is written, not a conflict', async () => {
    const entry = await claimedBy(ledgerOn(), claimOf('lost-settle-answer', { token: 'claim-1' }));
    const client = dynamoClient();
    const spoiled = loseNextPutAnswer(client, (body) => body.includes('version = :expected'));

    const result = await ledgerOn(client).settle({
      entry,
      now: T0 + SECOND,
      outcome: { type: 'delivered', uuid: 'u-1' },
      lastStatus: '201',
    });

    expect(spoiled()).toBe(1);
    expect(result).toMatchObject({
      kind: 'written',
      entry: { status: 'delivered', version: entry.version + 1 },
    });
    expect(await ledgerOn().get('lost-settle-answer')).toEqual(
      result.kind === 'written' ? result.entry : undefined,
    );
  });

  it('one redrive per dead letter: the token starts one generation, a second copy carrying it does not', async () => {
    const ledger = ledgerOn();
    const jobId = 'redriven-once';
    const entry = await claimedBy(ledger, claimOf(jobId, { messageId: 'msg-1' }));
    await ledger.settle({
      entry,
      now: T0 + SECOND,
      attempt: classifyAttempt(response(400)),
      outcome: { type: 'dead_letter', reason: 'bad_request' },
      lastStatus: '400',
      messageId: 'msg-1',
      deadLetterToken: 'dl-token-1',
    });
    expect(await ledger.get(jobId)).toMatchObject({
      status: 'dead_lettered',
      dead_letter_token: 'dl-token-1',
    });
    const redrive = (messageId: string, redriveToken: string, now: number) =>
      ledger.claim(claimOf(jobId, { messageId, redriveToken, now, token: `claim-${messageId}` }));

    expect(await redrive('msg-1', 'dl-token-1', T0 + MINUTE)).toMatchObject({ kind: 'dead_letter_again' });
    expect(await redrive('msg-dlq-1', 'dl-token-x', T0 + MINUTE)).toMatchObject({
      kind: 'dead_letter_again',
    });
    expect(await redrive('msg-dlq-1', 'dl-token-1', T0 + MINUTE)).toMatchObject({
      kind: 'claimed',
      entry: { generation: 2, dead_letter_token: undefined },
    });
    expect(await redrive('msg-dlq-2', 'dl-token-1', T0 + MINUTE + SECOND)).toMatchObject({
      kind: 'in_flight',
    });
    expect(await ledger.get(jobId)).toMatchObject({ generation: 2, attempt_token: 'claim-msg-dlq-1' });
  });
});

describe('the gate on copies of one job, redrives and carried answers', () => {
  const input = {
    jobId: 'j-1',
    bodyHash: 'h',
    messageId: 'm-1',
    now: 1_000_000,
    leaseUntil: 1_060_000,
  };

  it('a copy arriving while the attempt is leased is in flight until the lease ends, not claimed', () => {
    const open = firstEntry(input, 0, 'job#');
    const verdict = gate(open, { ...input, messageId: 'm-2', now: 1_059_999 }, 0);
    expect(verdict).toMatchObject({ kind: 'in_flight', until: 1_060_000 });
  });

  it('a copy arriving after the lease finds the attempt lost, and dates the unknown outcome from its claim', () => {
    const open = firstEntry(input, 0, 'job#');
    const verdict = gate(open, { ...input, messageId: 'm-2', now: 1_060_000 }, 0);
    expect(verdict).toMatchObject({ kind: 'claim', lost: true, entry: { unknown_at: 1_000_000 } });
  });

  it('the same id with a different body is a conflict even after the job was delivered', () => {
    const delivered = { ...firstEntry(input, 0, 'job#'), status: 'delivered' as const, attempt_open: false };
    expect(gate(delivered, { ...input, bodyHash: 'other' }, 0).kind).toBe('conflict');
  });

  describe('a dead letter is redriven once, whatever number of copies carry its token', () => {
    const deadLettered = {
      ...firstEntry(input, 0, 'job#'),
      status: 'dead_lettered' as const,
      attempt_open: false,
      retryable: 5,
      sends: 5,
      dead_letter_reason: 'retries_exhausted',
      dead_letter_message_id: 'm-1',
      dead_letter_token: 'dl-1',
    };
    const redrive = {
      ...input,
      messageId: 'm-dlq-1',
      now: 2_000_000,
      leaseUntil: 2_060_000,
      redriveToken: 'dl-1',
    };

    it('two copies of one redrive: the first starts generation 2, the second waits on it, with no second budget', () => {
      const first = gate(deadLettered, redrive, 0);
      if (first.kind !== 'claim') throw new Error(`expected a claim, got ${first.kind}`);
      expect(first.entry).toMatchObject({ generation: 2, retryable: 0, dead_letter_token: undefined });

      const second = gate(first.entry, { ...redrive, messageId: 'm-dlq-2', now: 2_000_500 }, 0);
      expect(second).toMatchObject({ kind: 'in_flight', until: 2_060_000 });

      // After the lease, the second copy takes over generation 2's budget (the first attempt counted as lost).
      const later = gate(first.entry, { ...redrive, messageId: 'm-dlq-2', now: 2_060_000 }, 0);
      expect(later).toMatchObject({ kind: 'claim', lost: true, entry: { generation: 2, retryable: 1 } });
    });

    it('a made-up or stale token never starts a generation', () => {
      for (const redriveToken of ['dl-0', 'DL-1', ' dl-1', undefined]) {
        expect(gate(deadLettered, { ...redrive, redriveToken }, 0).kind).toBe('dead_letter_again');
      }
    });
  });

  it("a copy carrying the open attempt's answer settles it and never sends again, even after the lease", () => {
    const open = firstEntry({ ...input, token: 'a-1' }, 0, 'job#');
    const copy = { ...input, messageId: 'm-2', now: 1_070_000, carried: { token: 'a-1', answered: true } };
    expect(gate(open, copy, 0).kind).toBe('carried');
  });
});
