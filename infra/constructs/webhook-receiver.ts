import { CfnOutput, Duration, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogField, AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { alarmMetric, onCallAlarm, runbookLink } from '#infra/constructs/relay-alarms.ts';
import { RelayFunction, secretIdOf } from '#infra/constructs/relay-function.ts';
import { existingSecret, secretKey } from '#infra/constructs/secret.ts';
import {
  WEBHOOK_FUNCTION_TIMEOUT_SECONDS,
  WEBHOOK_LEASE_SECONDS,
  WEBHOOK_OUTPUT,
  WEBHOOK_ROUTE_PATH,
  type WebhookStageConfig,
} from '#infra/webhook-config.ts';
import { METRICS_NAMESPACE, relayDimensions } from '#shared/metric-names.ts';
import {
  type WebhookAlarmDefinition,
  type WebhookAlarmMetric,
  webhookAlarmDefinitions,
} from '#shared/webhook/alarms.ts';
import { WEBHOOK_ENV } from '#shared/webhook/config.ts';
import { WEBHOOK_METRIC } from '#shared/webhook/metrics.ts';

export interface WebhookReceiverProps {
  readonly stage: string;
  readonly webhook: WebhookStageConfig;
  /** The job ledger table: dedupe records, the uuid index and each job's delivery status live in it. */
  readonly ledgerTable: ITable;
  /** The bus events are put on: the stack's bus (the account's default bus unless the stage names one). */
  readonly eventBusName: string | undefined;
  /** Notified when an alarm fires and again when it recovers. */
  readonly topic: ITopic;
  /** Alarm names are `<prefix>-<definition id>`. */
  readonly alarmNamePrefix: string;
  /** Where the docs are served (the stage's `runbookBaseUrl`); undefined: links are paths in the repository. */
  readonly runbookBaseUrl?: string | undefined;
  /**
   * The stack's dashboard: the receiver's rows are added below the relay's.
   * @default no widgets (see `dashboardWidgets`)
   */
  readonly dashboard?: cloudwatch.Dashboard;
  readonly logLevel: string;
  readonly logRetention: logs.RetentionDays;
  /** X-Ray subsegments from Powertools Tracer (the stage's `traceSubsegments`). @default false */
  readonly traceSubsegments?: boolean;
  /** What happens to the secret and the logs when the stack is deleted. */
  readonly removalPolicy: RemovalPolicy;
}

/**
 * The inbound half of the relay (docs/webhooks.md): an API Gateway HTTP API with one throttled route,
 * `ANY /ecourtdate/webhook`, in front of the receiver Lambda (`functions/webhook.ts`), the shared secret
 * eCourtDate signs with, alarms with their runbook entries, dashboard widgets, and the webhook URL as an output.
 *
 * Why an HTTP API: it takes payload format 2.0 (raw body, base64 flag, the peer's source IP), throttles per
 * stage, logs access as JSON, and costs less and answers faster than a REST API. It has no resource policy and
 * no WAF, so the IP allowlist is enforced in the function on the request context's source IP, which API Gateway
 * takes from the connection, not from a header. A Lambda function URL has no throttling or access logs.
 *
 * Grants come with the variable that names their resource: the secret (`WEBHOOK_SECRET_ID`), the ledger table
 * (`LEDGER_TABLE_NAME`; GetItem, PutItem and UpdateItem only) and the bus (`EVENT_BUS_NAME`; `events:PutEvents`
 * on that bus's ARN only).
 */
export class WebhookReceiver extends Construct {
  readonly api: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly receiver: RelayFunction;
  readonly secret: secretsmanager.ISecret;
  readonly eventBus: events.IEventBus;
  readonly accessLogs: logs.LogGroup;
  /** The alarms by definition id. */
  readonly alarms: ReadonlyMap<string, cloudwatch.Alarm>;
  readonly definitions: readonly WebhookAlarmDefinition[];
  /** The URL to paste into eCourtDate's Console > Webhooks. */
  readonly url: string;

  /** The relay's stage: its metrics carry it as the dimension `stage`. */
  readonly #relayStage: string;

  constructor(scope: Construct, id: string, props: WebhookReceiverProps) {
    super(scope, id);
    this.#relayStage = props.stage;
    const { webhook } = props;
    this.secret = this.webhookSecret(props);
    const busName = props.eventBusName ?? 'default';
    this.eventBus = events.EventBus.fromEventBusName(this, 'EventBus', busName);

    const environment: Record<string, string> = {
      [WEBHOOK_ENV.secretId]: secretIdOf(this.secret),
      [WEBHOOK_ENV.eventBusName]: busName,
      [WEBHOOK_ENV.ledgerTableName]: props.ledgerTable.tableName,
      [WEBHOOK_ENV.maxBodyBytes]: String(webhook.maxBodyBytes),
      [WEBHOOK_ENV.dedupeTtlSeconds]: String(webhook.dedupeDays * 86_400),
      // Longer than the function timeout: a live invocation is never taken over (shared/webhook/dedupe.ts).
      [WEBHOOK_ENV.leaseSeconds]: String(WEBHOOK_LEASE_SECONDS),
      ...(webhook.allowedIps.length > 0 ? { [WEBHOOK_ENV.allowedIps]: webhook.allowedIps.join(',') } : {}),
    };
    this.receiver = new RelayFunction(this, 'Receiver', {
      entry: 'functions/webhook.ts',
      description: `eCourtDate relay webhook receiver (${props.stage})`,
      stage: props.stage,
      // eCourtDate wants an answer within a few seconds and retries a timeout; every step is one AWS call.
      timeout: Duration.seconds(WEBHOOK_FUNCTION_TIMEOUT_SECONDS),
      memorySize: 256,
      logLevel: props.logLevel,
      logRetention: props.logRetention,
      logRemovalPolicy: props.removalPolicy,
      traceSubsegments: props.traceSubsegments ?? false,
      environment,
    });
    this.receiver.readSecret(this.secret, WEBHOOK_ENV.secretId, props.webhook.secret.kmsKeyArn);
    // Dedupe claim (Put), take-over and done (Update), uuid index and job entry reads (Get), delivery status (Update).
    this.receiver.useTableItems(props.ledgerTable, WEBHOOK_ENV.ledgerTableName, [
      'GetItem',
      'PutItem',
      'UpdateItem',
    ]);
    this.receiver.putEventsOn(this.eventBus, WEBHOOK_ENV.eventBusName);

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    this.api = new apigwv2.HttpApi(this, 'Api', {
      apiName: `${props.alarmNamePrefix}-webhooks`,
      description: `eCourtDate webhooks for the relay (${props.stage})`,
      createDefaultStage: false,
    });
    this.stage = new apigwv2.HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      // eCourtDate retries a 429 like any non-2xx; the limits keep a flood (or a probe) from running up costs.
      throttle: { rateLimit: webhook.rateLimit, burstLimit: webhook.burstLimit },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(this.accessLogs),
        // Who called, what came back and how long it took: never a header or the body.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: AccessLogField.contextRequestId(),
            sourceIp: AccessLogField.contextIdentitySourceIp(),
            requestTime: AccessLogField.contextRequestTime(),
            method: AccessLogField.contextHttpMethod(),
            routeKey: AccessLogField.contextRouteKey(),
            status: AccessLogField.contextStatus(),
            responseLength: AccessLogField.contextResponseLength(),
            integrationStatus: AccessLogField.contextIntegrationStatus(),
            integrationError: AccessLogField.contextIntegrationErrorMessage(),
          }),
        ),
      },
    });
    const routes = this.api.addRoutes({
      path: WEBHOOK_ROUTE_PATH,
      // Every method reaches the function, which answers 405 with Allow: POST instead of a bare 404.
      methods: [apigwv2.HttpMethod.ANY],
      integration: new HttpLambdaIntegration('Integration', this.receiver.function, {
        payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
      }),
    });
    for (const route of routes) {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'eCourtDate cannot send IAM, JWT or Lambda-authorizer credentials: it authenticates each delivery with ' +
          'an HMAC-SHA256 signature of the body (X-ECD-Signature), which the function verifies in constant time ' +
          'before doing anything else, optionally after an IP allowlist.',
      });
    }
    this.url = `${this.api.apiEndpoint}${WEBHOOK_ROUTE_PATH}`;

    this.definitions = webhookAlarmDefinitions(webhook.signatureFailureThreshold);
    const action = new SnsAction(props.topic);
    const alarms = new Map<string, cloudwatch.Alarm>();
    for (const definition of this.definitions) {
      alarms.set(
        definition.id,
        onCallAlarm(this, definition, {
          alarmNamePrefix: props.alarmNamePrefix,
          runbook: runbookLink('docs/webhooks.md', definition.id, props.runbookBaseUrl),
          metric: alarmMetric(definition, (metric, period) => this.cloudWatchMetric(metric, period)),
          action,
        }),
      );
    }
    this.alarms = alarms;
    for (const row of props.dashboard ? this.dashboardWidgets() : []) props.dashboard?.addWidgets(...row);

    const stack = Stack.of(this);
    new CfnOutput(stack, WEBHOOK_OUTPUT.url, {
      value: this.url,
      description: 'Paste into the eCourtDate Console > Webhooks as the endpoint URL',
    });
    new CfnOutput(stack, WEBHOOK_OUTPUT.secretName, {
      value: webhook.secret.name,
      description: 'The shared secret to paste into the eCourtDate Console > Webhooks (get-secret-value)',
    });
    new CfnOutput(stack, WEBHOOK_OUTPUT.functionName, {
      value: this.receiver.function.functionName,
      description: 'Webhook receiver Lambda function',
    });
  }

  /** Dashboard rows for the receiver: its alarms, deliveries by outcome, and the API and function health. */
  dashboardWidgets(): cloudwatch.IWidget[][] {
    const period = Duration.minutes(5);
    const relay = (metricName: string, label: string) =>
      this.cloudWatchMetric({ id: 'm', source: 'relay', metricName, statistic: 'Sum' }, period).with({
        label,
      });
    const fn = this.receiver.function;
    const graph = (title: string, left: cloudwatch.IMetric[]) =>
      new cloudwatch.GraphWidget({ title, left, width: 8, height: 6 });
    return [
      [
        new cloudwatch.AlarmStatusWidget({
          title: 'Webhook alarms (runbook: docs/webhooks.md)',
          alarms: [...this.alarms.values()],
          width: 24,
          height: 2,
        }),
      ],
      [
        graph('Webhook deliveries', [
          relay(WEBHOOK_METRIC.accepted, 'accepted'),
          relay(WEBHOOK_METRIC.duplicates, 'duplicate (not published again)'),
          relay(WEBHOOK_METRIC.inProgress, 'in progress elsewhere (409)'),
          relay(WEBHOOK_METRIC.jobStatusRecorded, 'job delivery status recorded'),
          relay(WEBHOOK_METRIC.published, 'events published'),
        ]),
        graph('Webhook failures', [
          relay(WEBHOOK_METRIC.signatureFailures, 'signature failures (401)'),
          relay(WEBHOOK_METRIC.publishFailures, 'publish failures (503)'),
          relay(WEBHOOK_METRIC.internalErrors, 'secret or table failures (503)'),
          relay(WEBHOOK_METRIC.rejected, 'rejected (403/405/413/415)'),
          relay(WEBHOOK_METRIC.malformed, 'not JSON (400)'),
        ]),
        graph('Webhook API and receiver', [
          this.api.metricCount({ period, statistic: 'Sum', label: 'requests' }),
          this.api.metricClientError({ period, statistic: 'Sum', label: '4xx (throttled 429s included)' }),
          this.api.metricServerError({ period, statistic: 'Sum', label: '5xx' }),
          fn.metricErrors({ period, statistic: 'Sum', label: 'Lambda errors' }),
          fn.metricThrottles({ period, statistic: 'Sum', label: 'Lambda throttles' }),
        ]),
      ],
    ];
  }

  private cloudWatchMetric(metric: WebhookAlarmMetric, period: Duration): cloudwatch.Metric {
    const options = { statistic: metric.statistic, period };
    return metric.source === 'relay'
      ? new cloudwatch.Metric({
          namespace: METRICS_NAMESPACE,
          metricName: metric.metricName,
          dimensionsMap: relayDimensions(this.#relayStage),
          ...options,
        })
      : this.receiver.function.metric(metric.metricName, options);
  }

  private webhookSecret(props: WebhookReceiverProps): secretsmanager.ISecret {
    const { secret } = props.webhook;
    if (secret.kind === 'existing') {
      return existingSecret(this, 'Secret', secret);
    }
    const created = new secretsmanager.Secret(this, 'Secret', {
      secretName: secret.name,
      encryptionKey: secretKey(this, 'Secret', secret),
      description:
        `Shared secret of the eCourtDate webhooks for the relay (${props.stage}): {"secret": "..."}; paste the ` +
        'value into the eCourtDate Console > Webhooks',
      // eCourtDate takes a shared secret of at most 24 characters; letters and digits survive any copy and paste.
      generateSecretString: {
        secretStringTemplate: JSON.stringify({}),
        generateStringKey: 'secret',
        passwordLength: 24,
        excludePunctuation: true,
      },
      removalPolicy: props.removalPolicy,
    });
    Validations.of(created).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'The secret is shared with eCourtDate, whose Console is the only place to change it; no API exists for a ' +
        'rotation Lambda. Rotation is a documented manual procedure (docs/webhooks.md, "Rotate the secret") with ' +
        'previous_secret accepted during the change-over.',
    });
    return created;
  }
}
