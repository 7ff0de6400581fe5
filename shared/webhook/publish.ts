import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandOutput,
} from '@aws-sdk/client-eventbridge';
import { EVENT_SOURCE, type PlannedEvent, serializeDetail } from '#shared/webhook/events.ts';

/** What a `publish` came to. `published` names the events that went out (their `key`), in both cases. */
export type PublishOutcome =
  | { readonly ok: true; readonly published: readonly string[] }
  | {
      readonly ok: false;
      readonly published: readonly string[];
      /** The error's name when the call failed whole, else `PublishPartialFailure`. */
      readonly errorName: string;
      /** EventBridge's codes: of the call, or of each refused entry. */
      readonly errorCodes: readonly string[];
    };

/**
 * Puts events on the stack's bus with one `PutEvents` call. EventBridge may take some entries of a call and
 * refuse others (`FailedEntryCount`), so success is per entry: the outcome names the entries that were taken,
 * so a retry publishes only the rest.
 */
export class EventPublisher {
  readonly #client: EventBridgeClient;
  readonly #eventBusName: string;
  readonly #stage: string | undefined;

  /**
   * `stage` (the function's `RELAY_STAGE`) goes into every detail as `stage`, so that consumers of a bus both
   * stages share can tell them apart; absent locally.
   */
  constructor(options: { client: EventBridgeClient; eventBusName: string; stage?: string | undefined }) {
    this.#client = options.client;
    this.#eventBusName = options.eventBusName;
    this.#stage = options.stage;
  }

  /**
   * Publishes `events` (at most 10, PutEvents' limit). Never throws: a failed call or refused entries come back
   * as `ok: false`, with what did go out.
   */
  async publish(events: readonly PlannedEvent[]): Promise<PublishOutcome> {
    if (events.length === 0) return { ok: true, published: [] };
    let out: PutEventsCommandOutput;
    try {
      out = await this.#client.send(
        new PutEventsCommand({
          Entries: events.map((event) => ({
            EventBusName: this.#eventBusName,
            Source: EVENT_SOURCE,
            DetailType: event.detailType,
            Detail: serializeDetail(
              this.#stage === undefined ? event.detail : { ...event.detail, stage: this.#stage },
            ),
          })),
        }),
      );
    } catch (error) {
      const name = error instanceof Error ? error.name : 'UnknownError';
      return { ok: false, published: [], errorName: name, errorCodes: [name] };
    }
    const entries = out.Entries ?? [];
    const published = events
      .filter((_, index) => {
        const entry = entries[index];
        return entry !== undefined && entry.ErrorCode === undefined && entry.EventId !== undefined;
      })
      .map((event) => event.key);
    if ((out.FailedEntryCount ?? 0) === 0 && published.length === events.length)
      return { ok: true, published };
    const codes = [...new Set(entries.map((entry) => entry.ErrorCode).filter((c): c is string => !!c))];
    return { ok: false, published, errorName: 'PublishPartialFailure', errorCodes: codes };
  }
}
