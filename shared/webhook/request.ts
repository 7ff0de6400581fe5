import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { IpAllowlist } from '#shared/webhook/allowlist.ts';
import { SIGNATURE_HEADER } from '#shared/webhook/signature.ts';

/** What the receiver needs of one API Gateway HTTP API (payload format 2.0) request. */
export interface WebhookRequest {
  readonly method: string;
  /** The request context's source IP: the address of the TCP peer as API Gateway saw it, not a header. */
  readonly sourceIp: string | undefined;
  readonly contentType: string | undefined;
  readonly signature: string | undefined;
  /** The body's bytes exactly as sent: base64 bodies are decoded, text bodies are UTF-8 encoded back. */
  readonly body: Buffer;
}

/** Why a request was turned away before its signature was checked. */
export type Rejection =
  | { readonly status: 403; readonly reason: 'ip_not_allowed' }
  | { readonly status: 405; readonly reason: 'method_not_allowed' }
  | { readonly status: 415; readonly reason: 'unsupported_media_type' }
  | { readonly status: 413; readonly reason: 'body_too_large' };

/**
 * Reads the parts of an HTTP API v2 event the receiver uses. Header names arrive in lower case (API Gateway
 * lower-cases them in payload format 2.0); duplicated headers arrive joined with commas.
 */
export function readWebhookRequest(event: APIGatewayProxyEventV2): WebhookRequest {
  const headers = event.headers ?? {};
  const header = (name: string): string | undefined => {
    const value =
      headers[name] ?? headers[Object.keys(headers).find((key) => key.toLowerCase() === name) ?? ''];
    return value === undefined || value === '' ? undefined : value;
  };
  const raw = event.body ?? '';
  return {
    method: (event.requestContext?.http?.method ?? '').toUpperCase(),
    sourceIp: event.requestContext?.http?.sourceIp,
    contentType: header('content-type'),
    signature: header(SIGNATURE_HEADER),
    body: event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8'),
  };
}

/**
 * The checks that need neither the secret nor the body's content, cheapest first: source IP (when the
 * allowlist is on), method, content type, size. Returns the rejection, or undefined to go on.
 */
export function screenRequest(
  request: WebhookRequest,
  limits: { readonly allowlist: IpAllowlist; readonly maxBodyBytes: number },
): Rejection | undefined {
  if (!limits.allowlist.allows(request.sourceIp)) return { status: 403, reason: 'ip_not_allowed' };
  if (request.method !== 'POST') return { status: 405, reason: 'method_not_allowed' };
  if (!isJsonMediaType(request.contentType)) return { status: 415, reason: 'unsupported_media_type' };
  if (request.body.byteLength > limits.maxBodyBytes) return { status: 413, reason: 'body_too_large' };
  return undefined;
}

/**
 * True for `application/json` and `application/<anything>+json`, with or without parameters such as a
 * charset; eCourtDate posts "a JSON body" (docs/webhooks.md).
 */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const mediaType = contentType.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  return mediaType === 'application/json' || /^application\/[a-z0-9!#$&^_.-]+\+json$/.test(mediaType);
}
