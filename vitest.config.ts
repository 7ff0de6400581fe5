import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
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
  },
});
