import type {
  CreateThenAction,
  EndpointCounts,
  FaultAction,
  FaultMatch,
  FaultRequestView,
  FaultRule,
  OutageRecord,
  OutageSpec,
  RecordedRequest,
  RespondAction,
  ResponseContext,
  TimeHintForm,
} from './types.ts';

export interface FaultScript {
  add(rule: FaultRule): void;
  /**
   * Schedules an outage; `onStart` runs once, at the first request that arrives at or after the window opens
   * (e.g. to revoke the client's tokens). Throws `RangeError` for a bad duration or retryAfter.
   */
  schedule(outage: OutageSpec, onStart?: () => void): void;
  /** Forgets the rules and the outages. */
  clear(): void;
  /**
   * The rule acting on `req` arriving at `now` (simulator clock, ms): the outage whose window holds `now` (the
   * first scheduled, when windows overlap), else the first rule matching, with one of its `times` used up (the
   * rule is dropped at zero).
   */
  take(req: FaultRequestView, now: number): FaultRule | undefined;
  /** Each outage with the requests of `requests` inside and outside its window. */
  outages(requests: readonly RecordedRequest[]): OutageRecord[];
}

interface ScheduledOutage {
  readonly spec: OutageSpec;
  readonly name: string;
  readonly durationMs: number;
  startedAt: number | undefined;
  onStart: (() => void) | undefined;
}

/**
 * An ordered list of scripted faults, first match wins, behind the scheduled outages. `timeScale` divides an
 * outage's duration, as it divides the simulator's other windows. @default timeScale 1
 */
export function createFaultScript(options: { timeScale?: number } = {}): FaultScript {
  const timeScale = options.timeScale ?? 1;
  const rules: { rule: FaultRule; left: number }[] = [];
  const outages: ScheduledOutage[] = [];

  const outageAt = (req: FaultRequestView, now: number): ScheduledOutage | undefined => {
    for (const outage of outages) {
      const { start } = outage.spec;
      if (outage.startedAt === undefined && typeof start === 'number') outage.startedAt = start;
      if (outage.startedAt === undefined && typeof start !== 'number' && matches(start.atRequest, req)) {
        outage.startedAt = now;
      }
      if (outage.startedAt !== undefined && now >= outage.startedAt && outage.onStart !== undefined) {
        const onStart = outage.onStart;
        outage.onStart = undefined;
        onStart();
      }
    }
    return outages.find(
      (outage) =>
        outage.startedAt !== undefined &&
        now >= outage.startedAt &&
        now < outage.startedAt + outage.durationMs &&
        appliesTo(outage.spec, req),
    );
  };

  return {
    add(rule) {
      const times = rule.times ?? Number.POSITIVE_INFINITY;
      if (!(times >= 1) || (Number.isFinite(times) && !Number.isInteger(times))) {
        throw new RangeError(`FaultRule.times must be a positive integer, got ${String(rule.times)}`);
      }
      if (rule.delayMs !== undefined && !(rule.delayMs >= 0)) {
        throw new RangeError(`FaultRule.delayMs must be >= 0, got ${String(rule.delayMs)}`);
      }
      rules.push({ rule, left: times });
    },
    schedule(spec, onStart) {
      if (!(spec.durationSeconds > 0) || !Number.isFinite(spec.durationSeconds)) {
        throw new RangeError(
          `OutageSpec.durationSeconds must be a finite number > 0, got ${spec.durationSeconds}`,
        );
      }
      if (typeof spec.retryAfter === 'number' && !(spec.retryAfter >= 0)) {
        throw new RangeError(`OutageSpec.retryAfter must be >= 0 seconds, got ${spec.retryAfter}`);
      }
      outages.push({
        spec,
        name: spec.name ?? `outage ${outages.length + 1} (${spec.kind})`,
        durationMs: (spec.durationSeconds * 1000) / timeScale,
        startedAt: undefined,
        onStart,
      });
    },
    clear() {
      rules.length = 0;
      outages.length = 0;
    },
    take(req, now) {
      const outage = outageAt(req, now);
      if (outage !== undefined) return outageRule(outage, req, timeScale);
      const index = rules.findIndex(({ rule }) => matches(rule.match, req));
      const entry = rules[index];
      if (entry === undefined) return undefined;
      entry.left -= 1;
      if (entry.left <= 0) rules.splice(index, 1);
      return entry.rule;
    },
    outages(requests) {
      return outages.map((outage) => {
        const { startedAt } = outage;
        const endsAt = startedAt === undefined ? undefined : startedAt + outage.durationMs;
        const within = (request: RecordedRequest) =>
          startedAt !== undefined && endsAt !== undefined && request.at >= startedAt && request.at < endsAt;
        const inside = requests.filter(within);
        const outside = requests.filter((request) => !within(request));
        return {
          name: outage.name,
          kind: outage.spec.kind,
          startedAt,
          endsAt,
          inside: countByEndpoint(inside),
          outside: countByEndpoint(outside),
          messageRequests: inside.filter((request) => endpointOf(request) === 'messages'),
        };
      });
    },
  };
}

/** An `auth` outage concerns the revoked client's requests only; the others every request. */
function appliesTo(spec: OutageSpec, req: FaultRequestView): boolean {
  if (spec.kind !== 'auth') return true;
  return req.clientId !== undefined && (spec.clientId === undefined || req.clientId === spec.clientId);
}

/** The rule an outage stands for, for one request inside its window. */
function outageRule(outage: ScheduledOutage, req: FaultRequestView, timeScale: number): FaultRule {
  const { spec, name } = outage;
  switch (spec.kind) {
    case 'hang':
      return { name, action: { kind: 'hang' } };
    case 'drop':
      return { name, action: { kind: 'drop' } };
    case 'auth':
      return {
        name,
        action:
          req.path === '/oauth/token'
            ? {
                kind: 'respond',
                status: spec.tokenStatus ?? 401,
                body: { error: 'invalid_client', message: 'Unauthenticated.' },
              }
            : { kind: 'respond', status: 401, body: { message: 'Unauthenticated.' } },
      };
    case 'unavailable': {
      const body = { message: 'Service Unavailable' };
      const hint = spec.retryAfter;
      if (hint === undefined) return { name, action: { kind: 'respond', status: 503, body } };
      const endsAt = (outage.startedAt ?? 0) + outage.durationMs;
      return {
        name,
        action: {
          kind: 'respond',
          status: 503,
          body,
          headers: ({ now }) => ({
            'retry-after': formatTimeHint(
              'delta-seconds',
              hint === 'remaining' ? ((endsAt - now) * timeScale) / 1000 : hint,
              now,
            ),
          }),
        },
      };
    }
  }
}

/** Which endpoint a request went to, as `EndpointCounts` counts them. */
export function endpointOf(request: Pick<RecordedRequest, 'method' | 'path'>): keyof EndpointCounts {
  if (request.path === '/oauth/token') return 'token';
  if (request.path.startsWith('/v1/messages')) return 'messages';
  if (request.path === '/v1/settings' && request.method.toUpperCase() === 'GET') return 'settings';
  return 'other';
}

function countByEndpoint(requests: readonly RecordedRequest[]): EndpointCounts {
  const counts: EndpointCounts = { token: 0, messages: 0, settings: 0, other: 0 };
  for (const request of requests) counts[endpointOf(request)] += 1;
  return counts;
}

/** The label recorded as `faultApplied`: the rule's name, else what it did. */
export function describeRule(rule: FaultRule): string {
  if (rule.name !== undefined) return rule.name;
  const delay = rule.delayMs ? ` after ${rule.delayMs} ms` : '';
  return `${describeAction(rule.action)}${delay}`;
}

function describeAction(action: FaultAction): string {
  switch (action.kind) {
    case 'respond':
      return `respond ${action.status}`;
    case 'create-then':
      return `create-then ${describeAction(action.then)}`;
    default:
      return action.kind;
  }
}

function matches(match: FaultRule['match'], req: FaultRequestView): boolean {
  if (match === undefined) return true;
  if (typeof match === 'function') return match(req);
  const body = isObject(req.body) ? req.body : {};
  const checks: [keyof FaultMatch, () => boolean][] = [
    ['path', () => req.path === match.path],
    ['method', () => req.method.toUpperCase() === match.method?.toUpperCase()],
    ['to', () => body.to === match.to],
    [
      'contentIncludes',
      () => typeof body.content === 'string' && body.content.includes(match.contentIncludes ?? ''),
    ],
    ['clientId', () => req.clientId === match.clientId],
    ['agencyReference', () => req.query.agency_reference === match.agencyReference],
  ];
  return checks.every(([field, check]) => match[field] === undefined || check());
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Builds a `create-then` action. Prefer it to an object literal: Biome's `noThenProperty` flags any literal
 * with a `then` key.
 *
 * @example
 * sim.script({ times: 1, action: createThen({ kind: 'respond', status: 504 }) });
 */
export function createThen(then: CreateThenAction['then']): CreateThenAction {
  return { kind: 'create-then', then };
}

/**
 * A time `seconds` from `now` (ms) as a header states it: whole seconds from now, epoch seconds, epoch ms, or
 * an HTTP-date. Rounded up, so a client that honours the hint never comes back early.
 */
export function formatTimeHint(form: TimeHintForm, seconds: number, now: number): string {
  const at = now + seconds * 1000;
  switch (form) {
    case 'delta-seconds':
      return String(Math.max(0, Math.ceil(seconds)));
    case 'epoch-seconds':
      return String(Math.ceil(at / 1000));
    case 'epoch-ms':
      return String(Math.ceil(at));
    case 'http-date':
      return new Date(Math.ceil(at / 1000) * 1000).toUTCString();
  }
}

/**
 * An answer with `Retry-After`, e.g. a 503 for a maintenance window of `seconds` (the API's own seconds: a
 * time-scaled client divides them like its other delays).
 *
 * @example
 * sim.script({ times: 1, action: retryAfter(600, { form: 'http-date' }) });
 */
export function retryAfter(
  seconds: number,
  options: { status?: number; form?: 'delta-seconds' | 'http-date'; body?: unknown } = {},
): RespondAction {
  const form = options.form ?? 'delta-seconds';
  return {
    kind: 'respond',
    status: options.status ?? 503,
    body: options.body ?? { message: 'Service Unavailable' },
    headers: ({ now }) => ({ 'retry-after': formatTimeHint(form, seconds, now) }),
  };
}

/** Where a 429 puts its wait hint, and in which form (see `rateLimited`). */
export interface RateLimitHint {
  /** `retry-after` takes delta seconds or an HTTP-date; `x-ratelimit-reset` any form. */
  readonly header: 'retry-after' | 'x-ratelimit-reset';
  /** The API's own seconds until the client may send again. */
  readonly seconds: number;
  /** @default 'delta-seconds' */
  readonly form?: TimeHintForm;
}

/**
 * A 429 "Too Many Attempts." as eCourtDate's rate limiter answers it: with no header (the default, as the
 * docs show it), or with a wait hint in `Retry-After` or `X-RateLimit-Reset` (with `-Limit` and
 * `-Remaining: 0`) in the given form.
 *
 * @example
 * // The reset one minute ahead in epoch milliseconds, which a client must not read as seconds.
 * sim.script({ action: rateLimited({ header: 'x-ratelimit-reset', seconds: 60, form: 'epoch-ms' }) });
 */
export function rateLimited(hint?: RateLimitHint): RespondAction {
  const body = { message: 'Too Many Attempts.' };
  if (hint === undefined) return { kind: 'respond', status: 429, body };
  const form = hint.form ?? 'delta-seconds';
  if (hint.header === 'retry-after' && form !== 'delta-seconds' && form !== 'http-date') {
    throw new RangeError(`Retry-After is delta seconds or an HTTP-date, not ${form}`);
  }
  return {
    kind: 'respond',
    status: 429,
    body,
    headers: ({ now }): Record<string, string> =>
      hint.header === 'retry-after'
        ? { 'retry-after': formatTimeHint(form, hint.seconds, now) }
        : {
            'x-ratelimit-limit': '1000',
            'x-ratelimit-remaining': '0',
            'x-ratelimit-reset': formatTimeHint(form, hint.seconds, now),
          },
  };
}

/**
 * Response bodies that test a client's handling of what it did not expect:
 * - `control-characters`: valid JSON whose strings decode to U+0000, ESC, BEL, U+FFFF and a lone surrogate
 *   (characters SQS refuses in a message attribute);
 * - `raw-control-characters`: the same characters raw in the text (not valid JSON);
 * - `huge`: a valid JSON body of `sizeBytes` (default 5 MiB), e.g. a stack trace;
 * - `escaped-echo`: the request's recipient and text echoed back with every character JSON-escaped
 *   (`\u002b\u0031...`), so only a JSON decoder sees them;
 * - `unicode-echo`: the recipient as Unicode variants (digits grouped by U+2010 HYPHEN, fullwidth digits) and
 *   the text in NFD, written as PHP's `json_encode` writes them (`555\u2010010\u20100401`, `jos\u00e9`).
 * All are labelled `application/json`.
 *
 * @example
 * sim.script({ times: 1, action: hostile('escaped-echo', 400) });
 */
export function hostile(
  kind: HostileBody,
  status: number,
  options: { sizeBytes?: number } = {},
): RespondAction {
  const contentType = 'application/json';
  switch (kind) {
    case 'control-characters':
      return {
        kind: 'respond',
        status,
        contentType,
        body: JSON.stringify({
          message: `The content field is invalid.${CONTROL_CHARACTERS}\ud800`,
          errors: { content: [`Unexpected byte ${CONTROL_CHARACTERS}`] },
        }),
      };
    case 'raw-control-characters':
      return {
        kind: 'respond',
        status,
        contentType,
        body: `{"message":"The content field is invalid.${CONTROL_CHARACTERS}"}`,
      };
    case 'huge': {
      const size = options.sizeBytes ?? 5 * 1024 * 1024;
      if (!Number.isInteger(size) || size < 64) throw new RangeError(`sizeBytes must be >= 64, got ${size}`);
      return { kind: 'respond', status, contentType, body: hugeBody(size) };
    }
    case 'escaped-echo':
      return {
        kind: 'respond',
        status,
        contentType,
        body: ({ request }: ResponseContext) => escapedEcho(request),
      };
    case 'unicode-echo':
      return {
        kind: 'respond',
        status,
        contentType,
        body: ({ request }: ResponseContext) => unicodeEcho(request),
      };
  }
}

export type HostileBody =
  | 'control-characters'
  | 'raw-control-characters'
  | 'huge'
  | 'escaped-echo'
  | 'unicode-echo';

/** NUL, ESC (an ANSI colour sequence), BEL and the non-character U+FFFF. */
const CONTROL_CHARACTERS = '\u0000\u001b[31m\u0007\uffff';

const hugeBodies = new Map<number, string>();

function hugeBody(size: number): string {
  const cached = hugeBodies.get(size);
  if (cached !== undefined) return cached;
  const head = '{"message":"Server Error","trace":"';
  const tail = '"}';
  const frame = '#0 /var/www/vendor/laravel/framework/src/Illuminate/Pipeline/Pipeline.php(183)\\n';
  const room = size - head.length - tail.length;
  const body = `${head}${frame.repeat(Math.ceil(room / frame.length)).slice(0, room)}${tail}`;
  // A cut inside the escaped "\\n" would leave a lone backslash before the closing quote.
  const valid = body.endsWith('\\"}') ? `${body.slice(0, -3)}x"}` : body;
  hugeBodies.set(size, valid);
  return valid;
}

function echoed(request: FaultRequestView): { to: string; content: string } {
  const body = isObject(request.body) ? request.body : {};
  return {
    to: typeof body.to === 'string' ? body.to : '',
    content: typeof body.content === 'string' ? body.content : '',
  };
}

/** Every UTF-16 unit as a JSON escape: valid JSON, and no character of the text appears as itself. */
function escapeAll(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i += 1) out += `\\u${text.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

function escapedEcho(request: FaultRequestView): string {
  const { to, content } = echoed(request);
  const escapedTo = escapeAll(to);
  return (
    `{"message":"The to field ${escapedTo} cannot receive this message.",` +
    `"errors":{"to":["The number ${escapedTo} is not reachable."]},` +
    `"received":{"to":"${escapedTo}","content":"${escapeAll(content)}"}}`
  );
}

/** JSON as PHP's json_encode writes it by default: non-ASCII as \uXXXX escapes, slashes as \/. */
function phpJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replaceAll('/', '\\/');
}

function unicodeEcho(request: FaultRequestView): string {
  const { to, content } = echoed(request);
  const digits = to.replace(/\D/g, '');
  const national = digits.length === 11 && digits.startsWith('1') ? digits.slice(1) : digits;
  const hyphenated =
    national.length === 10
      ? `${national.slice(0, 3)}\u2010${national.slice(3, 6)}\u2010${national.slice(6)}`
      : [...national].join('\u2010');
  const fullwidth = [...national].map((d) => String.fromCharCode(0xff10 + Number(d))).join('');
  return phpJson({
    message: `The recipient ${hyphenated} cannot receive this message.`,
    errors: { to: [`Invalid number ${fullwidth}.`] },
    received: { to: `+1 ${hyphenated}`, content: content.normalize('NFD') },
  });
}
