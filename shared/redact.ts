/**
 * Redaction of anything that could carry personal data or credentials before it reaches a log line, an
 * error, a metric or a dead-letter attribute. The relay never logs message text or a full recipient.
 *
 * An API may echo a value in another spelling than the job's: JSON-escaped (`jos\u00e9`, `555\u2010010`),
 * in another Unicode normal form (an accent as a combining mark), or with other dashes and spaces (U+2010,
 * U+2212, NBSP, fullwidth forms). Matching therefore runs on a folded view of the text, and what it finds is
 * replaced in the text as it came.
 */

const EMAIL = /[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})/g;
// Seven or more digits, possibly broken up by spaces, dots, dashes or parentheses, standing on their own
// (not inside a UUID or a longer word): a phone number.
const PHONE = /(?<![\w-])\+?\d(?:[\s().-]*\d){6,}(?![\w-])/g;
const JWT = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?/g;
// Long opaque strings (tokens, secrets). Dashes are left out so that UUIDs, which are useful, survive.
const OPAQUE = /[A-Za-z0-9+/_=]{32,}/g;

/** Default length of a response excerpt kept for logs and dead-letter attributes. */
export const EXCERPT_MAX_CHARS = 256;

/**
 * Masks a recipient for logs: a phone number keeps its last two digits, an e-mail address its domain.
 * @example maskRecipient('+15551234567') === '+*********67'; maskRecipient('ann@court.gov') === '***@court.gov'
 */
export function maskRecipient(to: string): string {
  const at = to.lastIndexOf('@');
  if (at > 0) return `***${to.slice(at)}`;
  const digits = to.replace(/\D/g, '');
  if (digits.length === 0) return '***';
  return `${to.trim().startsWith('+') ? '+' : ''}${'*'.repeat(Math.max(digits.length - 2, 1))}${digits.slice(-2)}`;
}

/**
 * Redacts free text (typically an API response body): every given sensitive value (message text, subject,
 * recipient, token, secret) is replaced wherever it occurs, also in part (a run of 12 or more characters),
 * JSON-escaped, or in a Unicode, dash, space or letter-case variant; then e-mail addresses, phone numbers,
 * JWTs and long opaque strings, also when escaped or written with variant characters. White space is
 * collapsed and the result cut to `maxChars` characters (code points).
 *
 * @example redactText('{"to":"555\\u2010010\\u20100401"}') === '{"to":"********01"}'
 */
export function redactText(
  text: string,
  sensitive: readonly (string | undefined)[] = [],
  maxChars = EXCERPT_MAX_CHARS,
): string {
  // Only the start of a body can end up in an excerpt; bound the work on large bodies.
  let out = redactValues(text.slice(0, maxChars * 16), sensitive);
  out = replaceInView(out, JWT, () => '[token]');
  out = replaceInView(out, OPAQUE, () => '[redacted]');
  out = replaceInView(out, EMAIL, (match) => `***${match.slice(match.lastIndexOf('@'))}`);
  out = replaceInView(out, PHONE, (match) => maskRecipient(match));
  return truncate(out.replace(/\s+/g, ' ').trim(), maxChars);
}

/**
 * Masks the e-mail addresses (to their domain) and phone numbers (to their last two digits) in a short text such
 * as a status or a type name, as `redactText` does, and nothing else: the text keeps its length class and its
 * spaces, and a long name such as `OUTBOUND_MESSAGE_DELIVERY_NOTIFICATION` is not taken for a token. Run it on the
 * raw text, before any character is stripped: `john.doe@example.com` stripped of `@` is no address any more.
 *
 * @example maskContacts('bounced: ann@court.gov') === 'bounced: ***@court.gov'
 */
export function maskContacts(text: string): string {
  const out = replaceInView(text, EMAIL, (match) => `***${match.slice(match.lastIndexOf('@'))}`);
  return replaceInView(out, PHONE, (match) => maskRecipient(match));
}

/** Length of the shortest run of a sensitive value that is redacted where it is quoted in part. */
const SHARED_RUN_CHARS = 12;
/** Sensitive values shorter than this are not looked for: they would match ordinary words. */
const MIN_SENSITIVE_CHARS = 4;

/**
 * Replaces every occurrence of each sensitive value, and every run of `SHARED_RUN_CHARS` or more characters
 * that the text shares with one (servers quote message text in part: truncated, inside a sentence), with
 * `[redacted]`: once per contiguous stretch. Matching is on folded, lower-case views of the text, with and
 * without JSON escapes decoded (a value may itself hold a backslash).
 */
function redactValues(text: string, sensitive: readonly (string | undefined)[]): string {
  const values = sensitive
    .filter((value): value is string => value !== undefined && value.length >= MIN_SENSITIVE_CHARS)
    .map((value) => foldString(value, true))
    .filter((value) => value.length >= MIN_SENSITIVE_CHARS);
  if (values.length === 0) return text;
  const hidden = new Uint8Array(text.length);
  const views = [buildView(text, 'json', true), buildView(text, 'url', true), buildView(text, 'none', true)];
  for (const view of views) {
    const hide = (start: number, end: number) => {
      const first = view.from[start];
      const last = view.to[end - 1];
      if (first !== undefined && last !== undefined) hidden.fill(1, first, last);
    };
    for (const value of values) {
      for (let at = view.text.indexOf(value); at !== -1; at = view.text.indexOf(value, at + 1))
        hide(at, at + value.length);
      if (value.length < SHARED_RUN_CHARS) continue;
      const windows = new Set<string>();
      for (let i = 0; i + SHARED_RUN_CHARS <= value.length; i++)
        windows.add(value.slice(i, i + SHARED_RUN_CHARS));
      for (let i = 0; i + SHARED_RUN_CHARS <= view.text.length; i++)
        if (windows.has(view.text.slice(i, i + SHARED_RUN_CHARS))) hide(i, i + SHARED_RUN_CHARS);
    }
  }
  let out = '';
  for (let i = 0; i < text.length; i++) {
    if (!hidden[i]) out += text[i];
    else if (i === 0 || !hidden[i - 1]) out += '[redacted]';
  }
  return out;
}

/**
 * Runs `pattern` (global) on the folded view of `text` with JSON escapes decoded, and replaces the part of
 * `text` each match came from with `replacement(match as seen in the view)`.
 */
function replaceInView(text: string, pattern: RegExp, replacement: (match: string) => string): string {
  return replaceInOneView(replaceInOneView(text, pattern, replacement, 'json'), pattern, replacement, 'url');
}

function replaceInOneView(
  text: string,
  pattern: RegExp,
  replacement: (match: string) => string,
  decode: Decoding,
): string {
  const view = buildView(text, decode, false);
  let out = '';
  let copied = 0;
  for (const match of view.text.matchAll(pattern)) {
    const start = view.from[match.index];
    const end = view.to[match.index + match[0].length - 1];
    // A match may begin inside a character that folded to several (e.g. a ligature) already replaced.
    if (start === undefined || end === undefined || start < copied) continue;
    out += text.slice(copied, start) + replacement(match[0]);
    copied = end;
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/** A folded copy of a text; character `i` of `text` came from `[from[i], to[i])` of the original. */
interface View {
  readonly text: string;
  readonly from: readonly number[];
  readonly to: readonly number[];
}

const JSON_SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};
const UNICODE_ESCAPE = /^\\u([0-9A-Fa-f]{4})/;

/**
 * How a view decodes the text before folding it: JSON escapes (`\u00e9`, `\"`) and HTML entities (`&nbsp;`,
 * `&#233;`); URL encoding (`%2B`, `%C3%A9`, `+` for a space) and HTML entities; or nothing (a value may itself
 * hold a backslash or a percent sign).
 */
type Decoding = 'json' | 'url' | 'none';

/** Builds the folded view of `text`, decoding escapes as `decode` says. */
function buildView(text: string, decode: Decoding, lowerCase: boolean): View {
  let folded = '';
  const from: number[] = [];
  const to: number[] = [];
  let i = 0;
  while (i < text.length) {
    let char: string;
    let length: number;
    const escaped = decodeAt(text, i, decode);
    if (escaped) {
      [char, length] = escaped;
    } else {
      char = String.fromCodePoint(text.codePointAt(i) ?? 0);
      length = char.length;
    }
    const piece = fold(char, lowerCase);
    folded += piece;
    for (let k = 0; k < piece.length; k++) {
      from.push(i);
      to.push(i + length);
    }
    i += length;
  }
  return { text: folded, from, to };
}

/** The character an escape at `i` stands for under `decode`, and the escape's length; undefined if none. */
function decodeAt(text: string, i: number, decode: Decoding): [string, number] | undefined {
  if (decode === 'none') return undefined;
  const char = text[i];
  if (char === '&') return htmlEntityAt(text, i);
  if (decode === 'json') return char === '\\' ? jsonEscapeAt(text, i) : undefined;
  if (char === '+') return [' ', 1];
  return char === '%' ? percentEscapeAt(text, i) : undefined;
}

const HTML_ENTITY = /^&(#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]{2,8});/;
const HTML_NAMED: Readonly<Record<string, string>> = {
  nbsp: '\u00A0',
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  ndash: '\u2013',
  mdash: '\u2014',
};

/** The character an HTML entity at `i` stands for (`&nbsp;`, `&#233;`, `&#xE9;`), and its length. */
function htmlEntityAt(text: string, i: number): [string, number] | undefined {
  const entity = HTML_ENTITY.exec(text.slice(i, i + 12));
  const name = entity?.[1];
  if (!entity || !name) return undefined;
  if (name.startsWith('#')) {
    const code =
      name[1] === 'x' || name[1] === 'X' ? Number.parseInt(name.slice(2), 16) : Number(name.slice(1));
    return code > 0 && code <= 0x10ffff ? [String.fromCodePoint(code), entity[0].length] : undefined;
  }
  const named = Object.hasOwn(HTML_NAMED, name.toLowerCase()) ? HTML_NAMED[name.toLowerCase()] : undefined;
  return named === undefined ? undefined : [named, entity[0].length];
}

const PERCENT_BYTE = /^%([0-9A-Fa-f]{2})/;

/** The character a URL-encoded UTF-8 sequence at `i` stands for (`%2B`, `%C3%A9`), and its length. */
function percentEscapeAt(text: string, i: number): [string, number] | undefined {
  const bytes: number[] = [];
  for (let at = i; bytes.length < 4; at += 3) {
    const byte = PERCENT_BYTE.exec(text.slice(at, at + 3))?.[1];
    if (byte === undefined) break;
    bytes.push(Number.parseInt(byte, 16));
    const first = bytes[0] ?? 0;
    const need = first < 0x80 ? 1 : first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 1;
    if (bytes.length === need) {
      const decoded = new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(bytes));
      return [decoded, bytes.length * 3];
    }
  }
  return undefined;
}

/** The character a JSON escape at `i` stands for, and the escape's length; undefined if none starts there. */
function jsonEscapeAt(text: string, i: number): [string, number] | undefined {
  const next = text[i + 1];
  if (next === undefined) return undefined;
  const simple = JSON_SIMPLE_ESCAPES[next];
  if (simple !== undefined) return [simple, 2];
  const unit = UNICODE_ESCAPE.exec(text.slice(i, i + 6));
  if (!unit?.[1]) return undefined;
  const high = Number.parseInt(unit[1], 16);
  if (high >= 0xd800 && high <= 0xdbff) {
    const low = UNICODE_ESCAPE.exec(text.slice(i + 6, i + 12));
    const lowUnit = low?.[1] ? Number.parseInt(low[1], 16) : 0;
    if (lowUnit >= 0xdc00 && lowUnit <= 0xdfff) return [String.fromCharCode(high, lowUnit), 12];
  }
  return [String.fromCharCode(high), 6];
}

// Dashes that NFKD leaves alone: hyphen, non-breaking hyphen, figure dash, en and em dash, horizontal bar,
// minus sign, hyphen bullet, two- and three-em dash.
const DASHES = /[\u2010-\u2015\u2212\u2043\u2E3A\u2E3B]/g;
const SPACES = /\p{Zs}/gu;
// Soft hyphen, zero-width space, joiners, word joiner, byte order mark: invisible, so dropped.
const INVISIBLE = /[\u00AD\u200B-\u200D\u2060\uFEFF]/g;
const MARKS = /\p{M}/gu;

/**
 * Folds one character for matching: compatibility decomposition (fullwidth `＋１` to `+1`, `ﬁ` to `fi`) without
 * accents (so `é`, `e` + U+0301 and `\u00e9` meet), any dash to `-`, any space to ` `, invisible characters
 * dropped, and optionally lower case.
 */
function fold(char: string, lowerCase: boolean): string {
  const folded = char
    .normalize('NFKD')
    .replace(MARKS, '')
    .replace(DASHES, '-')
    .replace(SPACES, ' ')
    .replace(INVISIBLE, '');
  return lowerCase ? folded.toLowerCase() : folded;
}

function foldString(value: string, lowerCase: boolean): string {
  let out = '';
  for (const char of value) out += fold(char, lowerCase);
  return out;
}

/** Cuts a string to at most `maxChars` characters, marking the cut. */
export function truncate(text: string, maxChars: number): string {
  const chars = [...text];
  return chars.length <= maxChars ? text : `${chars.slice(0, Math.max(maxChars - 1, 0)).join('')}…`;
}
