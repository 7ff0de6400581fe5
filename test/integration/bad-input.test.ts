import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DLQ_ATTRIBUTE, SQS_MAX_MESSAGE_BYTES } from '#shared/sqs/settle.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { attr, type Harness, startHarness } from '#test/helpers/relay-harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const FIELD =
  /^(body|id|message|message\.(to|content|subject|skip_duplicate|scheduled_at)|agency_reference|expires_at):/;

// SQS refuses bodies with characters outside this set, so no such body can ever reach the relay.
const NOT_SQS_TEXT = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/gu;

/** Bodies that must be dead-lettered invalid_job: garbage, wrong types, over-long fields, hostile keys. */
const badBody = fc.oneof(
  fc
    .string({ unit: 'binary', maxLength: 200 })
    .map((s) => s.replace(NOT_SQS_TEXT, '?'))
    .filter((s) => s.trim() !== ''),
  fc
    .jsonValue({ maxDepth: 3 })
    .map((v) => JSON.stringify(v))
    .filter((s) => !s.includes('"message"')),
  fc
    .constantFrom<unknown>(1, true, null, [], { text: 'x' })
    .map((v) => JSON.stringify(jobBody({}, { content: v }))),
  fc.integer({ min: 2001, max: 6000 }).map((n) => JSON.stringify(jobBody({}, { content: 'c'.repeat(n) }))),
  fc.constant('{"id":"proto","__proto__":{"polluted":true},"message":{"to":"+15551234567","__proto__":1}}'),
  fc.constant(
    '{"id":"ctor","constructor":{"prototype":{"polluted":true}},"message":{"content":"no recipient"}}',
  ),
);

it('arbitrary bad bodies are each dead-lettered invalid_job naming the field; the handler never throws; good neighbours are delivered', async () => {
  const bad = fc.sample(badBody, { seed: 20261125, numRuns: 40 });
  // One body right at the SQS size limit: its dead-letter attributes must shrink to fit, the body must not.
  const huge = JSON.stringify(jobBody({ id: 'huge' }, { content: '' }));
  const padding = SQS_MAX_MESSAGE_BYTES - Buffer.byteLength(huge) - 40;
  bad.push(huge.replace('"content":""', `"content":"${'x'.repeat(padding)}"`));
  const good = Array.from({ length: 12 }, (_, i) =>
    JSON.stringify(jobBody({ id: `good-${i}` }, { content: `Reminder ${i}` })),
  );
  const bodies = fc.sample(fc.shuffledSubarray([...bad, ...good], { minLength: bad.length + good.length }), {
    seed: 7,
    numRuns: 1,
  })[0] as string[];

  for (const body of bodies) await h.enqueue(body);
  let polls = 0;
  for (;;) {
    const result = await h.invoke();
    if (result.received === 0) break;
    expect(result.error).toBeUndefined();
    polls += 1;
  }

  expect(polls).toBeGreaterThanOrEqual(Math.ceil(bodies.length / 10));
  expect(h.sim.messages.map((m) => m.body.content).sort()).toEqual(
    good.map((_, i) => `Reminder ${i}`).sort(),
  );
  const dead = await h.drainDeadLetters();
  expect(dead.map((m) => m.Body).sort()).toEqual([...bad].sort());
  for (const message of dead) {
    expect(attr(message, DLQ_ATTRIBUTE.reason)).toBe('invalid_job');
    const detail = attr(message, DLQ_ATTRIBUTE.detail);
    if (message.Body?.startsWith('{"id":"huge"')) continue;
    expect(detail).toMatch(FIELD);
  }
  const hugeDead = dead.find((m) => m.Body?.startsWith('{"id":"huge"'));
  expect(Buffer.byteLength(hugeDead?.Body ?? '')).toBeGreaterThan(SQS_MAX_MESSAGE_BYTES - 100);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect((await h.inspect()).inflight).toEqual([]);
});

it("a scheduled_at or expires_at without a time zone is dead-lettered invalid_job, unsent, with the same message as relay send's", async () => {
  await h.drainDeadLetters();
  const sendsBefore = h.sends().length;
  await h.enqueue(jobBody({ id: 'no-zone-expires', expires_at: '2035-12-03 09:00:00' }));
  await h.enqueue(jobBody({ id: 'no-zone-scheduled' }, { scheduled_at: '2035-12-01T10:00:00' }));
  await h.runUntilQuiet(4);

  const forms =
    'expected an ISO 8601 date-time with its time zone: the local time with its UTC offset, such as ' +
    '2027-12-01T10:00:00-05:00, or UTC with a Z, such as 2027-12-01T15:00:00Z; got a time without a time zone, ' +
    'which the relay cannot place: give its offset or Z';
  const letters = (await h.drainDeadLetters()).map((m) => [
    attr(m, DLQ_ATTRIBUTE.jobId),
    attr(m, DLQ_ATTRIBUTE.reason),
    attr(m, DLQ_ATTRIBUTE.detail),
  ]);
  expect(letters.sort()).toEqual([
    ['no-zone-expires', 'invalid_job', `expires_at: ${forms}`],
    ['no-zone-scheduled', 'invalid_job', `message.scheduled_at: ${forms}`],
  ]);
  expect(h.sends()).toHaveLength(sendsBefore);
});
