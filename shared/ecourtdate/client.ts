import { EcdDeferredError, EcdTokenError, EcdTransportError } from '#shared/ecourtdate/errors.ts';
import {
  apiUrl,
  extractUuid,
  type FetchLike,
  type HttpAnswer,
  httpRequest,
  waitHint,
} from '#shared/ecourtdate/http.ts';
import type { Pacer } from '#shared/ecourtdate/pacer.ts';
import type { ApiStatus } from '#shared/ecourtdate/status.ts';
import type { TokenCache } from '#shared/ecourtdate/token-cache.ts';
import { CredentialsError } from '#shared/errors.ts';
import { type SendJob, serializeMessage } from '#shared/job.ts';
import type { AttemptResult } from '#shared/policy.ts';
import { redactText } from '#shared/redact.ts';

export const ONEOFFS_PATH = '/v1/messages/oneoffs';
const USER_AGENT = 'ecourtdate-relay/0.1 (+aws-lambda)';

/** What one attempt at a job came to, as far as the API is concerned. */
export type SendAttempt =
  | {
      readonly kind: 'deferred';
      /** Nothing was sent; try again in this many ms (a 429 is being waited out, or pacing is full). */
      readonly retryInMs: number;
    }
  | {
      readonly kind: 'attempted';
      readonly result: AttemptResult;
      /**
       * A short, redacted excerpt of the last response body (never the message text or recipient). May be a getter
       * that redacts on first read: read it only where it is logged or dead-lettered.
       */
      readonly excerpt: string;
      /** Latency of the last HTTP request of the attempt, ms. */
      readonly latencyMs: number;
      /** The 401 persisted after a token renewal and a re-read of the secret. */
      readonly authFailed: boolean;
      /** Every HTTP status the messages endpoint answered in this attempt, in order (401s included). */
      readonly sendStatuses: readonly ApiStatus[];
      /** For a request that got no answer: the cause and the host, and what to run next (never a secret). */
      readonly detail?: string | undefined;
    };

/** A token and a pacing slot in hand: the first request may go. */
export interface Ready {
  readonly kind: 'ready';
  readonly token: string;
}

/** What `prepare` gives: ready to send, or a known outcome with nothing sent. */
export type Prepared = Ready | SendAttempt;

export interface EcourtdateClientOptions {
  readonly baseUrl: URL;
  readonly tokens: TokenCache;
  readonly pacer: Pacer;
  readonly fetch: FetchLike;
  readonly timeoutMs: number;
  readonly now?: () => number;
}

/**
 * Sends one-off messages to eCourtDate. On a 401 it renews the token and resends at once; if that is
 * rejected too, it re-reads the secret, renews again and resends once more (docs/contract.md, the 401 row).
 * A 401 means nothing was created, so these resends can never double a message.
 */
export class EcourtdateClient {
  readonly #options: EcourtdateClientOptions;
  readonly #now: () => number;

  constructor(options: EcourtdateClientOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Gets what the first request of an attempt needs, sending nothing to the messages endpoint: a token (from the
   * cache, or the token endpoint) and a pacing slot. `maxWaitMs` bounds how long pacing may hold the slot (the
   * invocation's time left). Never throws for API, network or secret failures: a failure here is a known outcome
   * (nothing was sent), returned as `deferred` (pacing) or as an attempt of stage `secret` or `token`.
   */
  async prepare(options: { maxWaitMs?: number | undefined } = {}): Promise<Prepared> {
    try {
      const token = await this.#options.tokens.get();
      const slot = await this.#options.pacer.acquire(options.maxWaitMs);
      if (!slot.ok) return { kind: 'deferred', retryInMs: slot.retryInMs };
      return { kind: 'ready', token };
    } catch (error) {
      return notSent(error, []);
    }
  }

  /**
   * Sends `job` with a prepared token: the request may reach the messages endpoint from here on. On a 401 it
   * renews the token (and then re-reads the secret) and resends, each resend with its own pacing slot. Never
   * throws for API, network or secret failures. No request is sent at or after `deadline` (epoch ms).
   */
  async post(
    job: SendJob,
    prepared: Ready,
    options: { maxWaitMs?: number | undefined; deadline?: number | undefined } = {},
  ): Promise<SendAttempt> {
    const sensitive = [job.message.content, job.message.subject, job.message.to];
    const statuses: ApiStatus[] = [];
    let token = prepared.token;
    try {
      for (const step of ['first', 'renewed', 'reread'] as const) {
        if (step !== 'first') {
          token = await this.#options.tokens.get({ rejected: token, rereadSecret: step === 'reread' });
          const slot = await this.#options.pacer.acquire(options.maxWaitMs);
          if (!slot.ok) return { kind: 'deferred', retryInMs: slot.retryInMs };
        }
        // Waiting for a token or a slot may have taken the job past its deadline: then it is not sent.
        if (options.deadline !== undefined && this.#now() >= options.deadline)
          return { kind: 'deferred', retryInMs: 0 };
        let answer: HttpAnswer;
        const started = this.#now();
        try {
          answer = await this.#post(job, token);
        } catch (error) {
          if (!(error instanceof EcdTransportError)) throw error;
          statuses.push(error.kind);
          const result: AttemptResult = {
            kind: 'transport',
            stage: 'send',
            error: error.kind,
            mayHaveBeenSent: error.mayHaveBeenSent,
          };
          return {
            kind: 'attempted',
            result,
            excerpt: '',
            detail: error.describe(),
            latencyMs: this.#now() - started,
            authFailed: false,
            sendStatuses: statuses,
          };
        }
        statuses.push(answer.status);
        if (answer.status !== 401 || step === 'reread') {
          const body = answer.body;
          const secrets = [...sensitive, token];
          let excerpt: string | undefined;
          return {
            kind: 'attempted',
            result: {
              kind: 'response',
              stage: 'send',
              status: answer.status,
              uuid: answer.status < 300 ? extractUuid(body) : undefined,
              retryAfterSeconds: waitHint(answer.headers, this.#now())?.seconds,
            },
            // Redacted on first read: a delivered job never logs it, and redaction is most of a send's CPU time.
            get excerpt() {
              excerpt ??= redactText(body, secrets);
              return excerpt;
            },
            latencyMs: answer.latencyMs,
            authFailed: answer.status === 401,
            sendStatuses: statuses,
          };
        }
      }
    } catch (error) {
      return notSent(error, statuses);
    }
    // Unreachable: the loop returns on its last step.
    throw new Error('send loop ended without a result');
  }

  /** One whole attempt: `prepare`, then `post` (for callers without a ledger between the two). */
  async send(
    job: SendJob,
    options: { maxWaitMs?: number | undefined; deadline?: number | undefined } = {},
  ): Promise<SendAttempt> {
    const prepared = await this.prepare(options);
    return prepared.kind === 'ready' ? this.post(job, prepared, options) : prepared;
  }

  async #post(job: SendJob, token: string): Promise<HttpAnswer> {
    const { baseUrl } = this.#options;
    const url = apiUrl(baseUrl, ONEOFFS_PATH);
    if (job.agencyReference !== undefined) url.searchParams.set('agency_reference', job.agencyReference);
    return httpRequest(
      this.#options.fetch,
      url,
      {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/json',
          Accept: 'application/json',
          'User-Agent': USER_AGENT,
        },
        // Passed-through fields keep their exact numbers (a big integer, 1.10): docs/contract.md, "The send job".
        body: serializeMessage(job),
      },
      this.#options.timeoutMs,
      this.#now,
    );
  }
}

/** A failure before any request of the attempt left (or after a 401, which created nothing): a known outcome. */
function notSent(error: unknown, statuses: readonly ApiStatus[]): SendAttempt {
  if (error instanceof EcdDeferredError) return { kind: 'deferred', retryInMs: error.retryInMs };
  if (error instanceof CredentialsError) return secretFailure(statuses);
  if (error instanceof EcdTokenError) return tokenFailure(error, statuses);
  throw error;
}

/** The secret could not be read or parsed (Secrets Manager failed, or the secret is malformed): nothing sent. */
function secretFailure(statuses: readonly ApiStatus[]): SendAttempt {
  return {
    kind: 'attempted',
    result: { kind: 'secret', stage: 'secret' },
    excerpt: '',
    latencyMs: 0,
    // A secret that cannot be read is the "auth failing" alarm's case too: a person must fix it.
    authFailed: true,
    sendStatuses: statuses,
  };
}

function tokenFailure(error: EcdTokenError, statuses: readonly ApiStatus[]): SendAttempt {
  const result: AttemptResult =
    typeof error.status === 'number'
      ? { kind: 'response', stage: 'token', status: error.status, retryAfterSeconds: error.retryAfterSeconds }
      : { kind: 'transport', stage: 'token', error: error.status };
  // The token endpoint still refusing after the secret was re-read is the "auth failing" alarm's case.
  const authFailed = error.status === 401 || error.status === 400;
  return {
    kind: 'attempted',
    result,
    excerpt: error.excerpt,
    detail: error.cause instanceof EcdTransportError ? error.cause.describe() : undefined,
    latencyMs: 0,
    authFailed,
    sendStatuses: statuses,
  };
}
