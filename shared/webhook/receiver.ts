import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { withoutByteOrderMark } from '#shared/job.ts';
import type { DeliveryLedger } from '#shared/ledger/delivery.ts';
import type { WebhookConfig } from '#shared/webhook/config.ts';
import type { CopyRetention, ProgressWrite, WebhookDedupe } from '#shared/webhook/dedupe.ts';
import { PayloadText, planEvents } from '#shared/webhook/events.ts';
import { judgeFreshness, replayCover } from '#shared/webhook/freshness.ts';
import { type JobStatusOutcome, recordJobStatus } from '#shared/webhook/job-status.ts';
import { WEBHOOK_METRIC } from '#shared/webhook/metrics.ts';
import { type NormalisedWebhook, normaliseWebhook } from '#shared/webhook/payload.ts';
import type { EventPublisher } from '#shared/webhook/publish.ts';
import { readWebhookRequest, screenRequest, type WebhookRequest } from '#shared/webhook/request.ts';
import type { WebhookSecretSource, WebhookSecrets } from '#shared/webhook/secret.ts';
import { verifySignature } from '#shared/webhook/signature.ts';
import { errorName, failure, type Verdict, verdict } from '#shared/webhook/verdicts.ts';

/**
 * A signature that does not verify re-reads the secret (it may have been rotated), but not more often than this:
 * forged requests must not become a stream of Secrets Manager reads.
 */
export const SECRET_REFRESH_MIN_INTERVAL_MS = 30_000;

/** What the receiver works with: one container's secret cache, tables, publisher and clock. */
export interface ReceiverParts {
  readonly config: WebhookConfig;
  readonly secrets: WebhookSecretSource;
  readonly dedupe: WebhookDedupe;
  readonly deliveries: DeliveryLedger;
  readonly publisher: EventPublisher;
  /** Epoch ms. */
  readonly now: () => number;
}

/** Notes for the request's log line that do not change its answer (`secret_read_error`). */
export type Notes = Record<string, string>;

/** A step's result: its value, or the verdict that ends the request. */
type Step<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly verdict: Verdict };

const go = <T>(value: T): Step<T> => ({ ok: true, value });
const stop = <T>(ended: Verdict): Step<T> => ({ ok: false, verdict: ended });

/** A verified, parsed delivery. */
interface Delivery {
  readonly webhook: NormalisedWebhook;
  /** The body's JSON text, without a leading byte order mark. */
  readonly text: string;
  /** Epoch ms. */
  readonly receivedAt: number;
}

/** What a claimed delivery has put on the bus so far, and whether its record was marked done. */
interface Progress {
  readonly published: string[];
  completed: boolean;
}

/**
 * The webhook receiver's request path (docs/webhooks.md, "What the receiver does with a request"), as steps that
 * each return a value or the verdict that ends the request: screen → verify → parse → date (replays) → claim →
 * record the job's status → publish → complete. A claimed delivery is given back, with what went out, in one
 * place unless it was completed. Answers come from the one table of verdicts (`VERDICTS`). Only the unforeseen
 * throws out of `receive`.
 */
export class WebhookReceiver {
  readonly #parts: ReceiverParts;

  constructor(parts: ReceiverParts) {
    this.#parts = parts;
  }

  /**
   * The verdict on one API Gateway HTTP API request (payload format 2.0): its row of `VERDICTS` and what the log
   * line and metrics add; `notes` collects what the log line adds whatever the verdict (`secret_read_error`).
   * Failures of Secrets Manager, DynamoDB and EventBridge are verdicts (503); only the unforeseen throws, and the
   * handler answers it 500 (docs/webhooks.md, "What the receiver does with a request").
   */
  async receive(event: APIGatewayProxyEventV2, notes: Notes): Promise<Verdict> {
    const receivedAt = this.#parts.now();
    const request = readWebhookRequest(event);
    const screened = this.#screen(request);
    if (!screened.ok) return screened.verdict;
    const verified = await this.#verify(request, notes);
    if (!verified.ok) return verified.verdict;
    const parsed = this.#parse(request, receivedAt);
    if (!parsed.ok) return parsed.verdict;
    const dated = await this.#date(parsed.value);
    if (!dated.ok) return dated.verdict;
    const claimed = await this.#claim(parsed.value, dated.value);
    if (!claimed.ok) return claimed.verdict;
    return this.#handleClaimed(parsed.value, claimed.value);
  }

  /** Source IP, method, content type, size: what needs neither the secret nor the body's content. */
  #screen(request: WebhookRequest): Step<void> {
    const rejection = screenRequest(request, this.#parts.config);
    if (rejection === undefined) return go(undefined);
    // Which address was turned away is what an operator needs to fix the allowlist.
    const detail = rejection.status === 403 ? { source_ip: request.sourceIp ?? 'unknown' } : undefined;
    return stop(verdict(rejection.reason, { detail }));
  }

  /**
   * The signature over the raw bytes, under the current (or previous) secret, re-reading a stale secret once.
   * When a read fails but a secret was read before, that one decides (docs/webhooks.md, "The secret"): a forged
   * signature is a 401 whether or not Secrets Manager answers. Only a container that never read it answers 503.
   */
  async #verify(request: WebhookRequest, notes: Notes): Promise<Step<void>> {
    const header = request.signature;
    if (header === undefined) return stop(verdict('signature_missing'));
    const verify = (secrets: WebhookSecrets) =>
      verifySignature(header, request.body, [
        secrets.current,
        ...(secrets.previous ? [secrets.previous] : []),
      ]);
    const invalid = stop<void>(verdict('signature_invalid'));
    const read = await this.#readSecrets();
    if (!read.ok) {
      const lastKnown = this.#parts.secrets.lastKnown;
      if (lastKnown === undefined) return stop(failure('secret_unavailable', read.error));
      notes.secret_read_error = errorName(read.error);
      return verify(lastKnown) ? go(undefined) : invalid;
    }
    if (verify(read.value)) return go(undefined);
    const reread = await this.#readSecrets(SECRET_REFRESH_MIN_INTERVAL_MS);
    if (!reread.ok) notes.secret_read_error = errorName(reread.error);
    return reread.ok && reread.value !== read.value && verify(reread.value) ? go(undefined) : invalid;
  }

  /** The secrets, from the cache while younger than `maxAgeMs`; a failed read is a value, not a throw. */
  async #readSecrets(
    maxAgeMs?: number,
  ): Promise<{ ok: true; value: WebhookSecrets } | { ok: false; error: unknown }> {
    try {
      return { ok: true, value: await this.#parts.secrets.get({ refreshIfOlderThanMs: maxAgeMs }) };
    } catch (error) {
      return { ok: false, error };
    }
  }

  /** The signed body as JSON; a leading byte order mark is part of the bytes signed, but JSON has none. */
  #parse(request: WebhookRequest, receivedAt: number): Step<Delivery> {
    const text = withoutByteOrderMark(request.body.toString('utf8'));
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch {
      return stop(verdict('malformed'));
    }
    return go({ webhook: normaliseWebhook(payload, request.body, receivedAt), text, receivedAt });
  }

  /**
   * The delivery against replays (shared/webhook/freshness.ts): how long its record is kept, and how long another
   * copy's record must be, or, when its own time is older than the horizon, `stale`. A stale delivery still
   * records its status on the relay's job, which a repeat cannot change, so a genuine late update is not lost;
   * nothing is published.
   */
  async #date(delivery: Delivery): Promise<Step<CopyRetention>> {
    const { webhook, receivedAt } = delivery;
    const window = this.#parts.config.dedupeTtlSeconds;
    const freshness = judgeFreshness(webhook.times, receivedAt, window);
    if (freshness.kind === 'fresh') {
      return go({ retention: freshness.retention, cover: replayCover(webhook.times, receivedAt, window) });
    }
    const status = await this.#recordStatus(delivery);
    if (!status.ok) return status;
    const detail = { age_seconds: String(freshness.ageSeconds) };
    return stop(verdict('stale', { webhook, detail, ...statusFacts(status.value) }));
  }

  /** Claims the delivery by its dedupe key: the token to publish under, or why not. */
  async #claim(
    delivery: Delivery,
    kept: CopyRetention,
  ): Promise<Step<{ token: string; published: readonly string[] }>> {
    const { webhook } = delivery;
    let claim: Awaited<ReturnType<WebhookDedupe['claim']>>;
    try {
      claim = await this.#parts.dedupe.claim(webhook.dedupeKey, kept);
    } catch (error) {
      return stop(failure('dedupe_unavailable', error, { webhook }));
    }
    if (claim.kind === 'done') return stop(verdict('duplicate', { webhook }));
    if (claim.kind === 'in_progress') {
      return stop(
        verdict('in_progress', { webhook, headers: { 'retry-after': String(claim.retryAfterSeconds) } }),
      );
    }
    return go({ token: claim.token, published: claim.published });
  }

  /**
   * Records, publishes and completes a claimed delivery. Unless it was completed, the one `finally` gives it back
   * with what went out (retried within the request, `saveProgress`), whatever happened before.
   */
  async #handleClaimed(
    delivery: Delivery,
    claim: { token: string; published: readonly string[] },
  ): Promise<Verdict> {
    const progress: Progress = { published: [...claim.published], completed: false };
    let saved: ProgressWrite | undefined;
    let answer: Verdict;
    try {
      answer = await this.#recordPublishComplete(delivery, claim.token, progress);
    } finally {
      if (!progress.completed) {
        saved = await this.#parts.dedupe.saveProgress(
          delivery.webhook.dedupeKey,
          claim.token,
          progress.published,
        );
      }
    }
    return saved?.kind === 'unsaved' ? progressUnsaved(answer, saved.errorName) : answer;
  }

  async #recordPublishComplete(delivery: Delivery, token: string, progress: Progress): Promise<Verdict> {
    const { webhook } = delivery;
    const status = await this.#recordStatus(delivery);
    if (!status.ok) return status.verdict;
    const facts = { webhook, ...statusFacts(status.value) };
    const published = await this.#publish(delivery, status.value, progress);
    if (!published.ok) return published.verdict;
    progress.completed = await this.#complete(webhook.dedupeKey, token, progress.published);
    if (progress.completed) return verdict('accepted', { ...facts, published: published.value });
    return verdict('accepted', {
      ...facts,
      published: published.value,
      detail: { warning: 'published, but the dedupe record could not be marked done' },
      level: 'warn',
    });
  }

  /** The job's delivery status (or the pending update), as `recordJobStatus`; a table error is a 503. */
  async #recordStatus(delivery: Delivery): Promise<Step<JobStatusOutcome>> {
    try {
      return go(await recordJobStatus(this.#parts.deliveries, delivery.webhook, delivery.receivedAt));
    } catch (error) {
      return stop(failure('ledger_unavailable', error, { webhook: delivery.webhook }));
    }
  }

  /**
   * Puts on the bus the events of the delivery not yet published (a retry's claim names those that were), and
   * adds what went out to `progress`. The count published, or `publish_failed`.
   */
  async #publish(delivery: Delivery, status: JobStatusOutcome, progress: Progress): Promise<Step<number>> {
    const { webhook, text, receivedAt } = delivery;
    const match = status.kind === 'recorded' ? status.match : undefined;
    // The payload goes on the bus as its text: exact numbers, any depth (docs/webhooks.md, "Events on the bus").
    const planned = planEvents(webhook, new PayloadText(text), receivedAt, match);
    const pending = planned.filter((event) => !progress.published.includes(event.key));
    const outcome = await this.#parts.publisher.publish(pending);
    progress.published.push(...outcome.published);
    if (outcome.ok) return go(pending.length);
    return stop(
      verdict('publish_failed', {
        webhook,
        ...statusFacts(status),
        published: outcome.published.length,
        detail: {
          error_name: outcome.errorName,
          ...(outcome.errorCodes.length > 0 ? { error_codes: outcome.errorCodes.join(',') } : {}),
        },
      }),
    );
  }

  /** Marks the delivery done; false when it could not be (the `finally` then gives it back, all published). */
  async #complete(key: string, token: string, published: readonly string[]): Promise<boolean> {
    try {
      return await this.#parts.dedupe.complete(key, token, published);
    } catch {
      return false;
    }
  }
}

/** The job id and the metrics a job status outcome adds to a verdict. */
function statusFacts(status: JobStatusOutcome): { jobId?: string; metrics: string[] } {
  if (status.kind === 'recorded')
    return { jobId: status.match.jobId, metrics: [WEBHOOK_METRIC.jobStatusRecorded] };
  if (status.kind === 'pending') return { metrics: [WEBHOOK_METRIC.statusPending] };
  return { metrics: [] };
}

/**
 * `answer`, noting that what went out is not on record: eCourtDate's retry after the lease may publish it again
 * (docs/webhooks.md, "Deduplication", the bound).
 */
function progressUnsaved(answer: Verdict, error: string): Verdict {
  return {
    ...answer,
    metrics: [...answer.metrics, WEBHOOK_METRIC.progressUnsaved],
    detail: { ...answer.detail, progress: 'unsaved', progress_error_name: error },
    level: 'warn',
  };
}
