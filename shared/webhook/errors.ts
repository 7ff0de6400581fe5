import { RelayError } from '#shared/errors.ts';

/** Base class of the webhook receiver's errors. Messages never carry the secret, a payload or a recipient. */
export class WebhookError extends RelayError {}

/** The webhook secret could not be read from Secrets Manager or does not have a usable shape. */
export class WebhookSecretError extends WebhookError {}
