import { App } from 'aws-cdk-lib';
import { stageSettings } from '#infra/config.ts';
import { buildRelayApp } from '#infra/relay-app.ts';
import { UnknownSettingError } from '#infra/setting-table.ts';
import { ConfigError } from '#shared/errors.ts';

// `npx cdk synth|deploy -c stage=staging|production`; cdk.json runs this file with tsx. Each stage's settings are
// committed in cdk.json "stages"; `-c name=value` overrides one for one deploy (docs/deploy.md, "Stage settings").
const app = new App();
try {
  const { stage, overridden } = stageSettings(app.node.getAllContext());
  // Names only: a value may be an integration URL or an address.
  if (overridden.length > 0) {
    console.error(
      `Settings given with -c (or at the top of cdk.json "context") override cdk.json "stages" > "${stage}" ` +
        `for this deploy only: ${overridden.join(', ')}`,
    );
  }
  buildRelayApp(app);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  const chosen = app.node.getAllContext().stage;
  const stage = typeof chosen === 'string' && chosen !== '' ? chosen : '<stage>';
  // A bad setting is the operator's to fix: say which and how, without a stack trace.
  if (error instanceof UnknownSettingError) {
    console.error(
      `Invalid setting ${error.message}\n(fix or remove "${error.variable}" where it is given: cdk.json "context", ` +
        `its "stages" map, or a -c option; docs/deploy.md, "Stage settings")`,
    );
    process.exit(1);
  }
  console.error(
    `Invalid setting ${error.message}\n(set it in cdk.json "context" > "stages" > "${stage}" > "${error.variable}", ` +
      `or for one deploy with -c ${error.variable}=...; docs/deploy.md, "Stage settings")`,
  );
  process.exit(1);
}
app.synth();
