import { createHmac, randomUUID } from 'node:crypto';
import type { CreatedMessage } from './types.ts';

/**
 * The simulated eCourtDate's webhooks (docs/webhooks.md): for each message it creates, signed POSTs as eCourtDate
 * would send them, with eCourtDate's retries of any non-2xx answer. Attach it with the simulator's
 * `onMessageCreated` option.
 *
 * Per message: `sent`, then `delivered`, except for scripted recipients:
 * - `WEBHOOK_FAILED_RECIPIENT`: `sent`, then `failed` (the carrier refused it);
 * - `WEBHOOK_REPLY_RECIPIENT`: `sent`, `delivered`, then an inbound reply "YES" naming the message (`in_reply_to`).
 * Once per run (unless turned off), the first `delivered` update is delivered twice (a redelivery, to be answered
 * 200 and published once) and the first `sent` update gets a copy with a bad signature (to be answered 401).
 */

/** A recipient whose messages fail at the carrier: `sent`, then `failed`. */
export const WEBHOOK_FAILED_RECIPIENT = '+15550100460';
/** A recipient who answers: `sent`, `delivered`, then an inbound reply naming the message. */
export const WEBHOOK_REPLY_RECIPIENT = '+15550100470';
/** The agency's number, the `from` of outbound messages and the `to` of replies. */
const AGENCY_NUMBER = '+15550009999';

export interface SimulatorWebhookOptions {
  /** The receiver's URL; a function is read at each delivery (the receiver may start after the simulator). */
  readonly url: string | (() => string | undefined);
  /** The shared secret, as entered in the Console > Webhooks. */
  readonly secret: string;
  /** @default [WEBHOOK_FAILED_RECIPIENT] */
  readonly failedRecipients?: readonly string[];
  /** @default [WEBHOOK_REPLY_RECIPIENT] */
  readonly replyRecipients?: readonly string[];
  /** Real milliseconds before each update of a message (the carrier's pace). @default 50 */
  readonly stepMs?: number;
  /** Deliver the first `delivered` update twice. @default true */
  readonly repeatOnce?: boolean;
  /** Send one copy of the first `sent` update with a bad signature. @default true */
  readonly forgeOnce?: boolean;
  /** Attempts per delivery: eCourtDate retries any non-2xx answer or timeout. @default 5 */
  readonly maxAttempts?: number;
  /** Real milliseconds between attempts. @default 100 */
  readonly retryDelayMs?: number;
  readonly fetch?: typeof fetch;
}

/** One webhook delivery the simulator made, with the HTTP status of each attempt (0: no answer). */
export interface SimulatedDelivery {
  /** The payload's `uuid` (eCourtDate's event id). */
  readonly uuid: string;
  readonly messageUuid: string;
  readonly kind: 'status' | 'reply';
  /** `sent`, `delivered`, `failed` or `received` (a reply). */
  readonly status: string;
  /** A second delivery of an update already delivered. */
  readonly repeat: boolean;
  /** Signed with the wrong secret. */
  readonly forged: boolean;
  /** The bytes posted (and signed): a test may replay them as a captured delivery would be. */
  readonly body: string;
  readonly attempts: number[];
}

export interface SimulatorWebhooks {
  /** Pass as the simulator's `onMessageCreated`. */
  readonly onMessageCreated: (message: CreatedMessage) => void;
  /** Every delivery so far, in the order they started. */
  readonly deliveries: readonly SimulatedDelivery[];
  /** Resolves when every delivery started so far has finished (answered 2xx, or out of attempts). */
  idle(): Promise<void>;
  /** Stops sending: pending deliveries finish their current attempt and give up. */
  stop(): void;
}

/**
 * Creates the webhook sender of a simulated eCourtDate.
 *
 * @example
 * const webhooks = createSimulatorWebhooks({ url: () => receiver?.url, secret });
 * const sim = await startSimulator({ onMessageCreated: webhooks.onMessageCreated });
 */
export function createSimulatorWebhooks(options: SimulatorWebhookOptions): SimulatorWebhooks {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const failed = new Set(options.failedRecipients ?? [WEBHOOK_FAILED_RECIPIENT]);
  const replies = new Set(options.replyRecipients ?? [WEBHOOK_REPLY_RECIPIENT]);
  const stepMs = options.stepMs ?? 50;
  const maxAttempts = options.maxAttempts ?? 5;
  const retryDelayMs = options.retryDelayMs ?? 100;
  let repeatLeft = options.repeatOnce ?? true;
  let forgeLeft = options.forgeOnce ?? true;
  let stopped = false;
  const deliveries: SimulatedDelivery[] = [];
  const pending = new Set<Promise<void>>();

  const url = () => (typeof options.url === 'function' ? options.url() : options.url);

  const deliver = async (
    body: string,
    record: Omit<SimulatedDelivery, 'attempts' | 'body'>,
    signWith: string,
    attempts = maxAttempts,
  ): Promise<void> => {
    const delivery: SimulatedDelivery = { ...record, body, attempts: [] };
    deliveries.push(delivery);
    const signature = createHmac('sha256', signWith).update(body).digest('hex');
    for (let attempt = 1; attempt <= attempts && !stopped; attempt++) {
      const target = url();
      let status = 0;
      if (target !== undefined) {
        status = await fetchImpl(target, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-ecd-signature': signature },
          body,
          signal: AbortSignal.timeout(5_000),
        })
          .then(async (res) => {
            await res.arrayBuffer();
            return res.status;
          })
          .catch(() => 0);
      }
      delivery.attempts.push(status);
      if (status >= 200 && status < 300) return;
      if (attempt < attempts) await sleep(retryDelayMs * attempt);
    }
  };

  const statusUpdate = (message: CreatedMessage, status: string) => {
    const to = typeof message.body.to === 'string' ? message.body.to : '';
    const channel =
      typeof message.body.channel === 'string' ? message.body.channel : to.includes('@') ? 'email' : 'text';
    return {
      uuid: randomUUID(),
      type: 'outbound_message',
      direction: 'outbound',
      channel,
      message_uuid: message.uuid,
      last_status: status,
      from: AGENCY_NUMBER,
      to,
      content: message.body.content,
      segments: 1,
      created_at: new Date(message.createdAt).toISOString(),
      updated_at: new Date().toISOString(),
    };
  };

  const run = async (message: CreatedMessage): Promise<void> => {
    const to = typeof message.body.to === 'string' ? message.body.to : '';
    const base = { messageUuid: message.uuid, repeat: false, forged: false };

    await sleep(stepMs);
    const sent = statusUpdate(message, 'sent');
    const sentBody = JSON.stringify(sent);
    await deliver(sentBody, { ...base, uuid: sent.uuid, kind: 'status', status: 'sent' }, options.secret);
    if (forgeLeft) {
      forgeLeft = false;
      // Someone who does not know the secret replays the update: eCourtDate would not send it, nobody retries it.
      await deliver(
        sentBody,
        { ...base, uuid: sent.uuid, kind: 'status', status: 'sent', forged: true },
        'not-the-secret',
        1,
      );
    }

    await sleep(stepMs);
    const outcome = failed.has(to) ? 'failed' : 'delivered';
    const update = statusUpdate(message, outcome);
    const updateBody = JSON.stringify(update);
    await deliver(
      updateBody,
      { ...base, uuid: update.uuid, kind: 'status', status: outcome },
      options.secret,
    );
    if (outcome === 'delivered' && repeatLeft) {
      repeatLeft = false;
      await deliver(
        updateBody,
        { ...base, uuid: update.uuid, kind: 'status', status: outcome, repeat: true },
        options.secret,
      );
    }

    if (outcome === 'delivered' && replies.has(to)) {
      await sleep(stepMs);
      const reply = {
        uuid: randomUUID(),
        type: 'inbound_message',
        direction: 'inbound',
        channel: typeof message.body.channel === 'string' ? message.body.channel : 'text',
        in_reply_to: message.uuid,
        from: to,
        to: AGENCY_NUMBER,
        content: 'YES',
        last_status: 'received',
        created_at: new Date().toISOString(),
      };
      await deliver(
        JSON.stringify(reply),
        { ...base, uuid: reply.uuid, kind: 'reply', status: 'received' },
        options.secret,
      );
    }
  };

  return {
    onMessageCreated(message) {
      if (stopped) return;
      const task = run(message).catch(() => undefined);
      pending.add(task);
      void task.finally(() => pending.delete(task));
    },
    deliveries,
    async idle() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    stop() {
      stopped = true;
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
