import { RelayError } from '#shared/errors.ts';

/** A command that cannot be carried out as asked; the message says why, and the CLI exits with status 2. */
export class CliError extends RelayError {}

/**
 * A job file that holds a job the relay would dead-letter `invalid_job`: nothing was sent, and the CLI exits with
 * status 1 (the file, not the command, is at fault). The message names every bad line and field.
 */
export class InvalidJobFileError extends RelayError {}
