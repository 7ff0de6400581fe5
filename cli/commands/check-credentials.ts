import { awsErrorText, need, type Target } from '#cli/target.ts';
import { OUTPUT } from '#infra/stack-contract.ts';
import { parseBaseUrl } from '#shared/config.ts';
import { type ClientCredentials, CredentialsSource } from '#shared/ecourtdate/credentials.ts';
import { EcdTokenError, EcdTransportError } from '#shared/ecourtdate/errors.ts';
import { apiUrl, type FetchLike, type HttpAnswer, httpRequest } from '#shared/ecourtdate/http.ts';
import { Pacer } from '#shared/ecourtdate/pacer.ts';
import { TokenCache } from '#shared/ecourtdate/token-cache.ts';
import { ConfigError, CredentialsError } from '#shared/errors.ts';
import { redactText } from '#shared/redact.ts';

/** One step of the check, as reported to the operator. */
export interface CheckStep {
  readonly step: 'secret' | 'token' | 'settings';
  readonly ok: boolean;
  /** What happened, in a sentence. */
  readonly summary: string;
  /** What to do about it, when it failed (from eCourtDate's troubleshooting advice). */
  readonly advice?: string;
}

export interface CheckOptions {
  readonly agencyReference?: string | undefined;
  readonly fetch?: FetchLike;
  readonly timeoutMs?: number;
}

/** The value the stack puts in a secret it creates, until an operator stores the real credentials. */
const PLACEHOLDER_CLIENT_ID = 'REPLACE_WITH_ECOURTDATE_CLIENT_ID';
/**
 * The check's own pace: it makes three or four requests, which count against the API client's 1,000 a minute
 * like the running relay's, so it spaces them a little instead of bursting.
 */
const CHECK_REQUESTS_PER_MINUTE = 300;

/**
 * `check-credentials`: reads the secret, gets a token from `/oauth/token` and calls `GET /v1/settings`, as
 * eCourtDate's authentication guide suggests for a token check, with the sender's own secret reader, token
 * cache (which re-reads the secret once when the token request is refused, as the sender does) and pacing.
 * Stops at the first failing step and says what it means. Never prints the secret, the token or the client id
 * in full.
 */
export async function checkCredentials(target: Target, options: CheckOptions = {}): Promise<CheckStep[]> {
  const steps: CheckStep[] = [];
  const secretId = need(target.secretId, 'the secret', '--secret-id');
  const baseUrl = ecourtdateBaseUrl(target);
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  // One check is one short-lived "container": nothing expires while it runs.
  const credentials = new CredentialsSource({ client: target.secrets, secretId, ttlMs: 60 * 60_000 });
  const pacer = new Pacer(CHECK_REQUESTS_PER_MINUTE);

  // 1. The secret.
  let read: ClientCredentials;
  try {
    read = await credentials.get();
  } catch (error) {
    steps.push(secretFailure(secretId, error));
    return steps;
  }
  if (read.clientId === PLACEHOLDER_CLIENT_ID) {
    steps.push({
      step: 'secret',
      ok: false,
      summary: `secret ${secretId} still holds the placeholder the stack created`,
      advice:
        "Store the API client's credentials: aws secretsmanager put-secret-value --secret-id " +
        `${secretId} --secret-string '{"client_id":"...","client_secret":"..."}' (README, Deploy).`,
    });
    return steps;
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
  let token: string;
  try {
    token = await tokens.get();
  } catch (error) {
    // The token cache re-reads the secret after a refusal; that read can fail too.
    if (error instanceof CredentialsError) steps.push(secretFailure(secretId, error));
    else if (error instanceof EcdTokenError) steps.push(tokenFailure(tokenUrl, error));
    else throw error;
    return steps;
  }
  steps.push({
    step: 'token',
    ok: true,
    summary: `got a token from ${tokenUrl.href}${tokenStatus === undefined ? '' : ` (HTTP ${tokenStatus})`}`,
  });

  // 3. GET /v1/settings with it.
  const settingsUrl = apiUrl(baseUrl, '/v1/settings');
  if (options.agencyReference) settingsUrl.searchParams.set('agency_reference', options.agencyReference);
  await pacer.acquire();
  let settings: HttpAnswer;
  try {
    settings = await httpRequest(
      fetchImpl,
      settingsUrl,
      { method: 'GET', headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } },
      timeoutMs,
    );
  } catch (error) {
    if (!(error instanceof EcdTransportError)) throw error;
    steps.push(unreachable('settings', settingsUrl, error.kind));
    return steps;
  }
  // The credentials in use now: the token cache may have re-read a rotated secret.
  const current = await credentials.get();
  const excerpt = redactText(settings.body, [current.clientId, current.clientSecret, token]);
  steps.push(settingsStep(settingsUrl, settings, excerpt));
  return steps;
}

/** The steps as lines for the terminal, with a closing verdict. */
export function renderCheck(steps: readonly CheckStep[], target: Target): string {
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
  const passed = steps.length === 3 && steps.every((step) => step.ok);
  lines.push(
    passed
      ? 'The relay can authenticate and reach its agency.'
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

function unreachable(step: 'token' | 'settings', url: URL, kind: 'timeout' | 'connection'): CheckStep {
  return {
    step,
    ok: false,
    summary: `no answer from ${url.origin} (${kind === 'timeout' ? 'timed out' : 'connection failed'})`,
    advice:
      'Check the base URL, and that this machine reaches *.api.ecourtdate.com on TCP 443 (proxy, firewall). ' +
      'If the API client has an IP allowlist in the Console, this address must be on it.',
  };
}

/** The token cache's refusal, with eCourtDate's advice; its excerpt is already redacted of the credentials. */
function tokenFailure(url: URL, error: EcdTokenError): CheckStep {
  const { status } = error;
  if (typeof status !== 'number') return unreachable('token', url, status);
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

function settingsStep(url: URL, answer: HttpAnswer, excerpt: string): CheckStep {
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
