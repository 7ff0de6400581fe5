import { randomUUID } from 'node:crypto';
import { accessKeyIdOf, type CheckedCall, type IamGate } from '#local/iam/gate.ts';
import { listenOnLoopback, readBody, writeJson } from './loopback-server.ts';

export interface SecretsManagerStub {
  /** Point the SDK here: `endpoint` option or `AWS_ENDPOINT_URL_SECRETS_MANAGER`. */
  readonly url: string;
  /** Creates the secret or stores a new version of it. */
  setSecret(id: string, value: string): void;
  /** Every call, in order: the full `X-Amz-Target` and the `SecretId` as sent. Never the secret value. */
  readonly calls: ReadonlyArray<{ target: string; secretId: string }>;
  /**
   * Makes the next `count` GetSecretValue calls fail with `errorType` (e.g. 'InternalServiceError',
   * 'DecryptionFailure'); with `secretId` (a name), only the calls for that secret (by name or ARN), so that another
   * function reading its own secret from the same stand-in is not hit. Status defaults to 500 for
   * InternalServiceError, else 400.
   */
  failNext(
    count: number,
    errorType: string,
    options?: { status?: number; message?: string; secretId?: string },
  ): void;
  /** Requests of a function role that the stack's IAM denied (the `iam` option), oldest first. */
  denials(): readonly CheckedCall[];
  close(): Promise<void>;
}

export interface SecretsManagerStubOptions {
  /** name -> SecretString present at start. */
  secrets?: Record<string, string>;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (ephemeral) */
  port?: number;
  /**
   * The stack's IAM (local/iam/): each request of a function role is authorized first, on the secret's ARN, and
   * a denied one answered as Secrets Manager answers it (`AccessDeniedException`, HTTP 400). @default every
   * request is allowed
   */
  iam?: IamGate | undefined;
}

interface StoredSecret {
  name: string;
  arn: string;
  value: string;
  versionId: string;
  /** Epoch seconds, the wire format of the AWS JSON protocol's timestamps. */
  createdDate: number;
}

interface AwsError {
  fault: true;
  status: number;
  type: string;
  message: string;
}

const TARGET_PREFIX = 'secretsmanager.';
const CONTENT_TYPE = 'application/x-amz-json-1.1';

/** The ARN the stub reports for `name`; AWS appends a random 6-character suffix, the stub a fixed one. */
export function stubSecretArn(name: string): string {
  return `arn:aws:secretsmanager:us-east-1:000000000000:secret:${name}-AbCdEf`;
}

/**
 * Starts a loopback endpoint speaking enough of Secrets Manager's AWS JSON 1.1 protocol for the real
 * `@aws-sdk/client-secrets-manager` to run `GetSecretValue` and `PutSecretValue` against it. Signatures are
 * not checked. Errors carry the code both in `__type` (what the SDK's JSON-RPC protocol reads first) and in
 * `x-amzn-ErrorType`, so the SDK throws the modelled exception class, e.g. `ResourceNotFoundException`.
 *
 * @example
 * const stub = await startSecretsManagerStub({ secrets: { 'relay/ecd': '{"client_id":"a","client_secret":"b"}' } });
 * const client = new SecretsManagerClient({ endpoint: stub.url, region: 'us-east-1', credentials });
 */
export async function startSecretsManagerStub(
  options: SecretsManagerStubOptions = {},
): Promise<SecretsManagerStub> {
  const secrets = new Map<string, StoredSecret>();
  const calls: { target: string; secretId: string }[] = [];
  const failures: (AwsError & { secretId?: string | undefined })[] = [];
  const denied: CheckedCall[] = [];

  const setSecret = (name: string, value: string): StoredSecret => {
    const secret = {
      name,
      arn: stubSecretArn(name),
      value,
      versionId: randomUUID(),
      createdDate: Date.now() / 1000,
    };
    secrets.set(name, secret);
    return secret;
  };
  for (const [name, value] of Object.entries(options.secrets ?? {})) setSecret(name, value);

  const find = (secretId: string): StoredSecret | AwsError => {
    const found = secrets.get(secretId) ?? [...secrets.values()].find((secret) => secret.arn === secretId);
    return found ?? notFound();
  };

  const getSecretValue = (input: Record<string, unknown>, secretId: string): object | AwsError => {
    const secret = find(secretId);
    const name = 'fault' in secret ? secretId : secret.name;
    const at = failures.findIndex((f) => f.secretId === undefined || f.secretId === name);
    const [failure] = at === -1 ? [] : failures.splice(at, 1);
    if (failure) return awsError(failure.status, failure.type, failure.message);
    if ('fault' in secret) return secret;
    // Only the current version is kept; asking for any other one is what AWS answers for a missing version.
    const stage = input.VersionStage;
    if (
      (input.VersionId !== undefined && input.VersionId !== secret.versionId) ||
      (stage ?? 'AWSCURRENT') !== 'AWSCURRENT'
    ) {
      return notFound();
    }
    return {
      ARN: secret.arn,
      Name: secret.name,
      SecretString: secret.value,
      VersionId: secret.versionId,
      VersionStages: ['AWSCURRENT'],
      CreatedDate: secret.createdDate,
    };
  };

  const putSecretValue = (input: Record<string, unknown>, secretId: string): object | AwsError => {
    if (typeof input.SecretString !== 'string') {
      return awsError(400, 'InvalidParameterException', 'SecretString is required by this stub.');
    }
    const existing = find(secretId);
    // PutSecretValue never creates a secret on AWS, so neither does the stub (seed with options or setSecret).
    if ('fault' in existing) return existing;
    const secret = setSecret(existing.name, input.SecretString);
    return { ARN: secret.arn, Name: secret.name, VersionId: secret.versionId, VersionStages: ['AWSCURRENT'] };
  };

  const operations: Record<string, (input: Record<string, unknown>, secretId: string) => object | AwsError> =
    {
      GetSecretValue: getSecretValue,
      PutSecretValue: putSecretValue,
    };

  const server = await listenOnLoopback(
    async (req, res) => {
      const text = (await readBody(req)) ?? '';
      const target = String(req.headers['x-amz-target'] ?? '');
      const headers = { 'x-amzn-requestid': randomUUID() };
      const fail = (error: AwsError) => {
        writeJson(
          res,
          error.status,
          { __type: error.type, message: error.message },
          { ...headers, 'x-amzn-errortype': error.type },
          CONTENT_TYPE,
        );
      };
      let input: unknown;
      try {
        input = text === '' ? {} : JSON.parse(text);
      } catch {
        input = undefined;
      }
      const secretId = isRecord(input) && typeof input.SecretId === 'string' ? input.SecretId : '';
      calls.push({ target, secretId });

      const operation = target.startsWith(TARGET_PREFIX)
        ? operations[target.slice(TARGET_PREFIX.length)]
        : undefined;
      if (req.method !== 'POST' || operation === undefined) {
        fail(awsError(400, 'UnknownOperationException', `Unknown operation ${target}`));
        return;
      }
      if (!isRecord(input)) {
        fail(awsError(400, 'SerializationException', 'The request body is not valid JSON.'));
        return;
      }
      if (secretId === '') {
        fail(awsError(400, 'ValidationException', 'SecretId is required.'));
        return;
      }
      if (options.iam) {
        const known = find(secretId);
        const decision = await options.iam.authorize({
          accessKeyId: accessKeyIdOf(req.headers),
          action: `secretsmanager:${target.slice(TARGET_PREFIX.length)}`,
          // A secret the stub does not hold is authorized on the ARN its name would have, as AWS checks first.
          resource:
            'fault' in known ? (secretId.startsWith('arn:') ? secretId : stubSecretArn(secretId)) : known.arn,
        });
        if (!decision.allowed) {
          denied.push(decision.call);
          fail(awsError(400, 'AccessDeniedException', decision.message));
          return;
        }
      }
      const result = operation(input, secretId);
      if ('fault' in result) fail(result);
      else writeJson(res, 200, result, headers, CONTENT_TYPE);
    },
    { host: options.host, port: options.port },
  );

  return {
    url: server.url,
    setSecret: (id, value) => {
      setSecret(id, value);
    },
    calls,
    failNext(count, errorType, failure = {}) {
      if (!Number.isInteger(count) || count < 1)
        throw new RangeError(`failNext count must be >= 1, got ${count}`);
      const status = failure.status ?? (errorType === 'InternalServiceError' ? 500 : 400);
      const message = failure.message ?? `Injected ${errorType}.`;
      for (let i = 0; i < count; i += 1) {
        failures.push({ ...awsError(status, errorType, message), secretId: failure.secretId });
      }
    },
    denials: () => [...denied],
    close: () => server.close(),
  };
}

function notFound(): AwsError {
  return awsError(400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
}

function awsError(status: number, type: string, message: string): AwsError {
  return { fault: true, status, type, message };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
