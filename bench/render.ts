/**
 * The benchmark's report as Markdown (reports/bench.md, below its marker): the run's measurements and the
 * figures bench/model.ts derives from them, in tables and prose. Pure: strings in, a string out; no figure is
 * computed here that the model does not give, only formatted.
 */
import { ECOURTDATE_LIMIT_PER_MINUTE } from '#shared/ecourtdate/pacer.ts';
import {
  API_LATENCY_MS,
  type BenchModel,
  type BudgetDrill,
  type BudgetScenario,
  batchRatio,
  type Cost,
  type CostItem,
  costOf,
  drillFigures,
  dynamoWritesPerJob,
  handlerJobsPerSecond,
  jobsPerSecond,
  LAMBDA_MB_PER_VCPU,
  ledgerRequestsPerJob,
  PRICE_USD,
  perJob,
  RECEIVER_ASSUMED_MS,
  RECEIVER_MEMORY_MB,
  type ReceiverCost,
  type ReportInput,
  total,
  WARMUP_JOBS,
  type WebhookComparison,
} from './model.ts';
import { type CommandCounts, RELAY_POLLERS_PER_INSTANCE, type WorkloadFigures } from './protocol.ts';

/** A Markdown table: the header row, the separator, one line a row, and an empty line after it. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
  ];
}

/** US dollars to the cent: `$1.47`. */
export const money = (n: number) => `$${n.toFixed(2)}`;
/** A ratio to two decimals: `0.81×`. */
export const ratio = (n: number) => `${n.toFixed(2)}×`;
const fixed = (n: number, digits = 2) => n.toFixed(digits);
const signed = (n: number, digits = 2) => `${n >= 0 ? '+' : '−'}${Math.abs(n).toFixed(digits)}`;
const signedMoney = (on: number, off: number) => `${on >= off ? '+' : '−'}${money(Math.abs(on - off))}`;

/** Request counts by command name, sorted, without the `Command` suffix: `DeleteMessageBatch 100, ReceiveMessage 104`. */
export function commandCounts(counts: CommandCounts): string {
  return Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, n]) => `${name.replace(/Command$/, '')} ${n}`)
    .join(', ');
}

/** What each cost line is priced from, as the report's "basis" column says it. */
function costBasis(item: CostItem, basis: Cost['basis']): string {
  switch (item) {
    case 'Lambda duration':
      return `${basis.memorySizeMb} MB arm64, ${basis.batchMs.toFixed(0)} ms per batch of ${basis.batchSize} at ${API_LATENCY_MS} ms API latency (measured)`;
    case 'Lambda requests':
      return `${basis.invocations.toFixed(2)} invocations per job`;
    case 'SQS, the relay':
      return `${basis.sqsRequests.toFixed(2)} requests per job (event source receive and delete, the sender's own calls)`;
    case 'SQS, upstream send':
      return 'SendMessageBatch of 10';
    case 'DynamoDB writes':
      return `${basis.writes.toFixed(2)} writes per job, ${basis.units.writes.toFixed(2)} write units (${
        basis.units.measured ? 'as DynamoDB reports them' : 'bounded by the largest item'
      }; items up to ${basis.largestItemBytes} bytes)`;
    case 'DynamoDB reads':
      return `${basis.reads.toFixed(2)} strongly consistent reads per job, ${basis.units.reads.toFixed(2)} read units`;
    case 'Secrets Manager':
      return `${basis.secretsCalls.toFixed(4)} calls per job (cached 5 min per container)`;
  }
}

/** A price per unit as dollars per million units, to the cent: `$0.20`. */
const perMillionPrice = (unitPrice: number) => money(unitPrice * 1e6);

/**
 * The report: Markdown, ending in one newline, from the run's `input` and `model = benchModel(input)`. Its
 * sections and their order are reports/bench.md's below the marker.
 */
export function renderReport(input: ReportInput, model: BenchModel): string {
  const { options, runs, latency, coldStart, stages } = input;
  const { relay, fetch: bare, floor, traced, ratios, batchSize, costs, webhooks } = model;
  const cpu = model.cpuMsPerJob;
  const obs = [
    {
      item: 'CloudWatch Logs ingestion',
      perMillion: model.observability.logs.perMillion,
      basis: `${model.observability.logs.bytesPerJob.toFixed(0)} bytes of log and EMF lines per job (measured)`,
    },
    {
      item: 'X-Ray traces',
      perMillion: model.observability.xray.perMillion,
      basis: `tracing Active, default sampling: about ${(model.observability.xray.sampledShare * 100).toFixed(0)} % of invocations at 900 jobs/min`,
    },
  ];
  const obsTotal = model.observability.perMillion;
  const dynamo = (f: WorkloadFigures) => perJob(total(f.dynamodb), f);
  const api = (f: WorkloadFigures) => perJob(f.ecourtdate.token + f.ecourtdate.send, f);
  const sqs = (f: WorkloadFigures) => perJob(total(f.sqs), f);
  const defaultShare = latency[0];
  const production = latency.find((l) => l.label.startsWith('production'));
  const productionCost = costs.find((c) => c.stage === 'production')?.cost as Cost;
  const stagingCost = costs.find((c) => c.stage === 'staging')?.cost as Cost;
  const verdict = webhookVerdict(webhooks);

  const lines: string[] = [];
  const table = (header: string[], rows: string[][]) => lines.push(...markdownTable(header, rows));

  lines.push(
    '# Benchmark: the relay, a bare fetch loop and the floor',
    '',
    `One \`npm run bench\` run on loopback emulators (fauxqs behind the strict SQS layer, dynalite, the eCourtDate`,
    `simulator, the Secrets Manager stand-in) in a process of their own; every measurement in a fresh process.`,
    `Run on ${input.date}. Machine: ${input.machine}. ${options.jobs} jobs per measurement after ${WARMUP_JOBS} warm-up jobs, ${input.concurrency} at`,
    `once (${options.instances} instance(s) x batches of ${batchSize}), ${options.repeats} rounds of (a), (b), (c): speeds from the`,
    "best round, ratios the median of the rounds' own ratios, CPU time the least of the rounds.",
    "Absolute speeds are this machine's; ratios and counts per job are what carry over. The throughput runs",
    'leave the pacer out of the way (a shared budget of 100,000 requests a minute): at the deployed budget',
    `(${stages.production.requestsPerMinute}/min) the relay would send at most ${Math.floor(stages.production.requestsPerMinute / 60)} jobs a second, and the runs measure what it costs, not the rate limit.`,
    ...(options.repeats === 1
      ? [
          '**One round:** every ratio below is a single sample, and on a busy machine the order of the runs',
          'can outweigh what they compare; use `--repeats 3` or more before drawing conclusions.',
        ]
      : []),
    '',
    '## Goals',
    '',
  );
  const met = (ok: boolean | undefined) => (ok === undefined ? '—' : ok ? 'met' : '**NOT MET**');
  table(
    ['figure', 'goal', 'this run', 'met'],
    [
      [
        'relay / floor throughput',
        '≥ 0.8×',
        `${ratio(ratios.relayToFloor)} end to end, ${input.concurrency} at once (${options.instances} instance(s)); ${ratio(
          ratios.handlerToFloor,
        )} counting the handler's time only`,
        met(ratios.relayToFloor >= 0.8),
      ],
      [
        'DynamoDB requests per first-attempt job, the job ledger (the api-client item: below)',
        '≤ 2',
        fixed(ledgerRequestsPerJob(relay)),
        met(ledgerRequestsPerJob(relay) <= 2),
      ],
      [
        `batch of ${batchSize} at ${API_LATENCY_MS} ms vs one call, one instance of the shared budget: the default (staging, production)`,
        '≤ 1.3×',
        `${ratio(batchRatio(defaultShare))} (${latency
          .slice(1)
          .map((l) => ratio(batchRatio(l)))
          .join(', ')})`,
        met(model.batchRatios.every((r) => r <= 1.3)),
      ],
      [
        `AWS cost per million jobs, deployed memory (${stages.production.memorySizeMb} MB), production (staging)`,
        '≤ $1.60',
        `${money(productionCost.awsPerMillion)} (${money(stagingCost.awsPerMillion)}), + ${money(obsTotal)} logs and X-Ray`,
        met(Math.max(productionCost.awsPerMillion, stagingCost.awsPerMillion) <= 1.6),
      ],
      ...budgetGoalRows(input, model, met),
      [
        'extra write units per delivered job for the uuid lookup',
        '≤ 1, only with webhooks on',
        verdict,
        met(webhooks.within),
      ],
      [
        'sender bundle',
        '≤ 1 MB',
        `${(coldStart.sender.bytes / 1024 ** 2).toFixed(2)} MB`,
        met(coldStart.sender.bytes <= 1024 ** 2),
      ],
      [
        'import time vs a handler importing only the SQS client',
        '≤ 2×',
        ratio(model.importRatio),
        met(model.importRatio <= 2),
      ],
    ],
  );

  lines.push('## Throughput, side by side', '');
  table(
    [
      '',
      'jobs/s',
      'relay ÷ this (median of the rounds)',
      'CPU ms per job (least of the rounds)',
      'eCourtDate requests per job',
      'DynamoDB requests per job (writes)',
      'SQS requests per job',
    ],
    [
      [
        '(a) relay',
        fixed(jobsPerSecond(relay), 0),
        '1.00×',
        fixed(cpu.relay),
        fixed(api(relay), 3),
        `${fixed(dynamo(relay))} (${fixed(dynamoWritesPerJob(relay))})`,
        fixed(sqs(relay)),
      ],
      [
        '(b) bare fetch',
        fixed(jobsPerSecond(bare), 0),
        ratio(ratios.relayToFetch),
        fixed(cpu.fetch),
        fixed(api(bare), 3),
        '0',
        '0',
      ],
      [
        '(c) floor: fetch + 2 conditional writes',
        fixed(jobsPerSecond(floor), 0),
        ratio(ratios.relayToFloor),
        fixed(cpu.floor),
        fixed(api(floor), 3),
        `${fixed(dynamo(floor))} (${fixed(dynamoWritesPerJob(floor))})`,
        '0',
      ],
    ],
  );
  lines.push(
    `The relay is polled like Lambda's event source mapping: ${RELAY_POLLERS_PER_INSTANCE} pollers per instance receive batches, a received batch`,
    `waits for the next free instance, and a poller deletes a batch's records after the instance is free again`,
    `(Lambda runs at least five pollers for a queue). The pollers run in a process of their own, as Lambda's run`,
    `outside the function, and hand each batch to the relay's process over an IPC channel: the relay's CPU time is`,
    `its handler's (and the IPC's); the pollers took ${fixed((relay.pollerCpuMs ?? 0) / relay.jobs)} ms per job more. Requests by kind for (a), the pollers'`,
    `included: SQS ${commandCounts(relay.sqs)}; DynamoDB`,
    `${commandCounts(relay.dynamodb)}; Secrets Manager ${commandCounts(relay.secrets) || 'none'} (cached from the warm-up);`,
    `eCourtDate ${relay.ecourtdate.send} sends, ${relay.ecourtdate.token} token requests. Every round:`,
    `(a) ${runs.relay.map((r) => fixed(jobsPerSecond(r.figures), 0)).join(', ')}; (b) ${runs.fetch.map((r) => fixed(jobsPerSecond(r.figures), 0)).join(', ')};`,
    `(c) ${runs.floor.map((r) => fixed(jobsPerSecond(r.figures), 0)).join(', ')} jobs/s.`,
    '',
    `An instance handles one batch at a time (${fixed(relay.handlerMs / relay.invocations, 1)} ms in the handler per batch of`,
    `${fixed(relay.jobs / relay.invocations, 1)} here; ${fixed((relay.seconds * 1000 * options.instances) / relay.invocations, 1)} ms from one batch to the next), and a batch ends with its slowest job, while each`,
    `loop of (b) and (c) starts its next job as soon as one ends. Counting only the handler's time, (a) would run`,
    `${fixed(handlerJobsPerSecond(relay, options.instances), 0)} jobs/s: ${ratio(ratios.handlerToFloor)} the floor (median of the rounds).`,
    '',
    ...webhookLines(input, webhooks, verdict),
    '## X-Ray subsegments (`traceSubsegments`)',
    '',
    'Importing the X-Ray SDK (through Powertools Tracer) installs an `async_hooks` hook (cls-hooked) on every',
    "async resource, and in Lambda even the SDK's manual mode installs it. So the stack deploys without the",
    "SDK: Lambda's active tracing records each invocation, and the Tracer with its subsegments (AWS SDK calls,",
    'requests to eCourtDate) is imported only with the stage setting `traceSubsegments=true`. The relay as',
    'deployed and with the setting on (the Tracer loaded; outside Lambda it records nothing, so in Lambda',
    'subsegments cost more than this); each round runs both:',
    '',
  );
  table(
    ['', 'jobs/s', 'CPU ms per job'],
    [
      ['relay (as deployed: no X-Ray SDK)', fixed(jobsPerSecond(relay), 0), fixed(cpu.relay)],
      ['relay with traceSubsegments=true', fixed(jobsPerSecond(traced), 0), fixed(cpu.relayTraced)],
      [
        'difference (median of the rounds)',
        `${ratios.tracedThroughputChange >= 0 ? '+' : ''}${fixed(ratios.tracedThroughputChange * 100, 1)} % jobs/s`,
        `+${fixed(ratios.xrayHookCpuAdded * 100, 1)} % CPU per job`,
      ],
    ],
  );

  lines.push(`## A batch of ${batchSize} at ${API_LATENCY_MS} ms API latency`, '');
  lines.push(
    `One instance leasing from the shared budget below (the sender's own pacer, on the api-client item in the`,
    'emulated DynamoDB: a lone busy instance gets the whole budget, docs/pacing.md), warmed by 3 batches, receives 3',
    `single jobs and then 5 batches of ${batchSize}, one invocation at a time, each starting as a budget slice (one second)`,
    'begins, so that no batch waits for slots the one before it spent; the medians are reported. "One call" is',
    `the median of 5 bare \`fetch\`es of the same endpoint on an open connection (${production ? fixed(production.figures.oneCallMs, 0) : '?'} ms).`,
    '',
  );
  table(
    ['shared budget', 'batch invocation (ms)', 'single-job invocation (ms)', 'batch ÷ one call'],
    latency.map((l) => [
      l.label,
      fixed(l.figures.batchMs, 0),
      fixed(l.figures.singleJobMs, 0),
      `${ratio(batchRatio(l))}${l.figures.delivered === batchSize ? '' : ` (only ${l.figures.delivered} delivered)`}`,
    ]),
  );

  const projection = model.productionProjection;
  lines.push(
    `These are measured with a whole core. Lambda gives a function a share of a vCPU in proportion to its memory`,
    `(one vCPU at ${LAMBDA_MB_PER_VCPU} MB): at the deployed ${projection.memoryMb} MB, ${fixed(
      projection.vcpuShare,
    )} of one. A batch's CPU time (${batchSize} × ${fixed(cpu.relay)} ms measured in (a)) then`,
    `takes about ${fixed(projection.throttledCpuMs, 0)} ms, so production's measured batch of ${batchSize} would take about`,
    `${fixed(projection.batchMs, 0)} ms on Lambda, ${ratio(
      projection.toOneCall,
    )} one call, if a Graviton core is as fast as this one (a projection, not a measurement).`,
    '',
  );

  lines.push('## Cost per million jobs', '');
  lines.push(
    `AWS list prices in us-east-1, free tiers left out: Lambda arm64 $${PRICE_USD.lambdaArmGbSecond} per GB-s and ${perMillionPrice(PRICE_USD.lambdaRequest)} per million`,
    `requests; SQS standard ${perMillionPrice(PRICE_USD.sqsRequest)} per million requests; DynamoDB on-demand $${fixed(PRICE_USD.dynamoWriteUnit * 1e6, 3)} per million write units and`,
    `$${fixed(PRICE_USD.dynamoReadUnit * 1e6, 3)} per million read units; Secrets Manager ${money(PRICE_USD.secretsManagerCall * 1e4)} per 10,000 calls; CloudWatch Logs ${money(PRICE_USD.logsIngestedGb)} per GB`,
    `ingested; X-Ray ${perMillionPrice(PRICE_USD.xrayTrace)} per million traces. Lambda time is the measured batch invocation at ${API_LATENCY_MS} ms API`,
    'latency; on AWS, DynamoDB and SQS answer in a few ms too. Fixed monthly charges (the secret, alarms,',
    'dashboards, custom metrics) do not grow with jobs and are left out.',
    '',
  );
  for (const { stage, cost: c } of costs) {
    lines.push(
      `### ${stage} (${stages[stage].memorySizeMb} MB, a shared budget of ${stages[stage].requestsPerMinute}/min)`,
      '',
    );
    table(
      ['item', 'per million jobs', 'basis'],
      [
        ...c.lines.map((l) => [l.item, money(l.perMillion), costBasis(l.item, c.basis)]),
        ['**AWS requests and compute**', `**${money(c.awsPerMillion)}**`, ''],
        ...obs.map((l) => [l.item, money(l.perMillion), l.basis]),
        ['**all-in**', `**${money(c.awsPerMillion + obsTotal)}**`, ''],
      ],
    );
    const projected = model.throttledCosts.find((t) => t.stage === stage);
    if (projected) {
      lines.push(
        `With Lambda's CPU share at ${stages[stage].memorySizeMb} MB (projection above) a batch takes about ${fixed(projected.batchMs, 0)} ms:`,
        `Lambda duration ${money(costOf(projected.cost, 'Lambda duration'))}, AWS requests and compute ${money(projected.cost.awsPerMillion)}.`,
        '',
      );
    }
  }

  lines.push(...budgetLines(input, model));
  lines.push(...breakerLines(input, model));
  lines.push(...fairnessLines(input, model));

  lines.push('## Cold start', '');
  lines.push(
    `Bundled with esbuild as the stack bundles the function (ESM, node24, minified, source map beside it), then`,
    `\`await import()\` of the bundle in a fresh Node process, median of ${coldStart.runs}.`,
    '',
  );
  lines.push(
    `Largest parts of the sender's bundle: ${coldStart.sender.largest
      .map((p) => `${p.name} ${(p.bytes / 1024).toFixed(0)} KB`)
      .join(', ')}.`,
    '',
  );
  table(
    ['handler', 'bundle', 'import (ms)'],
    [
      [
        'the sender (functions/sender.ts)',
        `${(coldStart.sender.bytes / 1024).toFixed(0)} KB`,
        fixed(coldStart.sender.importMs, 0),
      ],
      [
        'only the SQS client',
        `${(coldStart.sqsOnly.bytes / 1024).toFixed(0)} KB`,
        fixed(coldStart.sqsOnly.importMs, 0),
      ],
      [
        'ratio',
        ratio(coldStart.sender.bytes / coldStart.sqsOnly.bytes),
        ratio(coldStart.sender.importMs / coldStart.sqsOnly.importMs),
      ],
    ],
  );
  return `${lines.join('\n').trimEnd()}\n`;
}

const percent = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(1)} %` : '—');
const orDash = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '—');

/** The goals rows of the shared budget, the breaker and fairness (docs/pacing.md), the static split beside them. */
function budgetGoalRows(
  input: ReportInput,
  model: BenchModel,
  met: (ok: boolean | undefined) => string,
): string[][] {
  const rows: string[][] = [];
  const b = model.budget;
  if (input.budget.length === 0) {
    rows.push([
      'shared budget (lone share, 429s, DynamoDB cost)',
      '≥ 95 %, 0, ≤ 1 per 20',
      'not run (--skip-pacing)',
      met(undefined),
    ]);
  } else {
    rows.push(
      [
        "a lone busy instance's share of the whole budget (shared budget; static split)",
        '≥ 95 %',
        `${percent(b.loneShare.shared)} (${percent(b.loneShare.static)})`,
        met(b.loneShare.met),
      ],
      [
        `429s, N = 1–5 under uneven load and under churn (shared budget; static split)`,
        '0',
        `${b.rateLimited.shared} (${b.rateLimited.static}); every window within ${ECOURTDATE_LIMIT_PER_MINUTE}: ${
          b.withinLimit.shared ? 'yes' : 'no'
        } (${b.withinLimit.static ? 'yes' : 'no'})`,
        met(b.rateLimited.met && b.withinLimit.shared),
      ],
      [
        'DynamoDB requests to the api-client item per 20 eCourtDate requests, the worst drill',
        '≤ 1',
        fixed(b.itemRequestsPer20Sends.worst),
        met(b.itemRequestsPer20Sends.met),
      ],
    );
  }
  const k = model.breaker;
  rows.push([
    'circuit breaker: time to open (first failed request to open) / to close (end of outage to first delivered job)',
    'opens within a few failed requests',
    k === undefined
      ? 'not run (--skip-pacing)'
      : `${orDash(k.openMs)} ms, ${k.messagesBeforeOpen} message requests met the outage / ${orDash(k.closeSeconds)} s (eCourtDate's)`,
    '—',
  ]);
  const f = model.fairness;
  rows.push([
    `fairness: position of the last of ${input.fairness?.few ?? 5} ${input.fairness?.fewAgency ?? 'county-b'} jobs sent after ${
      input.fairness?.burst ?? 450
    } of ${input.fairness?.burstAgency ?? 'county-a'}`,
    `≤ ${f === undefined ? '¼ of the burst' : orDash(f.quarter, 1)}`,
    f === undefined ? 'not run (--skip-pacing)' : orDash(f.lastFewPosition),
    met(f?.met),
  ]);
  return rows;
}

const SCENARIO_LABEL: Record<BudgetScenario, (d: BudgetDrill) => string> = {
  lone: (d) => `a lone busy instance (1 of ${d.maxConcurrency})`,
  uneven: (d) => `${d.instances} of ${d.maxConcurrency} instances, uneven load`,
  churn: (d) => `${d.instances} of ${d.maxConcurrency} instances, a fresh container every 20 s`,
};

/** The shared budget beside today's static split, one row per drill (docs/pacing.md). */
function budgetLines(input: ReportInput, model: BenchModel): string[] {
  const { options, stages } = input;
  const lines = ['## The shared budget beside the static split', ''];
  if (input.budget.length === 0) return [...lines, 'Not run (`--skip-pacing`).', ''];
  const b = model.budget;
  lines.push(
    `N sender instances (local/pacing-drill.ts: the real handler, Lambda's event source mapping, a backlog larger`,
    `than the span can take) against the simulator enforcing ${ECOURTDATE_LIMIT_PER_MINUTE} requests per API client in any minute (sliding`,
    `window), TIME_SCALE ${options.timeScale}: a minute lasts ${fixed(60 / options.timeScale, 1)} s. Each drill runs twice: with the shared budget (the`,
    `stage's ${stages.staging.requestsPerMinute}/min leased from the api-client item) and with today's static split (each container paces`,
    `floor(${stages.staging.requestsPerMinute} / maxConcurrency) with a pacer of its own: ${stages.production.maxConcurrency} is production's maxConcurrency, ${stages.staging.maxConcurrency} staging's).`,
    'Share: requests in the first two minutes from the first one, over twice the budget. Uneven load: every',
    'instance but the first holds each batch half a (scaled) second. Churn: a fresh container (empty caches, an',
    'empty pacing log) replaces one every 20 (scaled) seconds. DynamoDB: every request to the api-client item',
    "(leases, the breaker's reads), per 20 eCourtDate requests (token and send).",
    '',
  );
  const cells = (d: BudgetDrill, which: 'shared' | 'static') => {
    const f = drillFigures(d[which]);
    return [
      percent(f.share),
      `${f.busiestWindow}${f.withinLimit ? '' : ' (over)'}`,
      String(f.rateLimited),
      fixed(f.itemRequestsPer20Sends),
    ];
  };
  lines.push(
    ...markdownTable(
      [
        'drill',
        'share: shared',
        'busiest minute',
        '429s',
        'DynamoDB per 20 sends',
        'share: static split',
        'busiest minute',
        '429s',
        'DynamoDB per 20 sends',
      ],
      input.budget.map((d) => [
        `${SCENARIO_LABEL[d.scenario](d)}${d.static.staticSharePerMinute === undefined ? '' : `, static ${d.static.staticSharePerMinute}/min each`}`,
        ...cells(d, 'shared'),
        ...cells(d, 'static'),
      ]),
    ),
  );
  lines.push(
    `Goals (shared budget): a lone busy instance ≥ 95 % of the budget (${percent(b.loneShare.shared)}; the static split ${percent(
      b.loneShare.static,
    )}), 0 × 429 (${b.rateLimited.shared}; the static split ${b.rateLimited.static}), at most 1 DynamoDB request per 20 sends (worst ${fixed(
      b.itemRequestsPer20Sends.worst,
    )}).`,
    `Replaced containers: ${input.budget
      .filter((d) => d.scenario === 'churn')
      .map((d) => `${d.shared.replacedContainers} (shared), ${d.static.replacedContainers} (static)`)
      .join('; ')}.`,
    '',
  );
  return lines;
}

/** The circuit breaker's times in the outage drill (docs/pacing.md, "The circuit breaker"). */
function breakerLines(input: ReportInput, model: BenchModel): string[] {
  const lines = ['## The circuit breaker: time to open and to close', ''];
  const k = model.breaker;
  const drill = input.breaker;
  if (k === undefined || drill === undefined) return [...lines, 'Not run (`--skip-pacing`).', ''];
  lines.push(
    `The pacing drill with ${drill.instances} instances on the shared budget and a backlog, TIME_SCALE ${k.timeScale}, and a`,
    `${fixed(k.outageSeconds / 3600, 1)}-hour outage of 503s (no Retry-After) scheduled in the simulator a moment after the first request. Time to`,
    'open: from the first request that failed to the first sender logging the breaker open (its write to the',
    'api-client item done), real ms: round trips, not scaled. Time to close: from the end of the outage to the',
    "first job delivered after it, in eCourtDate's seconds (the time scale undone): the probe schedule (60, 120,",
    '240, 480, then every 600 s) rules it.',
    '',
  );
  lines.push(
    ...markdownTable(
      ['figure', 'this run'],
      [
        ['time to open (first failed request → breaker open)', `${orDash(k.openMs)} ms`],
        ['message requests that met the outage before it opened', String(k.messagesBeforeOpen)],
        [
          'time to close (end of outage → first delivered job)',
          `${orDash(k.closeSeconds)} s (the probe schedule alone: next probe ${orDash(k.scheduleSeconds)} s after the end)`,
        ],
        [
          'requests eCourtDate saw during the outage (of them GET /v1/settings)',
          `${k.requestsDuring} (${k.probesDuring})`,
        ],
      ],
    ),
  );
  return lines;
}

/** One agency's burst beside a few jobs of another (docs/pacing.md, "Fairness"). */
function fairnessLines(input: ReportInput, model: BenchModel): string[] {
  const lines = ["## Fairness: one agency's burst beside a few jobs of another", ''];
  const run = input.fairness;
  const f = model.fairness;
  if (run === undefined || f === undefined) return [...lines, 'Not run (`--skip-pacing`).', ''];
  lines.push(
    `${run.burst} jobs of ${run.burstAgency}, then ${run.few} of ${run.fewAgency}, on the fair send queue (each job's agency as its`,
    'MessageGroupId), 3 instances of the real sender, pacing out of the way, as test/integration/fairness.test.ts',
    `runs it. The last of ${run.fewAgency}'s jobs was message request number ${orDash(f.lastFewPosition)} of ${run.served.length}; the goal is the first`,
    `quarter of the burst (≤ ${fixed(f.quarter, 1)}): ${f.met ? 'met' : 'NOT MET'}.`,
    '',
  );
  return lines;
}

/** The goal row's verdict on the uuid lookup's extra write units (docs/webhooks.md). */
function webhookVerdict(w: WebhookComparison): string {
  const uuidBytes = w.on.largestItemBytesByKind?.['uuid#'];
  return `${signed(w.extraUnits)} with webhooks on (${signed(w.extraPuts)} PutItem of an index item of ${
    uuidBytes ?? '?'
  } bytes); ${w.offIndexWrites} index writes with webhooks off${w.within ? '' : ' — MORE than the goal allows'}`;
}

/**
 * The side by side of the relay with webhooks off and on (docs/webhooks.md): DynamoDB requests and write units per
 * delivered job, jobs/s and the cost per million jobs at each stage's memory size, then the receiver's estimate.
 */
function webhookLines(input: ReportInput, w: WebhookComparison, verdict: string): string[] {
  const { runs, stages } = input;
  const batchSize = stages.staging.batchSize;
  const { off, on } = w;
  const largest = (f: WorkloadFigures, kind: string) => {
    const bytes = f.largestItemBytesByKind?.[kind];
    return bytes === undefined ? '—' : `${bytes}`;
  };
  const lines: string[] = [];
  const table = (header: string[], rows: string[][]) => lines.push(...markdownTable(header, rows));
  lines.push(
    '## Webhooks off and on',
    '',
    "With `WEBHOOKS_ENABLED=true` the sender writes a small index item, `uuid#<the 201's uuid>` → the job id, for",
    "each delivered job, after the settle write, so that the webhook receiver can tie eCourtDate's status updates",
    'to the job (docs/webhooks.md). The relay as in (a), run again in each round with webhooks on: the same job',
    'bodies (ids of the same length, new to the simulator), the same emulators, a fresh queue and table. Write',
    'and read units are what DynamoDB reports for each request (`ReturnConsumedCapacity`; dynalite sizes items as',
    'DynamoDB does: one write unit per KB of the larger of the item before and after the write); delivered jobs',
    "are counted in the ledger after the run. Figures from each setting's best round.",
    '',
  );
  const row = (label: string, a: string, b: string, d: string) => [label, a, b, d];
  table(
    ['per delivered job', 'webhooks off', 'webhooks on', 'on − off'],
    [
      row(
        'jobs/s (best of the rounds)',
        fixed(jobsPerSecond(off), 0),
        fixed(jobsPerSecond(on), 0),
        `${signed((w.ratioOnOff - 1) * 100, 1)} % (median of the rounds' on ÷ off)`,
      ),
      row(`delivered jobs (of ${off.jobs})`, String(w.delivered.off), String(w.delivered.on), ''),
      row(
        'DynamoDB requests',
        fixed(w.dynamoRequests.off),
        fixed(w.dynamoRequests.on),
        signed(w.dynamoRequests.on - w.dynamoRequests.off),
      ),
      ...w.byKey.map(({ key, off: a, on: b }) => row(`… ${key}`, fixed(a), fixed(b), signed(b - a))),
      row('write units', fixed(w.writeUnits.off), fixed(w.writeUnits.on), signed(w.extraUnits)),
      row(
        'read units',
        fixed(w.readUnits.off),
        fixed(w.readUnits.on),
        signed(w.readUnits.on - w.readUnits.off),
      ),
      row(
        'largest item after the run, bytes: job# / uuid#',
        `${largest(off, 'job#')} / ${largest(off, 'uuid#')}`,
        `${largest(on, 'job#')} / ${largest(on, 'uuid#')}`,
        '',
      ),
      row('delivered jobs with an index item', String(off.uuidIndexed ?? 0), String(on.uuidIndexed ?? 0), ''),
      ...w.costs.flatMap(({ stage, aws, allIn }) => [
        row(
          `AWS cost per million jobs, ${stage} (${stages[stage].memorySizeMb} MB)`,
          money(aws.off),
          money(aws.on),
          signedMoney(aws.on, aws.off),
        ),
        row(
          `… all-in (+ logs and X-Ray), ${stage}`,
          money(allIn.off),
          money(allIn.on),
          signedMoney(allIn.on, allIn.off),
        ),
      ]),
    ],
  );
  lines.push(
    `docs/webhooks.md allows a lookup by eCourtDate uuid at most one extra write unit per delivered job, and only with`,
    `webhooks on. This run: ${verdict}${w.within ? ', within it' : ''}. Exact counts: PutItem ${w.puts.on} for ${w.delivered.on} delivered`,
    `jobs with webhooks on, ${w.puts.off} for ${w.delivered.off} with webhooks off. Every round, jobs/s off: ${runs.relay
      .map((r) => fixed(jobsPerSecond(r.figures), 0))
      .join(', ')}; on: ${runs.relayWebhooks.map((r) => fixed(jobsPerSecond(r.figures), 0)).join(', ')}.`,
    `The costs use the same prices and method as "Cost per million jobs" below; with webhooks on, Lambda time is`,
    `a batch of ${batchSize} measured with webhooks on (production's budget: ${w.onProductionBatch ? fixed(w.onProductionBatch.batchMs, 0) : '?'} ms), DynamoDB writes ${
      w.onProduction ? money(costOf(w.onProduction, 'DynamoDB writes')) : '?'
    } per million jobs.`,
    '',
  );
  lines.push(...receiverLines(w.receiver));
  return lines;
}

/** What each of the receiver's cost items is priced from. */
const RECEIVER_BASIS: Record<ReceiverCost['items'][number]['item'], string> = {
  'API Gateway HTTP API': '1 request (up to 512 KB)',
  'Lambda requests': '1 invocation',
  'Lambda duration': `${RECEIVER_MEMORY_MB} MB arm64, ${RECEIVER_ASSUMED_MS} ms assumed (not measured)`,
  'DynamoDB writes':
    "3 write units: the conditional PutItem of the dedupe claim, the UpdateItem of the job's delivery status, the UpdateItem that marks the delivery done; each 1 unit while its item is under 1 KB",
  'DynamoDB reads': "2 strongly consistent GetItems: the uuid# index item, then the job's entry (under 4 KB)",
  'EventBridge PutEvents':
    "1 request of 2 entries: the kind's event and `eCourtDate Job Delivery Status` (each under 64 KB)",
};

/** The webhook receiver's cost per status update, labelled an estimate (the bench does not drive the receiver). */
function receiverLines(r: ReceiverCost): string[] {
  return [
    '### The webhook receiver, per status update (an estimate, not a measurement)',
    '',
    'Estimated from the operations the receiver makes (shared/webhook/receiver.ts) for an outbound status update of a relay job,',
    `delivered once, at list prices (API Gateway HTTP API ${money(PRICE_USD.httpApiRequest * 1e6)} per million requests; EventBridge ${money(PRICE_USD.eventBridgeEvent * 1e6)} per million`,
    `events put; the rest as below). The bench does not drive the receiver; Lambda time is assumed.`,
    '',
    '| item | per million status updates | basis |',
    '|---|---|---|',
    ...r.items.map((l) => `| ${l.item} | ${money(l.perMillion)} | ${RECEIVER_BASIS[l.item]} |`),
    `| **estimate** | **${money(r.perMillion)}** | |`,
    '',
    `A job's entry grows with its history: from the ${r.jobBytes} bytes measured above, at about 125 bytes of delivery`,
    `attributes and 150 per update, the status write stays 1 unit for the first ${r.updatesUnderOneKb} update(s) and then costs 2 or more`,
    `(the history keeps 20). A repeated delivery costs the failed conditional PutItem (1 write unit) and one read; an update`,
    `for a message the relay did not send, one read and one entry less. eCourtDate decides how many updates a message`,
    `gets; at two (sent, delivered) the receiver costs about ${money(2 * r.perMillion)} per million jobs, CloudWatch`,
    `Logs (one line per request) and X-Ray left out.`,
    '',
  ];
}
