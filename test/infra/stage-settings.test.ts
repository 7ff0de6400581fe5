/**
 * Per-stage settings committed in cdk.json's "stages" map, `-c` overrides on top of them, and production's
 * on-call destinations (docs/deploy.md, "Stage settings" and "On-call").
 */
import { Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { loadStageConfig, requireOnCallDestination, stageSettings } from '#infra/config.ts';
import { UnknownSettingError } from '#infra/setting-table.ts';
import { ConfigError } from '#shared/errors.ts';
import { onlyResource, synthRelay } from '#test/helpers/infra.ts';

/** Runs `load` and returns the ConfigError it must raise; fails the test if it raises none. */
function configErrorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but the configuration was accepted');
}

const maximumConcurrency = (template: Template) =>
  (
    onlyResource(template, 'AWS::Lambda::EventSourceMapping').properties.ScalingConfig as {
      MaximumConcurrency: number;
    }
  ).MaximumConcurrency;

const PAGERDUTY_URL = 'https://events.pagerduty.com/integration/0123456789abcdef0123456789abcdef/enqueue';
const CHATBOT_TOPIC = 'arn:aws:sns:us-east-1:123456789012:court-chatbot-alerts';

describe('the "stages" map', () => {
  const stages = {
    staging: { maxConcurrency: 3 },
    production: { maxConcurrency: 8, onCallEmail: 'a@b.example' },
  };

  it('gives a stage the settings of its own entry', () => {
    expect(loadStageConfig({ stage: 'production', stages })).toMatchObject({
      maxConcurrency: 8,
      onCallEmail: 'a@b.example',
    });
  });

  it('leaves the other stage to its own entry and defaults', () => {
    expect(loadStageConfig({ stage: 'staging', stages })).toMatchObject({
      maxConcurrency: 3,
      onCallEmail: undefined,
    });
  });

  it('lets a top-level (-c) setting win over the stage entry, and names it as overridden', () => {
    const context = { stage: 'production', maxConcurrency: '10', stages };
    expect(loadStageConfig(context).maxConcurrency).toBe(10);
    expect(stageSettings(context).overridden).toEqual(['maxConcurrency']);
  });

  it('reads the webhook settings from the stage entry too', () => {
    const config = loadStageConfig({ stage: 'staging', stages: { staging: { webhooks: true } } });
    expect(config.webhook.enabled).toBe(true);
  });

  it('refuses an unknown setting in a stage entry, naming it with a did-you-mean', () => {
    const error = configErrorOf(() =>
      loadStageConfig({ stage: 'staging', stages: { production: { maxConcurency: 8 } } }),
    );
    expect(error.variable).toBe('maxConcurency');
    expect(error.message).toMatch(/cdk.json "stages.production".*did you mean maxConcurrency\?/);
  });

  it('refuses an unknown -c setting with a did-you-mean', () => {
    const error = configErrorOf(() => loadStageConfig({ stage: 'staging', onCallEmial: 'a@b.example' }));
    expect(error.message).toMatch(/did you mean onCallEmail\?/);
  });

  it.each(['MaxConcurrency', 'max_concurrency', 'MAXCONCURRENCY'])(
    'refuses a -c setting however it is cased or spelled (%s), with a did-you-mean',
    (name) => {
      const error = configErrorOf(() => loadStageConfig({ stage: 'staging', [name]: '3' }));
      expect(error).toBeInstanceOf(UnknownSettingError);
      expect(error.message).toMatch(/did you mean maxConcurrency\?/);
    },
  );

  it("leaves CDK's own context keys alone", () => {
    expect(() =>
      loadStageConfig({
        stage: 'staging',
        '@aws-cdk/core:newStyleStackSynthesis': true,
        'aws:cdk:bundling-stacks': [],
        'acknowledged-issue-numbers': [32775],
      }),
    ).not.toThrow();
  });

  it('refuses an entry for a stage that does not exist, naming the closest stage', () => {
    const error = configErrorOf(() => loadStageConfig({ stage: 'staging', stages: { prodcution: {} } }));
    expect(error.variable).toBe('stages.prodcution');
    expect(error.message).toMatch(/did you mean production\?/);
  });

  it('refuses the stage itself inside a stage entry', () => {
    const error = configErrorOf(() =>
      loadStageConfig({ stage: 'staging', stages: { staging: { stage: 'production' } } }),
    );
    expect(error.variable).toBe('stages.staging.stage');
  });

  it('refuses a map that is not an object of stages', () => {
    expect(configErrorOf(() => loadStageConfig({ stage: 'staging', stages: ['staging'] })).variable).toBe(
      'stages',
    );
  });
});

describe('the "stages" map in the synthesised templates', () => {
  const stages = { production: { maxConcurrency: 8, onCallEmail: 'oncall@court.example' } };

  it('reaches the template of its stage', () => {
    expect(maximumConcurrency(synthRelay({ stage: 'production', stages }).template)).toBe(8);
  });

  it('leaves the other stage’s template at its default', () => {
    expect(maximumConcurrency(synthRelay({ stage: 'staging', stages }).template)).toBe(2);
  });

  it('yields to a -c override', () => {
    const { template } = synthRelay({ stage: 'production', stages, maxConcurrency: '12' });
    expect(maximumConcurrency(template)).toBe(12);
  });
});

describe('on-call destinations', () => {
  it('refuses to synthesise production without one, naming the setting and where to commit it', () => {
    const error = configErrorOf(() => synthRelay({ stage: 'production' }));
    expect(error.variable).toBe('onCallEmail');
    expect(error.message).toMatch(/onCallEmail, onCallHttpsEndpoint, onCallTopicArn/);
    expect(error.message).toMatch(/cdk.json "context" > "stages" > "production"/);
  });

  it('synthesises staging without one, with a warning that its alarms page nobody', () => {
    const warnings = (context: Record<string, string>) =>
      Annotations.fromStack(synthRelay(context).stack)
        .findWarning('*', Match.stringLikeRegexp('no on-call destination'))
        .map((found) => String(found.entry.data));
    expect(warnings({ stage: 'staging' })).toEqual([
      expect.stringContaining(
        'staging has no on-call destination: its alarms notify a topic nobody is subscribed',
      ),
    ]);
    expect(warnings({ stage: 'staging', onCallEmail: 'oncall@court.example' })).toEqual([]);
  });

  it.each([
    ['onCallEmail', 'oncall@court.example'],
    ['onCallHttpsEndpoint', PAGERDUTY_URL],
    ['onCallTopicArn', CHATBOT_TOPIC],
  ])('accepts %s alone as production’s destination', (setting, value) => {
    expect(() =>
      requireOnCallDestination(loadStageConfig({ stage: 'production', [setting]: value })),
    ).not.toThrow();
  });

  it('subscribes the HTTPS endpoint to the on-call topic', () => {
    const { template } = synthRelay({ stage: 'production', onCallHttpsEndpoint: PAGERDUTY_URL });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'https', Endpoint: PAGERDUTY_URL });
  });

  it('refuses an HTTPS endpoint that is not https://, without repeating the URL', () => {
    const url = 'http://events.pagerduty.com/integration/0123456789abcdef0123456789abcdef/enqueue';
    const error = configErrorOf(() => loadStageConfig({ stage: 'staging', onCallHttpsEndpoint: url }));
    expect(error.variable).toBe('onCallHttpsEndpoint');
    expect(error.message).toMatch(/expected an https:\/\/ URL/);
    expect(error.message).not.toContain('0123456789abcdef');
  });

  it('has every alarm notify the existing topic too, on ALARM and on OK, webhook alarms included', () => {
    const { template } = synthRelay({ stage: 'production', onCallTopicArn: CHATBOT_TOPIC, webhooks: 'true' });
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as {
      Properties: { AlarmActions: unknown[]; OKActions: unknown[] };
    }[];
    expect(alarms.length).toBeGreaterThan(10);
    for (const { Properties } of alarms) {
      expect(Properties.AlarmActions).toContain(CHATBOT_TOPIC);
      expect(Properties.OKActions).toContain(CHATBOT_TOPIC);
    }
  });

  it.each([
    'arn:aws:sns:us-east-1:123456789012',
    'arn:aws:sqs:us-east-1:123456789012:court-alerts',
    'court-chatbot-alerts',
  ])('refuses %s as an SNS topic ARN', (value) => {
    const error = configErrorOf(() => loadStageConfig({ stage: 'staging', onCallTopicArn: value }));
    expect(error.variable).toBe('onCallTopicArn');
    expect(error.message).toMatch(/expected the ARN of a standard SNS topic/);
  });
});
