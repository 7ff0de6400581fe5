/** Field errors keyed by field name, in the order they were found (Laravel-style). */
export type FieldErrors = Record<string, string[]>;

const SCHEDULED_AT = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;
const CONTENT_MAX = 2000;
const SUBJECT_MAX = 255;

/**
 * Checks a oneoffs body against the documented limits (content ≤ 2,000, subject ≤ 255, UTC
 * `YYYY-MM-DD HH:mm:ss`). Only constraints the docs state are enforced; unknown fields pass through.
 */
export function validateOneoff(body: Record<string, unknown>): FieldErrors {
  const errors: FieldErrors = {};
  const add = (field: string, message: string) => {
    errors[field] = [...(errors[field] ?? []), message];
  };
  requireText(body, 'to', add);
  if (requireText(body, 'content', add) && length(body.content as string) > CONTENT_MAX) {
    add('content', `The content field must not be greater than ${CONTENT_MAX} characters.`);
  }
  if (body.subject !== undefined && body.subject !== null) {
    if (typeof body.subject !== 'string') add('subject', 'The subject field must be a string.');
    else if (length(body.subject) > SUBJECT_MAX) {
      add('subject', `The subject field must not be greater than ${SUBJECT_MAX} characters.`);
    }
  }
  if (body.scheduled_at !== undefined && body.scheduled_at !== null) {
    if (typeof body.scheduled_at !== 'string' || parseScheduledAt(body.scheduled_at) === undefined) {
      add('scheduled_at', 'The scheduled at field must match the format Y-m-d H:i:s.');
    }
  }
  if (body.skip_duplicate !== undefined && typeof body.skip_duplicate !== 'boolean') {
    add('skip_duplicate', 'The skip duplicate field must be true or false.');
  }
  return errors;
}

/** `YYYY-MM-DD HH:mm:ss` read as UTC, in ms; `undefined` unless it is a real calendar time. */
export function parseScheduledAt(value: string): number | undefined {
  const parts = SCHEDULED_AT.exec(value);
  if (!parts) return undefined;
  const [year, month, day, hour, minute, second] = parts.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const back = new Date(ms);
  // Date.UTC rolls 2025-02-30 over to March; a round trip exposes dates that do not exist.
  const exact =
    back.getUTCFullYear() === year &&
    back.getUTCMonth() === month - 1 &&
    back.getUTCDate() === day &&
    back.getUTCHours() === hour &&
    back.getUTCMinutes() === minute &&
    back.getUTCSeconds() === second;
  return exact ? ms : undefined;
}

/** The format eCourtDate accepts for timestamps sent to it, used to echo a default `scheduled_at`. */
export function formatScheduledAt(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/** ISO 8601 with `Z` and no milliseconds, as in eCourtDate's examples. */
export function formatIso(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** A 400 body that names the fields: the first message (plus a count of the rest) and every error by field. */
export function validationBody(errors: FieldErrors): { message: string; errors: FieldErrors } {
  const all = Object.values(errors).flat();
  const rest = all.length - 1;
  const suffix = rest > 0 ? ` (and ${rest} more error${rest > 1 ? 's' : ''})` : '';
  return { message: `${all[0] ?? 'The given data was invalid.'}${suffix}`, errors };
}

function requireText(
  body: Record<string, unknown>,
  field: string,
  add: (f: string, m: string) => void,
): boolean {
  const value = body[field];
  // Laravel trims input before `required`, so whitespace-only counts as missing.
  if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) {
    add(field, `The ${field} field is required.`);
    return false;
  }
  if (typeof value !== 'string') {
    add(field, `The ${field} field must be a string.`);
    return false;
  }
  return true;
}

/** Characters as PHP's mb_strlen counts them (code points), not UTF-16 units. */
function length(text: string): number {
  return [...text].length;
}
