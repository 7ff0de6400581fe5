/**
 * The ledger table's shape, CDK-free and SDK-free: the stack, the local DynamoDB emulator and the sender all
 * build from these names (docs/ledger.md).
 */

/** The table's partition key (a string). */
export const LEDGER_TABLE_KEY = 'id';

/** The table's TTL attribute, epoch seconds. */
export const LEDGER_TABLE_TTL_ATTRIBUTE = 'expiration';

/** Key prefix of a job's entry: `job#<job id>`. */
export const JOB_KEY_PREFIX = 'job#';

/**
 * The id of the stage's one `api-client` item: the shared state of the stage's API client (the circuit breaker's
 * `breaker_*` attributes; docs/ledger.md, "The api-client item"). It has no TTL.
 */
export const API_CLIENT_ITEM_ID = 'api-client';
