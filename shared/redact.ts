/**
 * Redaction of anything that could carry personal data or credentials before it reaches a log line, an
 * error, a metric or a dead-letter attribute. The relay never logs message text or a full recipient.
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
 * recipient, token, secret; also in its JSON-escaped form) is replaced, then e-mail addresses, phone
 * numbers, JWTs and long opaque strings; the result is cut to `maxChars`.
 */
export function redactText(
  text: string,
  sensitive: readonly (string | undefined)[] = [],
  maxChars = EXCERPT_MAX_CHARS,
): string {
  // Only the start of a body can end up in an excerpt; bound the work on large bodies.
  let out = text.slice(0, maxChars * 16);
  for (const value of sensitive) {
    if (!value || value.length < 4) continue;
    for (const form of new Set([value, JSON.stringify(value).slice(1, -1)])) {
      out = out.split(form).join('[redacted]');
      out = redactSharedRuns(out, form);
    }
  }
  out = out
    .replace(JWT, '[token]')
    .replace(OPAQUE, '[redacted]')
    .replace(EMAIL, '***@$1')
    .replace(PHONE, (match) => maskRecipient(match))
    .replace(/\s+/g, ' ')
    .trim();
  return truncate(out, maxChars);
}

/** Length of the shortest run of a sensitive value that is redacted where it is quoted in part. */
const SHARED_RUN_CHARS = 12;

/**
 * Redacts every run of `SHARED_RUN_CHARS` or more characters that `text` shares with `value`: servers quote
 * message text in part (truncated, inside a sentence), which an exact match would miss.
 */
function redactSharedRuns(text: string, value: string): string {
  if (value.length < SHARED_RUN_CHARS || text.length < SHARED_RUN_CHARS) return text;
  const windows = new Set<string>();
  for (let i = 0; i + SHARED_RUN_CHARS <= value.length; i++)
    windows.add(value.slice(i, i + SHARED_RUN_CHARS));
  const hidden = new Uint8Array(text.length);
  let found = false;
  for (let i = 0; i + SHARED_RUN_CHARS <= text.length; i++) {
    if (windows.has(text.slice(i, i + SHARED_RUN_CHARS))) {
      hidden.fill(1, i, i + SHARED_RUN_CHARS);
      found = true;
    }
  }
  if (!found) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    if (!hidden[i]) out += text[i];
    else if (i === 0 || !hidden[i - 1]) out += '[redacted]';
  }
  return out;
}

/** Cuts a string to at most `maxChars` characters, marking the cut. */
export function truncate(text: string, maxChars: number): string {
  const chars = [...text];
  return chars.length <= maxChars ? text : `${chars.slice(0, Math.max(maxChars - 1, 0)).join('')}…`;
}
