import { createHash } from 'node:crypto';
import { maskContacts } from '#shared/redact.ts';

/**
 * Reading eCourtDate webhook payloads. What is documented (docs/webhooks.md, "What the receiver reads"): a JSON
 * body with `uuid` (the event id), `channel`, `direction`, `created_at`, `from`, `to`, `content`, `token` and
 * `last_status`, for categories from messages to payments. What is not (UNKNOWN): the type names of outbound
 * status updates and the field that names the message an update is about. So this module reads every likely
 * form, never fails on an unexpected one, and the raw payload always travels on with the event.
 */

/** What kind of webhook a payload is, which picks the event's `detail-type`. */
export type WebhookKind = 'message_status' | 'inbound_message' | 'webhook';

/** The status of an outbound message, in the relay's words; anything else is kept as eCourtDate spelled it. */
export type DeliveryStatus =
  | 'queued'
  | 'sent'
  | 'delivered'
  | 'failed'
  | 'retried'
  | 'replied'
  | (string & {});

export interface NormalisedWebhook {
  readonly kind: WebhookKind;
  /** The payload's `uuid` (its event id), when it has a usable one. */
  readonly uuid: string | undefined;
  /** What deliveries are deduplicated on; see `dedupeKeyOf`. */
  readonly dedupeKey: string;
  /**
   * For a payload without uuid, `sha256-<hex>` of its bytes (its dedupe key without the status): what tells a
   * retried copy of it from another update in the job's history, which must not hold the status text.
   */
  readonly bodyDigest: string | undefined;
  /** The payload's own type name (`type`, `event`, ...), when it carries one. */
  readonly type: string | undefined;
  readonly direction: 'inbound' | 'outbound' | undefined;
  readonly channel: string | undefined;
  /**
   * The normalised status of a message update: the relay's word (`delivered`, `failed`, ...), one of the event
   * words kept as they are (`opened`, `clicked`, ...: `EVENT_WORDS`) when that is the whole status, else `other`.
   * Never free text: it goes where the payload does not.
   */
  readonly status: DeliveryStatus | undefined;
  /**
   * The status as eCourtDate sent it (lower case, at most 32 characters), with e-mail addresses and numbers that
   * could be phone numbers masked on the raw text: for the events that carry the payload anyway.
   */
  readonly rawStatus: string | undefined;
  /**
   * eCourtDate's own word for the status when it has one (`undelivered`, `bounced`, `opened`), always a word of
   * `STATUS_WORDS` or `EVENT_WORDS`: what the payload-free views (the job's history, `eCourtDate Job Delivery
   * Status`) keep beside `status`.
   */
  readonly statusWord: string | undefined;
  /** Candidate uuids of the outbound message an update is about, most specific first. */
  readonly messageUuids: readonly string[];
  /** Candidate uuids of the outbound message an inbound reply answers, most specific first. */
  readonly repliedToUuids: readonly string[];
  /** When the update happened by the payload's own clock (epoch ms), if it says. */
  readonly occurredAt: number | undefined;
  /** The payload's `created_at`, as sent. */
  readonly createdAt: string | undefined;
  /**
   * Every instant the payload's time fields name (a field `timestamp` or ending in `_at`, at the top level and in
   * a wrapped record), epoch ms, however far ahead: what dates a delivery against replays
   * (shared/webhook/freshness.ts).
   */
  readonly times: readonly number[];
}

const TYPE_FIELDS = ['type', 'event_type', 'event', 'webhook_type', 'webhook', 'topic', 'category'] as const;
const STATUS_FIELDS = ['last_status', 'status', 'delivery_status', 'message_status'] as const;
const MESSAGE_FIELDS = [
  'message_uuid',
  'message_id',
  'message',
  'outbound_message_uuid',
  'outbound_uuid',
] as const;
const REPLY_FIELDS = [
  'in_reply_to',
  'reply_to',
  'reply_to_uuid',
  'parent_uuid',
  'parent_message_uuid',
  'parent_message',
  'original_message_uuid',
  'original_message',
  'outbound_message_uuid',
  'outbound_message',
] as const;
const TIME_FIELDS = ['status_at', 'last_status_at', 'updated_at', 'timestamp', 'created_at'] as const;
/** The fields whose instants date a delivery: `timestamp`, `at`, or any name ending in `_at`. */
const DATING_FIELD = /^(?:timestamp|at|\w*_at)$/;
/** At most this many fields of each object are looked at for instants: a payload's size must not cost time. */
const DATING_FIELDS_MAX = 64;
/** What a status in free text normalises to: its text never goes where the payload does not. */
export const OTHER_STATUS = 'other';
const CHANNELS = new Set(['text', 'sms', 'mms', 'email', 'voice', 'push', 'call']);
const MESSAGE_TYPE = /message|text|sms|mms|e-?mail|voice|call/i;

/** The relay's own status words; any other status is an event word (`EVENT_WORDS`) or `other`. */
export const KNOWN_STATUSES: ReadonlySet<string> = new Set([
  'queued',
  'sent',
  'delivered',
  'failed',
  'retried',
  'replied',
]);

/**
 * Words eCourtDate (or a carrier) may use for a status, and the relay's word for each. A Map, not an object
 * literal: a status such as `constructor` or `__proto__` must not find `Object.prototype`'s members.
 */
const STATUS_WORDS: ReadonlyMap<string, DeliveryStatus> = new Map(
  Object.entries({
    queued: 'queued',
    scheduled: 'queued',
    pending: 'queued',
    accepted: 'queued',
    created: 'queued',
    sent: 'sent',
    sending: 'sent',
    dispatched: 'sent',
    delivered: 'delivered',
    failed: 'failed',
    failure: 'failed',
    undelivered: 'failed',
    undeliverable: 'failed',
    bounced: 'failed',
    rejected: 'failed',
    error: 'failed',
    retry: 'retried',
    retried: 'retried',
    retrying: 'retried',
    resent: 'retried',
    requeued: 'retried',
    replied: 'replied',
    reply: 'replied',
    responded: 'replied',
    answered: 'replied',
  }),
);

/**
 * eCourtDate's (or a carrier's) one-word names of what happened to a message that are none of the relay's
 * statuses, kept as they are when one is the whole status. Any other status is `other`: eCourtDate's status is
 * free text that may name a person, even joined into one word (`john_doe_at_example_dot_com`).
 */
export const EVENT_WORDS: ReadonlySet<string> = new Set([
  'opened',
  'clicked',
  'read',
  'received',
  'unsubscribed',
]);

/**
 * Reads a parsed webhook body (any JSON value) into the fields the receiver and upstream systems use. The body's
 * raw bytes give the dedupe key when the payload has no uuid; `now` (epoch ms, the receive time) bounds the
 * payload's own time (see `parseTime`).
 *
 * @example normaliseWebhook({ uuid: 'e1', direction: 'outbound', last_status: 'delivered' }, raw).kind === 'message_status'
 */
export function normaliseWebhook(
  payload: unknown,
  rawBody: Uint8Array,
  now: number = Date.now(),
): NormalisedWebhook {
  const top = isRecord(payload) ? payload : {};
  // A wrapped form ({"type": "...", "data": {...message...}}) is as likely as the flat one documented.
  const nested = [top.data, top.message, top.payload].find(isRecord);
  const record = nested ?? top;
  const field = (name: string): unknown => record[name] ?? top[name];

  const type = firstText(
    TYPE_FIELDS.map((name) => top[name]),
    64,
    /[^\w .:/*@-]/g,
  );
  const direction = readDirection(field('direction'), type);
  const channel = word(field('channel'));
  const given = firstStatus(STATUS_FIELDS.map((name) => field(name)).filter((value) => !isRecord(value)));
  const rawStatus = given?.safe ?? statusFromType(type);
  // Read from the whole status (contacts masked, nothing stripped), never from the cut, stripped raw_status.
  const read = rawStatus === undefined ? undefined : readStatus(given?.text ?? rawStatus);
  const status = read?.status;

  const messageLike =
    direction !== undefined ||
    (channel !== undefined && CHANNELS.has(channel)) ||
    (type !== undefined && MESSAGE_TYPE.test(type)) ||
    Object.hasOwn(record, 'last_status');
  const kind = readKind(messageLike, direction, status);

  const uuid = identifier(top.uuid) ?? (nested ? undefined : identifier(record.uuid));
  const messageUuids = unique([
    ...MESSAGE_FIELDS.flatMap((name) => [reference(record[name]), reference(top[name])]),
    // The message record itself, when the update is wrapped around it or when the payload is the record.
    nested && nested !== top.payload ? identifier(nested.uuid) : undefined,
    messageLike ? identifier(top.uuid) : undefined,
  ]);
  const repliedToUuids = unique(
    REPLY_FIELDS.flatMap((name) => [reference(record[name]), reference(top[name])]),
  );
  const createdAt = firstText([field('created_at')], 64, /[^\w .:+*@-]/g);
  const occurredAt = TIME_FIELDS.map((name) => parseTime(field(name), now)).find((at) => at !== undefined);

  return {
    kind,
    uuid,
    dedupeKey: dedupeKeyOf(uuid, rawStatus, rawBody),
    bodyDigest: uuid === undefined ? bodyDigestOf(rawBody) : undefined,
    type,
    direction,
    channel,
    status,
    rawStatus,
    statusWord: read?.word,
    messageUuids: messageUuids.slice(0, 3),
    repliedToUuids: repliedToUuids.slice(0, 3),
    occurredAt,
    createdAt,
    times: unique([top, ...(nested ? [nested] : [])].flatMap(instantsOf)),
  };
}

/** The direction a payload declares, else the one its type name spells (`INBOUND_TEXTS`). */
function readDirection(declared: unknown, type: string | undefined): 'inbound' | 'outbound' | undefined {
  const direction = word(declared);
  if (direction === 'inbound' || direction === 'outbound') return direction;
  if (type && /inbound/i.test(type)) return 'inbound';
  return type && /outbound/i.test(type) ? 'outbound' : undefined;
}

/** The kind of a payload: an inbound message, an update of an outbound one, or anything else. */
function readKind(
  messageLike: boolean,
  direction: 'inbound' | 'outbound' | undefined,
  status: DeliveryStatus | undefined,
): WebhookKind {
  if (!messageLike) return 'webhook';
  if (direction === 'inbound') return 'inbound_message';
  return direction === 'outbound' || status !== undefined ? 'message_status' : 'webhook';
}

/**
 * The key deliveries are deduplicated on: the payload's `uuid`, which the documentation calls the event id, and
 * its status when it carries one. A redelivery is byte-for-byte the same payload, so it has the same key either
 * way; the status keeps two updates of one message apart should `uuid` turn out to be the message's own id (the
 * webhook guide's sample is a message record). A payload with no uuid is keyed by the SHA-256 of its bytes.
 */
export function dedupeKeyOf(
  uuid: string | undefined,
  rawStatus: string | undefined,
  rawBody: Uint8Array,
): string {
  const base = uuid ?? bodyDigestOf(rawBody);
  return rawStatus === undefined ? base : `${base}#${rawStatus.replace(/[^\w.-]/g, '_')}`;
}

/** `sha256-<hex>` of a payload's bytes. */
function bodyDigestOf(rawBody: Uint8Array): string {
  return `sha256-${createHash('sha256').update(rawBody).digest('hex')}`;
}

/** Words that negate the status a text names (`not delivered`). */
const NEGATIONS: ReadonlySet<string> = new Set([
  'not',
  'no',
  'never',
  'cannot',
  'couldn',
  'wasn',
  'isn',
  'non',
]);

/**
 * The relay's word for a status: `delivered`, `failed`, `retried`, `replied`, `sent` or `queued`, from the
 * spellings eCourtDate and carriers use (the whole status, else its last word, else its first: `Undelivered to
 * ...` and `bounced:john.doe@example.com` are `failed`); else one of `EVENT_WORDS` (`opened`) when it is the
 * whole status; else `other`. Free text never comes out of it (docs/webhooks.md, "What the receiver reads").
 *
 * @example normaliseStatus('Undelivered') === 'failed'; normaliseStatus('opened') === 'opened'
 * normaliseStatus('opened by Jordan') === 'other'; normaliseStatus('john_doe_at_example_dot_com') === 'other'
 */
export function normaliseStatus(raw: string): DeliveryStatus {
  return readStatus(raw).status;
}

/**
 * A status's normalised form and eCourtDate's own word for it: the word that decided a known status
 * (`bounced` in `bounced: ***@example.com`), the event word that is the whole status, else none. Contacts are
 * masked on the text as given, then it is split into words at anything that is not a letter (any script), with
 * nothing stripped first: stripping would fuse `JOHN(AT)EXAMPLE(DOT)COM` into one word, and glue `bounced` to
 * the mask in `bounced:***@example.com`. Only a word of `STATUS_WORDS` or `EVENT_WORDS` ever comes out.
 */
function readStatus(raw: string): { readonly status: DeliveryStatus; readonly word: string | undefined } {
  const value = maskContacts(headOf(raw)).normalize('NFKC').trim().toLowerCase();
  const words = value.split(/\P{L}+/u).filter(Boolean);
  // A negated status (`not delivered`, `could not be sent`) is not the status it names: only the whole text decides.
  const negated = words.some((word) => NEGATIONS.has(word));
  for (const word of negated ? [value] : [value, words[words.length - 1], words[0]]) {
    const status = word === undefined ? undefined : STATUS_WORDS.get(word);
    if (status !== undefined) return { status, word };
  }
  return EVENT_WORDS.has(value) ? { status: value, word: value } : { status: OTHER_STATUS, word: undefined };
}

/**
 * A status as it may be published in an event that carries the payload anyway: eCourtDate's text, with e-mail
 * addresses masked to their domain and a run of seven or more digits that could be a phone number to its last two
 * digits (`maskContacts`, shared/redact.ts), on the raw text, before any character is stripped.
 *
 * @example safeStatusText('undelivered to 5557654321') === 'undelivered to ********21'
 */
export function safeStatusText(raw: string): string {
  return firstText([raw], STATUS_MAX_CHARS, STATUS_STRIP) ?? '';
}

/** A status spelled in a type name such as `message.delivered` or `OUTBOUND_MESSAGE_FAILED`. */
function statusFromType(type: string | undefined): string | undefined {
  if (type === undefined) return undefined;
  const last = type
    .toLowerCase()
    .split(/[^a-z]+/)
    .filter(Boolean)
    .pop();
  return last !== undefined && STATUS_WORDS.has(last) ? last : undefined;
}

/**
 * The first status among `values` (a string or number that is not empty once cleaned): `text`, as given, for
 * `readStatus` (which masks contacts on it and strips nothing); `safe`, as `raw_status` keeps it (masked,
 * stripped, lower case, at most `STATUS_MAX_CHARS`).
 */
function firstStatus(
  values: readonly unknown[],
): { readonly text: string; readonly safe: string } | undefined {
  for (const value of values) {
    const safe = firstText([value], STATUS_MAX_CHARS, STATUS_STRIP)?.toLowerCase();
    if (safe !== undefined) return { text: String(value), safe };
  }
  return undefined;
}

/** The longest status text kept, in characters. */
const STATUS_MAX_CHARS = 32;
/** What a status keeps besides letters, digits and `_`: separators, and the `*` and `@` of a mask. */
const STATUS_STRIP = /[^\w .*@-]/g;

/** The latest and earliest instants a JavaScript `Date` can hold, epoch ms (ECMA-262, "Time Values"). */
const DATE_RANGE_MS = 8.64e15;
/** A payload time further ahead of the receive time than this is not believed (clocks drift; years do not). */
export const MAX_FUTURE_SKEW_MS = 86_400_000;

/**
 * A time from the payload: ISO 8601, eCourtDate's `YYYY-MM-DD HH:mm:ss` (UTC), a date with its month named and a
 * four-digit year (RFC 2822, `3 Dec 2026`), or epoch seconds/ms, as a number or a string of 9-13 digits. Epoch
 * ms, a safe integer. Undefined for anything else, for a time outside the range of a `Date`, and for a time more
 * than `MAX_FUTURE_SKEW_MS` (a day) after `now` (epoch ms): such a time is treated as absent, so the receive time
 * stands in for it (docs/webhooks.md, "What the receiver reads").
 */
export function parseTime(value: unknown, now: number = Date.now()): number | undefined {
  const ms = parseInstant(value);
  return ms === undefined || ms > now + MAX_FUTURE_SKEW_MS ? undefined : ms;
}

/**
 * An instant from the payload, read as `parseTime` reads it but however far ahead: epoch ms, a safe integer
 * within the range of a `Date`, or undefined.
 *
 * @example parseInstant('1796137200') === 1796137200000; parseInstant('12') === undefined
 * parseInstant('03/04/2026') === undefined // 3 April or March 4: not guessed
 */
export function parseInstant(value: unknown): number | undefined {
  let ms: number | undefined;
  if (typeof value === 'number') ms = epochMs(value);
  else if (typeof value === 'string') ms = parseTimeText(value.trim());
  return ms === undefined || !Number.isSafeInteger(ms) || Math.abs(ms) > DATE_RANGE_MS ? undefined : ms;
}

/** Epoch seconds, or ms when above 1e12 (after 2001-09-09 as ms; year 33658 as seconds). */
function epochMs(value: number): number | undefined {
  return Number.isFinite(value) && value > 0 ? Math.round(value > 1e12 ? value : value * 1000) : undefined;
}

/** eCourtDate's UTC `YYYY-MM-DD H:i:s`, which `Date.parse` would take for local time. */
const ECOURTDATE_TIME = /^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2}:\d{2})$/;
/** Epoch seconds or ms written as a string: 9-13 digits (1973 to 2286 as seconds), an optional fraction. */
const EPOCH_TEXT = /^\d{9,13}(?:\.\d+)?$/;
/** A date that starts with its four-digit year (ISO 8601, `2026/12/03`): year, month, day, unambiguous. */
const YEAR_FIRST = /^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?!\d)/;
/** The English month names, in full or cut short (`Dec`, `Sept`), as RFC 2822 and most written dates have them. */
const MONTHS = [
  'jan(?:uary)?',
  'feb(?:ruary)?',
  'mar(?:ch)?',
  'apr(?:il)?',
  'may',
  'june?',
  'july?',
  'aug(?:ust)?',
  'sep(?:t(?:ember)?)?',
  'oct(?:ober)?',
  'nov(?:ember)?',
  'dec(?:ember)?',
];
const MONTH_NAME = new RegExp(`\\b(?:${MONTHS.join('|')})\\b`, 'i');
const FOUR_DIGIT_YEAR = /(?<!\d)\d{4}(?!\d)/;

/**
 * A time written as text, or undefined. `Date.parse` alone guesses: it reads `"12"` or `"Room 12"` as 2001-12-01,
 * and `03/04/2026` month first, so it is given only what it cannot misread: a date that starts with its year, or
 * one with its month named and a four-digit year. A bare number that is no epoch, a day and month in digits
 * either way round (`03/04/2026`, `04.03.2026`) and a date without its year count as no time.
 */
function parseTimeText(text: string): number | undefined {
  if (EPOCH_TEXT.test(text)) return epochMs(Number(text));
  const eCourtDate = ECOURTDATE_TIME.exec(text);
  if (eCourtDate) return Date.parse(`${eCourtDate[1]}T${eCourtDate[2]?.padStart(8, '0')}Z`);
  if (!YEAR_FIRST.test(text) && !(MONTH_NAME.test(text) && FOUR_DIGIT_YEAR.test(text))) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The instants an object's dating fields name (see `DATING_FIELD`), epoch ms. */
function instantsOf(record: Readonly<Record<string, unknown>>): number[] {
  return Object.keys(record)
    .slice(0, DATING_FIELDS_MAX)
    .filter((name) => DATING_FIELD.test(name))
    .map((name) => parseInstant(record[name]))
    .filter((ms): ms is number => ms !== undefined);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An id-like value: a string or number of 1-128 characters of `[A-Za-z0-9._:-]`. */
function identifier(value: unknown): string | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const text = String(value).trim();
  return /^[\w.:-]{1,128}$/.test(text) ? text : undefined;
}

/** A reference to a message: its id, or an object holding it in `uuid`. */
function reference(value: unknown): string | undefined {
  return isRecord(value) ? identifier(value.uuid) : identifier(value);
}

function word(value: unknown): string | undefined {
  return typeof value === 'string' && /^[\w-]{1,32}$/.test(value.trim())
    ? value.trim().toLowerCase()
    : undefined;
}

/**
 * The first string (or number) among `values`, cleaned of `strip` characters and cut to `max`. E-mail addresses
 * and phone numbers are masked on the raw text first (`maskContacts`): stripping first would fuse
 * `john.doe@example.com` into `john.doeexample.com`, which no pattern knows any more. They are masked again
 * after, since stripping can join what was apart (`john.doe@exa"mple.com`); `strip` must keep `@` for that.
 */
function firstText(values: readonly unknown[], max: number, strip: RegExp): string | undefined {
  for (const value of values) {
    if (typeof value !== 'string' && typeof value !== 'number') continue;
    const text = maskContacts(maskContacts(headOf(String(value))).replace(strip, ''))
      .trim()
      .slice(0, max);
    if (text !== '') return text;
  }
  return undefined;
}

/** How much of a field is read, in UTF-16 units: four times the longest text kept (64). */
const REDACT_SPAN_CHARS = 256;

/**
 * The start of a field's text, for bounded work on a long field; a word cut at the bound is dropped whole, so no
 * half address stays.
 */
function headOf(whole: string): string {
  return whole.length > REDACT_SPAN_CHARS ? whole.slice(0, REDACT_SPAN_CHARS).replace(/\S*$/, '') : whole;
}

function unique<T>(values: readonly (T | undefined)[]): T[] {
  return [...new Set(values.filter((value): value is T => value !== undefined))];
}
