/**
 * Factories for the unit tests of the eCourtDate client: a fake clock, a mocked Secrets Manager, a scripted
 * fake of the eCourtDate API behind an injected `fetch`, and a pacer that never sleeps. Nothing here opens a
 * socket or waits on a real timer.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { parseBaseUrl } from '#shared/config.ts';
import { EcourtdateClient } from '#shared/ecourtdate/client.ts';
import { CredentialsSource } from '#shared/ecourtdate/credentials.ts';
import type { FetchLike } from '#shared/ecourtdate/http.ts';
import { Pacer, type RequestPacer } from '#shared/ecourtdate/pacer.ts';
import { TokenCache, type TokenResult } from '#shared/ecourtdate/token-cache.ts';
import { T0 } from '#test/helpers/factories.ts';

export const SECRET_ID = 'ecourtdate-relay/test';
export const CLIENT_ID = 'relay-client-county-a';
export const CLIENT_SECRET = 'cs-live-Zm9vYmFyYmF6cXV4';
export const ROTATED_CLIENT_SECRET = 'cs-live-cm90YXRlZC1zZWNyZXQ';
/** A base URL with a path, as an agency's regional endpoint may have. */
export const BASE_URL = 'https://api.ecourtdate.test/county-a';

/** A clock that only moves when told to. */
export interface FakeClock {
  readonly now: () => number;
  advance(ms: number): void;
}

export function fakeClock(start: number = T0): FakeClock {
  let current = start;
  return {
    now: () => current,
    advance: (ms) => {
      current += ms;
    },
  };
}

/** The secret's JSON as Secrets Manager holds it; override or drop (`undefined`) any field. */
export function secretString(fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, ...fields });
}

/**
 * A Secrets Manager client whose `GetSecretValue` answers the given secret strings in turn (the last one
 * repeats). Script other answers, such as errors, on the returned `mock`.
 */
export function secretsManager(values: readonly (string | undefined)[] = [secretString()]): {
  client: SecretsManagerClient;
  mock: AwsClientStub<SecretsManagerClient>;
} {
  const client = new SecretsManagerClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const mock = mockClient(client);
  const command = mock.on(GetSecretValueCommand);
  values.forEach((value, index) => {
    const output = { SecretString: value, Name: SECRET_ID, $metadata: {} };
    if (index === values.length - 1) command.resolves(output);
    else command.resolvesOnce(output);
  });
  return { client, mock };
}

/** How many `GetSecretValue` calls reached the mocked client. */
export function secretReads(mock: AwsClientStub<SecretsManagerClient>): number {
  return mock.commandCalls(GetSecretValueCommand).length;
}

/** A response as `fetch` would resolve it, with a JSON body. */
export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** A token endpoint answer; `expires_in: undefined` leaves the field out. */
export function tokenResponse(
  accessToken: string,
  fields: { expires_in?: number | undefined } = { expires_in: 3600 },
  status = 200,
): Response {
  return jsonResponse(status, { access_token: accessToken, token_type: 'Bearer', ...fields });
}

/** One request the fake API received. */
export interface RecordedRequest {
  readonly url: URL;
  readonly method: string;
  readonly headers: Headers;
  readonly body: string;
}

/** How the fake API answers one request: a response, or a function of the request (may hang or throw). */
export type FakeAnswer =
  | Response
  | ((request: RecordedRequest, signal: AbortSignal | undefined) => Response | Promise<Response>);

/** An answer that never comes: it rejects only when the caller's timeout aborts the request. */
export const hangUntilAborted: FakeAnswer = (_request, signal) =>
  new Promise<Response>((_resolve, reject) => {
    signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
  });

export interface FakeEcourtdate {
  readonly fetch: FetchLike;
  /** Every request, in order. */
  readonly requests: RecordedRequest[];
  readonly tokenRequests: () => RecordedRequest[];
  readonly sendRequests: () => RecordedRequest[];
}

const TOKEN_PATH = '/oauth/token';
const ONEOFFS_PATH = '/v1/messages/oneoffs';

/**
 * A scripted eCourtDate API behind an injected `fetch`. Each endpoint answers its script in turn, the last
 * entry repeating. With no script, the token endpoint issues `token-1`, `token-2`, ... (an hour each) and
 * the messages endpoint answers 201 with a uuid. Requests are routed by the path they end with.
 */
export function fakeEcourtdate(script: { token?: FakeAnswer[]; send?: FakeAnswer[] } = {}): FakeEcourtdate {
  const requests: RecordedRequest[] = [];
  let issued = 0;
  const defaultToken: FakeAnswer = () => {
    issued += 1;
    return tokenResponse(`token-${issued}`);
  };
  const defaultSend: FakeAnswer = () => jsonResponse(201, { uuid: '3f0c9a52-7b1e-4d8a-9c6f-2e5b8d1a4c7e' });
  const queues = { token: [...(script.token ?? [defaultToken])], send: [...(script.send ?? [defaultSend])] };
  const next = (queue: FakeAnswer[]): FakeAnswer => {
    const answer = queue.length > 1 ? queue.shift() : queue[0];
    if (!answer) throw new Error('fake eCourtDate: empty script');
    return answer;
  };
  const fetch: FetchLike = async (input, init) => {
    const request: RecordedRequest = {
      url: new URL(String(input)),
      method: init?.method ?? 'GET',
      headers: new Headers(init?.headers),
      body: typeof init?.body === 'string' ? init.body : '',
    };
    requests.push(request);
    const href = request.url.href.split('?')[0] ?? '';
    const route = href.endsWith(TOKEN_PATH) ? 'token' : href.endsWith(ONEOFFS_PATH) ? 'send' : undefined;
    if (!route) throw new Error(`fake eCourtDate: no route for ${request.method} ${request.url.href}`);
    const answer = next(queues[route]);
    // A Response body can be read once: clone, so that a repeating scripted answer serves every request.
    return typeof answer === 'function' ? answer(request, init?.signal ?? undefined) : answer.clone();
  };
  const byPath = (path: string) => () => requests.filter((r) => r.url.href.split('?')[0]?.endsWith(path));
  return { fetch, requests, tokenRequests: byPath(TOKEN_PATH), sendRequests: byPath(ONEOFFS_PATH) };
}

/** The token of a `TokenCache.get` result, or throws naming the failure it resolved to instead. */
export function tokenOf(result: TokenResult): string {
  if (!result.ok) throw new Error(`expected a token, got ${JSON.stringify(result)}`);
  return result.token;
}

/** A pacer with room for every request and a sleep that returns at once, so tests never wait. */
export function instantPacer(now: () => number): Pacer {
  return new Pacer(60_000, { now, sleep: async () => {} });
}

export interface ClientHarness {
  readonly clock: FakeClock;
  readonly api: FakeEcourtdate;
  readonly credentials: CredentialsSource;
  readonly secrets: AwsClientStub<SecretsManagerClient>;
  readonly pacer: RequestPacer;
  readonly tokens: TokenCache;
  readonly client: EcourtdateClient;
  readonly answers: (number | 'timeout' | 'connection')[];
}

/**
 * The eCourtDate client wired as the sender wires it (credentials -> token cache -> client, one pacer),
 * against the fake API, a mocked Secrets Manager and a fake clock.
 */
export function clientHarness(
  options: {
    token?: FakeAnswer[];
    send?: FakeAnswer[];
    secrets?: (string | undefined)[];
    baseUrl?: string;
    renewBeforeMs?: number;
    timeoutMs?: number;
    secretTtlMs?: number;
    /** The pacer's share, requests per minute; default: room for every request. */
    requestsPerMinute?: number;
    /** A pacer of the test's own instead (`requestsPerMinute` is then ignored). */
    pacer?: RequestPacer;
    /** The clock; default: a fake clock at T0. */
    clock?: FakeClock;
  } = {},
): ClientHarness {
  const clock = options.clock ?? fakeClock();
  const api = fakeEcourtdate({ token: options.token, send: options.send });
  const { client: secretsClient, mock: secrets } = secretsManager(options.secrets);
  const credentials = new CredentialsSource({
    client: secretsClient,
    secretId: SECRET_ID,
    ttlMs: options.secretTtlMs ?? 300_000,
    now: clock.now,
  });
  const pacer =
    options.pacer ??
    (options.requestsPerMinute === undefined
      ? instantPacer(clock.now)
      : new Pacer(options.requestsPerMinute, { now: clock.now, sleep: async () => {} }));
  // Parsed as the sender's configuration parses ECOURTDATE_BASE_URL.
  const baseUrl = parseBaseUrl(options.baseUrl ?? BASE_URL, 'ECOURTDATE_BASE_URL');
  const timeoutMs = options.timeoutMs ?? 1_000;
  const answers: (number | 'timeout' | 'connection')[] = [];
  const tokens = new TokenCache({
    baseUrl,
    credentials,
    pacer,
    fetch: api.fetch,
    timeoutMs,
    renewBeforeMs: options.renewBeforeMs ?? 300_000,
    now: clock.now,
    onAnswer: (status) => answers.push(status),
  });
  const client = new EcourtdateClient({
    baseUrl,
    tokens,
    pacer,
    fetch: api.fetch,
    timeoutMs,
    now: clock.now,
  });
  return { clock, api, credentials, secrets, pacer, tokens, client, answers };
}
