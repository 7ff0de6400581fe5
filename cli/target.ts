import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { CliError } from '#cli/errors.ts';
import { DEFAULT_EVENT_SOURCE, EVENT_DETAIL_TYPE, STAGES, type Stage, stackNameOf } from '#infra/config.ts';
import { OUTPUT } from '#infra/stack-contract.ts';
import { ENV, isLoopbackHost } from '#shared/config.ts';

/** Written by `npm start -- --keep-running` (see local/pipeline/run.ts, `LocalEndpoints`). */
export const DEFAULT_LOCAL_FILE = '.relay-local/endpoints.json';

/** What a command works on, and the AWS clients to reach it. */
export interface Target {
  /** For messages: "stage staging (stack EcourtdateRelay-staging)", "the local pipeline", ... */
  readonly description: string;
  readonly sendQueueUrl?: string | undefined;
  readonly sendQueueArn?: string | undefined;
  readonly deadLetterQueueUrl?: string | undefined;
  readonly deadLetterQueueArn?: string | undefined;
  readonly secretId?: string | undefined;
  readonly ecourtdateUrl?: string | undefined;
  /** Where the eCourtDate URL came from, for check-credentials' report. */
  readonly ecourtdateUrlSource?: string | undefined;
  readonly eventBus?:
    | { readonly name: string; readonly source: string; readonly detailType: string }
    | undefined;
  /** The job ledger's DynamoDB table. */
  readonly ledgerTableName?: string | undefined;
  /** The deployed stack, when the target is a stage. */
  readonly stackName?: string | undefined;
  readonly sqs: SQSClient;
  readonly secrets: SecretsManagerClient;
  readonly events: EventBridgeClient;
  readonly dynamodb: DynamoDBClient;
}

export interface TargetOptions {
  readonly stage?: string | undefined;
  readonly region?: string | undefined;
  readonly local?: boolean | undefined;
  readonly localFile?: string | undefined;
  readonly sendQueueUrl?: string | undefined;
  readonly dlqUrl?: string | undefined;
  readonly secretId?: string | undefined;
  readonly endpointUrl?: string | undefined;
  readonly secretsEndpointUrl?: string | undefined;
  readonly ecourtdateUrl?: string | undefined;
  readonly eventBus?: string | undefined;
  readonly eventSource?: string | undefined;
  readonly ledgerTable?: string | undefined;
  readonly dynamodbEndpoint?: string | undefined;
}

/** Credentials for emulators, which check none; never used towards AWS. */
const EMULATOR_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/**
 * Resolves the target of a command: a deployed stage (`--stage`: the stack's outputs, read with
 * CloudFormation DescribeStacks under the default AWS credentials), the local pipeline (`--local`: the
 * endpoints file `npm start -- --keep-running` writes), or explicit names (`--send-queue-url`, `--dlq-url`,
 * `--secret-id`, `--ledger-table`, with `--endpoint-url` and `--dynamodb-endpoint` for emulators). Explicit
 * options override what a stage or the local file says. `env` is read for `AWS_ENDPOINT_URL_DYNAMODB` only,
 * the weakest source of the DynamoDB endpoint.
 */
export async function resolveTarget(
  options: TargetOptions,
  cwd: string,
  env: Readonly<Record<string, string | undefined>> = {},
): Promise<Target> {
  if (options.stage !== undefined && options.local) {
    throw new CliError('choose one of --stage and --local');
  }
  const envDynamodbEndpoint = env[ENV.dynamodbEndpoint] || undefined;
  if (options.local) return localTarget(options, cwd, envDynamodbEndpoint);
  const withEnv = { ...options, dynamodbEndpoint: options.dynamodbEndpoint ?? envDynamodbEndpoint };
  if (options.stage !== undefined) return stageTarget(withEnv, options.stage);
  return explicitTarget(withEnv, 'the resources given on the command line', {});
}

async function stageTarget(options: TargetOptions, stage: string): Promise<Target> {
  if (!(STAGES as readonly string[]).includes(stage)) {
    throw new CliError(`--stage: expected one of ${STAGES.join(', ')}, got "${stage}"`);
  }
  const stackName = stackNameOf(stage as Stage);
  const region = options.region;
  const cloudformation = new CloudFormationClient(region ? { region } : {});
  let outputs: Record<string, string>;
  try {
    const out = await cloudformation.send(new DescribeStacksCommand({ StackName: stackName }));
    const stack = out.Stacks?.[0];
    if (stack === undefined) throw new CliError(`stack ${stackName} not found`);
    outputs = Object.fromEntries(
      (stack.Outputs ?? []).flatMap((o) =>
        o.OutputKey && o.OutputValue ? [[o.OutputKey, o.OutputValue]] : [],
      ),
    );
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(
      `cannot read the outputs of stack ${stackName}${region ? ` in ${region}` : ''}: ${awsErrorText(error)}. ` +
        'Is the stage deployed in this account and region (--region, AWS_REGION), and are AWS credentials set?',
      { cause: error },
    );
  } finally {
    cloudformation.destroy();
  }
  const source = outputs[OUTPUT.eventSource]?.split(',')[0]?.trim();
  const ecourtdateUrl = outputs[OUTPUT.ecourtdateBaseUrl];
  return explicitTarget(options, `stage ${stage} (stack ${stackName})`, {
    stackName,
    sendQueueUrl: outputs[OUTPUT.sendQueueUrl],
    sendQueueArn: outputs[OUTPUT.sendQueueArn],
    deadLetterQueueUrl: outputs[OUTPUT.deadLetterQueueUrl],
    deadLetterQueueArn: outputs[OUTPUT.deadLetterQueueArn],
    secretId: outputs[OUTPUT.secretName],
    ledgerTableName: outputs[OUTPUT.ledgerTableName],
    ecourtdateUrl,
    ecourtdateUrlSource:
      ecourtdateUrl === undefined
        ? undefined
        : `the stack output ${OUTPUT.ecourtdateBaseUrl}; --ecourtdate-url overrides`,
    eventBus:
      outputs[OUTPUT.eventBusName] === undefined
        ? undefined
        : {
            name: outputs[OUTPUT.eventBusName] ?? 'default',
            source: source || DEFAULT_EVENT_SOURCE,
            detailType: outputs[OUTPUT.eventDetailType] ?? EVENT_DETAIL_TYPE,
          },
  });
}

interface LocalEndpointsFile {
  readonly region?: string;
  readonly sqsEndpoint?: string;
  readonly sendQueueUrl?: string;
  readonly sendQueueArn?: string;
  readonly deadLetterQueueUrl?: string;
  readonly deadLetterQueueArn?: string;
  readonly secretsManagerEndpoint?: string;
  readonly secretId?: string;
  readonly ecourtdateUrl?: string;
  readonly dynamodbEndpoint?: string;
  readonly ledgerTableName?: string;
}

async function localTarget(
  options: TargetOptions,
  cwd: string,
  envDynamodbEndpoint: string | undefined,
): Promise<Target> {
  const path = resolve(cwd, options.localFile ?? DEFAULT_LOCAL_FILE);
  let endpoints: LocalEndpointsFile;
  try {
    endpoints = JSON.parse(await readFile(path, 'utf8')) as LocalEndpointsFile;
  } catch (error) {
    throw new CliError(
      `cannot read ${path}: start the local pipeline with "npm start -- --keep-running" first ` +
        `(${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      { cause: error },
    );
  }
  return explicitTarget(
    {
      ...options,
      region: options.region ?? endpoints.region,
      endpointUrl: options.endpointUrl ?? endpoints.sqsEndpoint,
      secretsEndpointUrl: options.secretsEndpointUrl ?? endpoints.secretsManagerEndpoint,
      dynamodbEndpoint: options.dynamodbEndpoint ?? endpoints.dynamodbEndpoint ?? envDynamodbEndpoint,
    },
    'the local pipeline',
    {
      sendQueueUrl: endpoints.sendQueueUrl,
      sendQueueArn: endpoints.sendQueueArn,
      deadLetterQueueUrl: endpoints.deadLetterQueueUrl,
      deadLetterQueueArn: endpoints.deadLetterQueueArn,
      secretId: endpoints.secretId,
      ecourtdateUrl: endpoints.ecourtdateUrl,
      ecourtdateUrlSource: 'the local pipeline',
      ledgerTableName: endpoints.ledgerTableName,
    },
  );
}

type Resolved = Omit<Target, 'description' | 'sqs' | 'secrets' | 'events' | 'dynamodb'>;

function explicitTarget(options: TargetOptions, description: string, found: Resolved): Target {
  const region = options.region;
  const sqsEndpoint = options.endpointUrl;
  const secretsEndpoint = options.secretsEndpointUrl;
  const sqs = new SQSClient({
    ...(region ? { region } : {}),
    ...(sqsEndpoint
      ? { endpoint: sqsEndpoint, useQueueUrlAsEndpoint: false, ...emulatorDefaults(sqsEndpoint, region) }
      : {}),
  });
  const secrets = new SecretsManagerClient({
    ...(region ? { region } : {}),
    ...(secretsEndpoint ? { endpoint: secretsEndpoint, ...emulatorDefaults(secretsEndpoint, region) } : {}),
  });
  const events = new EventBridgeClient(region ? { region } : {});
  const dynamodbEndpoint = options.dynamodbEndpoint;
  const dynamodb = new DynamoDBClient({
    ...(region ? { region } : {}),
    ...(dynamodbEndpoint
      ? { endpoint: dynamodbEndpoint, ...emulatorDefaults(dynamodbEndpoint, region) }
      : {}),
  });
  const eventBus =
    options.eventBus !== undefined
      ? {
          name: options.eventBus,
          source: options.eventSource ?? found.eventBus?.source ?? DEFAULT_EVENT_SOURCE,
          detailType: found.eventBus?.detailType ?? EVENT_DETAIL_TYPE,
        }
      : found.eventBus;
  return {
    ...found,
    description,
    sendQueueUrl: options.sendQueueUrl ?? found.sendQueueUrl,
    sendQueueArn: options.sendQueueUrl ? undefined : found.sendQueueArn,
    deadLetterQueueUrl: options.dlqUrl ?? found.deadLetterQueueUrl,
    deadLetterQueueArn: options.dlqUrl ? undefined : found.deadLetterQueueArn,
    secretId: options.secretId ?? found.secretId,
    ecourtdateUrl: options.ecourtdateUrl ?? found.ecourtdateUrl,
    ecourtdateUrlSource: options.ecourtdateUrl ? '--ecourtdate-url' : found.ecourtdateUrlSource,
    ledgerTableName: options.ledgerTable ?? found.ledgerTableName,
    eventBus,
    sqs,
    secrets,
    events,
    dynamodb,
  };
}

/** An emulator on loopback needs a region and some credentials, but must never get the user's real ones. */
function emulatorDefaults(endpoint: string, region: string | undefined) {
  let loopback = false;
  try {
    loopback = isLoopbackHost(new URL(endpoint).hostname);
  } catch {
    throw new CliError(`expected an endpoint URL such as http://127.0.0.1:4566, got "${endpoint}"`);
  }
  return loopback ? { region: region ?? 'us-east-1', credentials: EMULATOR_CREDENTIALS } : {};
}

/** Releases the target's SDK clients (their sockets), so the process can exit. */
export function closeTarget(target: Target): void {
  target.sqs.destroy();
  target.secrets.destroy();
  target.events.destroy();
  target.dynamodb.destroy();
}

/** A requirement of a command that the target does not meet, named with the option that provides it. */
export function need<T>(value: T | undefined, what: string, option: string): T {
  if (value === undefined || value === '') {
    throw new CliError(`${what} is not known: give --stage, --local, or ${option}`);
  }
  return value;
}

/** An AWS SDK error as one line: its name and message, never request data. */
export function awsErrorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.message && error.message !== error.name ? `${error.name}: ${error.message}` : error.name;
}
