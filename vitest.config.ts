import { defineConfig } from 'vitest/config';
import { disableDefaultColors } from 'vitest/node';

// Vitest colours its output even when stdout is a pipe or a file (its colour library no longer asks whether stdout
// is a terminal): `npm test | cat`, `> test.log` and CI logs get plain text; a terminal keeps its colours.
// `FORCE_TTY=false` tells the test workers the same; FORCE_COLOR still forces colours.
if (!process.stdout.isTTY && !('FORCE_COLOR' in process.env)) {
  disableDefaultColors();
  process.env.FORCE_TTY ??= 'false';
}

/**
 * Files that measure time as Lambda and SQS would (a pacer's minute, a function timeout, a scaled chaos run,
 * whole local runs): they run one at a time, after the rest, so that no other file's load is taken for the
 * relay's. Every other file runs two at a time (CI has 2 cores; vitest's default there is one).
 */
const timing = [
  'test/chaos/**/*.test.ts',
  'test/integration/pacing.test.ts',
  'test/integration/outage.test.ts',
  // The two-hour outage drill counts which jobs met the outage on a clock that also runs with real time.
  'test/integration/drills.test.ts',
  'test/integration/bundle.e2e.test.ts',
  'test/local/start.e2e.test.ts',
  'test/local/interrupt.e2e.test.ts',
];

export default defineConfig({
  test: {
    environment: 'node',
    // Integration tests start emulators on loopback; 2-core CI machines are slow to bundle CDK assets.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // fauxqs uses node:sqlite, which warns on every import that it is experimental.
    execArgv: ['--disable-warning=ExperimentalWarning'],
    reporters: ['default'],
    // The sender logs a JSON line per attempt: shown for failing tests, held back for passing ones.
    silent: 'passed-only',
    env: {
      // Powertools writes through `console` in dev mode, which vitest can hold back; metrics stay on.
      POWERTOOLS_DEV: 'true',
      POWERTOOLS_METRICS_DISABLED: 'false',
      POWERTOOLS_TRACE_ENABLED: 'false',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    },
    projects: [
      {
        extends: true,
        test: {
          name: 'parallel',
          include: ['test/**/*.test.ts'],
          exclude: timing,
          maxWorkers: 2,
          // Each worker runs its files in one process, as vitest's own diagnostics advise (about 45 s less on 2
          // cores), so a file here must restore what it changes: fake timers, environment variables, module state.
          isolate: false,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'timing', include: timing, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
