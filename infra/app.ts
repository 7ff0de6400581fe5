import { App } from 'aws-cdk-lib';
import { buildRelayApp } from '#infra/relay-app.ts';
import { ConfigError } from '#shared/errors.ts';

// `npx cdk synth|deploy -c stage=staging|production`; cdk.json runs this file with tsx.
const app = new App();
try {
  buildRelayApp(app);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  // A bad setting is the operator's to fix: say which and how, without a stack trace.
  console.error(
    `Invalid setting ${error.message}\n(set with -c ${error.variable}=... or in cdk.json "context")`,
  );
  process.exit(1);
}
app.synth();
