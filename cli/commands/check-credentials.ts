import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { awsErrorText, need, type Target } from '#cli/target.ts';
import { parseBaseUrl } from '#shared/config.ts';
import { type ClientCredentials, parseCredentials } from '#shared/ecourtdate/credentials.ts';
import { EcdTransportError } from '#shared/ecourtdate/errors.ts';
import { apiUrl, type FetchLike, type HttpAnswer, httpRequest } from '#shared/ecourtdate/http.ts';
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
 * `check-credentials`: reads the secret, gets a token from `/oauth/token` and calls `GET /v1/settings`, as
 * eCourtDate's authentication guide suggests for a token check. Stops at the first failing step and says
 * what it means. Never prints the secret, the token or the client id in full.
 */
export async function checkCredentials(target: Target, options: CheckOptions = {}): Promise<CheckStep[]> {
  const steps: CheckStep[] = [];
  const secretId = need(target.secretId, 'the secret', '--secret-id');
  const rawUrl = need(target.ecourtdateUrl, 'the eCourtDate API URL', '--ecourtdate-url');
  let baseUrl: URL;
  try {
    baseUrl = parseBaseUrl(rawUrl, '--ecourtdate-url');
  } catch (error) {
    throw error instanceof ConfigError ? error : new ConfigError('--ecourtdate-url', String(error));
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;

  // 1. The secret.
  let credentials: ClientCredentials;
  try {
    const out = await target.secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
    credentials = parseCredentials(out.SecretString, secretId);
  } catch (error) {
    steps.push(secretFailure(secretId, error));
    return steps;
  }
  if (credentials.clientId === PLACEHOLDER_CLIENT_ID) {
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
    summary: `read secret ${secretId}: client_id ${abbreviate(credentials.clientId)}`,
  });

  // 2. A token.
  const tokenUrl = apiUrl(baseUrl, '/oauth/token');
  let token: string | undefined;
  const tokenAnswer = await call(fetchImpl, tokenUrl, timeoutMs, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({
      client_id: credentials.clientId,
      client_secret: credentials.clientSecret,
      grant_type: 'client_credentials',
    }),
  });
  const sensitive = [credentials.clientId, credentials.clientSecret];
  if ('error' in tokenAnswer) {
    steps.push(unreachable('token', tokenUrl, tokenAnswer.error));
    return steps;
  }
  if (tokenAnswer.status >= 200 && tokenAnswer.status < 300) token = accessToken(tokenAnswer.body);
  if (token === undefined) {
    steps.push(tokenFailure(tokenUrl, tokenAnswer, redactText(tokenAnswer.body, sensitive)));
    return steps;
  }
  const expiresIn = expiresInSeconds(tokenAnswer.body);
  steps.push({
    step: 'token',
    ok: true,
    summary: `got a token from ${tokenUrl.href} (HTTP ${tokenAnswer.status}${expiresIn ? `, expires in ${expiresIn} s` : ''})`,
  });

  // 3. GET /v1/settings with it.
  const settingsUrl = apiUrl(baseUrl, '/v1/settings');
  if (options.agencyReference) settingsUrl.searchParams.set('agency_reference', options.agencyReference);
  const settings = await call(fetchImpl, settingsUrl, timeoutMs, {
    method: 'GET',
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
  });
  if ('error' in settings) {
    steps.push(unreachable('settings', settingsUrl, settings.error));
    return steps;
  }
  const excerpt = redactText(settings.body, [...sensitive, token]);
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

type CallResult = HttpAnswer | { readonly error: EcdTransportError };

async function call(
  fetchImpl: FetchLike,
  url: URL,
  timeoutMs: number,
  init: RequestInit,
): Promise<CallResult> {
  try {
    return await httpRequest(fetchImpl, url, init, timeoutMs);
  } catch (error) {
    if (error instanceof EcdTransportError) return { error };
    throw error;
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

function unreachable(step: 'token' | 'settings', url: URL, error: EcdTransportError): CheckStep {
  return {
    step,
    ok: false,
    summary: `no answer from ${url.origin} (${error.kind === 'timeout' ? 'timed out' : 'connection failed'})`,
    advice:
      'Check the base URL, and that this machine reaches *.api.ecourtdate.com on TCP 443 (proxy, firewall). ' +
      'If the API client has an IP allowlist in the Console, this address must be on it.',
  };
}

function tokenFailure(url: URL, answer: HttpAnswer, excerpt: string): CheckStep {
  const status = answer.status;
  const body = excerpt ? ` ${excerpt}` : '';
  if (status >= 200 && status < 300) {
    return {
      step: 'token',
      ok: false,
      summary: `HTTP ${status} from ${url.href} without an access_token:${body}`,
    };
  }
  const summary = `${url.href} answered HTTP ${status}:${body}`;
  if (status === 401 || status === 400) {
    return {
      step: 'token',
      ok: false,
      summary,
      advice: [
        'eCourtDate rejected the client credentials (401: missing, invalid or revoked API client).',
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

function accessToken(body: string): string | undefined {
  const parsed = parseObject(body);
  const token = parsed?.access_token;
  return typeof token === 'string' && token !== '' ? token : undefined;
}

function expiresInSeconds(body: string): number | undefined {
  const value = Number(parseObject(body)?.expires_in);
  return Number.isFinite(value) && value > 0 ? value : undefined;
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
