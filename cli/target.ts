import { join, resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { CliError } from '#cli/errors.ts';
import {
  isConnectionRefused,
  LocalPipelineNotRunningError,
  readLocalEndpoints,
} from '#cli/local-endpoints.ts';
import { defaultEventSource, EVENT_DETAIL_TYPE, STAGES, type Stage, stackNameOf } from '#infra/config.ts';
import { OUTPUT } from '#infra/stack-contract.ts';
import {
  DEFAULT_LOCAL_FILE,
  EMULATOR_CREDENTIALS,
  ENDPOINTS_FILE,
  LOCAL_REGION,
} from '#local/pipeline/endpoints-file.ts';
import { type ClientOverrides, createAwsClients } from '#shared/clients/aws.ts';
import { ENV, isLoopbackHost } from '#shared/config.ts';

export { DEFAULT_LOCAL_FILE } from '#local/pipeline/endpoints-file.ts';

/** What a command works on, and the AWS clients to reach it. */
export interface Target {
  /**
   * `stage`: a deployed stack's outputs; `local`: the local pipeline's endpoints file; `explicit` (or unset):
   * the command line's options only.
   */
  readonly kind?: 'stage' | 'local' | 'explicit';
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
  /** The `npm start` run's `--state-dir`: with `--local`, its `endpoints.json` is read (docs/operating.md). */
  readonly stateDir?: string | undefined;
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
  if (options.stateDir !== undefined && !options.local) {
    throw new CliError(
      '--state-dir names the state directory of a local pipeline: use it with --local (or with local stop)',
    );
  }
  const envDynamodbEndpoint = env[ENV.dynamodbEndpoint] || undefined;
  if (options.local) return localTarget(options, cwd, envDynamodbEndpoint);
  const withEnv = { ...options, dynamodbEndpoint: options.dynamodbEndpoint ?? envDynamodbEndpoint };
  if (options.stage !== undefined) return stageTarget(withEnv, options.stage);
  return explicitTarget(withEnv, 'explicit', 'the resources given on the command line', {});
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
  return explicitTarget(options, 'stage', `stage ${stage} (stack ${stackName})`, {
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
            source: source || defaultEventSource(stage as Stage),
            detailType: outputs[OUTPUT.eventDetailType] ?? EVENT_DETAIL_TYPE,
          },
  });
}

async function localTarget(
  options: TargetOptions,
  cwd: string,
  envDynamodbEndpoint: string | undefined,
): Promise<Target> {
  if (options.localFile !== undefined && options.stateDir !== undefined) {
    throw new CliError(
      `--local-file and --state-dir both say where the endpoints file is: give one (--state-dir DIR reads DIR/${ENDPOINTS_FILE})`,
    );
  }
  const file =
    options.localFile ??
    (options.stateDir === undefined ? DEFAULT_LOCAL_FILE : join(options.stateDir, ENDPOINTS_FILE));
  const endpoints = await readLocalEndpoints(resolve(cwd, file));
  return explicitTarget(
    {
      ...options,
      region: options.region ?? endpoints.region,
      endpointUrl: options.endpointUrl ?? endpoints.sqsEndpoint,
      secretsEndpointUrl: options.secretsEndpointUrl ?? endpoints.secretsManagerEndpoint,
      dynamodbEndpoint: options.dynamodbEndpoint ?? endpoints.dynamodbEndpoint ?? envDynamodbEndpoint,
    },
    'local',
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

type Resolved = Omit<Target, 'kind' | 'description' | 'sqs' | 'secrets' | 'events' | 'dynamodb'>;

function explicitTarget(
  options: TargetOptions,
  kind: Target['kind'],
  description: string,
  found: Resolved,
): Target {
  const endpoints = {
    sqs: options.endpointUrl,
    secretsManager: options.secretsEndpointUrl,
    dynamodb: options.dynamodbEndpoint,
  };
  const { sqs, secrets, dynamodb } = createAwsClients(
    { endpoints },
    clientOverrides(options.region, endpoints),
  );
  const source = options.eventSource ?? found.eventBus?.source;
  if (options.eventBus !== undefined && source === undefined) {
    // Each stage takes its own source only: a guess could reach the wrong stage's rule, or none.
    throw new CliError(
      `--event-bus ${options.eventBus} needs --event-source: the source the stage's rule accepts (by default ${STAGES.map((s) => defaultEventSource(s)).join(' or ')}; the stack output EventSource)`,
    );
  }
  const events = new EventBridgeClient(options.region ? { region: options.region } : {});
  const eventBus =
    options.eventBus !== undefined && source !== undefined
      ? {
          name: options.eventBus,
          source,
          detailType: found.eventBus?.detailType ?? EVENT_DETAIL_TYPE,
        }
      : found.eventBus;
  return {
    ...found,
    kind,
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

/**
 * Region and credentials of the clients. An emulator on loopback needs a region and some credentials, but must
 * never get the user's real ones: when any endpoint is a loopback address, every client gets the emulator's
 * (a target that mixes an emulator with real AWS is a test setup, not an operator's). Otherwise the SDK's own
 * chain decides (`AWS_PROFILE`, `AWS_REGION`, ...), with `--region` on top.
 */
function clientOverrides(
  region: string | undefined,
  endpoints: Readonly<Record<string, string | undefined>>,
): ClientOverrides {
  const loopback = Object.values(endpoints).some(
    (endpoint) => endpoint !== undefined && isLoopback(endpoint),
  );
  if (loopback) return { region: region ?? LOCAL_REGION, credentials: EMULATOR_CREDENTIALS };
  return region ? { region } : {};
}

function isLoopback(endpoint: string): boolean {
  try {
    return isLoopbackHost(new URL(endpoint).hostname);
  } catch {
    throw new CliError(`expected an endpoint URL such as http://127.0.0.1:4566, got "${endpoint}"`);
  }
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

/**
 * What to tell the operator about an error a command did not expect. Against the local pipeline a refused
 * connection means it has stopped: that becomes `LocalPipelineNotRunningError`; anything else is returned as is.
 */
export function explainTargetError(target: Target | undefined, error: unknown): unknown {
  if (target?.kind === 'local' && isConnectionRefused(error)) {
    return new LocalPipelineNotRunningError('its endpoints refuse connections', { cause: error });
  }
  return error;
}

/** An AWS SDK error as one line: its name and message, never request data. */
export function awsErrorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.message && error.message !== error.name ? `${error.name}: ${error.message}` : error.name;
}
