import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource, type SqsEventSourceProps } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ConfigError } from '#shared/errors.ts';
import { METRICS_NAMESPACE, METRICS_SERVICE, STAGE_ENV } from '#shared/metric-names.ts';

/** The single-item DynamoDB operations `useTableItems` can grant: by key, never a query, scan or batch. */
export type ItemOperation = 'GetItem' | 'PutItem' | 'UpdateItem' | 'DeleteItem';

/** The repository root: esbuild's project root and where package-lock.json lives. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface RelayFunctionProps {
  /** The handler module, relative to the repository root (e.g. `functions/sender.ts`); it exports `handler`. */
  readonly entry: string;
  readonly description: string;
  /** The stage (`staging`, `production`): the function's metrics carry it as the dimension `stage`. */
  readonly stage: string;
  /**
   * @default 30 seconds
   */
  readonly timeout?: Duration;
  /**
   * @default 256 (MB)
   */
  readonly memorySize?: number;
  /**
   * Environment variables besides the Powertools ones this construct sets. A variable that names a resource of
   * the stack (a token) must be claimed by the grant for that resource (`consume`, `sendTo`, `readSecret`,
   * `useTableItems`), or the synth fails.
   * @default none
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * Powertools log level.
   * @default 'INFO'
   */
  readonly logLevel?: string;
  /**
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * X-Ray subsegments from Powertools Tracer (`POWERTOOLS_TRACE_ENABLED`). Off: the function never imports the
   * X-Ray SDK and its context hook (docs/deploy.md, "X-Ray subsegments"); Lambda's active tracing stays on either way.
   * @default false
   */
  readonly traceSubsegments?: boolean;
  /**
   * What happens to the log group when the stack is deleted.
   * @default RemovalPolicy.DESTROY
   */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/**
 * The house Lambda function: Node.js 24 on arm64, bundled by local esbuild as an ESM module with source maps,
 * X-Ray active tracing (subsegments only with `traceSubsegments`), its own log group with a retention, Powertools configured, and an execution role that holds
 * only what is granted explicitly (no AWS-managed policy). Stacks never build raw functions.
 *
 * Environment variables and IAM grants for a resource come together: `consume`, `sendTo`, `readSecret` and
 * `useTableItems` each grant access and name the variable that tells the function of the resource, and refuse a
 * variable that does not hold it; a variable naming a resource that no grant claimed fails the synth. So the
 * function cannot learn of a resource it may not use, or the other way round, while the whole environment is
 * built in one place (`senderEnvironment`, shared with the local pipeline).
 */
export class RelayFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly #environment: Readonly<Record<string, string>>;
  readonly #claimed = new Set<string>();

  constructor(scope: Construct, id: string, props: RelayFunctionProps) {
    super(scope, id);
    const timeout = props.timeout ?? Duration.seconds(30);
    const memorySize = props.memorySize ?? 256;
    if (timeout.toSeconds() < 1 || timeout.toSeconds() > 900) {
      throw new ConfigError(`${id}.timeout`, `expected 1 s to 15 minutes, got ${timeout.toHumanString()}`);
    }
    if (!Number.isInteger(memorySize) || memorySize < 128 || memorySize > 10_240) {
      throw new ConfigError(`${id}.memorySize`, `expected 128 to 10240 MB, got ${memorySize}`);
    }

    this.#environment = props.environment ?? {};
    this.node.addValidation({ validate: () => this.#unclaimedResourceVariables() });

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    // An explicit role instead of AWSLambdaBasicExecutionRole, whose logs permissions cover every log group.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${props.description}`,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        // EMF metrics travel in the log stream too: no cloudwatch:PutMetricData needed.
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    Validations.of(this.role.node.findChild('DefaultPolicy')).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Only xray:PutTraceSegments and xray:PutTelemetryRecords, added by Lambda active tracing (on for every ' +
        'relay function), use "*": X-Ray does not support resource-level permissions for them. The logs ' +
        'permission and every grant this construct makes (queues, secrets, table items, event buses) name ' +
        'their resources.',
    });

    this.function = new NodejsFunction(this, 'Function', {
      entry: `${REPO_ROOT}${props.entry}`,
      handler: 'handler',
      description: props.description,
      projectRoot: REPO_ROOT,
      depsLockFilePath: `${REPO_ROOT}package-lock.json`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      timeout,
      memorySize,
      role: this.role,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
      environment: {
        ...props.environment,
        POWERTOOLS_SERVICE_NAME: METRICS_SERVICE,
        // The stage's metrics carry it as a dimension: one stage's alarms never see the other's.
        [STAGE_ENV]: props.stage,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
        // The event holds recipients and message text, which must never reach a log line.
        POWERTOOLS_LOGGER_LOG_EVENT: 'false',
        // Read by shared/observability.ts before the Tracer is imported, and by the Tracer itself.
        POWERTOOLS_TRACE_ENABLED: String(props.traceSubsegments ?? false),
        // eCourtDate's responses can echo the message; keep them out of X-Ray segments.
        POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false',
        // Stack traces point at the TypeScript sources instead of the minified bundle.
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        // Prefer the ESM build of dependencies that ship both.
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        // esbuild's warnings and errors only: a failed bundle prints why, a good one no file sizes and timings.
        logLevel: LogLevel.WARNING,
        // CommonJS dependencies inside an ESM bundle still call require(); give them one.
        banner:
          "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        // Ship the pinned AWS SDK the tests ran against instead of whatever version the runtime carries.
        bundleAwsSDK: true,
      },
    });
  }

  /**
   * Makes the queue the function's event source (receive, delete, change visibility), named in `envName`, and
   * lets the function send to it: the sender re-queues a record as a fresh copy of itself when a wait would spend
   * the queue's receive budget (docs/sqs-limits.md, "Fresh copies").
   */
  consume(queue: IQueue, envName: string, options: SqsEventSourceProps): void {
    this.#claim(envName, queue.queueUrl, queue.node.id);
    this.function.addEventSource(new SqsEventSource(queue, options));
    queue.grantSendMessages(this.function);
  }

  /** Lets the function send messages to the queue, named in `envName`. */
  sendTo(queue: IQueue, envName: string): void {
    this.#claim(envName, queue.queueUrl, queue.node.id);
    queue.grantSendMessages(this.function);
  }

  /**
   * Lets the function read the secret, named in `envName` by `secretIdOf(secret)`. With `kmsKeyArn` (the
   * secret's customer-managed key), also `kms:Decrypt` on that key, and only through Secrets Manager in this
   * region (`kms:ViaService`): the AWS managed key needs no grant.
   */
  readSecret(secret: ISecret, envName: string, kmsKeyArn?: string): void {
    this.#claim(envName, secretIdOf(secret), secret.node.id);
    secret.grantRead(this.function);
    if (kmsKeyArn === undefined) return;
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [kmsKeyArn],
        conditions: {
          StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` },
        },
      }),
    );
  }

  /**
   * Lets the function make exactly these single-item operations on the table (its ARN only, no index), named
   * in `envName`. Not `grantReadWriteData`, which adds Query, Scan, the batch operations, ConditionCheckItem,
   * DescribeTable and index ARNs.
   *
   * @example
   * sender.useTableItems(ledgerTable, ENV.ledgerTableName, ['GetItem', 'PutItem']);
   */
  useTableItems(table: ITable, envName: string, operations: readonly ItemOperation[]): void {
    if (operations.length === 0) {
      throw new ConfigError(
        `${this.node.id}.useTableItems`,
        `expected at least one operation on ${table.node.id}`,
      );
    }
    this.#claim(envName, table.tableName, table.node.id);
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: `ItemsOf${table.node.id.replace(/[^A-Za-z0-9]/g, '')}`,
        actions: [...new Set(operations)].sort().map((operation) => `dynamodb:${operation}`),
        resources: [table.tableArn],
      }),
    );
    // Only a table encrypted with a customer-managed key needs the key as well.
    table.encryptionKey?.grantEncryptDecrypt(this.function);
  }

  /** Lets the function put events on the bus (its ARN only), named in `envName`. */
  putEventsOn(bus: IEventBus, envName: string): void {
    this.#claim(envName, bus.eventBusName, bus.node.id);
    bus.grantPutEventsTo(this.function);
  }

  /** A grant's resource must be what its variable holds: the grant and the variable come together. */
  #claim(envName: string, value: string, resource: string): void {
    if (this.#environment[envName] !== value) {
      throw new ConfigError(
        `${this.node.id}.environment`,
        `${envName} must name ${resource}, which the function is granted; it ${
          envName in this.#environment ? 'names something else' : 'is not set'
        }`,
      );
    }
    this.#claimed.add(envName);
  }

  #unclaimedResourceVariables(): string[] {
    return Object.entries(this.#environment)
      .filter(([name, value]) => Token.isUnresolved(value) && !this.#claimed.has(name))
      .map(
        ([name]) =>
          `${this.node.id}: environment variable ${name} names a resource the function is granted nothing on`,
      );
  }
}

/**
 * How the function names a secret: by full ARN, or by name for a secret imported by name (whose ARN suffix is
 * unknown; a partial ARN is not a reliable secret id).
 */
export function secretIdOf(secret: ISecret): string {
  return secret.secretFullArn ?? secret.secretName;
}
