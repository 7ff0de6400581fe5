import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/**
 * The response headers eCourtDate's webhook security page recommends (docs/webhooks.md, "Security"), on every
 * answer: no MIME sniffing, no framing, HTTPS only, and a policy that lets the answer load nothing.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'strict-transport-security': 'max-age=63072000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/**
 * A response with the security headers and a small JSON body (or none: a 401 says nothing about why).
 *
 * @example respond(405, { message: 'method not allowed' }, { allow: 'POST' })
 */
export function respond(
  statusCode: number,
  body?: Readonly<Record<string, string>>,
  headers: Readonly<Record<string, string>> = {},
): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode,
    headers: {
      ...SECURITY_HEADERS,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? '' : JSON.stringify(body),
    isBase64Encoded: false,
  };
}
