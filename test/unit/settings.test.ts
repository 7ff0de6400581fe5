import { describe, expect, it } from 'vitest';
import { loadStageConfig } from '#infra/config.ts';
import { loadSenderConfig } from '#shared/config.ts';
import { ConfigError } from '#shared/errors.ts';
import { settingsReader } from '#shared/settings.ts';

/** Runs `read` and returns the ConfigError it must raise; fails the test if it raises none. */
function configErrorOf(read: () => unknown): ConfigError {
  try {
    read();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but the value was accepted');
}

const bounds = { min: 1, max: 10 };

describe('settingsReader', () => {
  describe('text', () => {
    it('trims the value', () => {
      expect(settingsReader({ NAME: '  court-a  ' }).text('NAME')).toBe('court-a');
    });

    it.each([undefined, null, '', '   '])('treats %j as not set', (raw) => {
      expect(settingsReader({ NAME: raw }).text('NAME')).toBeUndefined();
    });

    it('reads a JSON number as its text', () => {
      expect(settingsReader({ NAME: 42 }).text('NAME')).toBe('42');
    });

    it('refuses a list or an object, naming the setting', () => {
      const error = configErrorOf(() => settingsReader({ NAME: { value: 1 } }).text('NAME'));
      expect(error.message).toBe('NAME: expected a single value, got {"value":1}');
    });
  });

  it('requiredText refuses a blank value as not set', () => {
    expect(configErrorOf(() => settingsReader({ NAME: ' ' }).requiredText('NAME')).message).toBe(
      'NAME: is required but not set',
    );
  });

  describe('flag', () => {
    it('reads a JSON boolean and the text in any case', () => {
      const read = settingsReader({ A: true, B: ' FALSE ', C: 'True' });
      expect([read.flag('A', false), read.flag('B', true), read.flag('C', false)]).toEqual([
        true,
        false,
        true,
      ]);
    });

    it('falls back when not set', () => {
      expect(settingsReader({ A: '' }).flag('A', true)).toBe(true);
    });

    it('refuses anything else', () => {
      expect(configErrorOf(() => settingsReader({ A: 'yes' }).flag('A', false)).message).toBe(
        'A: expected true or false, got "yes"',
      );
    });
  });

  describe('number', () => {
    it('reads a string and a JSON number alike', () => {
      expect(settingsReader({ A: ' 7 ', B: 7 }).number('A', 1, bounds)).toBe(7);
      expect(settingsReader({ A: ' 7 ', B: 7 }).number('B', 1, bounds)).toBe(7);
    });

    it('falls back when not set', () => {
      expect(settingsReader({}).number('A', 3, bounds)).toBe(3);
    });

    it('refuses a fraction unless the bounds allow one', () => {
      expect(configErrorOf(() => settingsReader({ A: '2.5' }).number('A', 1, bounds)).message).toBe(
        'A: expected a whole number, got "2.5"',
      );
      expect(settingsReader({ A: '2.5' }).number('A', 1, { ...bounds, integer: false })).toBe(2.5);
    });

    it.each(['ten', 'Infinity', 'NaN', '10s', '0x10', '1e1', '0b11', '0o7', '+-1'])(
      'refuses %j as not a number',
      (raw) => {
        expect(configErrorOf(() => settingsReader({ A: raw }).number('A', 1, bounds)).message).toBe(
          `A: expected a whole number, got "${raw}"`,
        );
      },
    );

    it('refuses a value outside the bounds, quoting them', () => {
      expect(configErrorOf(() => settingsReader({ A: '11' }).number('A', 1, bounds)).message).toBe(
        'A: expected a value from 1 to 10, got 11',
      );
    });
  });

  describe('list', () => {
    it('splits a comma-separated string, trimming items and dropping blank ones', () => {
      expect(settingsReader({ L: ' a, b ,, c ' }).list('L')).toEqual(['a', 'b', 'c']);
    });

    it('reads a JSON array', () => {
      expect(settingsReader({ L: ['a', ' b '] }).list('L')).toEqual(['a', 'b']);
    });

    it('is undefined when not set', () => {
      expect(settingsReader({ L: '' }).list('L')).toBeUndefined();
    });
  });

  describe('numberList', () => {
    it('reads a comma-separated string and a JSON array alike', () => {
      expect(settingsReader({ L: '1, 2' }).numberList('L', [], bounds)).toEqual([1, 2]);
      expect(settingsReader({ L: [1, '2'] }).numberList('L', [], bounds)).toEqual([1, 2]);
    });

    it('returns a copy of the fallback when not set', () => {
      const fallback = [1, 2] as const;
      const values = settingsReader({}).numberList('L', fallback, bounds);

      expect(values).toEqual([1, 2]);
      expect(values).not.toBe(fallback);
    });

    // An empty item is a typo, not a 0 s step (Number('') is 0).
    it.each(['1,,2', '1,2,', '1,x', '0', '11', '1.5'])('refuses %j, quoting the bounds', (raw) => {
      expect(configErrorOf(() => settingsReader({ L: raw }).numberList('L', [], bounds)).message).toBe(
        `L: expected a comma-separated list of whole numbers from 1 to 10, got "${raw}"`,
      );
    });

    it('refuses an empty JSON array', () => {
      expect(configErrorOf(() => settingsReader({ L: [] }).numberList('L', [1], bounds)).variable).toBe('L');
    });
  });

  describe('oneOf', () => {
    it('matches after normalizing', () => {
      expect(
        settingsReader({ C: 'debug' }).oneOf('C', ['INFO', 'DEBUG'], 'INFO', (raw) => raw.toUpperCase()),
      ).toBe('DEBUG');
    });

    it('refuses a value not allowed, listing the choices', () => {
      expect(configErrorOf(() => settingsReader({ C: 'x' }).oneOf('C', ['a', 'b'], 'a')).message).toBe(
        'C: expected one of a, b, got "x"',
      );
    });

    it('requires a value when there is no fallback', () => {
      expect(configErrorOf(() => settingsReader({}).oneOf('C', ['a', 'b'], undefined)).message).toBe(
        'C: is required: one of a, b',
      );
    });
  });
});

describe('one wording for the environment and the CDK context', () => {
  const env = {
    ECOURTDATE_BASE_URL: 'https://staging.api.ecourtdate.com',
    ECOURTDATE_SECRET_ID: 'ecourtdate-relay/staging/api-credentials',
    SEND_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/send',
    DEAD_LETTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/dlq',
    LEDGER_TABLE_NAME: 'ledger',
  };

  /** The problem part of the message, after "<setting>: ". */
  const problem = (error: ConfigError) => error.message.slice(error.variable.length + 2);

  it.each([
    ['MAX_ATTEMPTS', 'maxAttempts', '0'],
    ['MAX_ATTEMPTS', 'maxAttempts', 'five'],
    ['BACKOFF_SECONDS', 'backoffSeconds', '60,,120'],
    ['MAX_RECEIVE_COUNT', 'maxReceiveCount', '1001'],
    ['RATE_LIMIT_HINT_MAX_SECONDS', 'rateLimitHintMaxSeconds', '42001'],
  ])('%s and %s refuse %j in the same words', (variable, setting, raw) => {
    const fromEnv = configErrorOf(() => loadSenderConfig({ ...env, [variable]: raw }));
    const fromContext = configErrorOf(() => loadStageConfig({ stage: 'staging', [setting]: raw }));

    expect(fromEnv.variable).toBe(variable);
    expect(fromContext.variable).toBe(setting);
    expect(problem(fromContext)).toBe(problem(fromEnv));
  });
});
