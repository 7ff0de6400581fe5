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
  /** The payload's own type name (`type`, `event`, ...), when it carries one. */
  readonly type: string | undefined;
  readonly direction: 'inbound' | 'outbound' | undefined;
  readonly channel: string | undefined;
  /**
   * The normalised status of a message update: the relay's word (`delivered`, `failed`, ...), eCourtDate's when
   * it is a single word (`opened`), else `other`. Never free text: it goes where the payload does not.
   */
  readonly status: DeliveryStatus | undefined;
  /**
   * The status as eCourtDate sent it (lower case, at most 32 characters), with e-mail addresses and numbers that
   * could be phone numbers masked on the raw text: for the events that carry the payload anyway.
   */
  readonly rawStatus: string | undefined;
  /**
   * eCourtDate's own word for the status when it has one (`undelivered`, `bounced`, `opened`): what the
   * payload-free views (the job's history, `eCourtDate Job Delivery Status`) keep beside `status`.
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
/** The statuses kept as eCourtDate spelled them: one word of letters, `_` and `-`, at most 32 characters. */
const STATUS_WORD = /^(?=[_-]*[a-z])[a-z_-]{1,32}$/;
/** What a status in free text normalises to: its text never goes where the payload does not. */
export const OTHER_STATUS = 'other';
const CHANNELS = new Set(['text', 'sms', 'mms', 'email', 'voice', 'push', 'call']);
const MESSAGE_TYPE = /message|text|sms|mms|e-?mail|voice|call/i;

/** The relay's own status words; any other status is eCourtDate's word, kept as it spelled it. */
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
  const rawStatus =
    firstText(
      STATUS_FIELDS.map((name) => field(name)).filter((value) => !isRecord(value)),
      STATUS_MAX_CHARS,
      STATUS_STRIP,
    )?.toLowerCase() ?? statusFromType(type);
  const read = rawStatus === undefined ? undefined : readStatus(rawStatus);
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
  const base = uuid ?? `sha256-${createHash('sha256').update(rawBody).digest('hex')}`;
  return rawStatus === undefined ? base : `${base}#${rawStatus.replace(/[^\w.-]/g, '_')}`;
}

/**
 * The relay's word for a status: `delivered`, `failed`, `retried`, `replied`, `sent` or `queued`, from the
 * spellings eCourtDate and carriers use (the whole status, else its last word, else its first: `Undelivered to
 * ...` is `failed`); else eCourtDate's word when the status is one word (lower case); else `other`. Free text
 * never comes out of it (docs/webhooks.md, "What the receiver reads").
 *
 * @example normaliseStatus('Undelivered') === 'failed'; normaliseStatus('opened') === 'opened'
 * normaliseStatus('opened by Jordan') === 'other'
 */
export function normaliseStatus(raw: string): DeliveryStatus {
  return readStatus(raw).status;
}

/**
 * A status's normalised form and eCourtDate's own word for it: the word that decided a known status
 * (`bounced` in `bounced: ***@example.com`), the status itself when it is one word, else none.
 */
function readStatus(raw: string): { readonly status: DeliveryStatus; readonly word: string | undefined } {
  const value = raw.trim().toLowerCase();
  const words = value.split(/[\s_-]+/).filter(Boolean);
  for (const word of [value, words[words.length - 1], words[0]]) {
    const status = word === undefined ? undefined : STATUS_WORDS.get(word);
    if (status !== undefined) return { status, word };
  }
  return STATUS_WORD.test(value) ? { status: value, word: value } : { status: OTHER_STATUS, word: undefined };
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

/** The longest status text kept, in characters. */
const STATUS_MAX_CHARS = 32;
/** What a status keeps besides letters, digits and `_`: separators, and the `*` and `@` of a mask. */
const STATUS_STRIP = /[^\w .*@-]/g;

/** The latest and earliest instants a JavaScript `Date` can hold, epoch ms (ECMA-262, "Time Values"). */
const DATE_RANGE_MS = 8.64e15;
/** A payload time further ahead of the receive time than this is not believed (clocks drift; years do not). */
export const MAX_FUTURE_SKEW_MS = 86_400_000;

/**
 * A time from the payload: ISO 8601, eCourtDate's `YYYY-MM-DD HH:mm:ss` (UTC), or epoch seconds/ms. Epoch ms,
 * a safe integer. Undefined for anything else, for a time outside the range of a `Date`, and for a time more than
 * `MAX_FUTURE_SKEW_MS` (a day) after `now` (epoch ms): such a time is treated as absent, so the receive time
 * stands in for it (docs/webhooks.md, "What the receiver reads").
 */
export function parseTime(value: unknown, now: number = Date.now()): number | undefined {
  const ms = parseInstant(value);
  return ms === undefined || ms > now + MAX_FUTURE_SKEW_MS ? undefined : ms;
}

/**
 * An instant from the payload, read as `parseTime` reads it but however far ahead: epoch ms, a safe integer
 * within the range of a `Date`, or undefined.
 */
export function parseInstant(value: unknown): number | undefined {
  let ms: number | undefined;
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) {
    ms = Math.round(value > 1e12 ? value : value * 1000);
  } else if (typeof value === 'string') {
    const text = value.trim();
    const eCourtDate = /^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2}:\d{2})$/.exec(text);
    ms = eCourtDate ? Date.parse(`${eCourtDate[1]}T${eCourtDate[2]?.padStart(8, '0')}Z`) : Date.parse(text);
  }
  return ms === undefined || !Number.isSafeInteger(ms) || Math.abs(ms) > DATE_RANGE_MS ? undefined : ms;
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
    const whole = String(value);
    // Bounded work on a long field; a word cut at the bound is dropped whole, so no half address stays.
    const head =
      whole.length > REDACT_SPAN_CHARS ? whole.slice(0, REDACT_SPAN_CHARS).replace(/\S*$/, '') : whole;
    const text = maskContacts(maskContacts(head).replace(strip, '')).trim().slice(0, max);
    if (text !== '') return text;
  }
  return undefined;
}

/** How much of a field is read, in UTF-16 units: four times the longest text kept (64). */
const REDACT_SPAN_CHARS = 256;

function unique<T>(values: readonly (T | undefined)[]): T[] {
  return [...new Set(values.filter((value): value is T => value !== undefined))];
}
