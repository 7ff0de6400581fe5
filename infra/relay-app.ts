import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadStageConfig } from '#infra/config.ts';
import { RelayStack } from '#infra/stacks/relay-stack.ts';

/**
 * Adds the relay stack for the stage chosen in the app's context (`-c stage=...`) and the cdk-nag AwsSolutions
 * checks, which fail the synth on any finding that is not acknowledged with a reason.
 *
 * @example
 * const app = new App({ context: { stage: 'staging' } });
 * buildRelayApp(app);
 * app.synth();
 */
export function buildRelayApp(app: App): RelayStack {
  const config = loadStageConfig(app.node.getAllContext());
  const stack = new RelayStack(app, config.stackName, { config });
  // Acknowledged findings are copied into the template's metadata, so reviewers see each reason there too.
  Validations.of(app).addPlugins(
    new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }),
  );
  return stack;
}
