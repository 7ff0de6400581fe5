import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { DeadLetterReason } from '#shared/outcome.ts';

/** The event's source and detail-type on the bus (docs/webhooks.md, "Events on the bus"). */
export const JOB_SETTLED = { source: 'ecourtdate-relay', detailType: 'eCourtDate Job Settled' } as const;

/**
 * `detail` of `eCourtDate Job Settled`: the relay's own verdict on a job, for upstream systems that want it on
 * the bus. Published at least once per settled job (again when a copy of a settled job is acknowledged:
 * `replayed`), so consumers drop repeats by `job_id`. Never holds the message text or the recipient.
 */
export interface JobSettledDetail {
  /** The job's id; null for a body too broken to carry one (dead-lettered `invalid_job`). */
  readonly job_id: string | null;
  readonly outcome: 'delivered' | 'duplicate' | 'dead_lettered';
  /** The dead-letter reason (docs/contract.md), when dead-lettered. */
  readonly reason?: DeadLetterReason;
  /** The eCourtDate message uuid, when delivered and the 201 named it. */
  readonly uuid?: string;
  /** Requests that reached, or may have reached, the messages endpoint. */
  readonly attempts: number;
  /** The last HTTP status, `timeout`, `connection`, `secret`, `lost`; absent when nothing was sent. */
  readonly last_status?: number | string;
  /** ISO 8601 UTC. */
  readonly settled_at: string;
  /** The job had settled before; this is a copy of it, acknowledged without a send. */
  readonly replayed?: true;
}

/**
 * What a publish came to: taken, or refused with the error code (the call failed, or `FailedEntryCount` was not 0).
 * A refused event is published again by a fresh copy of the record (docs/contract.md).
 */
export type PublishResult = { readonly ok: true } | { readonly ok: false; readonly errorCode: string };

/**
 * Puts one `eCourtDate Job Settled` event on the bus. Never rejects for EventBridge's failures: it says what
 * came of the call, naming only the error code.
 */
export class JobSettledPublisher {
  readonly #client: () => Promise<EventBridgeClient>;
  readonly #busName: string;
  readonly #stage: string | undefined;

  /**
   * `client` is called once, on the first event (the SDK is loaded lazily). `stage` (the function's
   * `RELAY_STAGE`) goes into every detail as `stage`, so that consumers of a bus both stages share can tell them
   * apart; absent locally.
   */
  constructor(options: {
    client: () => Promise<EventBridgeClient>;
    busName: string;
    stage?: string | undefined;
  }) {
    let client: Promise<EventBridgeClient> | undefined;
    this.#client = () => {
      client ??= options.client();
      return client;
    };
    this.#busName = options.busName;
    this.#stage = options.stage;
  }

  async publish(detail: JobSettledDetail): Promise<PublishResult> {
    const client = await this.#client();
    // Loaded on first use, with the client: a sender that does not publish never imports the SDK module.
    const { PutEventsCommand } = await import('@aws-sdk/client-eventbridge');
    let failed: string | undefined;
    try {
      const out = await client.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: this.#busName,
              Source: JOB_SETTLED.source,
              DetailType: JOB_SETTLED.detailType,
              Detail: JSON.stringify(this.#stage === undefined ? detail : { ...detail, stage: this.#stage }),
            },
          ],
        }),
      );
      if ((out.FailedEntryCount ?? 0) > 0) failed = out.Entries?.[0]?.ErrorCode ?? 'FailedEntry';
    } catch (error) {
      failed = error instanceof Error ? error.name : 'UnknownError';
    }
    return failed === undefined ? { ok: true } : { ok: false, errorCode: failed };
  }
}
