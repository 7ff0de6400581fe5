/**
 * The sender's one decision per record (shared/sender/decide.ts), as pure code: who publishes a settled job's
 * first `eCourtDate Job Settled` event (docs/contract.md, "One first `eCourtDate Job Settled` event per
 * settlement"), and what a settle that failed or met another writer becomes ("A known answer is kept until it is
 * written").
 */
import { describe, expect, it } from 'vitest';
import type { LedgerEntry } from '#shared/ledger/ledger.ts';
import {
  afterLedgerFailure,
  afterSettledStepFailure,
  CLAIM_TOKENS_CARRIED,
  carryingClaim,
  type DecideContext,
  type Decision,
  decideRecord,
  IN_FLIGHT_RECHECK_SECONDS,
  inFlightRecheckSeconds,
  requeueAfterReceives,
} from '#shared/sender/decide.ts';
import type { RecordContext } from '#shared/sender/stages.ts';
import type { CarriedAnswer } from '#shared/sqs/attributes.ts';
import {
  job,
  jobBody,
  ledgerEntry,
  response,
  senderConfig,
  sqsRecord,
  T0,
  transport,
} from '#test/helpers/factories.ts';

const ctx: DecideContext = { config: senderConfig(), now: T0 + 120_000, random: () => 0.5 };
const EVENT_TOKEN = 'event-token-of-the-settle';
const ATTEMPT_TOKEN = 'attempt-token-of-the-settle';

function context(overrides: Partial<RecordContext> = {}): RecordContext {
  return {
    record: sqsRecord(JSON.stringify(jobBody())),
    receiveCount: 1,
    firstReceivedAt: T0,
    redriveToken: undefined,
    carried: undefined,
    settledEventPending: undefined,
    ...overrides,
  };
}

const delivered = ledgerEntry({
  status: 'delivered',
  uuid: 'uuid-of-the-message',
  unknown_outcome: false,
  unknown_at: undefined,
  next_attempt_at: undefined,
  attempt_token: ATTEMPT_TOKEN,
  event_token: EVENT_TOKEN,
});
const deadLettered = ledgerEntry({
  status: 'dead_lettered',
  dead_letter_reason: 'forbidden',
  dead_letter_token: 'redrive-token',
  attempt_token: ATTEMPT_TOKEN,
  event_token: EVENT_TOKEN,
});

function gated(kind: 'settled' | 'dead_letter_again', entry: LedgerEntry, record: RecordContext): Decision {
  return decideRecord(record, { stage: 'gated', job: job(), claim: { kind, entry } }, ctx);
}

describe('the first publication of a settled job’s event', () => {
  it.each([
    ['a delivered job', 'settled', delivered],
    ['a dead-lettered job', 'dead_letter_again', deadLettered],
  ] as const)(
    '%s: only a copy holding the ledger’s event token may claim it; the event is a replay until it does',
    (_, kind, entry) => {
      const holder = gated(kind, entry, context({ settledEventPending: EVENT_TOKEN }));
      expect(holder.replayed).toBe(true);
      expect(holder.eventClaim).toEqual({ held: EVENT_TOKEN, entry });

      for (const other of [
        context(),
        // A forged or stale value, and the settling attempt's token (which every twin of a carrying copy holds).
        context({ settledEventPending: 'true' }),
        context({ settledEventPending: ATTEMPT_TOKEN }),
        context({
          carried: { token: ATTEMPT_TOKEN, result: response(201, { uuid: 'u' }), last_status: 201 },
        }),
      ]) {
        const decision = gated(kind, entry, other);
        expect(decision.replayed).toBe(true);
        expect(decision.eventClaim).toBeUndefined();
      }
    },
  );

  it('a copy holding two tokens (a take-over whose answer was lost) claims whichever the ledger holds', () => {
    const holder = context({ settledEventPending: `earlier-token,${EVENT_TOKEN}` });
    expect(gated('settled', delivered, holder).eventClaim).toEqual({ held: EVENT_TOKEN, entry: delivered });
    const other = context({ settledEventPending: `${EVENT_TOKEN},later-token` });
    expect(gated('settled', delivered, other).eventClaim).toEqual({ held: EVENT_TOKEN, entry: delivered });
    expect(gated('settled', delivered, context({ settledEventPending: 'a,b' })).eventClaim).toBeUndefined();
  });

  it('an entry without an event token (settled before the relay wrote one, or claimed since) gives no claim', () => {
    const entry = { ...delivered, event_token: undefined };
    expect(gated('settled', entry, context({ settledEventPending: EVENT_TOKEN })).eventClaim).toBeUndefined();
  });
});

describe('a settle that failed or met another writer', () => {
  const open = ledgerEntry({ attempt_open: true, attempt_token: ATTEMPT_TOKEN });

  /** The decision on an attempt that met `result`. */
  function attempted(result: ReturnType<typeof response>, sendStatuses: number[]): Decision {
    return decideRecord(
      context(),
      {
        stage: 'attempted',
        job: job(),
        entry: open,
        lost: false,
        sent: { kind: 'attempted', result, sendStatuses, excerpt: '', latencyMs: 40, authFailed: false },
      },
      ctx,
    );
  }

  function answered(status: number): Decision {
    return attempted(response(status, { uuid: status === 201 ? 'uuid-201' : undefined }), [status]);
  }

  it('DynamoDB refused the settle: a fresh copy carries the answer and the event token the write tried to put', () => {
    const decision = afterLedgerFailure(
      answered(201),
      { errorName: 'ThrottlingException' },
      ctx,
      EVENT_TOKEN,
    );
    expect(decision.action).toBe('requeue');
    expect(decision.outcome).toMatchObject({ type: 'retry', cause: 'dependency_failure' });
    expect(decision.copy?.carry).toMatchObject({
      token: ATTEMPT_TOKEN,
      result: { status: 201, uuid: 'uuid-201' },
    });
    expect(decision.copy?.settledEventPending).toBe(EVENT_TOKEN);
  });

  it('a retry publishes no event, so its copy holds no event token', () => {
    const decision = afterLedgerFailure(
      answered(503),
      { errorName: 'ThrottlingException' },
      ctx,
      EVENT_TOKEN,
    );
    expect(decision.action).toBe('requeue');
    expect(decision.copy?.settledEventPending).toBeUndefined();
  });

  it('another copy took the entry over after a 201: the delivery is carried, never acknowledged as delivered here', () => {
    const decision = afterLedgerFailure(answered(201), 'conflict', ctx, EVENT_TOKEN);
    expect(decision.action).toBe('requeue');
    expect(decision.copy?.carry?.result).toMatchObject({ status: 201, uuid: 'uuid-201' });
    expect(decision.facts.detail).toMatch(/took the ledger entry over/);
  });

  it.each([400, 409, 503])(
    'another copy took the entry over after a %i: handed over, acknowledged as a retry, not as what this attempt saw',
    (status) => {
      const decision = afterLedgerFailure(answered(status), 'conflict', ctx, EVENT_TOKEN);
      expect(decision.action).toBe('acknowledge');
      expect(decision.outcome).toEqual({ type: 'retry', delaySeconds: 0, cause: 'handed_over' });
      expect(decision.settle).toBeUndefined();
    },
  );

  it('a transport failure met by a conflict is handed over too (the taker counted this attempt lost already)', () => {
    const decision = attempted(transport('timeout'), []);
    expect(afterLedgerFailure(decision, 'conflict', ctx).outcome).toMatchObject({ cause: 'handed_over' });
  });

  it('a step after the settle failed: the copy holds the token this record held, or none for a replay', () => {
    const settled = answered(201);
    expect(afterSettledStepFailure(settled, 'InternalException', ctx, EVENT_TOKEN).copy).toEqual({
      settledEventPending: EVENT_TOKEN,
    });
    expect(afterSettledStepFailure(settled, 'InternalException', ctx, undefined).copy).toEqual({
      settledEventPending: undefined,
    });
  });

  it('a carried answer on a copy keeps its shape when its own settle fails again', () => {
    const carried: CarriedAnswer = {
      token: ATTEMPT_TOKEN,
      result: response(201, { uuid: 'uuid-201' }),
      last_status: 201,
    };
    const decision = decideRecord(
      context({ carried }),
      { stage: 'carried', job: job(), entry: open, carried, lostAttempt: false },
      ctx,
    );
    expect(decision.outcome).toEqual({ type: 'delivered', uuid: 'uuid-201' });
    const again = afterLedgerFailure(
      decision,
      { errorName: 'ThrottlingException' },
      ctx,
      'second-event-token',
    );
    expect(again.copy).toMatchObject({
      carry: { token: ATTEMPT_TOKEN },
      settledEventPending: 'second-event-token',
    });
  });

  it("a carried answer, once written, is not carried on by the record's retry copy", () => {
    const carried: CarriedAnswer = { token: ATTEMPT_TOKEN, result: response(503), last_status: 503 };
    const decision = decideRecord(
      context({ carried, receiveCount: 50 }),
      { stage: 'carried', job: job(), entry: open, carried, lostAttempt: false },
      ctx,
    );
    expect(decision.action).toBe('requeue');
    expect(decision.settle?.entry).toBe(open);
    expect(decision.copy?.carry).toBeNull();
  });

  it("a claim whose write failed is carried by the copy: beside the record's used answer, or with the chain's earlier claims", () => {
    expect(carryingClaim(undefined, 'c-2')).toEqual({ token: 'c-2' });
    expect(carryingClaim({ token: 'c-1', also: ['c-0'] }, 'c-2')).toEqual({
      token: 'c-2',
      also: ['c-1', 'c-0'],
    });
    const answered: CarriedAnswer = {
      token: ATTEMPT_TOKEN,
      result: response(429),
      last_status: 429,
      also: ['c-1'],
    };
    expect(carryingClaim(answered, 'c-2')).toEqual({ ...answered, also: ['c-2', 'c-1'] });
    const long = Array.from({ length: 40 }, (_, i) => `c-${i}`);
    expect(carryingClaim({ ...answered, also: long }, 'new').also).toHaveLength(CLAIM_TOKENS_CARRIED - 1);
    expect(carryingClaim({ token: 'old', also: long }, 'new').also).toHaveLength(CLAIM_TOKENS_CARRIED - 1);
  });

  it('a carried 201 for an attempt counted lost keeps naming that attempt when its settle fails again, not the later claim the entry holds', () => {
    const carried: CarriedAnswer = {
      token: ATTEMPT_TOKEN,
      result: response(201, { uuid: 'uuid-201' }),
      last_status: 201,
    };
    const later = ledgerEntry({
      status: 'dead_lettered',
      attempt_open: false,
      attempt_token: 'later-claim',
      lost_attempt_tokens: [ATTEMPT_TOKEN],
    });
    const decision = decideRecord(
      context({ carried }),
      { stage: 'carried', job: job(), entry: later, carried, lostAttempt: true },
      ctx,
    );
    expect(decision.outcome).toEqual({ type: 'delivered', uuid: 'uuid-201' });
    for (const failure of [{ errorName: 'ThrottlingException' }, 'conflict'] as const) {
      expect(afterLedgerFailure(decision, failure, ctx).copy?.carry).toMatchObject({
        token: ATTEMPT_TOKEN,
        result: { status: 201, uuid: 'uuid-201' },
      });
    }
  });
});

describe('a deferral (no pacing room, or a 429 wait)', () => {
  it('is retried after the delay its observation found inside the deadline, even once the deadline has passed: nothing was written to the ledger for a dead letter', () => {
    // The job's deadline passed between the observation and the decision (a later clock, another jitter).
    const expiring = job({ expires_at: new Date(T0 + 1_000).toISOString() });
    const decision = decideRecord(
      context(),
      { stage: 'deferred', job: expiring, retryInMs: 500, delaySeconds: 3 },
      ctx,
    );
    expect(decision.action).not.toBe('dead_letter');
    expect(decision.outcome).toEqual({ type: 'retry', delaySeconds: 3, cause: 'deferred' });
    expect(decision.settle).toBeUndefined();
  });
});

describe('a copy that finds the job’s attempt held by another copy (in_flight)', () => {
  const LEASE_MS = 200_000;
  function inFlight(openForMs: number, receiveCount = 1): Decision {
    const entry = ledgerEntry({
      status: 'in_progress',
      attempt_open: true,
      attempt_started_at: ctx.now - openForMs,
    });
    const until = ctx.now - openForMs + LEASE_MS;
    return decideRecord(
      context({ receiveCount }),
      { stage: 'gated', job: job(), claim: { kind: 'in_flight', entry, until } },
      ctx,
    );
  }

  it('is hidden for a short look again, not until the lease ends: an attempt usually settles within a request', () => {
    expect(inFlight(1_000)).toMatchObject({
      action: 'hide',
      delaySeconds: IN_FLIGHT_RECHECK_SECONDS,
      outcome: { type: 'retry', cause: 'in_flight' },
    });
  });

  it('waits as long as the attempt has been open so far: the looks double, a handful per lease', () => {
    expect(inFlight(40_000).delaySeconds).toBe(40);
    expect(inFlight(80_000).delaySeconds).toBe(80);
  });

  it('never waits past the lease’s end and the look after it, when the attempt has settled or is lost', () => {
    // Open 150 s of a 200 s lease: 50 s left, then the 5 s look.
    expect(inFlight(150_000).delaySeconds).toBe(50 + IN_FLIGHT_RECHECK_SECONDS);
  });

  it('becomes a fresh copy once the record was received half maxReceiveCount times, as every retry', () => {
    const decision = inFlight(1_000, requeueAfterReceives(ctx.config));
    expect(decision.action).toBe('requeue');
  });

  it('scales its shortest look with the time scale (whole seconds, at least 1)', () => {
    const scaledCtx = { ...ctx, config: { ...senderConfig(), timeScale: 30 } };
    expect(
      inFlightRecheckSeconds(
        { entry: ledgerEntry({ attempt_started_at: ctx.now }), until: ctx.now + LEASE_MS },
        scaledCtx,
      ),
    ).toBe(1);
  });
});
