import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JobValidationError } from '#shared/errors.ts';
import { JOB_LIMITS, jobFingerprint, parseJob, serializeMessage } from '#shared/job.ts';
import { jobBody } from '#test/helpers/factories.ts';

// Seeded: a failure reproduces with the same inputs on every machine.
const RUNS = { seed: 20261125, numRuns: 300 };

const FIELDS = [
  'body',
  'id',
  'message',
  'message.to',
  'message.content',
  'message.subject',
  'message.skip_duplicate',
  'message.scheduled_at',
  'agency_reference',
  'expires_at',
];

/** Parses, and returns the validation error's field, or 'ok'; any other exception fails the property. */
function verdict(body: string): string {
  try {
    parseJob(body);
    return 'ok';
  } catch (error) {
    if (error instanceof JobValidationError) return error.field;
    throw error;
  }
}

const wrongType = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 3 }),
);

/** The text of any JSON number (RFC 8259 grammar), often too long or too precise for a double. */
const jsonNumberText = fc
  .tuple(
    fc.constantFrom('', '-'),
    fc.oneof(fc.constant('0'), fc.stringMatching(/^[1-9]\d{0,30}$/)),
    fc.option(fc.stringMatching(/^\.\d{1,30}$/), { nil: '' }),
    fc.option(fc.stringMatching(/^[eE][+-]?\d{1,3}$/), { nil: '' }),
  )
  .map((parts) => parts.join(''));

describe('job validation over arbitrary input (property-based)', () => {
  it('any text at all is either a job or a JobValidationError naming a known field', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => {
        expect(['ok', ...FIELDS]).toContain(verdict(text));
      }),
      RUNS,
    );
  });

  it('any JSON value is either a job or a JobValidationError naming a known field', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        expect(['ok', ...FIELDS]).toContain(verdict(JSON.stringify(value)));
      }),
      RUNS,
    );
  });

  it.each([
    ['id', (v: unknown) => jobBody({ id: v })],
    ['message.to', (v: unknown) => jobBody({}, { to: v })],
    ['message.content', (v: unknown) => jobBody({}, { content: v })],
    ['message.subject', (v: unknown) => jobBody({}, { subject: v })],
    [
      'message.skip_duplicate',
      (v: unknown) => jobBody({}, { skip_duplicate: v === true || v === false ? 'yes' : v }),
    ],
    ['message.scheduled_at', (v: unknown) => jobBody({}, { scheduled_at: v })],
    ['agency_reference', (v: unknown) => jobBody({ agency_reference: v })],
    ['expires_at', (v: unknown) => jobBody({ expires_at: v })],
  ])('a wrong type in %s is rejected naming that field', (field, build) => {
    fc.assert(
      fc.property(wrongType, (value) => {
        expect(verdict(JSON.stringify(build(value)))).toBe(field);
      }),
      RUNS,
    );
  });

  it('a message that is not an object is rejected naming message', () => {
    fc.assert(
      fc.property(wrongType, (value) => {
        expect(verdict(JSON.stringify(jobBody({ message: value })))).toBe('message');
      }),
      RUNS,
    );
  });

  it.each([
    ['id', 129, (s: string) => jobBody({ id: s })],
    ['message.content', JOB_LIMITS.contentMaxChars + 1, (s: string) => jobBody({}, { content: s })],
    ['message.subject', JOB_LIMITS.subjectMaxChars + 1, (s: string) => jobBody({}, { subject: s })],
    [
      'agency_reference',
      JOB_LIMITS.agencyReferenceMaxChars + 1,
      (s: string) => jobBody({ agency_reference: s }),
    ],
  ])('an over-long %s is rejected naming that field', (field, min, build) => {
    fc.assert(
      fc.property(fc.integer({ min, max: min + 3000 }), (length) => {
        expect(verdict(JSON.stringify(build('a'.repeat(length))))).toBe(field);
      }),
      { ...RUNS, numRuns: 50 },
    );
  });

  it('__proto__, constructor and prototype keys anywhere never change a prototype and pass through as data', () => {
    const key = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty');
    fc.assert(
      fc.property(fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }), { minKeys: 1 }), (extra) => {
        // Built as text: a JS object literal would treat "__proto__" specially, JSON.parse does not.
        const inner = Object.entries(extra)
          .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
          .join(',');
        const body = `{"id":"p-1","message":{"to":"+15551234567","content":"Hi",${inner}},${inner}}`;
        const job = parseJob(body);
        expect(Object.getPrototypeOf(job.message)).toBe(Object.prototype);
        for (const k of Object.keys(extra)) expect(Object.hasOwn(job.message, k)).toBe(true);
        expect(JSON.parse(JSON.stringify(job.message))).toMatchObject({ to: '+15551234567', content: 'Hi' });
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        expect(Object.prototype.toString.call([])).toBe('[object Array]');
      }),
      RUNS,
    );
  });

  it('every valid job is accepted and its message passed through unchanged', () => {
    const validJob = fc.record({
      id: fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
      message: fc.record(
        {
          to: fc.stringMatching(/^\+1\d{10}$/),
          content: fc.string({ minLength: 1, maxLength: 2000 }).filter((s) => s.trim() !== ''),
          subject: fc.string({ minLength: 1, maxLength: 255 }).filter((s) => s.trim() !== ''),
          channel: fc.constantFrom('text', 'voice', 'push'),
          skip_duplicate: fc.boolean(),
          language: fc.constantFrom('en', 'es'),
        },
        { requiredKeys: ['to', 'content'] },
      ),
    });
    fc.assert(
      fc.property(validJob, (raw) => {
        const job = parseJob(JSON.stringify(raw));
        expect(job.id).toBe(raw.id);
        expect({ ...job.message }).toEqual(raw.message);
      }),
      RUNS,
    );
  });

  it('a byte order mark before any text changes nothing about the verdict', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
        ),
        (text) => {
          expect(verdict(`\uFEFF${text}`)).toBe(verdict(text));
        },
      ),
      RUNS,
    );
  });

  it('any JSON number in an unknown field reaches the request body exactly as written', () => {
    fc.assert(
      fc.property(jsonNumberText, (text) => {
        const job = parseJob(`{"id":"n-1","message":{"to":"+15551234567","content":"Hi","n":${text}}}`);
        expect(serializeMessage(job)).toBe(`{"to":"+15551234567","content":"Hi","n":${text}}`);
      }),
      RUNS,
    );
  });

  it("two jobs that differ only in a number's text have different fingerprints", () => {
    const fingerprint = (text: string) =>
      jobFingerprint(parseJob(`{"id":"n-1","message":{"to":"+15551234567","content":"Hi","n":${text}}}`));
    fc.assert(
      fc.property(jsonNumberText, jsonNumberText, (a, b) => {
        expect(fingerprint(a) === fingerprint(b)).toBe(a === b);
      }),
      RUNS,
    );
  });
});
