/**
 * Base class of every error the relay raises on purpose. `cause` is kept; messages say what was expected and
 * what came, and never carry a secret, a token, message text or a recipient.
 */
export class RelayError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Configuration that cannot work: raised at cold start, naming the variable. */
export class ConfigError extends RelayError {
  readonly variable: string;
  constructor(variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.variable = variable;
  }
}

/**
 * A send job that breaks the contract of docs/contract.md ("The send job"); `field` is the dotted path of the
 * offending field.
 */
export class JobValidationError extends RelayError {
  readonly field: string;
  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.field = field;
  }
}

/** The client credentials secret could not be read or does not have the expected shape. */
export class CredentialsError extends RelayError {}
