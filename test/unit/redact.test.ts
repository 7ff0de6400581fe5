import { describe, expect, it } from 'vitest';
import { EXCERPT_MAX_CHARS, maskRecipient, redactText, truncate } from '#shared/redact.ts';

const RECIPIENT = '+15551234567';
const CONTENT = 'Reminder: you have court on Dec 3 at 9:00 AM, Room 4B.';
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

describe('truncate', () => {
  it('leaves text within the limit unchanged', () => {
    expect(truncate('Agency Not Found', 16)).toBe('Agency Not Found');
  });

  it('counts code points, never splitting an emoji', () => {
    expect(truncate('📅📅📅📅', 3)).toBe('📅📅…');
  });
});
