import { RelayError } from '#shared/errors.ts';

/** Base class of the webhook receiver's errors. Messages never carry the secret, a payload or a recipient. */
export class WebhookError extends RelayError {}

/** The webhook secret could not be read from Secrets Manager or does not have a usable shape. */
export class WebhookSecretError extends WebhookError {}

/**
 * `PutEvents` did not take every entry: the call failed, or EventBridge answered with a `FailedEntryCount`.
 * `published` names the entries that did go out, so a retry sends only the others.
 */
export class PublishError extends WebhookError {
  readonly published: readonly string[];
  readonly errorCodes: readonly string[];
  constructor(
    message: string,
    published: readonly string[],
    errorCodes: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.published = published;
    this.errorCodes = errorCodes;
  }
}
