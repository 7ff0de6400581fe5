import { describe, expect, it } from 'vitest';
import { EXCERPT_MAX_CHARS, maskContacts, maskRecipient, redactText, truncate } from '#shared/redact.ts';

const RECIPIENT = '+15551234567';
const CONTENT = 'Reminder: you have court on Dec 3 at 9:00 AM, Room 4B.';
const EMAIL = 'jose.defendant@court.gov';
const JWT =
  'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJyZWxheS1jbGllbnQiLCJleHAiOjE3OTYxMzcyMDB9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg';

describe('maskRecipient', () => {
  it('keeps only the last two digits of a phone number, and its leading +', () => {
    expect(maskRecipient(RECIPIENT)).toBe('+*********67');
  });

  it('never shows more than two digits of a formatted phone number', () => {
    const masked = maskRecipient('+1 (555) 123-4567');

    expect(masked).toBe('+*********67');
    expect(masked.replace(/\D/g, '')).toBe('67');
  });

  it('keeps only the domain of an e-mail address', () => {
    expect(maskRecipient('ann.defendant@court.gov')).toBe('***@court.gov');
  });

  it('masks a recipient with no digits and no @ entirely', () => {
    expect(maskRecipient('unknown recipient')).toBe('***');
  });
});

describe('redactText', () => {
  it('replaces each given sensitive value wherever it occurs', () => {
    const text = `Message "${CONTENT}" to ${RECIPIENT} rejected; content was ${CONTENT}`;

    const out = redactText(text, [CONTENT, RECIPIENT]);

    expect(out).not.toContain(CONTENT);
    expect(out).not.toContain(RECIPIENT);
    expect(out).toBe('Message "[redacted]" to [redacted] rejected; content was [redacted]');
  });

  it('replaces the JSON-escaped form of a value with quotes and newlines inside a JSON body', () => {
    const content = 'Reminder for "J. Doe":\nCourt on Dec 3\tRoom 4B \\ east wing';
    const body = JSON.stringify({ message: 'The given data was invalid.', echo: { content } });

    const out = redactText(body, [content]);

    expect(out).toMatch(
      /^\{"message":"The given data was invalid\.","echo":\{"content":"(\[redacted\])+"\}\}$/,
    );
  });

  it('redacts a part of a sensitive value quoted inside a sentence', () => {
    const out = redactText('Content "you have court on Dec 3" is not allowed.', [CONTENT]);

    expect(out).toBe('Content "[redacted]" is not allowed.');
  });

  it('ignores sensitive values shorter than 4 characters and undefined ones', () => {
    expect(redactText('status: ok', ['ok', undefined, ''])).toBe('status: ok');
  });

  it('masks phone numbers in free text down to their last two digits', () => {
    const out = redactText('No such recipient: +1 (555) 123-4567, try again');

    expect(out).toBe('No such recipient: +*********67, try again');
  });

  it('keeps only the domain of e-mail addresses in free text', () => {
    expect(redactText('Bounced: ann.defendant@court.gov (mailbox full)')).toBe(
      'Bounced: ***@court.gov (mailbox full)',
    );
  });

  it('replaces a JWT-like bearer token', () => {
    const out = redactText(`{"error":"invalid token ${JWT}"}`);

    expect(out).toBe('{"error":"invalid token [token]"}');
  });

  it('replaces long opaque strings such as secrets', () => {
    const out = redactText('refresh token def50200a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6 rejected');

    expect(out).toBe('refresh token [redacted] rejected');
  });

  // Regression test for a fixed bug (shared/redact.ts, redactText): PHONE runs before OPAQUE, so a run of seven or more digits inside an
  // opaque string is masked first and splits it into pieces under 32 characters that OPAQUE no longer
  // matches: most of the secret is left in clear ("9f8e7d6c5b4a******06f5e4d3c2b1a0ZZyyXX").
  it('replaces a long opaque string even when it holds a run of seven digits', () => {
    const out = redactText('client secret 9f8e7d6c5b4a39281706f5e4d3c2b1a0ZZyyXX rejected');

    expect(out).toBe('client secret [redacted] rejected');
  });

  it('keeps a UUID whose groups are mostly letters', () => {
    const body = '{"uuid":"9b2f0c1e-5d3a-4c8b-9e7f-1a2b3c4d5e6f"}';

    expect(redactText(body)).toBe(body);
  });

  // Regression test for a fixed bug (shared/redact.ts, PHONE): seven digits joined by dashes are taken for a phone number, so a UUID
  // with a long run of digits (about a third of random UUIDs) is mangled: "...-a456-426614174000" becomes
  // "...-a*************00". The OPAQUE comment says UUIDs are meant to survive.
  it('keeps a UUID whose groups are mostly digits', () => {
    const body = '{"uuid":"123e4567-e89b-12d3-a456-426614174000"}';

    expect(redactText(body)).toBe(body);
  });

  it('collapses whitespace, so an excerpt stays on one line', () => {
    expect(redactText('  The given data\nwas\t\tinvalid.  ')).toBe('The given data was invalid.');
  });

  it(`cuts the result to ${EXCERPT_MAX_CHARS} characters by default, marking the cut`, () => {
    const out = redactText('field error. '.repeat(100));

    expect([...out]).toHaveLength(EXCERPT_MAX_CHARS);
    expect(out.endsWith('…')).toBe(true);
  });

  it('cuts the result to a given limit', () => {
    expect(redactText('The given data was invalid.', [], 10)).toBe('The given…');
  });

  it('redacts before cutting, so a cut never leaves part of a sensitive value', () => {
    const out = redactText(`${'x '.repeat(5)}${CONTENT}`, [CONTENT], 20);

    expect(out).toBe('x x x x x [redacted]');
  });
});

describe('redactText: escaped and Unicode-variant echoes', () => {
  // Each body below is the text as it came over the wire: a JSON escape is a backslash, "u" and 4 hex digits.
  const PHONE_DIGITS = ['555', '010', '0401', '5550100401'];

  function expectNoPhone(out: string): void {
    const digits = out.replace(/\D/g, '');
    for (const part of PHONE_DIGITS) expect(digits).not.toContain(part);
  }

  it('masks a phone number echoed with JSON-escaped U+2010 hyphens', () => {
    const body = '{"errors":{"to":["555\\u2010010\\u20100401 is not a mobile number"]}}';

    const out = redactText(body, ['+15550100401']);

    expect(out).toBe('{"errors":{"to":["********01 is not a mobile number"]}}');
    expectNoPhone(out);
  });

  it.each([
    ['U+2010 hyphen', '\u2010'],
    ['U+2011 non-breaking hyphen', '\u2011'],
    ['U+2012 figure dash', '\u2012'],
    ['U+2013 en dash', '\u2013'],
    ['U+2014 em dash', '\u2014'],
    ['U+2015 horizontal bar', '\u2015'],
    ['U+2212 minus sign', '\u2212'],
    ['U+FF0D fullwidth hyphen', '\uFF0D'],
    ['U+FE63 small hyphen', '\uFE63'],
    ['NBSP', '\u00A0'],
    ['U+202F narrow NBSP', '\u202F'],
    ['U+2007 figure space', '\u2007'],
    ['U+3000 ideographic space', '\u3000'],
  ])('masks a phone number written with the %s as it is, or JSON-escaped', (_name, separator) => {
    const escaped = JSON.stringify(separator)
      .slice(1, -1)
      .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    for (const phone of [`555${separator}010${separator}0401`, `555${escaped}010${escaped}0401`]) {
      expectNoPhone(redactText(`Unknown recipient ${phone}.`));
    }
  });

  it('masks a phone number in fullwidth digits', () => {
    expectNoPhone(
      redactText('Unknown recipient \uFF15\uFF15\uFF15\uFF10\uFF11\uFF10\uFF10\uFF14\uFF10\uFF11'),
    );
  });

  it('redacts an accented e-mail recipient echoed JSON-escaped', () => {
    const out = redactText('{"to":"jos\\u00e9@example.com"}', ['josé@example.com']);

    expect(out).toBe('{"to":"[redacted]"}');
  });

  it('keeps only the domain of an escaped accented e-mail address that was not given as sensitive', () => {
    const out = redactText('{"cc":"jos\\u00e9.garc\\u00eda@example.com"}');

    expect(out).toBe('{"cc":"***@example.com"}');
  });

  it('redacts a recipient echoed in another normal form (decomposed accent) or letter case', () => {
    const decomposed = 'Jose\u0301@Example.com';

    expect(redactText(`Bounced: ${decomposed}`, ['josé@example.com'])).toBe('Bounced: [redacted]');
  });

  it('redacts message text echoed in NFKC-equivalent characters (fullwidth, ligatures)', () => {
    const content = 'Your court date is confirmed for Dec 3, Room 4B.';
    const echo = 'Your court date is con\uFB01rmed for Dec\u00A03, Room \uFF14\uFF22.';

    expect(redactText(`Rejected: ${echo}`, [content])).toBe('Rejected: [redacted]');
  });

  it('redacts message text whose non-ASCII characters were all JSON-escaped', () => {
    const content = 'Recordatorio: su cita en el tribunal es el 3 de diciembre — Sala 4B, José';
    const body = JSON.stringify({ content }).replace(
      /[\u007f-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
    expect(body).toContain('\\u2014');

    const out = redactText(body, [content]);

    expect(out).toBe('{"content":"[redacted]"}');
  });

  it('redacts part of an escaped message text quoted inside a sentence', () => {
    const content = 'Reminder: your hearing in Sala José is at 9:00 on Dec 3.';

    const out = redactText('Content "hearing in Sala Jos\\u00e9 is at" is not allowed.', [content]);

    expect(out).toBe('Content "[redacted]" is not allowed.');
  });

  it('redacts a value with an escaped emoji (a surrogate pair)', () => {
    const content = 'See you in court 📅 on Dec 3';

    expect(redactText('{"c":"See you in court \\ud83d\\udcc5 on Dec 3"}', [content])).toBe(
      '{"c":"[redacted]"}',
    );
  });

  it('redacts a value that holds a backslash, as it is and JSON-escaped', () => {
    const content = 'File C:\\court\\notices\\dec3.txt';

    expect(redactText(`plain ${content} end`, [content])).toBe('plain [redacted] end');
    expect(redactText(`${JSON.stringify({ content })}`, [content])).toBe('{"content":"[redacted]"}');
  });

  it('replaces a long opaque string whose slashes were escaped by the server', () => {
    const escapedOpaque = 'def50200a1b2c3d4\\/e5f6a7b8c9d0e1f2\\/a3b4c5d6e7f8a9b0';

    expect(redactText(`{"refresh_token":"${escapedOpaque}"}`)).toBe('{"refresh_token":"[redacted]"}');
  });

  it('leaves other escaped text as it came', () => {
    const body = '{"message":"Caf\\u00e9 \\"closed\\"","uuid":"123e4567-e89b-12d3-a456-426614174000"}';

    expect(redactText(body)).toBe(body);
  });
});

describe('truncate', () => {
  it('leaves text within the limit unchanged', () => {
    expect(truncate('Agency Not Found', 16)).toBe('Agency Not Found');
  });

  it('counts code points, never splitting an emoji', () => {
    expect(truncate('📅📅📅📅', 3)).toBe('📅📅…');
  });
});

describe('maskContacts', () => {
  it('masks an e-mail address to its domain and a phone number to its last two digits, and nothing else', () => {
    expect(maskContacts('bounced: john.doe@example.com, to (555) 765-4321')).toBe(
      'bounced: ***@example.com, to (********21',
    );
  });

  it('leaves a long name that redactText would take for a token', () => {
    expect(maskContacts('OUTBOUND_MESSAGE_DELIVERY_NOTIFICATION')).toBe(
      'OUTBOUND_MESSAGE_DELIVERY_NOTIFICATION',
    );
  });
});

/** The digits of the recipient's national number: none of its runs of 7 may survive redaction. */
function leaksPhone(text: string): boolean {
  return text.replace(/\D/g, '').includes('5551234567');
}

describe('redactText: escaped and variant echoes of the recipient and the text', () => {
  it.each([
    [
      'JSON \\u escapes of every digit',
      '{"to":"\\u002b\\u0031\\u0035\\u0035\\u0035\\u0031\\u0032\\u0033\\u0034\\u0035\\u0036\\u0037"}',
    ],
    ['Unicode hyphens', '{"to":"555\u2010123\u20104567"}'],
    ['escaped Unicode hyphens', '{"to":"555\\u2010123\\u20104567"}'],
    ['fullwidth digits', '{"to":"＋１５５５１２３４５６７"}'],
    ['a formatted national number', 'invalid number (555) 123-4567'],
    ['a tel: URI', 'cannot reach tel:+15551234567'],
    ['non-breaking spaces', 'to 555\u00a0123\u00a04567'],
  ])('a phone number echoed with %s', (_name, body) => {
    expect(leaksPhone(redactText(body, [CONTENT, RECIPIENT]))).toBe(false);
  });

  it.each([
    ['an escaped accent', 'unknown address jos\\u00e9.defendant@court.gov'],
    ['a combining accent', 'unknown address jose\u0301.defendant@court.gov'],
    ['upper case', 'UNKNOWN ADDRESS JOSE.DEFENDANT@COURT.GOV'],
  ])('an e-mail address echoed with %s is redacted', (_name, body) => {
    const out = redactText(body, [CONTENT, EMAIL]);
    expect(out.toLowerCase()).not.toContain('defendant');
  });

  it.each([
    ['JSON-escaped quotes and slashes', JSON.stringify({ content: `${CONTENT} "quoted" a/b` })],
    ['upper case, in part', `rejected: ${CONTENT.toUpperCase().slice(5, 40)}`],
    [
      'every character \\u-escaped',
      [...CONTENT].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
    ],
  ])('the message text echoed with %s', (_name, body) => {
    const out = redactText(body, [CONTENT, RECIPIENT]);
    expect(out).not.toMatch(/court on Dec|COURT ON DEC|Room 4B/i);
  });

  it('a control character in a body never reaches the excerpt as a raw line break or escape sequence', () => {
    const out = redactText('bad\u001b[31m\nrequest\u0007', []);
    expect(out).not.toContain('\n');
  });
});

describe('redactText: URL-encoded and HTML-escaped echoes', () => {
  it.each([
    ['a percent-encoded recipient', 'to=%2B15551234567&x=1'],
    ['a form-encoded recipient', 'to=%2B1+555+123+4567'],
  ])('a phone number echoed as %s is redacted', (_name, body) => {
    expect(redactText(body, [CONTENT, RECIPIENT]).replace(/\D/g, '')).not.toContain('5551234567');
  });

  it.each([
    ['percent-encoded', `content=${encodeURIComponent(CONTENT)}`],
    ['form-encoded', `content=${encodeURIComponent(CONTENT).replace(/%20/g, '+')}`],
    ['HTML-escaped', `content=${CONTENT.replace(/ /g, '&nbsp;')}`],
    ['with numeric HTML entities', `content=${CONTENT.replace(/o/g, '&#111;')}`],
  ])('the message text echoed %s is redacted', (_name, body) => {
    expect(redactText(body, [CONTENT, RECIPIENT])).not.toMatch(/court(%20|\+|&nbsp;| )on/i);
    expect(redactText(body, [CONTENT, RECIPIENT])).toContain('[redacted]');
  });

  it('an e-mail address echoed percent-encoded is masked even when it is not the recipient', () => {
    expect(redactText('to=jose.defendant%40court.gov', [])).not.toContain('jose.defendant');
  });
});
