import { createHash } from 'node:crypto';
import { JobValidationError } from '#shared/errors.ts';
import { maskContacts } from '#shared/redact.ts';

/**
 * A send job: the public contract with upstream systems (docs/contract.md, "The send job"). `message` is the
 * body of `POST /v1/messages/oneoffs`, passed through unchanged except for `scheduled_at`, which must carry
 * its time zone and is converted to eCourtDate's UTC `YYYY-MM-DD HH:mm:ss`. A number whose JSON text a JavaScript number cannot hold exactly
 * (`12345678901234567891`, `1.10`, `1e2`) is kept as its text (a `JSON.rawJSON` value), so `serializeMessage`
 * sends it as written.
 */
export interface SendJob {
  readonly id: string;
  readonly message: OneoffMessage;
  readonly agencyReference?: string | undefined;
  /** Epoch ms after which the job is not retried any more. */
  readonly expiresAt?: number | undefined;
  /**
   * What the relay sends as written but eCourtDate may refuse or read otherwise (docs/contract.md, "The send
   * job"), each naming its field, e.g. `message.to: a phone number not in E.164 form ...`; never the value.
   */
  readonly warnings: readonly string[];
}

export interface OneoffMessage {
  readonly to: string;
  readonly content: string;
  readonly subject?: string;
  readonly skip_duplicate?: boolean;
  readonly scheduled_at?: string;
  readonly [field: string]: unknown;
}

export const JOB_LIMITS = {
  idPattern: /^[A-Za-z0-9._:-]{1,128}$/,
  contentMaxChars: 2000,
  subjectMaxChars: 255,
  toMaxChars: 320,
  agencyReferenceMaxChars: 128,
} as const;

/** eCourtDate's message channels (its messaging concepts: a message's `channel`). */
export const ECOURTDATE_CHANNELS = ['text', 'email', 'voice', 'push'] as const;

/** Channel names producers use for one of eCourtDate's, and the one they mean. */
const CHANNEL_ALIASES: Readonly<Record<string, (typeof ECOURTDATE_CHANNELS)[number]>> = {
  sms: 'text',
  mms: 'text',
  'e-mail': 'email',
  mail: 'email',
  call: 'voice',
  phone: 'voice',
};

// E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
const E164 = /^\+[1-9]\d{6,14}$/;
// Only what people write in phone numbers: digits, spaces, dots, dashes, parentheses and a leading plus.
const PHONE_LIKE = /^\+?[\d\s().-]+$/;
const EMAIL_LIKE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

// ISO 8601 date-time with an explicit offset; a local time without a zone would be ambiguous for a court.
const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;
// A date and time with no zone: ISO (`T`) or eCourtDate's own form (a space), told apart only to say so.
const ZONELESS_DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?$/;

/**
 * Parses and validates one SQS message body (or EventBridge `detail`) as a send job. A UTF-8 byte order mark
 * before the JSON is ignored. Numbers are read losslessly (see `SendJob`).
 * Throws `JobValidationError` naming the offending field, e.g. `message.content: expected at most 2000
 * characters, got 2001`. Error messages never quote the message text or the recipient.
 *
 * @example
 * const job = parseJob('{"id":"a-1","message":{"to":"+15551234567","content":"Hi"}}');
 */
export function parseJob(body: string): SendJob {
  let raw: unknown;
  try {
    raw = parseJsonLossless(withoutByteOrderMark(body));
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new JobValidationError('body', 'expected a JSON object, got text that is not valid JSON');
  }
  return validateJob(raw);
}

/**
 * The body of `POST /v1/messages/oneoffs` for a job: its message as JSON, with every number written exactly
 * as the job wrote it (docs/contract.md, "The send job": unknown fields pass through unchanged).
 * @example serializeMessage(parseJob('{"id":"a","message":{"to":"+15551234567","content":"Hi","n":1.10}}'))
 *   === '{"to":"+15551234567","content":"Hi","n":1.10}'
 */
export function serializeMessage(job: SendJob): string {
  return JSON.stringify(job.message);
}

/** The text without one leading UTF-8 byte order mark (U+FEFF), as a Windows editor writes a file. */
export function withoutByteOrderMark(text: string): string {
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

/** A number kept as its JSON text; `JSON.stringify` writes the text as it is. */
interface RawJson {
  readonly rawJSON: string;
}

// ECMAScript's "JSON.parse source text access": the reviver's third argument carries a value's source text,
// and JSON.rawJSON makes a value JSON.stringify writes verbatim. On by default since Node 21 (V8 11.4), so in
// the pinned Node 24; TypeScript's lib does not declare it yet.
const NativeJson = JSON as unknown as {
  rawJSON(text: string): RawJson;
  isRawJSON(value: unknown): value is RawJson;
  parse(
    text: string,
    reviver: (key: string, value: unknown, context?: { readonly source?: string }) => unknown,
  ): unknown;
};

/**
 * `JSON.parse`, except that a number whose text does not survive the round trip through a JavaScript number
 * (a big integer, `1.10`, `-0`, `1e2`) becomes a raw JSON value holding its text. Keys such as `__proto__`
 * stay own data properties, as with `JSON.parse`. Throws `SyntaxError` for text that is not JSON.
 */
function parseJsonLossless(text: string): unknown {
  return NativeJson.parse(text, (_key, value, context) => {
    if (typeof value !== 'number') return value;
    const source = context?.source;
    if (source === undefined)
      throw new Error(
        'JSON.parse source text access is missing: the relay needs Node 21 or later (24 pinned)',
      );
    return String(value) === source ? value : NativeJson.rawJSON(source);
  });
}

function isRawJson(value: unknown): value is RawJson {
  return NativeJson.isRawJSON(value);
}

/** Validates an already-parsed job; see `parseJob`. */
export function validateJob(raw: unknown): SendJob {
  if (
    isRecord(raw) &&
    raw.id === undefined &&
    raw.message === undefined &&
    'detail' in raw &&
    'detail-type' in raw
  ) {
    throw new JobValidationError(
      'body',
      'expected a send job, got a whole EventBridge event (it has detail-type and detail): put only its detail ' +
        'on the queue, or send the event to the bus with PutEvents',
    );
  }
  const job = object(raw, 'body');
  const id = idField(job.id);
  const message = messageField(job.message);
  const agencyReference = optionalString(
    job.agency_reference,
    'agency_reference',
    JOB_LIMITS.agencyReferenceMaxChars,
  );
  const expiresAt = job.expires_at === undefined ? undefined : isoInstant(job.expires_at, 'expires_at');
  return { id, message, agencyReference, expiresAt, warnings: recipientWarnings(message) };
}

/**
 * Best effort to read a job id from a body that failed validation, so reports can name the job. Returns
 * undefined unless the body is JSON (after an optional byte order mark) with a well-formed `id`.
 */
export function peekJobId(body: string): string | undefined {
  try {
    const raw: unknown = JSON.parse(withoutByteOrderMark(body));
    if (isRecord(raw) && typeof raw.id === 'string' && JOB_LIMITS.idPattern.test(raw.id)) return raw.id;
  } catch {
    // not JSON: no id to report
  }
  return undefined;
}

/**
 * How reports name a job whose body has no valid `id`: `(invalid id "has spaces")` when the body is JSON with a
 * string `id` the rules refuse (its first 40 characters, phone numbers and e-mail addresses masked), else
 * `(no id)`.
 */
export function invalidIdLabel(body: string): string {
  try {
    const raw: unknown = JSON.parse(withoutByteOrderMark(body));
    const clip = (id: string) =>
      JSON.stringify(maskContacts([...id].slice(0, 40).join('') + ([...id].length > 40 ? '…' : '')));
    if (isRecord(raw) && typeof raw.id === 'string' && raw.id !== '') return `(invalid id ${clip(raw.id)})`;
    // A whole EventBridge event put on the queue: its job is the detail (docs/contract.md, "The send job").
    if (isRecord(raw) && isRecord(raw.detail) && typeof raw.detail.id === 'string' && raw.detail.id !== '') {
      return `(a whole EventBridge event; its detail's id ${clip(raw.detail.id)})`;
    }
  } catch {
    // not JSON: no id to show
  }
  return '(no id)';
}

/**
 * A fingerprint of a validated job: the same for the same job however its JSON was spelled (key order,
 * white space), different when anything that is sent differs, including a number's text (`1.1` and `1.10`,
 * or two big integers a JavaScript number cannot tell apart). Used to tell a resend from an id conflict.
 */
export function jobFingerprint(job: SendJob): string {
  return createHash('sha256').update(canonicalJson(job)).digest('base64url');
}

/**
 * How the relay shows a body's fingerprint (`jobFingerprint`) to people: its first 12 characters, enough to tell
 * two versions of a job apart in a dead letter's `detail` and in `relay job ID` (docs/contract.md, "When a
 * message changes"). Names the body without showing any of it.
 * @example fingerprintLabel('q3Jd9x2LrT0aVb1...') === 'q3Jd9x2LrT0a'
 */
export function fingerprintLabel(fingerprint: string): string {
  return fingerprint.slice(0, 12);
}

function canonicalJson(value: unknown): string {
  if (isRawJson(value)) return value.rawJSON;
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Converts an ISO 8601 instant to eCourtDate's UTC `YYYY-MM-DD HH:mm:ss`.
 * @example toEcourtdateTimestamp(Date.parse('2026-12-01T10:00:00-05:00')) === '2026-12-01 15:00:00'
 */
export function toEcourtdateTimestamp(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 19).replace('T', ' ');
}

function idField(value: unknown): string {
  if (value === undefined || value === null) throw new JobValidationError('id', 'is required');
  if (typeof value !== 'string')
    throw new JobValidationError('id', `expected a string, got ${describe(value)}`);
  if (!JOB_LIMITS.idPattern.test(value)) {
    const expected = 'expected 1-128 characters of A-Z a-z 0-9 . _ : -';
    const length = [...value].length;
    const bad = [...value].findIndex((char) => !/^[A-Za-z0-9._:-]$/.test(char));
    const char = [...value][bad] ?? '';
    throw new JobValidationError(
      'id',
      bad >= 0
        ? `${expected}, got ${length} characters with ${characterName(char)} at position ${bad + 1}`
        : `${expected}, got ${length} characters`,
    );
  }
  return value;
}

/** A character as an error message may name it: its code point, and itself when it is visible ASCII. */
function characterName(char: string): string {
  const code = `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
  if (char === ' ') return `a space (${code})`;
  return /^[!-~]$/.test(char) ? `"${char}" (${code})` : code;
}

/**
 * The channel, when given, is one of eCourtDate's (`ECOURTDATE_CHANNELS`); a name producers use for one of them
 * (`sms`) is refused with the one to use. `to` must look like a phone number or an e-mail address (except for
 * `push`, whose recipients eCourtDate does not document), and like the one the channel needs. Throws
 * `JobValidationError`; never quotes the recipient.
 */
function checkChannelAndRecipient(input: Record<string, unknown>, to: string): void {
  const channel = input.channel;
  if (channel !== undefined) {
    if (typeof channel !== 'string' || !(ECOURTDATE_CHANNELS as readonly string[]).includes(channel)) {
      const alias = typeof channel === 'string' ? CHANNEL_ALIASES[channel.toLowerCase()] : undefined;
      throw new JobValidationError(
        'message.channel',
        `expected one of ${ECOURTDATE_CHANNELS.join(', ')} (eCourtDate's channels), got ${
          typeof channel === 'string' ? `"${channel.slice(0, 20)}"` : describe(channel)
        }${alias ? `: use "${alias}"` : ''}`,
      );
    }
  }
  if (channel === 'push') return;
  const kind = recipientKind(to);
  if (kind === 'neither') {
    throw new JobValidationError(
      'message.to',
      'expected a phone number (E.164, e.g. +15551234567) or an e-mail address, got text that is neither',
    );
  }
  if (channel === 'email' && kind === 'phone')
    throw new JobValidationError('message.to', 'channel email needs an e-mail address, got a phone number');
  if ((channel === 'text' || channel === 'voice') && kind === 'email') {
    throw new JobValidationError(
      'message.to',
      `channel ${channel} needs a phone number (E.164, e.g. +15551234567), got an e-mail address`,
    );
  }
}

function recipientKind(to: string): 'phone' | 'email' | 'neither' {
  const trimmed = to.trim();
  if (trimmed.includes('@')) return EMAIL_LIKE.test(trimmed) ? 'email' : 'neither';
  return PHONE_LIKE.test(trimmed) && /\d/.test(trimmed) ? 'phone' : 'neither';
}

/** What eCourtDate may refuse or read otherwise in a valid job (`SendJob.warnings`). */
function recipientWarnings(message: OneoffMessage): string[] {
  if (message.channel === 'push' || recipientKind(message.to) !== 'phone' || E164.test(message.to)) return [];
  return [
    'message.to: a phone number not in E.164 form (a plus, the country code and the number, e.g. +15551234567); ' +
      'eCourtDate may refuse it or read it as a number of its own region',
  ];
}

function messageField(value: unknown): OneoffMessage {
  const input = object(value, 'message');
  const to = requiredString(input.to, 'message.to', JOB_LIMITS.toMaxChars);
  const content = requiredString(input.content, 'message.content', JOB_LIMITS.contentMaxChars);
  checkChannelAndRecipient(input, to);
  optionalString(input.subject, 'message.subject', JOB_LIMITS.subjectMaxChars);
  if (input.skip_duplicate !== undefined && typeof input.skip_duplicate !== 'boolean') {
    throw new JobValidationError(
      'message.skip_duplicate',
      `expected true or false, got ${describe(input.skip_duplicate)}`,
    );
  }
  // Copy own properties onto a fresh object so that unknown fields pass through exactly as sent; a
  // "__proto__" key from JSON.parse stays an ordinary property and cannot change the prototype.
  const message: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(input)) {
    Object.defineProperty(message, key, {
      value: field,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  message.to = to;
  message.content = content;
  if (input.scheduled_at !== undefined) message.scheduled_at = scheduledAt(input.scheduled_at);
  return message as OneoffMessage;
}

function scheduledAt(value: unknown): string {
  return toEcourtdateTimestamp(isoInstant(value, 'message.scheduled_at'));
}

/**
 * What a date-time field accepts, as every refusal of one says it (docs/contract.md, "Times and time zones"): the
 * same text for `message.scheduled_at` and `expires_at`, from the sender's dead letter, `npm start --jobs` and
 * `relay send` alike.
 */
export const DATE_TIME_FORMS =
  'an ISO 8601 date-time with its time zone: the local time with its UTC offset, such as 2027-12-01T10:00:00-05:00, ' +
  'or UTC with a Z, such as 2027-12-01T15:00:00Z';

/**
 * Reads a date-time field (`message.scheduled_at`, `expires_at`) as epoch ms. Only a time with its zone is
 * accepted (docs/contract.md, "Times and time zones"): a time without one, in ISO form or in eCourtDate's own
 * `YYYY-MM-DD HH:mm:ss`, is refused, as the relay cannot know which zone the producer meant. Throws
 * `JobValidationError` naming `field` and listing the accepted forms (`DATE_TIME_FORMS`).
 */
function isoInstant(value: unknown, field: string): number {
  if (typeof value !== 'string')
    throw new JobValidationError(field, `expected ${DATE_TIME_FORMS}; got ${describe(value)}`);
  const match = ISO_DATE_TIME.exec(value);
  const epoch = Date.parse(value);
  if (!match || Number.isNaN(epoch)) {
    const zoneless = ZONELESS_DATE_TIME.test(value)
      ? 'a time without a time zone, which the relay cannot place: give its offset or Z'
      : 'text that is not such a date-time';
    throw new JobValidationError(field, `expected ${DATE_TIME_FORMS}; got ${zoneless}`);
  }
  // Date.parse rolls 2026-02-30 over into March; a court date that does not exist is a bad job.
  const [, year, month, day, , , , zone] = match;
  if (!realUtcOffset(zone ?? 'Z')) {
    throw new JobValidationError(
      field,
      `expected ${DATE_TIME_FORMS}; got the UTC offset ${zone}, which no time zone has (they run from -12:00 to +14:00)`,
    );
  }
  const probe = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  if (probe.getUTCMonth() !== Number(month) - 1 || probe.getUTCDate() !== Number(day)) {
    throw new JobValidationError(field, 'expected a real calendar date');
  }
  return epoch;
}

/** Whether a UTC offset (`Z`, `+05:30`, `-0500`) is one a time zone has: -12:00 to +14:00, whole minutes. */
function realUtcOffset(zone: string): boolean {
  if (zone === 'Z') return true;
  const hours = Number(zone.slice(1, 3));
  const minutes = Number(zone.slice(-2));
  const offset = (zone.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
  return minutes < 60 && offset >= -12 * 60 && offset <= 14 * 60;
}

function object(value: unknown, field: string): Record<string, unknown> {
  if (!isRecord(value)) throw new JobValidationError(field, `expected a JSON object, got ${describe(value)}`);
  return value;
}

function requiredString(value: unknown, field: string, maxChars: number): string {
  if (value === undefined || value === null) throw new JobValidationError(field, 'is required');
  if (typeof value !== 'string')
    throw new JobValidationError(field, `expected a string, got ${describe(value)}`);
  if (value.trim() === '') throw new JobValidationError(field, 'must not be empty');
  checkLength(value, field, maxChars);
  return value;
}

function optionalString(value: unknown, field: string, maxChars: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string')
    throw new JobValidationError(field, `expected a string, got ${describe(value)}`);
  if (value.trim() === '') throw new JobValidationError(field, 'must not be empty when given');
  checkLength(value, field, maxChars);
  return value;
}

function checkLength(value: string, field: string, maxChars: number): void {
  // Characters as people (and eCourtDate's limits) count them: code points, not UTF-16 units.
  const length = [...value].length;
  if (length > maxChars)
    throw new JobValidationError(field, `expected at most ${maxChars} characters, got ${length}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !isRawJson(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (isRawJson(value)) return 'a number';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
