/** A command that cannot be carried out as asked; the message says why, and the CLI exits with status 2. */
export class CliError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
  }
}
