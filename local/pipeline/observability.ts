import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import type { LogItem } from '@aws-lambda-powertools/logger';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { parseLastStatus } from '#shared/ecourtdate/status.ts';
import { METRICS_NAMESPACE, METRICS_SERVICE } from '#shared/metric-names.ts';
import type { Observability } from '#shared/observability.ts';
import type { Settlement } from '#shared/sender/runtime.ts';

/**
 * Where the sender's logs and metrics go in a local run. In Lambda both are lines on stdout (JSON logs and EMF
 * blobs) that CloudWatch collects; here they go to a file, so the terminal keeps a clean progress display,
 * and the structured parts the runner needs (per-job outcomes, metric counts) are handed over typed.
 */
export interface SenderSink {
  /** One JSON log line or EMF blob, as Lambda would have printed it. */
  write(line: string): void;
  /** One `addMetric` call: the EMF metric `name` grew by `value`. */
  metric(name: string, value: number): void;
}

/** What became of one record, as the local pipeline's tracker follows it (from the sender's `Settlement`). */
export interface SenderEvent {
  /** `requeued`: retried later as a fresh copy of the message (a new message id), the original acknowledged. */
  readonly kind: 'settled' | 'dead_lettered' | 'retried' | 'requeued';
  /** The ledger knew the job as settled already: acknowledged without a send. */
  readonly alreadySettled: boolean;
  /** The SQS message id of the record on the send queue. */
  readonly messageId: string;
  readonly jobId: string | undefined;
  /** The job's attempts so far (sends, as the ledger counts them). */
  readonly attempt: number | undefined;
  /** Last HTTP status, or `timeout`, `connection`, `lost`; undefined when nothing was sent. */
  readonly status: number | string | undefined;
  /** Why: the field an invalid job breaks, what the policy saw (docs/contract.md); never message text. */
  readonly detail: string | undefined;
  /** Short, redacted excerpt of eCourtDate's answer, when the sender kept one. */
  readonly responseExcerpt: string | undefined;
  /** For `requeued`: the message id of the fresh copy, when the sender logged it. */
  readonly requeuedAs: string | undefined;
  /** The sender's outcome type: delivered, duplicate, retry or dead_letter. */
  readonly outcome: string;
  readonly reason: string | undefined;
  readonly cause: string | undefined;
  readonly uuid: string | undefined;
  readonly retryInSeconds: number | undefined;
}

const EVENT_KINDS: Readonly<Record<Settlement['applied'], SenderEvent['kind']>> = {
  acknowledged: 'settled',
  dead_lettered: 'dead_lettered',
  hidden: 'retried',
  // Left on the queue without a new visibility: it comes back, like a retry.
  left: 'retried',
  requeued: 'requeued',
};

/** A record's settlement, as the sender's batch adapter hands it over (`onSettled`), as a tracker event. */
export function senderEventOf(settlement: Settlement): SenderEvent {
  const { outcome } = settlement;
  // Acknowledged while the job still waits (another copy took the ledger entry over): the job goes on there.
  const handedOver = settlement.applied === 'acknowledged' && outcome.type === 'retry';
  return {
    kind: handedOver ? 'requeued' : EVENT_KINDS[settlement.applied],
    alreadySettled: settlement.alreadySettled,
    messageId: settlement.messageId,
    jobId: settlement.jobId,
    attempt: settlement.attempts,
    status:
      typeof settlement.lastStatus === 'number'
        ? settlement.lastStatus
        : (parseLastStatus(settlement.lastStatus) ?? undefined),
    detail: settlement.detail,
    responseExcerpt: settlement.responseExcerpt,
    requeuedAs: settlement.requeuedAs,
    outcome: outcome.type,
    reason: outcome.type === 'dead_letter' ? outcome.reason : undefined,
    cause: outcome.type === 'retry' ? outcome.cause : undefined,
    uuid: outcome.type === 'delivered' ? outcome.uuid : undefined,
    retryInSeconds: settlement.retryInSeconds,
  };
}

// Powertools' Logger prints from inside its own constructor (lines logged before it was initialised), before a
// subclass could set a field, so the sink of each logger is kept here and early lines wait for it.
const loggerSinks = new WeakMap<Logger, SenderSink>();
const earlyLines = new WeakMap<Logger, Record<string, unknown>[]>();

/** The Powertools Logger, printing to a `SenderSink` instead of stdout. Everything else is the stock Logger. */
export class SinkLogger extends Logger {
  constructor(sink: SenderSink, options: ConstructorParameters<typeof Logger>[0] = {}) {
    super({ serviceName: METRICS_SERVICE, logLevel: 'INFO', ...options });
    loggerSinks.set(this, sink);
    for (const attributes of earlyLines.get(this) ?? []) deliver(sink, attributes, this);
    earlyLines.delete(this);
  }

  protected override printLog(_logLevel: number, log: LogItem): void {
    log.prepareForPrint();
    const attributes = log.getAttributes() as Record<string, unknown>;
    const sink = loggerSinks.get(this);
    if (sink === undefined) {
      earlyLines.set(this, [...(earlyLines.get(this) ?? []), attributes]);
      return;
    }
    deliver(sink, attributes, this);
  }

  /** The same replacer Powertools serialises with (errors, BigInt, circular references). */
  replacer(): (key: string, value: unknown) => unknown {
    return this.getJsonReplacer() as (key: string, value: unknown) => unknown;
  }
}

function deliver(sink: SenderSink, attributes: Record<string, unknown>, logger: SinkLogger): void {
  sink.write(JSON.stringify(attributes, logger.replacer()));
}

type MetricsOptions = NonNullable<ConstructorParameters<typeof Metrics>[0]>;

/** The part of an EMF blob that names its metrics (CloudWatch's embedded metric format). */
interface EmfBlob {
  readonly _aws: {
    readonly CloudWatchMetrics: readonly { readonly Metrics: readonly { readonly Name: string }[] }[];
  };
}

/**
 * Powertools Metrics that counts every `addMetric` into a `SenderSink` and writes the EMF blobs there instead
 * of stdout. The blobs are the same JSON Lambda would print; the counts feed the local alarm evaluation.
 */
export class SinkMetrics extends Metrics {
  readonly #sink: SenderSink;
  readonly #options: MetricsOptions;

  constructor(sink: SenderSink, options: MetricsOptions = {}) {
    const merged: MetricsOptions = {
      namespace: METRICS_NAMESPACE,
      serviceName: METRICS_SERVICE,
      logger: sinkAsLogger(sink),
      ...options,
    };
    super(merged);
    this.#sink = sink;
    this.#options = merged;
  }

  // Counted when published, as CloudWatch receives them: a metric added by an invocation that never publishes it (one
  // Lambda stopped at its timeout) reaches no alarm, here as in AWS.
  override publishStoredMetrics(): this {
    try {
      if (this.hasStoredMetrics()) {
        const blob = this.serializeMetrics() as unknown as Record<string, unknown> & EmfBlob;
        for (const { Name } of blob._aws.CloudWatchMetrics.flatMap((directive) => directive.Metrics)) {
          const value = blob[Name];
          for (const one of Array.isArray(value) ? value : [value]) {
            if (typeof one === 'number') this.#sink.metric(Name, one);
          }
        }
        this.#sink.write(JSON.stringify(blob));
      }
    } finally {
      this.clearMetrics();
      this.clearDimensions();
      this.clearMetadata();
    }
    return this;
  }

  // The cold-start metric is published through a fresh single-metric instance: keep it in the sink too.
  override singleMetric(): Metrics {
    return new SinkMetrics(this.#sink, { ...this.#options, singleMetric: true });
  }
}

function sinkAsLogger(sink: SenderSink) {
  const write =
    (level: string) =>
    (...content: unknown[]) =>
      sink.write(JSON.stringify({ level, message: content.map(String).join(' '), source: 'metrics' }));
  return { debug: write('DEBUG'), info: write('INFO'), warn: write('WARN'), error: write('ERROR') };
}

/**
 * Logger and Metrics (no Tracer) for one simulated Lambda instance, all writing to `sink`. Pass it as
 * `observability` to `createSenderHandler`.
 */
export function sinkObservability(sink: SenderSink): Observability {
  return {
    logger: new SinkLogger(sink),
    metrics: new SinkMetrics(sink),
    // No X-Ray locally, so no Tracer: the X-Ray SDK and its context hook are never loaded.
  };
}

/** A log file that the sender's lines are appended to, one per line, created with its directory. */
export interface LogFile {
  readonly path: string;
  write(line: string): void;
  close(): Promise<void>;
}

/** Opens (and truncates) `path` for the run's sender log. */
export function openLogFile(path: string): LogFile {
  mkdirSync(dirname(path), { recursive: true });
  const stream: WriteStream = createWriteStream(path, { flags: 'w' });
  let closed = false;
  return {
    path,
    write(line) {
      if (!closed) stream.write(`${line}\n`);
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise((resolve) => stream.end(() => resolve()));
    },
  };
}
