/**
 * Cold start figures of the sender: the size of its bundle, built with esbuild the way the stack's
 * NodejsFunction builds it (infra/constructs/relay-function.ts), and how long importing that bundle takes in a
 * fresh Node process, against a handler that only imports the SQS client (bench/cold-start/sqs-only.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { median } from './model.ts';

const ROOT = resolve(import.meta.dirname, '..');

export interface BundleFigures {
  /** Bytes of the bundle, without its source map. */
  readonly bytes: number;
  /** The packages (or top-level folders of this project) that take the most bytes of it, largest first. */
  readonly largest: readonly { readonly name: string; readonly bytes: number }[];
  /** Median time of `await import(bundle)` in a fresh process, ms. */
  readonly importMs: number;
}

export interface ColdStartFigures {
  readonly sender: BundleFigures;
  readonly sqsOnly: BundleFigures;
  readonly runs: number;
}

/** The environment the sender reads at import; nothing is called. */
const SENDER_ENV = {
  AWS_REGION: 'us-east-1',
  ECOURTDATE_BASE_URL: 'https://staging.api.ecourtdate.com',
  ECOURTDATE_SECRET_ID: 'ecourtdate-relay/staging/api-credentials',
  SEND_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/send',
  DEAD_LETTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/dead-letter',
  LEDGER_TABLE_NAME: 'ledger',
  // As the stack sets them (infra/constructs/relay-function.ts), X-Ray subsegments off by default.
  NODE_OPTIONS: '--enable-source-maps',
  POWERTOOLS_TRACE_ENABLED: 'false',
};

/** Bundles `entry` with the stack's esbuild options into `outDir`/index.mjs. */
async function bundle(
  entry: string,
  outDir: string,
): Promise<{ file: string; largest: BundleFigures['largest'] }> {
  const outfile = join(outDir, 'index.mjs');
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    mainFields: ['module', 'main'],
    minify: true,
    sourcemap: true,
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    logLevel: 'silent',
    metafile: true,
  });
  const bytesBy = new Map<string, number>();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? input.split('/')[0] ?? input;
      bytesBy.set(name, (bytesBy.get(name) ?? 0) + bytesInOutput);
    }
  }
  const largest = [...bytesBy]
    .sort(([, a], [, b]) => b - a)
    .slice(0, 5)
    .map(([name, bytes]) => ({ name, bytes }));
  return { file: outfile, largest };
}

/** Milliseconds `await import(file)` takes in a fresh Node process. */
function importOnce(file: string): Promise<number> {
  const script = `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); process.stdout.write(String(performance.now() - t));`;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH ?? '', ...SENDER_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(out);
      if (code === 0 && Number.isFinite(ms)) resolvePromise(ms);
      else reject(new Error(`importing ${file} failed (exit ${code}): ${err.slice(0, 500)}`));
    });
  });
}

/**
 * Bundles both handlers and imports each `runs` times, alternating, each in a fresh process.
 * Throws when a bundle fails to build or to import.
 */
export async function measureColdStart(runs = 9): Promise<ColdStartFigures> {
  const dir = await mkdtemp(join(tmpdir(), 'ecourtdate-bench-'));
  try {
    const sender = await bundle(join(ROOT, 'functions', 'sender.ts'), join(dir, 'sender'));
    const sqsOnly = await bundle(join(ROOT, 'bench', 'cold-start', 'sqs-only.ts'), join(dir, 'sqs-only'));
    const times = { sender: [] as number[], sqsOnly: [] as number[] };
    for (let i = 0; i < runs; i++) {
      times.sender.push(await importOnce(sender.file));
      times.sqsOnly.push(await importOnce(sqsOnly.file));
    }
    return {
      sender: {
        bytes: (await stat(sender.file)).size,
        largest: sender.largest,
        importMs: median(times.sender),
      },
      sqsOnly: {
        bytes: (await stat(sqsOnly.file)).size,
        largest: sqsOnly.largest,
        importMs: median(times.sqsOnly),
      },
      runs,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
