import { type ApiSignal, type Breaker, type BreakerReason, signalOf } from '#shared/ecourtdate/breaker.ts';
import { type EcdTokenError, EcdTransportError } from '#shared/ecourtdate/errors.ts';
import {
  apiUrl,
  extractUuid,
  type FetchLike,
  type HttpAnswer,
  httpRequest,
  waitHint,
} from '#shared/ecourtdate/http.ts';
import type { RequestPacer } from '#shared/ecourtdate/pacer.ts';
import type { ApiStatus } from '#shared/ecourtdate/status.ts';
import type { TokenCache, TokenResult } from '#shared/ecourtdate/token-cache.ts';
import { type SendJob, serializeMessage } from '#shared/job.ts';
import type { AttemptResult } from '#shared/policy.ts';
import { redactText } from '#shared/redact.ts';

export const ONEOFFS_PATH = '/v1/messages/oneoffs';
/** The circuit breaker's probe: a token and agency check that cannot create a message (docs/pacing.md). */
export const SETTINGS_PATH = '/v1/settings';
const USER_AGENT = 'ecourtdate-relay/0.1 (+aws-lambda)';

/** What one attempt at a job came to, as far as the API is concerned. */
export type SendAttempt =
  | {
      readonly kind: 'deferred';
      /** Nothing was sent; try again in this many ms (a 429 is being waited out, or pacing is full). */
      readonly retryInMs: number;
      /** The stage's circuit breaker is open, for this reason: the job is held (docs/pacing.md). */
      readonly held?: BreakerReason | undefined;
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
  /** Epoch ms by which the first request must leave on the slot `prepare` got (`PacerSlot.sendBy`). */
  readonly sendBy?: number | undefined;
}

/** What `prepare` gives: ready to send, or a known outcome with nothing sent. */
export type Prepared = Ready | SendAttempt;

/**
 * The time an attempt has, epoch ms: every wait inside it comes out of it. `waitUntil`: every wait of the attempt
 * (pacing for the first request, a token renewal's pacing, a resend's slot) is over by then, so the requests that
 * follow the waits fit in the time left; a wait that would pass it is not made (`deferred`). `deadline`: no
 * message request leaves at or after it (the job's deadline, or after an unknown outcome the last moment a resend
 * is still inside eCourtDate's duplicate window): a wait that ran past it ends the attempt `deferred`, unsent.
 */
export interface AttemptTime {
  readonly waitUntil?: number | undefined;
  readonly deadline?: number | undefined;
  /**
   * The attempt's lease (epoch ms): after a 401, the renewal and its resend, then the secret re-read and its resend,
   * each start only if they and the ledger settle after them can end by then, each at its worst; a step that cannot
   * is not made (`deferred`: a 401 created nothing).
   */
  readonly leaseUntil?: number | undefined;
}

export interface EcourtdateClientOptions {
  readonly baseUrl: URL;
  readonly tokens: TokenCache;
  readonly pacer: RequestPacer;
  readonly fetch: FetchLike;
  readonly timeoutMs: number;
  /** The stage's circuit breaker: told every answer's health, asked before each job. None: never held. */
  readonly breaker?: Breaker | undefined;
  /**
   * The longest one AWS SDK call can take, ms (a secret re-read, the ledger settle): with `AttemptTime.leaseUntil`,
   * what a step must leave room for. @default 0
   */
  readonly awsCallMs?: number;
  /** Kept back before the lease beyond the settle's worst case, ms. @default 0 */
  readonly leaseMarginMs?: number;
  readonly now?: () => number;
}

/**
 * Sends one-off messages to eCourtDate. On a 401 it renews the token and resends at once; if that is
 * rejected too, it re-reads the secret, renews again and resends once more (docs/contract.md, the 401 row).
 * A 401 means nothing was created, so these resends can never double a message. Returns values: never throws
 * for API, network, pacing or secret failures.
 */
export class EcourtdateClient {
  readonly #options: EcourtdateClientOptions;
  readonly #now: () => number;

  constructor(options: EcourtdateClientOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Gets what the first request of an attempt needs, sending nothing to the messages endpoint: the circuit
   * breaker's leave, a token (from the cache, or the token endpoint) and a pacing slot, both waited for until
   * `time.waitUntil` at most. A failure here is a known outcome (nothing was sent), returned as `deferred`
   * (pacing, no time left, or `held` by the open breaker) or as an attempt of stage `secret` or `token`. When the
   * breaker's probe is due, this call runs it first (`GET /v1/settings`): the job goes on only if eCourtDate
   * answered and the waits still have time.
   */
  async prepare(time: AttemptTime = {}): Promise<Prepared> {
    const breaker = this.#options.breaker;
    const gate = await breaker?.check();
    if (gate?.kind === 'held') return { kind: 'deferred', retryInMs: gate.retryInMs, held: gate.reason };
    if (breaker && gate?.kind === 'probe') {
      const after = await breaker.probed(gate.view, await this.#probe(time));
      if (after.kind === 'held') return { kind: 'deferred', retryInMs: after.retryInMs, held: after.reason };
      // The probe's requests took some of the time the waits had: a job whose waits are over is not started.
      if (time.waitUntil !== undefined && this.#now() > time.waitUntil)
        return { kind: 'deferred', retryInMs: 0 };
    }
    const token = await this.#options.tokens.get({ waitUntil: time.waitUntil });
    if (!token.ok) return this.#told(notSent(token, []));
    const slot = await this.#options.pacer.acquire(this.#waitLeft(time));
    if (!slot.ok) return { kind: 'deferred', retryInMs: slot.retryInMs };
    // The lease behind the slot may have brought news of the breaker (another instance opened it): held at once.
    const late = breaker?.heldNow();
    if (late !== undefined) return { kind: 'deferred', retryInMs: late.retryInMs, held: late.reason };
    return { kind: 'ready', token: token.token, sendBy: slot.sendBy };
  }

  /**
   * Sends `job` with a prepared token: the request may reach the messages endpoint from here on. On a 401 it
   * renews the token (and then re-reads the secret) and resends, each resend with its own pacing slot, all
   * within `time` (a resend that cannot start in time is `deferred`: the 401 created nothing).
   */
  async post(job: SendJob, prepared: Ready, time: AttemptTime = {}): Promise<SendAttempt> {
    const statuses: ApiStatus[] = [];
    let token = prepared.token;
    for (const step of ['first', 'renewed', 'reread'] as const) {
      if (step !== 'first') {
        // A renewal that could not end, with its resend and the settle after it, inside the lease is not made: the
        // 401 created nothing. (The first request fits by the function timeout the stack derives.)
        if (!this.#fits(time, step)) return { kind: 'deferred', retryInMs: 0 };
        const renewed = await this.#options.tokens.get({
          rejected: token,
          rereadSecret: step === 'reread',
          waitUntil: time.waitUntil,
        });
        if (!renewed.ok) return this.#told(notSent(renewed, statuses));
        token = renewed.token;
      }
      // A resend takes a slot of its own. So does the first request when what came between prepare and post (the
      // ledger's claim) outlasted its slot's grace slice: sent on that slot, it would fall outside the windows the
      // budget counted it in (docs/pacing.md, "The guarantee").
      if (step !== 'first' || (prepared.sendBy !== undefined && this.#now() >= prepared.sendBy)) {
        const slot = await this.#options.pacer.acquire(this.#waitLeft(time));
        if (!slot.ok) return { kind: 'deferred', retryInMs: slot.retryInMs };
      }
      // Waiting for a token or a slot may have taken the job past its deadline (or its resend past the duplicate
      // window): then it is not sent.
      if (this.#outOfTime(time)) return { kind: 'deferred', retryInMs: 0 };
      const answer = await this.#attempt(job, token, statuses);
      if (answer.kind !== 'unauthorized') return answer;
      if (step === 'reread') return this.#told(answer.last);
    }
    // Unreachable: the loop returns on its last step.
    return { kind: 'deferred', retryInMs: 0 };
  }

  /** One whole attempt: `prepare`, then `post` (for callers without a ledger between the two). */
  async send(job: SendJob, time: AttemptTime = {}): Promise<SendAttempt> {
    const prepared = await this.prepare(time);
    return prepared.kind === 'ready' ? this.post(job, prepared, time) : prepared;
  }

  /** One message request: its attempt, or a 401 to renew the token for (`last`: the attempt if none follows). */
  async #attempt(
    job: SendJob,
    token: string,
    statuses: ApiStatus[],
  ): Promise<
    | Extract<SendAttempt, { kind: 'attempted' }>
    | { readonly kind: 'unauthorized'; readonly last: SendAttempt }
  > {
    const started = this.#now();
    let answer: HttpAnswer;
    try {
      answer = await this.#post(job, token);
    } catch (error) {
      if (!(error instanceof EcdTransportError)) throw error;
      statuses.push(error.kind);
      this.#options.breaker?.record(signalOf(error.kind));
      return {
        kind: 'attempted',
        result: {
          kind: 'transport',
          stage: 'send',
          error: error.kind,
          mayHaveBeenSent: error.mayHaveBeenSent,
        },
        excerpt: '',
        detail: error.describe(),
        latencyMs: this.#now() - started,
        authFailed: false,
        sendStatuses: [...statuses],
      };
    }
    statuses.push(answer.status);
    this.#options.breaker?.record(signalOf(answer.status, waitHint(answer.headers, this.#now())?.seconds));
    const attempted = answered(answer, [job.message.content, job.message.subject, job.message.to, token], {
      statuses: [...statuses],
      retryAfterSeconds: waitHint(answer.headers, this.#now())?.seconds,
    });
    return answer.status === 401 ? { kind: 'unauthorized', last: attempted } : attempted;
  }

  /**
   * The breaker's probe: `GET /v1/settings` with the cached token (on a 401, once more with a token from a fresh
   * read of the secret), each request within the pacing. Returns the health of the last answer; `neutral` when no
   * request could go (no slot, no time, the secret unreadable). Never throws for API or network failures.
   */
  async #probe(time: AttemptTime): Promise<ApiSignal> {
    let rejected: string | undefined;
    for (const rereadSecret of [false, true]) {
      const token = await this.#options.tokens.get({ rejected, rereadSecret, waitUntil: time.waitUntil });
      if (!token.ok) return token.failure === 'token' ? tokenSignal(token.error) : { kind: 'neutral' };
      const slot = await this.#options.pacer.acquire(this.#waitLeft(time));
      if (!slot.ok) return { kind: 'neutral' };
      let status: number | 'timeout' | 'connection';
      let retryAfterSeconds: number | undefined;
      try {
        const answer = await this.#get(SETTINGS_PATH, token.token);
        status = answer.status;
        retryAfterSeconds = waitHint(answer.headers, this.#now())?.seconds;
      } catch (error) {
        if (!(error instanceof EcdTransportError)) throw error;
        status = error.kind;
      }
      if (status !== 401) return signalOf(status, retryAfterSeconds);
      rejected = token.token;
    }
    // 401 with a token from freshly read credentials: the API client is refused.
    return { kind: 'auth' };
  }

  /** Tells the breaker of an attempt whose credentials eCourtDate refused after a secret re-read. */
  #told<T extends SendAttempt>(attempt: T): T {
    if (attempt.kind === 'attempted' && attempt.authFailed && attempt.result.kind !== 'secret') {
      this.#options.breaker?.record({ kind: 'auth' });
    }
    return attempt;
  }

  #waitLeft(time: AttemptTime): number | undefined {
    return time.waitUntil === undefined ? undefined : Math.max(time.waitUntil - this.#now(), 0);
  }

  /**
   * Whether a step of the 401 path, at its worst, and the ledger settle after it end by the lease: the renewal is a
   * token request, maybe a secret re-read and a second token request (the token cache re-reads a refused secret),
   * and the resend; the re-read step is a secret read, a token request and the resend.
   */
  #fits(time: AttemptTime, step: 'renewed' | 'reread'): boolean {
    if (time.leaseUntil === undefined) return true;
    const http = this.#options.timeoutMs;
    const aws = this.#options.awsCallMs ?? 0;
    const stepMs = step === 'renewed' ? 3 * http + aws : 2 * http + aws;
    return this.#now() + stepMs + aws + (this.#options.leaseMarginMs ?? 0) <= time.leaseUntil;
  }

  #outOfTime(time: AttemptTime): boolean {
    return time.deadline !== undefined && this.#now() >= time.deadline;
  }

  async #get(path: string, token: string): Promise<HttpAnswer> {
    return httpRequest(
      this.#options.fetch,
      apiUrl(this.#options.baseUrl, path),
      {
        method: 'GET',
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', 'User-Agent': USER_AGENT },
      },
      this.#options.timeoutMs,
      this.#now,
    );
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

/** An HTTP answer of the messages endpoint as an attempt; its excerpt is redacted on first read. */
function answered(
  answer: HttpAnswer,
  secrets: readonly (string | undefined)[],
  extra: { statuses: readonly ApiStatus[]; retryAfterSeconds: number | undefined },
): Extract<SendAttempt, { kind: 'attempted' }> {
  const body = answer.body;
  let excerpt: string | undefined;
  return {
    kind: 'attempted',
    result: {
      kind: 'response',
      stage: 'send',
      status: answer.status,
      uuid: answer.status < 300 ? extractUuid(body) : undefined,
      retryAfterSeconds: extra.retryAfterSeconds,
    },
    // Redacted on first read: a delivered job never logs it, and redaction is most of a send's CPU time.
    get excerpt() {
      excerpt ??= redactText(
        body,
        secrets.filter((s): s is string => s !== undefined),
      );
      return excerpt;
    },
    latencyMs: answer.latencyMs,
    authFailed: answer.status === 401,
    sendStatuses: extra.statuses,
  };
}

/** A token that could not be had (or after a 401, which created nothing): a known outcome, nothing sent. */
function notSent(token: Exclude<TokenResult, { ok: true }>, statuses: readonly ApiStatus[]): SendAttempt {
  switch (token.failure) {
    case 'deferred':
      return { kind: 'deferred', retryInMs: token.retryInMs };
    case 'secret':
      return secretFailure(statuses);
    case 'token':
      return tokenFailure(token.error, statuses);
  }
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

/** The health a refused token request says: the credentials refused after a re-read, or the endpoint failing. */
function tokenSignal(error: EcdTokenError): ApiSignal {
  if (error.status === 401 || error.status === 400) return { kind: 'auth' };
  return signalOf(error.status, error.retryAfterSeconds);
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
