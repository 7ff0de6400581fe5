import { describe, expect, it } from 'vitest';
import { JobValidationError } from '#shared/errors.ts';
import {
  invalidIdLabel,
  jobFingerprint,
  parseJob,
  peekJobId,
  serializeMessage,
  toEcourtdateTimestamp,
  validateJob,
} from '#shared/job.ts';
import { jobBody } from '#test/helpers/factories.ts';
import { clientHarness } from '#test/helpers/unit-factories.ts';

const CONTENT = 'Reminder: you have court on Dec 3 at 9:00 AM, Room 4B.';
const RECIPIENT = '+15551234567';

/** Runs `validate` and returns the JobValidationError it must raise; fails the test if it raises none. */
function rejectionOf(raw: unknown, validate: (raw: never) => unknown = validateJob): JobValidationError {
  try {
    validate(raw as never);
  } catch (error) {
    if (error instanceof JobValidationError) return error;
    throw error;
  }
  throw new Error('expected the job to be rejected, but it was accepted');
}

function expectRejected(raw: unknown, field: string): JobValidationError {
  const error = rejectionOf(raw);
  expect(error.field).toBe(field);
  expect(error.message.startsWith(`${field}: `)).toBe(true);
  return error;
}

/** A string of `count` code points, each two UTF-16 units long. */
function emoji(count: number): string {
  return '📅'.repeat(count);
}

describe('parseJob / validateJob: the send job contract', () => {
  it('accepts the example job of docs/contract.md and maps it to a SendJob', () => {
    const parsed = parseJob(
      JSON.stringify(jobBody({ agency_reference: 'county-a', expires_at: '2026-12-03T09:00:00Z' })),
    );

    expect(parsed).toEqual({
      id: 'cms-48213-reminder-1',
      message: { to: RECIPIENT, content: CONTENT, subject: 'Court reminder', channel: 'text' },
      agencyReference: 'county-a',
      expiresAt: Date.parse('2026-12-03T09:00:00Z'),
      warnings: [],
    });
  });

  it('rejects a body that is not JSON, naming the field "body"', () => {
    const error = rejectionOf('{"id": "a-1", "message": ', parseJob);

    expect(error.field).toBe('body');
    expect(error.message).toBe('body: expected a JSON object, got text that is not valid JSON');
  });

  it.each([
    ['an array', []],
    ['null', null],
    ['a string', 'cms-1'],
  ])('rejects a body that is %s, naming the field "body"', (_what, raw) => {
    expectRejected(raw, 'body');
  });

  describe('id', () => {
    it('is required', () => {
      const { id: _dropped, ...body } = jobBody();
      expectRejected(body, 'id');
    });

    it('must be a string', () => {
      expect(expectRejected(jobBody({ id: 48213 }), 'id').message).toContain('got a number');
    });

    it('must not be empty', () => {
      expectRejected(jobBody({ id: '' }), 'id');
    });

    it('may be 128 characters long but not 129', () => {
      expect(validateJob(jobBody({ id: 'a'.repeat(128) })).id).toHaveLength(128);
      expect(expectRejected(jobBody({ id: 'a'.repeat(129) }), 'id').message).toContain('got 129 characters');
    });

    it.each(['cms 48213', 'cms/48213', 'cms#1', 'réminder', 'a\nb'])(
      'rejects characters outside [A-Za-z0-9._:-]: %j',
      (id) => {
        expectRejected(jobBody({ id }), 'id');
      },
    );

    it('accepts every allowed character class', () => {
      expect(validateJob(jobBody({ id: 'CMS.48213_reminder:1-b' })).id).toBe('CMS.48213_reminder:1-b');
    });
  });

  describe('message', () => {
    it('is required', () => {
      const { message: _dropped, ...body } = jobBody();
      expectRejected(body, 'message');
    });

    it.each([
      ['a string', 'hello'],
      ['an array', [{ to: RECIPIENT, content: CONTENT }]],
      ['null', null],
    ])('must be an object, not %s', (_what, message) => {
      expectRejected(jobBody({ message }), 'message');
    });

    it.each(['to', 'content'])('requires message.%s', (field) => {
      const body = jobBody();
      const { [field]: _dropped, ...message } = body.message as Record<string, unknown>;
      expectRejected({ ...body, message }, `message.${field}`);
    });

    it.each(['to', 'content'])('rejects an empty or blank message.%s', (field) => {
      expectRejected(jobBody({}, { [field]: '' }), `message.${field}`);
      expectRejected(jobBody({}, { [field]: '  \n ' }), `message.${field}`);
    });

    it.each(['to', 'content'])('rejects a message.%s that is not a string', (field) => {
      expectRejected(jobBody({}, { [field]: 5551234567 }), `message.${field}`);
    });

    it('accepts content of exactly 2000 characters', () => {
      expect(validateJob(jobBody({}, { content: 'x'.repeat(2000) })).message.content).toHaveLength(2000);
    });

    it('rejects content of 2001 characters, saying how many came', () => {
      const error = expectRejected(jobBody({}, { content: 'x'.repeat(2001) }), 'message.content');
      expect(error.message).toBe('message.content: expected at most 2000 characters, got 2001');
    });

    it('counts content in code points: 2000 emoji (4000 UTF-16 units) pass', () => {
      const content = emoji(2000);
      expect(content.length).toBe(4000);
      expect(validateJob(jobBody({}, { content })).message.content).toBe(content);
    });

    it('counts content in code points: 2001 emoji fail', () => {
      const error = expectRejected(jobBody({}, { content: emoji(2001) }), 'message.content');
      expect(error.message).toContain('got 2001');
    });

    it('accepts a subject of 255 characters and rejects one of 256', () => {
      expect(validateJob(jobBody({}, { subject: 's'.repeat(255) })).message.subject).toHaveLength(255);
      expectRejected(jobBody({}, { subject: 's'.repeat(256) }), 'message.subject');
    });

    it('rejects a subject that is not a string', () => {
      expectRejected(jobBody({}, { subject: 42 }), 'message.subject');
    });

    it('accepts skip_duplicate true or false', () => {
      expect(validateJob(jobBody({}, { skip_duplicate: true })).message.skip_duplicate).toBe(true);
      expect(validateJob(jobBody({}, { skip_duplicate: false })).message.skip_duplicate).toBe(false);
    });

    it.each([['true'], [1], [null]])('rejects skip_duplicate %j: it must be a boolean', (value) => {
      expectRejected(jobBody({}, { skip_duplicate: value }), 'message.skip_duplicate');
    });

    it('passes unknown fields through unchanged, so new eCourtDate fields need no release', () => {
      const extra = {
        channel: 'voice',
        template: 'court-reminder',
        language: 'es',
        custom_fields: { room: '4B', judges: ['Ann', 'Ben'] },
        future_flag: null,
      };

      const { message } = validateJob(jobBody({}, extra));

      expect(message).toEqual({ to: RECIPIENT, content: CONTENT, subject: 'Court reminder', ...extra });
    });

    it('keeps a "__proto__" key of the JSON as an own data property without changing the prototype', () => {
      const body = `{"id":"a-1","message":{"to":"${RECIPIENT}","content":"Hi","__proto__":{"polluted":"yes"}}}`;

      const { message } = parseJob(body);

      expect(Object.getPrototypeOf(message)).toBe(Object.prototype);
      expect(Object.hasOwn(message, '__proto__')).toBe(true);
      expect(Object.getOwnPropertyDescriptor(message, '__proto__')?.value).toEqual({ polluted: 'yes' });
      expect((message as Record<string, unknown>).polluted).toBeUndefined();
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(JSON.parse(JSON.stringify(message))).toEqual(JSON.parse(body).message);
    });
  });

  describe('message.scheduled_at', () => {
    it.each([
      ['2026-12-01T10:00:00-05:00', '2026-12-01 15:00:00'],
      ['2026-12-01T15:00:00Z', '2026-12-01 15:00:00'],
      ['2026-12-01T15:00:00.750Z', '2026-12-01 15:00:00'],
      ['2026-12-01T20:30:00+05:30', '2026-12-01 15:00:00'],
      ['2026-12-01T15:00Z', '2026-12-01 15:00:00'],
      ['2026-12-31T22:00:00-05:00', '2027-01-01 03:00:00'],
    ])('converts ISO %s to UTC %s', (input, expected) => {
      expect(validateJob(jobBody({}, { scheduled_at: input })).message.scheduled_at).toBe(expected);
    });

    it.each(['2026-02-30T10:00:00Z', '2026-02-30 10:00:00', '2026-13-01T10:00:00Z', '2026-04-31T10:00:00Z'])(
      'rejects the impossible date %s',
      (scheduled_at) => {
        expectRejected(jobBody({}, { scheduled_at }), 'message.scheduled_at');
      },
    );

    it.each([['tomorrow'], [1796137200000], ['']])('rejects %j', (scheduled_at) => {
      expectRejected(jobBody({}, { scheduled_at }), 'message.scheduled_at');
    });

    it('leaves a message without scheduled_at without one', () => {
      expect(Object.hasOwn(validateJob(jobBody()).message, 'scheduled_at')).toBe(false);
    });
  });

  describe('agency_reference', () => {
    it('is optional', () => {
      expect(validateJob(jobBody()).agencyReference).toBeUndefined();
    });

    it('is read when it is a string', () => {
      expect(validateJob(jobBody({ agency_reference: 'county-a' })).agencyReference).toBe('county-a');
    });

    it.each([[42], [null], [''], [{ id: 'county-a' }]])('rejects %j', (agency_reference) => {
      expectRejected(jobBody({ agency_reference }), 'agency_reference');
    });

    it('rejects one over 128 characters', () => {
      expectRejected(jobBody({ agency_reference: 'a'.repeat(129) }), 'agency_reference');
    });
  });

  describe('expires_at', () => {
    it('is optional', () => {
      expect(validateJob(jobBody()).expiresAt).toBeUndefined();
    });

    it('is read as epoch ms from ISO 8601 with a zone', () => {
      expect(validateJob(jobBody({ expires_at: '2026-12-03T04:00:00-05:00' })).expiresAt).toBe(
        Date.parse('2026-12-03T09:00:00Z'),
      );
    });

    it('accepts 29 February in a leap year', () => {
      expect(validateJob(jobBody({ expires_at: '2028-02-29T09:00:00Z' })).expiresAt).toBe(
        Date.UTC(2028, 1, 29, 9),
      );
    });

    it.each(['2026-02-29T09:00:00Z', '2026-06-31T09:00:00Z', '2026-12-03T25:00:00Z'])(
      'rejects the impossible instant %s',
      (expires_at) => {
        expectRejected(jobBody({ expires_at }), 'expires_at');
      },
    );

    it.each([['2026-12-03T09:00:00'], ['2026-12-03'], ['Dec 3, 2026'], [1796288400000], [null]])(
      'rejects %j: not an ISO 8601 date-time with a zone',
      (expires_at) => {
        expectRejected(jobBody({ expires_at }), 'expires_at');
      },
    );
  });

  describe('times without a time zone, in message.scheduled_at and expires_at alike', () => {
    const fields = [
      ['message.scheduled_at', (value: unknown) => jobBody({}, { scheduled_at: value })],
      ['expires_at', (value: unknown) => jobBody({ expires_at: value })],
    ] as const;
    const zoneless = [
      '2027-12-01 10:00:00',
      '2027-12-01T10:00:00',
      '2027-12-01T10:00',
      '2027-12-01 10:00:00.5',
    ];

    it.each(fields.flatMap(([field, body]) => zoneless.map((value) => [field, value, body] as const)))(
      '%s refuses %s and lists the accepted forms',
      (field, value, body) => {
        const error = expectRejected(body(value), field);
        expect(error.message).toBe(
          `${field}: expected an ISO 8601 date-time with its time zone: the local time with its UTC offset, such as ` +
            '2027-12-01T10:00:00-05:00, or UTC with a Z, such as 2027-12-01T15:00:00Z; got a time without a time ' +
            'zone, which the relay cannot place: give its offset or Z',
        );
      },
    );

    it('both fields refuse text that is no date-time with the same list of accepted forms', () => {
      const [scheduled, expires] = fields.map(
        ([field, body]) => expectRejected(body('Dec 1'), field).message,
      );
      expect(scheduled?.replace('message.scheduled_at: ', '')).toBe(expires?.replace('expires_at: ', ''));
      expect(expires).toContain('2027-12-01T10:00:00-05:00');
      expect(expires).toContain('2027-12-01T15:00:00Z');
    });

    it('both fields read a local time with its offset as the same instant', () => {
      const job = validateJob(
        jobBody({ expires_at: '2027-12-01T10:00:00-05:00' }, { scheduled_at: '2027-12-01T10:00:00-05:00' }),
      );
      expect(job.expiresAt).toBe(Date.UTC(2027, 11, 1, 15));
      expect(job.message.scheduled_at).toBe('2027-12-01 15:00:00');
    });

    it.each(['+14:00', '-12:00', '+05:45', '-0930'])(
      'both fields take an offset a time zone has (%s)',
      (offset) => {
        const at = `2027-12-01T10:00:00${offset}`;
        expect(() => validateJob(jobBody({ expires_at: at }, { scheduled_at: at }))).not.toThrow();
      },
    );

    it.each(['+15:00', '-23:59', '-12:30', '+1401'])(
      'both fields refuse an offset no time zone has (%s), naming it',
      (offset) => {
        const at = `2027-12-01T10:00:00${offset}`;
        expect(expectRejected(jobBody({}, { scheduled_at: at }), 'message.scheduled_at').message).toContain(
          `the UTC offset ${offset}, which no time zone has`,
        );
        expect(expectRejected(jobBody({ expires_at: at }), 'expires_at').message).toContain(
          `the UTC offset ${offset}, which no time zone has`,
        );
      },
    );
  });

  it.each([
    ['content too long', jobBody({}, { content: `${CONTENT} ${'x'.repeat(2000)}` })],
    ['content not a string', jobBody({}, { content: [CONTENT] })],
    ['recipient too long', jobBody({}, { to: `${RECIPIENT}${'1'.repeat(320)}` })],
    ['recipient not a string', jobBody({}, { to: { number: RECIPIENT } })],
    ['bad subject', jobBody({}, { subject: CONTENT.repeat(10) })],
    ['bad scheduled_at', jobBody({}, { scheduled_at: CONTENT })],
    ['bad skip_duplicate', jobBody({}, { skip_duplicate: RECIPIENT })],
    ['bad id', jobBody({ id: `${RECIPIENT} ${CONTENT}` })],
    ['bad expires_at', jobBody({ expires_at: CONTENT })],
  ])('never quotes the message text or the recipient in the error (%s)', (_case, raw) => {
    const { message } = rejectionOf(raw);

    expect(message).not.toContain(CONTENT);
    expect(message).not.toContain('Reminder');
    expect(message).not.toContain(RECIPIENT);
    expect(message).not.toContain('5551234567');
  });
});

describe('a byte order mark before the JSON', () => {
  const BOM = '\uFEFF';

  // Regression: the job was dead-lettered invalid_job, and without a job_id attribute.
  it('is ignored by parseJob', () => {
    const body = `${BOM}${JSON.stringify(jobBody())}`;

    expect(parseJob(body).id).toBe('cms-48213-reminder-1');
  });

  it('is ignored by peekJobId, so an invalid job still has its id', () => {
    const body = `${BOM}${JSON.stringify(jobBody({ message: 'not an object' }))}`;

    expect(peekJobId(body)).toBe('cms-48213-reminder-1');
  });

  it('is ignored before a pretty-printed job', () => {
    expect(parseJob(`${BOM}${JSON.stringify(jobBody(), null, 2)}\r\n`).id).toBe('cms-48213-reminder-1');
  });

  it('is accepted only once, at the start: two marks are not JSON', () => {
    const error = rejectionOf(`${BOM}${BOM}${JSON.stringify(jobBody())}`, parseJob);

    expect(error.field).toBe('body');
  });
});

describe('numbers in the message pass through exactly as written', () => {
  const bodyWith = (fields: string) =>
    `{"id":"n-1","message":{"to":"${RECIPIENT}","content":"Hi",${fields}}}`;

  // Regression: 12345678901234567891 reached eCourtDate as 12345678901234567000, and 1.10 as 1.1.
  it.each([
    ['a big integer', '"case_number":12345678901234567891'],
    ['a trailing zero', '"fee":1.10'],
    ['a negative zero', '"offset":-0'],
    ['an exponent', '"weight":1E+2'],
    ['a long fraction', '"ratio":0.1000000000000000055511151231257827'],
    ['a number too large for a double', '"huge":1e400'],
    [
      'numbers nested in objects and arrays',
      '"custom_fields":{"ids":[12345678901234567891,1.10],"n":{"m":2.50}}',
    ],
  ])('keeps %s', (_case, fields) => {
    const job = parseJob(bodyWith(fields));

    expect(serializeMessage(job)).toBe(`{"to":"${RECIPIENT}","content":"Hi",${fields}}`);
  });

  it('keeps ordinary numbers as numbers', () => {
    const { message } = parseJob(bodyWith('"priority":3,"ratio":0.25,"big":9007199254740991'));

    expect(message).toMatchObject({ priority: 3, ratio: 0.25, big: 9007199254740991 });
  });

  it('is what the client POSTs to eCourtDate', async () => {
    const { client, api } = clientHarness();

    await client.send(parseJob(bodyWith('"case_number":12345678901234567891,"fee":1.10')));

    expect(api.sendRequests()[0]?.body).toBe(
      `{"to":"${RECIPIENT}","content":"Hi","case_number":12345678901234567891,"fee":1.10}`,
    );
  });

  it.each([
    ['1.1', '1.10'],
    ['12345678901234567891', '12345678901234567892'],
    ['12345678901234567891', '12345678901234567000'],
    ['100', '1e2'],
  ])('gives %s and %s different fingerprints', (a, b) => {
    expect(jobFingerprint(parseJob(bodyWith(`"n":${a}`)))).not.toBe(
      jobFingerprint(parseJob(bodyWith(`"n":${b}`))),
    );
  });

  it('gives the same fingerprint to the same numbers in another key order and spacing', () => {
    const a = parseJob(bodyWith('"n":1.10,"m":12345678901234567891'));
    const b = parseJob(
      `{ "message": { "m": 12345678901234567891, "content": "Hi", "n": 1.10, "to": "${RECIPIENT}" }, "id": "n-1" }`,
    );

    expect(jobFingerprint(a)).toBe(jobFingerprint(b));
  });

  it.each([
    ['id', '{"id":12345678901234567891,"message":{"to":"+15551234567","content":"Hi"}}'],
    ['message', '{"id":"n-1","message":1.10}'],
    ['message.to', '{"id":"n-1","message":{"to":15551234567890123456,"content":"Hi"}}'],
    ['message.content', '{"id":"n-1","message":{"to":"+15551234567","content":1.10}}'],
    [
      'message.skip_duplicate',
      '{"id":"n-1","message":{"to":"+15551234567","content":"Hi","skip_duplicate":1.0}}',
    ],
    [
      'agency_reference',
      '{"id":"n-1","agency_reference":1e2,"message":{"to":"+15551234567","content":"Hi"}}',
    ],
    ['body', '1.10'],
  ])('still rejects a kept number in %s, naming the field and calling it a number', (field, body) => {
    const error = rejectionOf(body, parseJob);

    expect(error.field).toBe(field);
    expect(error.message).toContain('a number');
  });
});

describe('peekJobId', () => {
  it('reads the id of a job that fails validation elsewhere', () => {
    expect(peekJobId(JSON.stringify(jobBody({ message: 'not an object' })))).toBe('cms-48213-reminder-1');
  });

  it.each([
    ['not JSON', 'id=cms-1'],
    ['no id', '{"message":{}}'],
    ['a malformed id', '{"id":"has spaces"}'],
    ['a JSON array', '[{"id":"cms-1"}]'],
  ])('returns undefined for %s', (_case, body) => {
    expect(peekJobId(body)).toBeUndefined();
  });
});

describe('toEcourtdateTimestamp', () => {
  it('formats epoch ms as UTC YYYY-MM-DD HH:mm:ss, dropping milliseconds', () => {
    expect(toEcourtdateTimestamp(Date.parse('2026-12-01T10:00:00.999-05:00'))).toBe('2026-12-01 15:00:00');
  });
});

describe('validation messages name what is wrong and how to fix it', () => {
  it('a missing id is required, not "got a undefined"', () => {
    const error = expectRejected({ message: { to: RECIPIENT, content: CONTENT } }, 'id');
    expect(error.message).toBe('id: is required');
  });

  it('a value of the wrong type is named as such', () => {
    expect(expectRejected({ id: 7, message: { to: RECIPIENT, content: CONTENT } }, 'id').message).toBe(
      'id: expected a string, got a number',
    );
  });

  it.each([
    ['cms 1', 'a space (U+0020) at position 4'],
    ['cms/1', '"/" (U+002F) at position 4'],
    ['cms\u00e91', 'U+00E9 at position 4'],
  ])('an id with a character the rules refuse (%j) names the character and its position', (id, named) => {
    const error = expectRejected({ id, message: { to: RECIPIENT, content: CONTENT } }, 'id');
    expect(error.message).toBe(
      `id: expected 1-128 characters of A-Z a-z 0-9 . _ : -, got 5 characters with ${named}`,
    );
  });

  it('a whole EventBridge event put on the queue gets the hint to send only its detail', () => {
    const event = {
      source: 'ecourtdate-relay.upstream.staging',
      'detail-type': 'eCourtDate Send Message',
      detail: jobBody(),
    };
    const error = expectRejected(event, 'body');
    expect(error.message).toContain('put only its detail on the queue');
  });

  it('an invalid id is shown masked and clipped in reports, never as "(no id)"', () => {
    expect(invalidIdLabel(JSON.stringify({ id: 'has spaces', message: {} }))).toBe(
      '(invalid id "has spaces")',
    );
    expect(invalidIdLabel(JSON.stringify({ id: 'reminder for +15551234567' }))).not.toContain('5551234567');
    expect(invalidIdLabel(JSON.stringify({ id: 'x'.repeat(60) }))).toBe(`(invalid id "${'x'.repeat(40)}…")`);
    expect(invalidIdLabel('not json')).toBe('(no id)');
    expect(invalidIdLabel(JSON.stringify({ message: {} }))).toBe('(no id)');
  });

  it('a whole EventBridge event put on the queue is named by its detail\'s id, never as "(no id)"', () => {
    const event = { 'detail-type': 'eCourtDate Send Message', detail: { id: 'cms-90001', message: {} } };
    expect(invalidIdLabel(JSON.stringify(event))).toBe(
      '(a whole EventBridge event; its detail\'s id "cms-90001")',
    );
  });
});

describe('channels and recipients: what eCourtDate accepts (docs/contract.md, "The send job")', () => {
  const job = (message: Record<string, unknown>) => ({
    id: 'cms-1',
    message: { content: CONTENT, ...message },
  });

  it.each(['text', 'email', 'voice', 'push'])("accepts eCourtDate's channel %s", (channel) => {
    const to = channel === 'email' ? 'defendant@example.com' : RECIPIENT;
    expect(validateJob(job({ to, channel })).message.channel).toBe(channel);
  });

  it.each([
    ['sms', 'use "text"'],
    ['SMS', 'use "text"'],
    ['e-mail', 'use "email"'],
  ])('refuses the channel %j, naming the one to use', (channel, hint) => {
    const error = expectRejected(job({ to: RECIPIENT, channel }), 'message.channel');
    expect(error.message).toBe(
      `message.channel: expected one of text, email, voice, push (eCourtDate's channels), got "${channel}": ${hint}`,
    );
  });

  it('refuses a channel that is no channel at all', () => {
    expect(expectRejected(job({ to: RECIPIENT, channel: 'fax' }), 'message.channel').message).toMatch(
      /got "fax"$/,
    );
    expect(expectRejected(job({ to: RECIPIENT, channel: 1 }), 'message.channel').message).toMatch(
      /got a number$/,
    );
  });

  it.each(['5551234568', '(555) 123-9004', '555.123.9004', '1-555-123-9004'])(
    'sends a phone number not in E.164 form (%j) as written, with a warning that names the form',
    (to) => {
      const parsed = validateJob(job({ to }));
      expect(parsed.message.to).toBe(to);
      expect(parsed.warnings).toEqual([
        expect.stringMatching(/^message\.to: a phone number not in E\.164 form/),
      ]);
      expect(parsed.warnings.join()).not.toContain(to);
    },
  );

  it.each([RECIPIENT, '+442071838750', 'defendant@example.com'])('has no warning for %j', (to) => {
    expect(validateJob(job({ to })).warnings).toEqual([]);
  });

  it.each(['john', 'defendant@', 'call me', '+1 555 CALL NOW'])(
    'refuses a recipient that is neither a phone number nor an e-mail address (%j), without quoting it',
    (to) => {
      const error = expectRejected(job({ to }), 'message.to');
      expect(error.message).toBe(
        'message.to: expected a phone number (E.164, e.g. +15551234567) or an e-mail address, got text that is neither',
      );
    },
  );

  it('refuses a phone number for channel email, and an e-mail address for text and voice', () => {
    expect(expectRejected(job({ to: RECIPIENT, channel: 'email' }), 'message.to').message).toBe(
      'message.to: channel email needs an e-mail address, got a phone number',
    );
    expect(expectRejected(job({ to: 'a@example.com', channel: 'voice' }), 'message.to').message).toContain(
      'channel voice needs a phone number',
    );
  });

  it('leaves a push recipient to eCourtDate, which does not document its form', () => {
    expect(validateJob(job({ to: 'device-4711', channel: 'push' })).warnings).toEqual([]);
  });
});

describe('jobFingerprint tells a resend from an id conflict', () => {
  const job = (text: string) => parseJob(text);

  it('a byte order mark, key order and white space do not make a different job', () => {
    const a = job('{"id":"j-1","message":{"to":"+15551234567","content":"Hi","n":1.10}}');
    const b = job('\uFEFF{ "message": { "n": 1.10, "content": "Hi", "to": "+15551234567" }, "id": "j-1" }');
    expect(jobFingerprint(a)).toBe(jobFingerprint(b));
  });

  it('a number written differently (1.10 and 1.1, two big integers) is a different job', () => {
    const base = '{"id":"j-1","message":{"to":"+15551234567","content":"Hi","n":%}}';
    const f = (n: string) => jobFingerprint(job(base.replace('%', n)));
    expect(f('1.10')).not.toBe(f('1.1'));
    expect(f('12345678901234567891')).not.toBe(f('12345678901234567890'));
  });

  it('the id of an invalid job behind a byte order mark is still found for the dead-letter attributes', () => {
    expect(peekJobId('\uFEFF{"id":"j-1","message":{}}')).toBe('j-1');
  });
});
