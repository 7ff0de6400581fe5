import { Annotations, type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadStageConfig, ON_CALL_SETTINGS, requireOnCallDestination } from '#infra/config.ts';
import { RelayStack } from '#infra/stacks/relay-stack.ts';

/**
 * Adds the relay stack for the stage chosen in the app's context (`-c stage=...`), built from that stage's
 * settings (cdk.json "stages" map, `-c` on top; docs/deploy.md, "Stage settings"), and the cdk-nag AwsSolutions
 * checks, which fail the synth on any finding that is not acknowledged with a reason. Throws `ConfigError` for
 * a bad setting, or a production stage without an on-call destination (docs/deploy.md, "On-call").
 *
 * @example
 * const app = new App({ context: { stage: 'staging' } });
 * buildRelayApp(app);
 * app.synth();
 */
export function buildRelayApp(app: App): RelayStack {
  const config = loadStageConfig(app.node.getAllContext());
  requireOnCallDestination(config);
  const stack = new RelayStack(app, config.stackName, { config });
  if (!ON_CALL_SETTINGS.some((setting) => config[setting] !== undefined)) {
    // Allowed outside production, but said at every synth: nobody hears this stage's alarms.
    Annotations.of(stack).addWarningV2(
      'ecourtdate-relay:no-on-call-destination',
      `${config.stage} has no on-call destination: its alarms notify a topic nobody is subscribed to. Set ` +
        `${ON_CALL_SETTINGS.join(', ')} in cdk.json "context" > "stages" > "${config.stage}" (docs/deploy.md, "On-call")`,
    );
  }
  // Acknowledged findings are copied into the template's metadata, so reviewers see each reason there too.
  Validations.of(app).addPlugins(
    new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }),
  );
  return stack;
}
