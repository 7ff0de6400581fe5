import { ConfigError } from '#shared/errors.ts';

/**
 * The one reader of settings, for the sender's environment (`shared/config.ts`) and the CDK app's context
 * (`infra/config.ts`): text, numbers within bounds, lists and choices. Every bad value fails with a `ConfigError`
 * naming the setting, in the same words whichever source it came from. CDK-free: the Lambda bundle loads it.
 *
 * A raw value is what the source holds: an environment variable's string, or a CDK context value (a `-c` string,
 * or a JSON string, number or array from cdk.json). Absent, `null` and blank values all mean "not set".
 */

/** Inclusive bounds of a numeric setting; `integer` (default true) also refuses fractions. */
export interface Bounds {
  readonly min: number;
  readonly max: number;
  readonly integer?: boolean;
}

/** The readers of one source, each taking the setting's name (the variable or context key). */
export interface SettingsReader {
  /** The trimmed text, or undefined when not set. Throws `ConfigError` for a list or object value. */
  text(name: string): string | undefined;
  /** The trimmed text. Throws `ConfigError` "is required but not set" when absent or blank. */
  requiredText(name: string): string;
  /**
   * `true` or `false` (a JSON boolean, or the text in any case), or `fallback` when not set. Throws `ConfigError`
   * otherwise.
   */
  flag(name: string, fallback: boolean): boolean;
  /** A number within `bounds`, or `fallback` when not set. Throws `ConfigError` otherwise. */
  number(name: string, fallback: number, bounds: Bounds): number;
  /**
   * A list from a comma-separated string or a JSON array: items trimmed, blank items dropped; undefined when not
   * set. Throws `ConfigError` for an object value.
   */
  list(name: string): string[] | undefined;
  /**
   * A non-empty list of numbers, each within `bounds`, from a comma-separated string or a JSON array, or a copy
   * of `fallback` when not set. A blank item is refused, not dropped: `60,,120` is a typo, not two steps.
   */
  numberList(name: string, fallback: readonly number[], bounds: Bounds): number[];
  /**
   * One of `allowed`, compared after `normalize` (e.g. upper-casing); `fallback` when not set. Throws
   * `ConfigError` when not set and there is no fallback, or when the value is not allowed.
   */
  oneOf<T extends string | number>(
    name: string,
    allowed: readonly T[],
    fallback: T | undefined,
    normalize?: (raw: string) => string | number,
  ): T;
}

/**
 * Readers over one source of settings.
 *
 * @example
 * const read = settingsReader(process.env);
 * read.number('MAX_ATTEMPTS', 5, { min: 1, max: 100 });
 * const stage = settingsReader(app.node.getAllContext());
 * stage.numberList('backoffSeconds', [60, 120], { min: 0, max: 42_000 });
 */
export function settingsReader(source: Readonly<Record<string, unknown>>): SettingsReader {
  const text = (name: string): string | undefined => {
    const raw = source[name];
    if (raw === undefined || raw === null) return undefined;
    if (typeof raw !== 'string' && typeof raw !== 'number') {
      throw new ConfigError(name, `expected a single value, got ${JSON.stringify(raw)}`);
    }
    const value = String(raw).trim();
    return value === '' ? undefined : value;
  };

  const items = (name: string): string[] | undefined => {
    const raw = source[name];
    if (raw === undefined || raw === null) return undefined;
    if (Array.isArray(raw)) return raw.map((item) => String(item).trim());
    if (typeof raw === 'string' || typeof raw === 'number') {
      const value = String(raw).trim();
      return value === '' ? undefined : value.split(',').map((item) => item.trim());
    }
    throw new ConfigError(name, `expected a comma-separated list, got ${JSON.stringify(raw)}`);
  };

  return {
    text,
    requiredText(name) {
      const value = text(name);
      if (value === undefined) throw new ConfigError(name, 'is required but not set');
      return value;
    },
    flag(name, fallback) {
      const raw = source[name];
      if (typeof raw === 'boolean') return raw;
      const value = text(name)?.toLowerCase();
      if (value === undefined) return fallback;
      if (value === 'true' || value === 'false') return value === 'true';
      throw new ConfigError(name, `expected true or false, got "${value}"`);
    },
    number(name, fallback, bounds) {
      const raw = text(name);
      return raw === undefined ? fallback : parseNumber(name, raw, bounds);
    },
    list(name) {
      return items(name)?.filter((item) => item !== '');
    },
    numberList(name, fallback, bounds) {
      const parts = items(name);
      if (parts === undefined) return [...fallback];
      const values = parts.map(Number);
      const whole = bounds.integer ?? true;
      if (
        parts.length === 0 ||
        parts.some((part) => part === '') ||
        values.some((v) => !inBounds(v, bounds) || (whole && !Number.isInteger(v)))
      ) {
        throw new ConfigError(
          name,
          `expected a comma-separated list of ${whole ? 'whole numbers' : 'numbers'} from ${bounds.min} to ` +
            `${bounds.max}, got "${parts.join(',')}"`,
        );
      }
      return values;
    },
    oneOf(name, allowed, fallback, normalize = (raw) => raw) {
      const raw = text(name);
      if (raw === undefined) {
        if (fallback === undefined) throw new ConfigError(name, `is required: one of ${allowed.join(', ')}`);
        return fallback;
      }
      const value = normalize(raw);
      const match = allowed.find((candidate) => candidate === value);
      if (match === undefined) {
        throw new ConfigError(name, `expected one of ${allowed.join(', ')}, got "${raw}"`);
      }
      return match;
    },
  };
}

/** A decimal number as people write one (`12`, `-3`, `0.5`): never hex, octal, binary or an exponent. */
const DECIMAL = /^-?\d+(\.\d+)?$/;

function parseNumber(name: string, raw: string, bounds: Bounds): number {
  const value = Number(raw);
  const whole = bounds.integer ?? true;
  if (!DECIMAL.test(raw.trim()) || !Number.isFinite(value) || (whole && !Number.isInteger(value))) {
    throw new ConfigError(name, `expected ${whole ? 'a whole number' : 'a number'}, got "${raw}"`);
  }
  if (!inBounds(value, bounds)) {
    throw new ConfigError(name, `expected a value from ${bounds.min} to ${bounds.max}, got ${value}`);
  }
  return value;
}

function inBounds(value: number, bounds: Bounds): boolean {
  return Number.isFinite(value) && value >= bounds.min && value <= bounds.max;
}
