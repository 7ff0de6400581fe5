import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandOutput,
} from '@aws-sdk/client-eventbridge';
import { PublishError } from '#shared/webhook/errors.ts';
import { EVENT_SOURCE, type PlannedEvent, serializeDetail } from '#shared/webhook/events.ts';

/**
 * Puts events on the stack's bus with one `PutEvents` call. EventBridge may take some entries of a call and
 * refuse others (`FailedEntryCount`), so success is per entry: the call resolves only when every entry was taken,
 * and otherwise throws `PublishError` naming the ones that were, so a retry publishes only the rest.
 */
export class EventPublisher {
  readonly #client: EventBridgeClient;
  readonly #eventBusName: string;

  constructor(options: { client: EventBridgeClient; eventBusName: string }) {
    this.#client = options.client;
    this.#eventBusName = options.eventBusName;
  }

  /** Publishes `events` (at most 10, PutEvents' limit). Throws `PublishError` unless every one was taken. */
  async publish(events: readonly PlannedEvent[]): Promise<void> {
    if (events.length === 0) return;
    let out: PutEventsCommandOutput;
    try {
      out = await this.#client.send(
        new PutEventsCommand({
          Entries: events.map((event) => ({
            EventBusName: this.#eventBusName,
            Source: EVENT_SOURCE,
            DetailType: event.detailType,
            Detail: serializeDetail(event.detail),
          })),
        }),
      );
    } catch (error) {
      const name = error instanceof Error ? error.name : 'UnknownError';
      throw new PublishError(`PutEvents failed: ${name}`, [], [name], { cause: error });
    }
    const entries = out.Entries ?? [];
    const published = events
      .filter((_, index) => {
        const entry = entries[index];
        return entry !== undefined && entry.ErrorCode === undefined && entry.EventId !== undefined;
      })
      .map((event) => event.key);
    if ((out.FailedEntryCount ?? 0) > 0 || published.length < events.length) {
      const codes = [...new Set(entries.map((entry) => entry.ErrorCode).filter((c): c is string => !!c))];
      throw new PublishError(
        `PutEvents took ${published.length} of ${events.length} entries (${codes.join(', ') || 'no error code'})`,
        published,
        codes,
      );
    }
  }
}
