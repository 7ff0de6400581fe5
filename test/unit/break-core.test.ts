/**
 * A reviewer's attempts to break the relay's pure rules (issue "Keep every promise under real SQS limits", items
 * 8 and 9; docs/contract.md). Each test states a promise; the ones here held.
 */
import { describe, expect, it } from 'vitest';
import { jobFingerprint, parseJob, peekJobId } from '#shared/job.ts';
import { firstEntry, gate } from '#shared/ledger/gate.ts';
import { redactText } from '#shared/redact.ts';

const PHONE = '+15551234567';
const EMAIL = 'jose.defendant@court.gov';
const CONTENT = 'Reminder: you have court on Dec 3 at 9:00 AM, Room 4B.';

/** The digits of the recipient's national number: none of its runs of 7 may survive redaction. */
function leaksPhone(text: string): boolean {
  return text.replace(/\D/g, '').includes('5551234567');
}

describe('redaction catches escaped and variant echoes of the recipient and the text', () => {
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
    expect(leaksPhone(redactText(body, [CONTENT, PHONE]))).toBe(false);
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
    const out = redactText(body, [CONTENT, PHONE]);
    expect(out).not.toMatch(/court on Dec|COURT ON DEC|Room 4B/i);
  });

  it('a control character in a body never reaches the excerpt as a raw line break or escape sequence', () => {
    const out = redactText('bad\u001b[31m\nrequest\u0007', []);
    expect(out).not.toContain('\n');
  });
});

describe('the job fingerprint tells a resend from an id conflict', () => {
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

describe('the gate', () => {
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

describe('redaction of URL-encoded and HTML-escaped echoes (found in review, fixed)', () => {
  it.each([
    ['a percent-encoded recipient', 'to=%2B15551234567&x=1'],
    ['a form-encoded recipient', 'to=%2B1+555+123+4567'],
  ])('a phone number echoed as %s is redacted', (_name, body) => {
    expect(redactText(body, [CONTENT, PHONE]).replace(/\D/g, '')).not.toContain('5551234567');
  });

  it.each([
    ['percent-encoded', `content=${encodeURIComponent(CONTENT)}`],
    ['form-encoded', `content=${encodeURIComponent(CONTENT).replace(/%20/g, '+')}`],
    ['HTML-escaped', `content=${CONTENT.replace(/ /g, '&nbsp;')}`],
    ['with numeric HTML entities', `content=${CONTENT.replace(/o/g, '&#111;')}`],
  ])('the message text echoed %s is redacted', (_name, body) => {
    expect(redactText(body, [CONTENT, PHONE])).not.toMatch(/court(%20|\+|&nbsp;| )on/i);
    expect(redactText(body, [CONTENT, PHONE])).toContain('[redacted]');
  });

  it('an e-mail address echoed percent-encoded is masked even when it is not the recipient', () => {
    expect(redactText('to=jose.defendant%40court.gov', [])).not.toContain('jose.defendant');
  });
});
