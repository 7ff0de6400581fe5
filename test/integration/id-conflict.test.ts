/**
 * A message that changes (docs/contract.md, "When a message changes"): a second body under a job's id is refused
 * `id_conflict` and never sent; the version that holds the id is untouched; the refused version is named in the
 * dead letter's `detail` and noted on the ledger entry for `relay job ID`, without the message or the recipient.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fingerprintLabel, jobFingerprint, validateJob } from '#shared/job.ts';
import { DLQ_ATTRIBUTE } from '#shared/sqs/attributes.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { attr, type Harness, startHarness } from '#test/helpers/relay-harness.ts';

const JOB_ID = 'cms-48213-reminder-1';
const AT_NINE = 'Reminder: you have court on Dec 3 at 9:00 AM, Room 4B.';
const MOVED = 'Change: your hearing on Dec 3 moved to 9:30 AM, Room 4B.';
const RECIPIENT = '+15551234567';
let h: Harness;

afterEach(async () => {
  await h?.close();
});

const version = (content: string) => jobBody({}, { to: RECIPIENT, content });
const fingerprint = (job: unknown) => fingerprintLabel(jobFingerprint(validateJob(job)));

describe('the same id with a changed body', () => {
  it('the refused version is dead-lettered id_conflict, unsent, with a detail naming both versions, when and how to send it', async () => {
    h = await startHarness();
    await h.enqueue(version(AT_NINE));
    await h.invoke();
    const moved = version(MOVED);
    await h.enqueue(moved);

    await h.invoke();

    expect(h.sends()).toHaveLength(1);
    const [letter, ...rest] = await h.drainDeadLetters();
    expect(rest).toEqual([]);
    expect(attr(letter as never, DLQ_ATTRIBUTE.reason)).toBe('id_conflict');
    const detail = attr(letter as never, DLQ_ATTRIBUTE.detail) ?? '';
    const entry = await h.ledger().get(JOB_ID);
    expect(detail).toBe(
      `this version (body ${fingerprint(moved)}) was refused at ${new Date(entry?.refused_at ?? 0).toISOString()}, ` +
        `not sent: the id ${JOB_ID} is held by a version with a different body (body ${fingerprint(version(AT_NINE))}, ` +
        `delivered); give each version of a message its own id: send this version under a new id (e.g. ${JOB_ID}-v2); ` +
        'a redrive only conflicts again',
    );
  });

  it('the version that holds the id stays delivered with its uuid; the entry notes the refused body and its time', async () => {
    h = await startHarness();
    await h.enqueue(version(AT_NINE));
    await h.invoke();
    const before = await h.ledger().get(JOB_ID);
    const moved = version(MOVED);
    await h.enqueue(moved);

    await h.invoke();

    const after = await h.ledger().get(JOB_ID);
    expect(after).toMatchObject({
      status: 'delivered',
      uuid: before?.uuid,
      version: before?.version,
      body_hash: before?.body_hash,
      refused_count: 1,
      refused_body_hash: jobFingerprint(validateJob(moved)),
    });
    expect(after?.refused_at).toEqual(expect.any(Number));
  });

  it('neither the dead letter attributes nor the ledger entry hold the message text or the recipient', async () => {
    h = await startHarness();
    await h.enqueue(version(AT_NINE));
    await h.invoke();
    await h.enqueue(version(MOVED));
    await h.invoke();

    const [letter] = await h.drainDeadLetters();
    const attributes = JSON.stringify(letter?.MessageAttributes ?? {});
    const entry = JSON.stringify(await h.ledger().get(JOB_ID));
    for (const text of [attributes, entry]) {
      expect(text).not.toContain('9:30');
      expect(text).not.toContain('5551234567');
    }
  });

  it("a refusal noted while the holding version has an attempt open survives that attempt's settle", async () => {
    h = await startHarness();
    const ledger = h.ledger();
    const now = Date.now();
    const claim = await ledger.claim({
      jobId: JOB_ID,
      bodyHash: 'at-nine',
      messageId: 'm-1',
      now,
      leaseUntil: now + 60_000,
    });
    if (claim.kind !== 'claimed') throw new Error(`expected a claim, got ${claim.kind}`);
    const refused = await ledger.claim({
      jobId: JOB_ID,
      bodyHash: 'moved-to-930',
      messageId: 'm-2',
      now: now + 1,
      leaseUntil: now + 60_000,
    });
    expect(refused.kind).toBe('conflict');

    const settled = await ledger.settle({
      entry: claim.entry,
      now: now + 2,
      outcome: { type: 'delivered', uuid: 'uuid-1' },
    });

    expect(settled.kind).toBe('written');
    expect(await ledger.get(JOB_ID)).toMatchObject({
      status: 'delivered',
      uuid: 'uuid-1',
      body_hash: 'at-nine',
      refused_count: 1,
      refused_body_hash: 'moved-to-930',
      refused_at: now + 1,
    });
  });

  it('the next claim of the holding version is made as before and keeps the note', async () => {
    h = await startHarness();
    const ledger = h.ledger();
    const now = Date.now();
    const first = await ledger.claim({
      jobId: JOB_ID,
      bodyHash: 'at-nine',
      messageId: 'm-1',
      now,
      leaseUntil: now + 1,
    });
    if (first.kind !== 'claimed') throw new Error(`expected a claim, got ${first.kind}`);
    await ledger.settle({
      entry: first.entry,
      now: now + 1,
      outcome: { type: 'retry', delaySeconds: 1, cause: 'server_error' },
    });
    await ledger.claim({
      jobId: JOB_ID,
      bodyHash: 'moved-to-930',
      messageId: 'm-2',
      now: now + 2,
      leaseUntil: now + 3,
    });

    const again = await ledger.claim({
      jobId: JOB_ID,
      bodyHash: 'at-nine',
      messageId: 'm-1',
      now: now + 2_000,
      leaseUntil: now + 60_000,
    });

    expect(again.kind).toBe('claimed');
    expect(await ledger.get(JOB_ID)).toMatchObject({ status: 'in_progress', refused_count: 1 });
  });
});

describe('how long the ledger keeps a refused version in mind', () => {
  it("a refusal moves the entry's expiration to ledgerTtlDays after it, so its dead letter never outlives the entry", async () => {
    h = await startHarness();
    const ledger = h.ledger();
    const now = Date.now();
    const first = await ledger.claim({
      jobId: JOB_ID,
      bodyHash: 'at-nine',
      messageId: 'm-1',
      now,
      leaseUntil: now + 60_000,
    });
    if (first.kind !== 'claimed') throw new Error(`expected a claim, got ${first.kind}`);
    await ledger.settle({ entry: first.entry, now, outcome: { type: 'delivered', uuid: 'uuid-1' } });
    const settled = await ledger.get(JOB_ID);
    const ttlSeconds = (settled?.expiration ?? 0) - Math.floor(now / 1000);
    const tenDaysLater = now + 10 * 86_400_000;

    await ledger.claim({
      jobId: JOB_ID,
      bodyHash: 'moved-to-930',
      messageId: 'm-2',
      now: tenDaysLater,
      leaseUntil: tenDaysLater + 60_000,
    });

    expect(await ledger.get(JOB_ID)).toMatchObject({
      refused_count: 1,
      version: settled?.version,
      expiration: Math.floor(tenDaysLater / 1000) + ttlSeconds,
    });
  });
});
