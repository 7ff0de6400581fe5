import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { CliError } from '#cli/errors.ts';
import {
  DEFAULT_EVENT_SOURCE,
  EVENT_DETAIL_TYPE,
  loadStageConfig,
  STAGES,
  type StageConfig,
} from '#infra/config.ts';
import { cdkStageConfig } from '#local/pipeline/stage.ts';
import { isLoopbackHost } from '#shared/config.ts';

/**
 * The stack outputs the CLI reads, by the names `infra/stacks/relay-stack.ts` gives them (`OUTPUT` there; a
 * test keeps the two in step). Kept here so the CLI does not load the CDK library to start.
 */
export const STACK_OUTPUT = {
  sendQueueUrl: 'SendQueueUrl',
  sendQueueArn: 'SendQueueArn',
  deadLetterQueueUrl: 'DeadLetterQueueUrl',
  deadLetterQueueArn: 'DeadLetterQueueArn',
  secretName: 'SecretName',
  eventBusName: 'EventBusName',
  eventSource: 'EventSource',
  eventDetailType: 'EventDetailType',
} as const;

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
  readonly sqs: SQSClient;
  readonly secrets: SecretsManagerClient;
  readonly events: EventBridgeClient;
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
}

/** Credentials for emulators, which check none; never used towards AWS. */
const EMULATOR_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/**
 * Resolves the target of a command: a deployed stage (`--stage`: the stack's outputs, read with
 * CloudFormation DescribeStacks under the default AWS credentials), the local pipeline (`--local`: the
 * endpoints file `npm start -- --keep-running` writes), or explicit URLs (`--send-queue-url`, `--dlq-url`,
 * `--secret-id`, with `--endpoint-url` for an SQS emulator). Explicit options override what a stage or the
 * local file says.
 */
export async function resolveTarget(options: TargetOptions, cwd: string): Promise<Target> {
  if (options.stage !== undefined && options.local) {
    throw new CliError('choose one of --stage and --local');
  }
  if (options.local) return localTarget(options, cwd);
  if (options.stage !== undefined) return stageTarget(options, options.stage, cwd);
  return explicitTarget(options, 'the queues and secret given on the command line', {});
}

async function stageTarget(options: TargetOptions, stage: string, cwd: string): Promise<Target> {
  if (!(STAGES as readonly string[]).includes(stage)) {
    throw new CliError(`--stage: expected one of ${STAGES.join(', ')}, got "${stage}"`);
  }
  let config: StageConfig;
  try {
    // cdk.json's context, as the stage was deployed from this checkout (its base URL, for check-credentials).
    config = cdkStageConfig(cwd, { stage });
  } catch {
    config = loadStageConfig({ stage });
  }
  const region = options.region;
  const cloudformation = new CloudFormationClient(region ? { region } : {});
  let outputs: Record<string, string>;
  try {
    const out = await cloudformation.send(new DescribeStacksCommand({ StackName: config.stackName }));
    const stack = out.Stacks?.[0];
    if (stack === undefined) throw new CliError(`stack ${config.stackName} not found`);
    outputs = Object.fromEntries(
      (stack.Outputs ?? []).flatMap((o) =>
        o.OutputKey && o.OutputValue ? [[o.OutputKey, o.OutputValue]] : [],
      ),
    );
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(
      `cannot read the outputs of stack ${config.stackName}${region ? ` in ${region}` : ''}: ${awsErrorText(error)}. ` +
        'Is the stage deployed in this account and region (--region, AWS_REGION), and are AWS credentials set?',
      { cause: error },
    );
  } finally {
    cloudformation.destroy();
  }
  const source = outputs[STACK_OUTPUT.eventSource]?.split(',')[0]?.trim();
  return explicitTarget(options, `stage ${stage} (stack ${config.stackName})`, {
    sendQueueUrl: outputs[STACK_OUTPUT.sendQueueUrl],
    sendQueueArn: outputs[STACK_OUTPUT.sendQueueArn],
    deadLetterQueueUrl: outputs[STACK_OUTPUT.deadLetterQueueUrl],
    deadLetterQueueArn: outputs[STACK_OUTPUT.deadLetterQueueArn],
    secretId: outputs[STACK_OUTPUT.secretName],
    // The stack does not publish its eCourtDate URL; the stage's configured one is what it was deployed with.
    ecourtdateUrl: config.baseUrl,
    ecourtdateUrlSource: `the ${stage} stage's configuration in cdk.json (--ecourtdate-url overrides)`,
    eventBus:
      outputs[STACK_OUTPUT.eventBusName] === undefined
        ? undefined
        : {
            name: outputs[STACK_OUTPUT.eventBusName] ?? 'default',
            source: source || DEFAULT_EVENT_SOURCE,
            detailType: outputs[STACK_OUTPUT.eventDetailType] ?? EVENT_DETAIL_TYPE,
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
}

async function localTarget(options: TargetOptions, cwd: string): Promise<Target> {
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
    },
  );
}

type Resolved = Omit<Target, 'description' | 'sqs' | 'secrets' | 'events'>;

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
    eventBus,
    sqs,
    secrets,
    events,
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
