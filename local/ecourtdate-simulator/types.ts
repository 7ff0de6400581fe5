/**
 * Public types of the eCourtDate API simulator. Where eCourtDate's documentation says UNKNOWN
 * (/work/shared/ecourtdate-api.md §15), the behaviour is an option so tests can cover every plausible answer.
 */

export interface SimulatorOptions {
  /** client_id -> client_secret accepted by `/oauth/token`. @default { 'sim-client': 'sim-secret' } */
  clients?: Record<string, string>;
  /** Status of a successful token response; the docs show 201. @default 201 */
  tokenStatus?: number;
  /** `expires_in` of token responses; `null` omits it, as one docs page does. Not scaled. @default 3600 */
  tokenExpiresInSeconds?: number | null;
  /** How long an issued token is honoured. @default tokenExpiresInSeconds ?? 3600 */
  tokenLifetimeSeconds?: number;
  /** Success status of `POST /v1/messages/oneoffs` (UNKNOWN upstream). @default 201 */
  sendStatus?: 200 | 201;
  /** Success body of oneoffs: one object, or an array of one (UNKNOWN upstream). @default 'object' */
  responseShape?: 'object' | 'array';
  /** Per client_id; every request attributable to a client counts, token requests and rejected ones too. @default 1000 */
  rateLimitPerMinute?: number;
  /** UNKNOWN upstream. 'fixed' starts a window at the first request after the previous one ended. @default 'fixed' */
  rateLimitWindow?: 'fixed' | 'sliding';
  /**
   * UNKNOWN upstream. 'retry-after' adds `Retry-After: <seconds until reset>` to 429s; 'x-ratelimit' adds
   * `X-RateLimit-Limit/-Remaining/-Reset` (the reset in `rateLimitResetForm`) to every answer to an identified
   * client.
   * @default 'none'
   */
  rateLimitHeaders?: 'none' | 'retry-after' | 'x-ratelimit';
  /**
   * UNKNOWN upstream: how `X-RateLimit-Reset` states the reset. APIs in the wild use all three: epoch seconds
   * (GitHub), seconds from now (IETF draft `RateLimit-Reset`), epoch milliseconds.
   * @default 'epoch-seconds'
   */
  rateLimitResetForm?: TimeHintForm;
  /** Duplicate window before and after the effective send time. @default 1800 */
  duplicateWindowSeconds?: number;
  /** What makes two messages "the same" (UNKNOWN upstream). @default JSON of [to, channel ?? 'text', subject ?? '', content] */
  duplicateKey?: (message: Record<string, unknown>) => string;
  /** If an array, an `agency_reference` query parameter not in it gets 404 "Agency Not Found". @default null */
  knownAgencies?: string[] | null;
  /** Divides every window (duplicate window, rate-limit minute, token lifetime). @default 1 */
  timeScale?: number;
  /** Clock in ms; tests move it instead of sleeping. Scripted `delayMs` still uses real timers. @default Date.now */
  now?: () => number;
  /**
   * Called with each message as it is created (a `create-then` fault included: the message exists), e.g. to send
   * its webhooks (`./webhooks.ts`). Must not throw. @default none
   */
  onMessageCreated?: (message: CreatedMessage) => void;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (ephemeral) */
  port?: number;
}

export interface RecordedRequest {
  seq: number;
  /** Simulator clock (`now`) when the request arrived. */
  at: number;
  method: string;
  path: string;
  query: Record<string, string>;
  /** The API client whose token (even an expired one) or client_id the request carried. */
  clientId?: string;
  /** Parsed JSON, or the raw text when it did not parse. `client_secret` is replaced by '[redacted]'. */
  body: unknown;
  /** 'pending' until answered; a `hang` fault leaves it pending for good. */
  status: number | 'dropped' | 'pending';
  createdUuid?: string;
  /** Label of the scripted rule that acted on this request (its `name`, or a description of its action). */
  faultApplied?: string;
}

/** A message the simulated eCourtDate created: what a court would see in its account. */
export interface CreatedMessage {
  uuid: string;
  clientId: string;
  agencyReference?: string;
  /** The JSON body as received. */
  body: Record<string, unknown>;
  createdAt: number;
  requestSeq: number;
}

/** What a function matcher sees; the body is parsed JSON (or raw text), secrets included. */
export interface FaultRequestView {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Request headers, names in lower case, without `authorization` (it holds the bearer token). */
  headers: Record<string, string>;
  body: unknown;
  clientId?: string;
}

/** Every given field must match: exact, except `method` (any case) and `contentIncludes` (substring). */
export interface FaultMatch {
  path?: string;
  method?: string;
  to?: string;
  contentIncludes?: string;
  clientId?: string;
  agencyReference?: string;
}

/**
 * How a response states a time: seconds from now (`Retry-After: 120`), epoch seconds, epoch milliseconds, or
 * an HTTP-date (`Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`, whole seconds).
 */
export type TimeHintForm = 'delta-seconds' | 'epoch-seconds' | 'epoch-ms' | 'http-date';

/** What a response computed per request sees: the simulator clock and the request. */
export interface ResponseContext {
  /** Simulator clock (`now`), ms. */
  readonly now: number;
  readonly request: FaultRequestView;
}

export interface RespondAction {
  kind: 'respond';
  status: number;
  /**
   * Objects are sent as JSON, strings as they are (see `contentType`), `undefined` as an empty body. A
   * function is called for each request, e.g. to echo the request's recipient.
   */
  body?: unknown;
  /** Response headers; a function is called for each request, e.g. for a reset time relative to now. */
  headers?: Record<string, string> | ((context: ResponseContext) => Record<string, string>);
  /** Content type of a string body. @default 'text/plain' (objects are always 'application/json') */
  contentType?: string;
}
export interface DropAction {
  kind: 'drop';
}
export interface HangAction {
  kind: 'hang';
}
export interface CreateThenAction {
  kind: 'create-then';
  then: RespondAction | DropAction | HangAction;
}
export interface PassAction {
  kind: 'pass';
}
export type FaultAction = RespondAction | DropAction | HangAction | CreateThenAction | PassAction;

export interface FaultRule {
  /** Shown as `faultApplied` in the request record. */
  name?: string;
  /** Absent = every request. */
  match?: FaultMatch | ((req: FaultRequestView) => boolean);
  /** Used this many times, then dropped. @default forever */
  times?: number;
  /** Real milliseconds to wait before acting (latency injection). */
  delayMs?: number;
  action: FaultAction;
  /**
   * Called when the rule is used, before its delay: a side effect in the world around the API, e.g. a
   * Secrets Manager outage that starts with this answer. An error it throws answers 500 "simulator bug".
   */
  onApply?: (request: FaultRequestView) => void;
}

/**
 * What an outage does to every request of its window: `unavailable` answers 503 (a maintenance window),
 * `hang` never answers, `drop` closes the connection, `auth` answers as for a revoked API client (401).
 */
export type OutageKind = 'unavailable' | 'hang' | 'drop' | 'auth';

/**
 * A scheduled outage of the whole API (token endpoint, messages, `GET /v1/settings`, any path): for its window,
 * it acts before any scripted rule and creates nothing. The window is in the API's own seconds, divided by
 * `timeScale` like the simulator's other windows (docs/test-world.md, "Outages in the simulator").
 */
export interface OutageSpec {
  /** Shown as `faultApplied` and in `outages()`. @default `outage <n> (<kind>)` */
  name?: string;
  kind: OutageKind;
  /**
   * When the window opens: a simulator clock time (ms), or the arrival of the first request matching
   * `atRequest` (that request is inside the window), e.g. the first message request of a run.
   */
  start: number | { atRequest: FaultMatch };
  /** Length of the window in the API's own seconds (divided by `timeScale`); > 0. */
  durationSeconds: number;
  /**
   * `unavailable` only: `Retry-After` on the 503s, in the API's own delta seconds: a number, or `remaining` (the
   * seconds left in the window, rounded up). @default none (no header, as eCourtDate documents none)
   */
  retryAfter?: number | 'remaining';
  /**
   * `auth` only: the token endpoint's status for the revoked client. eCourtDate says a 401 can mean a revoked API
   * client; what its token endpoint answers then is UNKNOWN upstream. @default 401
   */
  tokenStatus?: 400 | 401;
  /**
   * `auth` only: the tokens issued before the window stay revoked after it (the client must ask for a new one),
   * as when a client is revoked in the Console and a new one set up; false: they work again (UNKNOWN upstream).
   * @default true
   */
  revokeTokens?: boolean;
  /** `auth` only: the API client revoked; others are served as usual. @default every client */
  clientId?: string;
}

/** Requests by endpoint: `/oauth/token`, `/v1/messages/*`, `GET /v1/settings` (the probe), anything else. */
export interface EndpointCounts {
  token: number;
  messages: number;
  settings: number;
  other: number;
}

/** What the simulator saw of one scheduled outage (`Simulator.outages()`). */
export interface OutageRecord {
  readonly name: string;
  readonly kind: OutageKind;
  /** Simulator clock (ms) the window opened; undefined while a request-started window waits for its request. */
  readonly startedAt: number | undefined;
  /** Simulator clock (ms) the window closes (`startedAt` + the scaled duration); undefined with `startedAt`. */
  readonly endsAt: number | undefined;
  /** Requests that arrived inside the window, by endpoint (for `auth`, every client's). */
  readonly inside: EndpointCounts;
  /** Every other request the simulator saw, by endpoint. */
  readonly outside: EndpointCounts;
  /** The message requests that arrived inside the window, in arrival order (bodies as recorded). */
  readonly messageRequests: readonly RecordedRequest[];
}

export interface Simulator {
  /** e.g. `http://127.0.0.1:41234`, no trailing slash. */
  readonly url: string;
  /** Every request seen, in arrival order. */
  readonly requests: readonly RecordedRequest[];
  /** Every message created. */
  readonly messages: readonly CreatedMessage[];
  /** Appends a rule; rules are matched in order and the first match wins. */
  script(rule: FaultRule): void;
  /**
   * Schedules an outage (`OutageSpec`); outages act before every scripted rule. Throws `RangeError` for a
   * duration that is not > 0 or a retryAfter below 0.
   */
  scheduleOutage(outage: OutageSpec): void;
  /** Each scheduled outage, in scheduling order, with the requests seen inside and outside its window. */
  outages(): OutageRecord[];
  /** Forgets the scripted rules and the scheduled outages. */
  clearScript(): void;
  /** Rotation: the old secret is rejected from now on; `revokeTokens` also kills this client's issued tokens. */
  setClientSecret(clientId: string, secret: string, options?: { revokeTokens?: boolean }): void;
  /** Every token issued so far answers 401 from now on. */
  revokeTokens(): void;
  /** Forgets requests, messages, rules, outages, rate counters and tokens; client secrets stay as they are. */
  reset(): void;
  /** Closes the server and destroys open sockets, held and delayed ones included. */
  close(): Promise<void>;
}
