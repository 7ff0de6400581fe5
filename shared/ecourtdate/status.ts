/**
 * How a request to eCourtDate that got no HTTP answer counts for the retry policy: it ran past the HTTP timeout
 * (`timeout`), or the connection could not be made or was lost (`connection`). `EcdTransportError.kind`
 * (shared/ecourtdate/errors.ts), whose `failure` names the finer cause (DNS, refused, TLS, reset). See
 * docs/contract.md, "What each response does".
 */
export type TransportKind = 'timeout' | 'connection';

/**
 * What one request to eCourtDate came to: the HTTP status of its answer, or the transport failure when no answer
 * came. The status the relay logs, counts in metrics and writes as a dead letter's `last_status`.
 *
 * @example
 * const statuses: ApiStatus[] = [201, 'timeout', 409];
 */
export type ApiStatus = number | TransportKind;

/**
 * A job's last status as operators see it (dead-letter attribute `last_status`, `relay job`, the local report):
 * an `ApiStatus`, or `lost` for an attempt that never reported (its instance stopped after sending).
 */
export type LastStatus = ApiStatus | 'lost';

/**
 * Reads a last status back from its text form (an SQS message attribute, a ledger field): HTTP statuses become
 * numbers; `none` (nothing was sent) and an empty value become null; any other word stays as written.
 *
 * @example
 * parseLastStatus('503'); // 503
 * parseLastStatus('timeout'); // 'timeout'
 * parseLastStatus('none'); // null
 */
export function parseLastStatus(text: string | undefined): number | string | null {
  if (text === undefined) return null;
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === 'none') return null;
  return /^\d{3}$/.test(trimmed) ? Number(trimmed) : trimmed;
}
