/**
 * EventBridge's PutEvents limits (AWS EventBridge API reference, PutEvents; user guide, "Calculating PutEvents event
 * entry size"): what the operator CLI's `relay send --via bus` batches by (docs/operating.md), and the local
 * EventBridge stand-in's entry count and request-size bound.
 */

/** Most entries in one PutEvents request. */
export const PUT_EVENTS_MAX_ENTRIES = 10;

/** Largest PutEvents request: its entries' sizes together, bytes. */
export const PUT_EVENTS_MAX_BYTES = 256 * 1024;

/**
 * The size EventBridge counts for one PutEvents entry, bytes: its Source, DetailType and Detail in UTF-8 (the
 * relay sends no Time or Resources).
 */
export function putEventsEntryBytes(source: string, detailType: string, detail: string): number {
  return Buffer.byteLength(source) + Buffer.byteLength(detailType) + Buffer.byteLength(detail);
}
