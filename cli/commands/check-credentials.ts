import { isConnectionRefused, LocalPipelineNotRunningError } from '#cli/local-endpoints.ts';
import { awsErrorText, need, type Target } from '#cli/target.ts';
import { OUTPUT } from '#infra/stack-contract.ts';
import { parseBaseUrl } from '#shared/config.ts';
import { type ClientCredentials, CredentialsSource } from '#shared/ecourtdate/credentials.ts';
import { type EcdTokenError, EcdTransportError } from '#shared/ecourtdate/errors.ts';
import { apiUrl, type FetchLike, type HttpAnswer, httpRequest } from '#shared/ecourtdate/http.ts';
import { Pacer, type RequestPacer } from '#shared/ecourtdate/pacer.ts';
import {
  DynamoBudgetStore,
  OPERATOR_REQUESTS_PER_MINUTE,
  SharedBudgetPacer,
} from '#shared/ecourtdate/shared-budget.ts';
import { TokenCache } from '#shared/ecourtdate/token-cache.ts';
import { ConfigError, CredentialsError } from '#shared/errors.ts';
import { redactText } from '#shared/redact.ts';

/** One step of the check, as reported to the operator. */
export interface CheckStep {
  /** `agency`: the `--agency-reference` agency, checked after the API client's own (default) agency. */
  readonly step: 'secret' | 'token' | 'settings' | 'agency';
  readonly ok: boolean;
  /** What happened, in a sentence. */
  readonly summary: string;
  /** What to do about it, when it failed (from eCourtDate's troubleshooting advice). */
  readonly advice?: string;
}

/** The steps run, in order (the check stops at the first failing one), and whether every step passed. */
export interface CheckResult {
  readonly steps: readonly CheckStep[];
  readonly passed: boolean;
}

export interface CheckOptions {
  readonly agencyReference?: string | undefined;
  readonly fetch?: FetchLike;
  readonly timeoutMs?: number;
}

/** The value the stack puts in a secret it creates, until an operator stores the real credentials. */
const PLACEHOLDER_CLIENT_ID = 'REPLACE_WITH_ECOURTDATE_CLIENT_ID';
/** Times a settings call waits for a slot the budget has no room for before the check gives up. */
const SLOT_TRIES = 3;

/**
 * `check-credentials`: reads the secret, gets a token from `/oauth/token` and calls `GET /v1/settings`, as
 * eCourtDate's authentication guide suggests for a token check, with the sender's own secret reader, token
 * cache (which re-reads the secret once when the token request is refused, as the sender does) and pacing.
 * With `agencyReference`, then calls it again for that agency, so that an agency the API client cannot reach is
 * told apart from credentials that do not work. Stops at the first failing step and says what it means. Never
 * prints the secret, the token or the client id in full. Throws `LocalPipelineNotRunningError` when the target
 * is the local pipeline and it refuses connections (it has stopped).
 */
export async function checkCredentials(target: Target, options: CheckOptions = {}): Promise<CheckResult> {
  const steps: CheckStep[] = [];
  const done = (): CheckResult => ({
    steps,
    passed: steps.length === (options.agencyReference ? 4 : 3) && steps.every((step) => step.ok),
  });
  const secretId = need(target.secretId, 'the secret', '--secret-id');
  const baseUrl = ecourtdateBaseUrl(target);
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  // One check is one short-lived "container": nothing expires while it runs.
  const credentials = new CredentialsSource({ client: target.secrets, secretId, ttlMs: 60 * 60_000 });
  const pacer = await checkPacer(target);

  // 1. The secret.
  let read: ClientCredentials;
  try {
    read = await credentials.get();
  } catch (error) {
    localPipelineDown(target, error);
    steps.push(secretFailure(secretId, error));
    return done();
  }
  if (read.clientId === PLACEHOLDER_CLIENT_ID) {
    steps.push({
      step: 'secret',
      ok: false,
      summary: `secret ${secretId} still holds the placeholder the stack created`,
      advice:
        "Store the API client's credentials: aws secretsmanager put-secret-value --secret-id " +
        `${secretId} --secret-string '{"client_id":"...","client_secret":"..."}' (docs/deploy.md, "Put the API client credentials in the secret").`,
    });
    return done();
  }
  steps.push({
    step: 'secret',
    ok: true,
    summary: `read secret ${secretId}: client_id ${abbreviate(read.clientId)}`,
  });

  // 2. A token.
  const tokenUrl = apiUrl(baseUrl, '/oauth/token');
  let tokenStatus: number | undefined;
  const tokens = new TokenCache({
    baseUrl,
    credentials,
    pacer,
    fetch: fetchImpl,
    timeoutMs,
    renewBeforeMs: 0,
    onAnswer: (status) => {
      if (typeof status === 'number') tokenStatus = status;
    },
  });
  const got = await tokens.get();
  if (!got.ok) {
    // The token cache re-reads the secret after a refusal; that read can fail too. The pacer never defers the
    // CLI's one token request (it has the whole share), but a deferral is reported rather than ignored.
    if (got.failure === 'deferred')
      throw new Error(`token request held back by pacing for ${got.retryInMs} ms`);
    localPipelineDown(target, got.error);
    steps.push(
      got.failure === 'secret' ? secretFailure(secretId, got.error) : tokenFailure(tokenUrl, got.error),
    );
    return done();
  }
  const token = got.token;
  steps.push({
    step: 'token',
    ok: true,
    summary: `got a token from ${tokenUrl.href}${tokenStatus === undefined ? '' : ` (HTTP ${tokenStatus})`}`,
  });

  // 3. GET /v1/settings with it: the API client's own (default) agency.
  const settings = await settingsStep(target, { baseUrl, token, fetchImpl, timeoutMs, pacer, credentials });
  steps.push(settings);
  if (!settings.ok || !options.agencyReference) return done();

  // 4. The same for the agency asked about.
  steps.push(
    await settingsStep(
      target,
      { baseUrl, token, fetchImpl, timeoutMs, pacer, credentials },
      options.agencyReference,
    ),
  );
  return done();
}

interface SettingsCall {
  readonly baseUrl: URL;
  readonly token: string;
  readonly fetchImpl: FetchLike;
  readonly timeoutMs: number;
  readonly pacer: RequestPacer;
  readonly credentials: CredentialsSource;
}

/**
 * The check's pacer (docs/pacing.md, "One budget for the API client"): when the target names the stage's ledger
 * table (`--stage`, or `--ledger-table`) and its `api-client` item holds a budget, the check's requests lease their
 * slots from it as the sender instances do, so the budget counts them. Otherwise (no table, no budget written yet,
 * or the item cannot be read), and whenever a lease fails, its own pace of `OPERATOR_REQUESTS_PER_MINUTE` from the
 * reserve. Never throws.
 */
export async function checkPacer(target: Target): Promise<RequestPacer> {
  const own = new Pacer(OPERATOR_REQUESTS_PER_MINUTE);
  if (target.ledgerTableName === undefined) return own;
  const store = new DynamoBudgetStore({ client: target.dynamodb, tableName: target.ledgerTableName });
  const view = await store.read().catch(() => undefined);
  if (view?.budgetPerMinute === undefined || view.sliceMs === undefined) return own;
  return new SharedBudgetPacer({
    store,
    budgetPerMinute: view.budgetPerMinute,
    sliceMs: view.sliceMs,
    fallbackPerMinute: OPERATOR_REQUESTS_PER_MINUTE,
    // A quiet user: each lease takes what waits.
    maxLeaseSlots: OPERATOR_REQUESTS_PER_MINUTE,
  });
}

/** Waits for a slot of the pacer, a few times at most. Throws an Error saying what held the request back. */
async function slotFor(pacer: RequestPacer, what: string): Promise<void> {
  let waited = 0;
  for (let tries = 1; tries <= SLOT_TRIES; tries += 1) {
    const slot = await pacer.acquire();
    if (slot.ok) return;
    waited += slot.retryInMs;
    await new Promise((resolve) => setTimeout(resolve, slot.retryInMs));
  }
  throw new Error(
    `${what} held back by the stage's rate budget for ${waited} ms (the relay is using all of it, or a 429's wait is on): run the check again in a minute`,
  );
}

/** `GET /v1/settings` (with `agency_reference` when given) and what its answer means. */
async function settingsStep(
  target: Target,
  call: SettingsCall,
  agencyReference?: string,
): Promise<CheckStep> {
  const url = apiUrl(call.baseUrl, '/v1/settings');
  if (agencyReference) url.searchParams.set('agency_reference', agencyReference);
  await slotFor(call.pacer, `GET ${url.pathname}`);
  let answer: HttpAnswer;
  try {
    answer = await httpRequest(
      call.fetchImpl,
      url,
      { method: 'GET', headers: { Authorization: `Bearer ${call.token}`, Accept: 'application/json' } },
      call.timeoutMs,
    );
  } catch (error) {
    if (!(error instanceof EcdTransportError)) throw error;
    localPipelineDown(target, error);
    return unreachable(agencyReference ? 'agency' : 'settings', error);
  }
  // The credentials in use now: the token cache may have re-read a rotated secret.
  const current = await call.credentials.get();
  const excerpt = redactText(answer.body, [current.clientId, current.clientSecret, call.token]);
  return agencyReference
    ? agencyStep(url, answer, excerpt, agencyReference)
    : defaultAgencyStep(url, answer, excerpt);
}

/** Against the local pipeline, a refused connection means it has stopped: say that, not "check the network". */
function localPipelineDown(target: Target, error: unknown): void {
  if (target.kind === 'local' && isConnectionRefused(error)) {
    throw new LocalPipelineNotRunningError('its endpoints refuse connections', { cause: error });
  }
}

/**
 * The steps as lines for the terminal, with a closing verdict; with `json`, one object: `target`, `ecourtdate_url`
 * (null when none), `passed`, and `steps` (`step`, `ok`, `summary`, `advice`: null when the step passed).
 */
export function renderCheck(check: CheckResult, target: Target, json = false): string {
  const { steps } = check;
  if (json) {
    return JSON.stringify({
      target: target.description,
      ecourtdate_url: target.ecourtdateUrl ?? null,
      passed: check.passed,
      steps: steps.map((step) => ({
        step: step.step,
        ok: step.ok,
        summary: step.summary,
        advice: step.advice ?? null,
      })),
    });
  }
  const lines = [`Checking the eCourtDate credentials of ${target.description}`];
  if (target.ecourtdateUrl) {
    lines.push(
      `  API: ${target.ecourtdateUrl}${target.ecourtdateUrlSource ? ` (from ${target.ecourtdateUrlSource})` : ''}`,
    );
  }
  for (const step of steps) {
    lines.push(`${step.ok ? 'ok  ' : 'FAIL'} ${step.step}: ${step.summary}`);
    if (step.advice) lines.push(...step.advice.split('\n').map((line) => `       ${line}`));
  }
  const agencyFailed = steps.some((step) => step.step === 'agency' && !step.ok);
  lines.push(
    check.passed
      ? 'The relay can authenticate and reach its agency.'
      : agencyFailed
        ? 'The credentials work; only jobs for this agency_reference cannot be sent.'
        : 'The relay cannot send with these credentials.',
  );
  return lines.join('\n');
}

/** The API's base URL: `--ecourtdate-url`, the stack's output or the local pipeline's, validated. */
function ecourtdateBaseUrl(target: Target): URL {
  const rawUrl = need(
    target.ecourtdateUrl,
    target.stackName === undefined
      ? 'the eCourtDate API URL'
      : `the eCourtDate API URL (stack ${target.stackName} has no ${OUTPUT.ecourtdateBaseUrl} output: deploy this version)`,
    '--ecourtdate-url',
  );
  try {
    return parseBaseUrl(rawUrl, '--ecourtdate-url');
  } catch (error) {
    throw error instanceof ConfigError ? error : new ConfigError('--ecourtdate-url', String(error));
  }
}

function secretFailure(secretId: string, error: unknown): CheckStep {
  if (error instanceof CredentialsError && error.cause === undefined) {
    return {
      step: 'secret',
      ok: false,
      summary: error.message,
      advice:
        'The secret must be JSON: {"client_id": "...", "client_secret": "..."} (eCourtDate Console > APIs).',
    };
  }
  const cause = error instanceof CredentialsError && error.cause !== undefined ? error.cause : error;
  const name = cause instanceof Error ? cause.name : '';
  const advice =
    name === 'ResourceNotFoundException'
      ? 'No such secret in this account and region: check --secret-id, --region, or the stack output SecretName.'
      : name === 'AccessDeniedException'
        ? 'Your AWS identity may not read this secret (secretsmanager:GetSecretValue, and kms:Decrypt if it uses a KMS key).'
        : 'Check your AWS credentials and region.';
  return {
    step: 'secret',
    ok: false,
    summary: `cannot read secret ${secretId}: ${awsErrorText(cause)}`,
    advice,
  };
}

/** No answer: the cause (DNS, refused, TLS, reset, timeout) and the host, with what to check for that cause. */
function unreachable(step: CheckStep['step'], error: EcdTransportError): CheckStep {
  const network =
    'that this machine reaches *.api.ecourtdate.com on TCP 443 (proxy, firewall); if the API client has an IP ' +
    'allowlist in the Console, this address must be on it.';
  const advice: Record<EcdTransportError['failure'], string> = {
    dns: `${error.host} does not resolve: check the host name of the base URL, and this machine's DNS.`,
    refused: `Nothing accepts connections at ${error.host}: check the base URL's host and port.`,
    tls:
      `The TLS handshake with ${error.host} failed: check the host name of the base URL, and whether a proxy ` +
      'replaces certificates (NODE_EXTRA_CA_CERTS names its CA).',
    reset: `The connection was dropped: check ${network}`,
    timeout: `No answer in time: check ${network}`,
    bad_port:
      `fetch never connects to the port of ${error.host} (the Fetch standard's bad ports, e.g. 9 or 6000): ` +
      'check the port of the base URL (eCourtDate listens on 443, the https:// default).',
    network: `Check the base URL, and ${network}`,
  };
  return { step, ok: false, summary: `no answer: ${error.message}`, advice: advice[error.failure] };
}

/** The token cache's refusal, with eCourtDate's advice; its excerpt is already redacted of the credentials. */
function tokenFailure(url: URL, error: EcdTokenError): CheckStep {
  const { status } = error;
  if (typeof status !== 'number') {
    if (error.cause instanceof EcdTransportError) return unreachable('token', error.cause);
    return { step: 'token', ok: false, summary: `no answer from ${url.host} (${status})` };
  }
  const body = error.excerpt ? ` ${error.excerpt}` : '';
  if (status >= 200 && status < 300) {
    return {
      step: 'token',
      ok: false,
      summary: `HTTP ${status} from ${url.href} without an access_token`,
    };
  }
  const summary = `${url.href} answered HTTP ${status}:${body}`;
  if (status === 401 || status === 400) {
    return {
      step: 'token',
      ok: false,
      summary,
      advice: [
        'eCourtDate rejected the client credentials, also after the secret was read again (401: missing,',
        'invalid or revoked API client).',
        '- Is client_id/client_secret in the secret the pair shown for this API client in Console > APIs?',
        '  (The secret is shown only once: if in doubt, generate a new one and store it.)',
        '- Staging and production credentials are not interchangeable: is this the API of the environment',
        '  the client was created in?',
        '- Has the API client been revoked in Console > APIs?',
      ].join('\n'),
    };
  }
  if (status === 404 || status === 405 || (status >= 300 && status < 400)) {
    return {
      step: 'token',
      ok: false,
      summary,
      advice:
        'No token endpoint here: check the base URL (e.g. https://staging.api.ecourtdate.com, no path).',
    };
  }
  if (status === 429) {
    return {
      step: 'token',
      ok: false,
      summary,
      advice: 'Rate limited (1,000 requests a minute per API client): wait a minute.',
    };
  }
  return {
    step: 'token',
    ok: false,
    summary,
    advice: 'eCourtDate had a problem; retry in a minute, and see status.ecourtdate.com if it persists.',
  };
}

/**
 * The answer for the given `agency_reference`: with the credentials proven by the steps before, a 403 or 404
 * says this API client cannot reach that agency, not that the credentials are wrong.
 */
function agencyStep(url: URL, answer: HttpAnswer, excerpt: string, agencyReference: string): CheckStep {
  const { status } = answer;
  if (status >= 200 && status < 300) {
    return {
      step: 'agency',
      ok: true,
      summary: `GET ${url.pathname}${url.search} answered HTTP ${status}${agencyOf(answer.body)}`,
    };
  }
  const summary =
    `this API client cannot reach agency ${agencyReference}: GET ${url.pathname}${url.search} answered ` +
    `HTTP ${status}${excerpt ? `: ${excerpt}` : ''}`;
  if (status === 403 || status === 404) {
    return {
      step: 'agency',
      ok: false,
      summary,
      advice: [
        `The credentials work (the steps above passed); only agency ${agencyReference} is out of reach:`,
        `- is "${agencyReference}" the agency's reference exactly as in the eCourtDate Console?`,
        '- may this API client act for that agency (a multi-agency client, Console > APIs)? Is the agency active?',
        `Jobs with agency_reference ${agencyReference} are dead-lettered ${status === 404 ? 'not_found' : 'forbidden'} until then.`,
      ].join('\n'),
    };
  }
  const other = defaultAgencyStep(url, answer, excerpt);
  return { ...other, step: 'agency', summary };
}

/** The answer for the API client's own (default) agency, with eCourtDate's advice for each failure. */
function defaultAgencyStep(url: URL, answer: HttpAnswer, excerpt: string): CheckStep {
  const status = answer.status;
  if (status >= 200 && status < 300) {
    return {
      step: 'settings',
      ok: true,
      summary: `GET ${url.pathname} answered HTTP ${status}${agencyOf(answer.body)}`,
    };
  }
  const summary = `GET ${url.pathname}${url.search} answered HTTP ${status}${excerpt ? `: ${excerpt}` : ''}`;
  switch (status) {
    case 401:
      return {
        step: 'settings',
        ok: false,
        summary,
        advice:
          'The token was issued but not accepted: the API client may have been revoked in Console > APIs, or ' +
          'the token belongs to another environment (staging vs production).',
      };
    case 403:
      return {
        step: 'settings',
        ok: false,
        summary,
        advice: [
          'Authenticated but not authorised (403):',
          '- the agency of this API client must be active;',
          "- the credentials must be an API client's (client_id / client_secret), not a user token;",
          '- the API client needs permission for this endpoint.',
        ].join('\n'),
      };
    case 404:
      return {
        step: 'settings',
        ok: false,
        summary,
        advice: /agency not found/i.test(answer.body)
          ? 'Agency Not Found: set a Default Agency for this API client in the Console (and, for a multi-agency ' +
            'client, check the agency_reference).'
          : 'Endpoint not found: check the base URL, the /v1/ prefix and the environment (staging vs production).',
      };
    default:
      return {
        step: 'settings',
        ok: false,
        summary,
        advice:
          status === 429
            ? 'Rate limited: wait a minute.'
            : 'Unexpected answer; see Console > Logs for the request.',
      };
  }
}

/** ", agency <name> (<reference>)" when the settings answer names it; eCourtDate documents no shape. */
function agencyOf(body: string): string {
  const parsed = parseObject(body);
  const agency = parsed?.agency;
  const record = typeof agency === 'object' && agency !== null ? (agency as Record<string, unknown>) : parsed;
  const name = typeof record?.name === 'string' ? record.name : undefined;
  const reference = typeof record?.reference === 'string' ? record.reference : undefined;
  if (!name && !reference) return '';
  return `: agency ${name ?? ''}${name && reference ? ` (${reference})` : (reference ?? '')}`;
}

function parseObject(body: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The first characters of an identifier, enough to recognise it. */
function abbreviate(value: string): string {
  return value.length <= 6 ? `${value.slice(0, 2)}…` : `${value.slice(0, 4)}…${value.slice(-2)}`;
}
