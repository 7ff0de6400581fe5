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
