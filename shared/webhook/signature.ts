import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header eCourtDate signs each delivery with (docs/webhooks.md, "Signature"). */
export const SIGNATURE_HEADER = 'x-ecd-signature';

const HEX_SHA256 = /^[0-9a-f]{64}$/;

/**
 * The hex HMAC-SHA256 of the body bytes, keyed with the shared secret: what eCourtDate puts in
 * `X-ECD-Signature`. Computed over the bytes exactly as received, never over re-serialised JSON.
 *
 * @example signBody('s3cret', Buffer.from('{"uuid":"a"}')) // 64 lowercase hex characters
 */
export function signBody(secret: string, body: Uint8Array): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/**
 * True when `header` is the hex HMAC-SHA256 of `body` under one of `secrets` (the current secret and, during a
 * rotation, the previous one). The comparison is constant-time (`crypto.timingSafeEqual` on the 32 digest
 * bytes); a header that is not 64 hex characters is false without comparing. Upper-case hex and a `sha256=`
 * prefix are tolerated: the header's exact spelling is not documented beyond "hex".
 */
export function verifySignature(
  header: string | undefined,
  body: Uint8Array,
  secrets: readonly string[],
): boolean {
  if (header === undefined) return false;
  const hex = header
    .trim()
    .toLowerCase()
    .replace(/^sha256=/, '');
  if (!HEX_SHA256.test(hex)) return false;
  const given = Buffer.from(hex, 'hex');
  let match = false;
  // Every secret is tried, so the time taken does not say which one matched.
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(body).digest();
    if (timingSafeEqual(given, expected)) match = true;
  }
  return match;
}
