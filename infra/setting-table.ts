import { closestName } from '#shared/closest-name.ts';
import { ConfigError } from '#shared/errors.ts';
import type { Bounds, SettingsReader } from '#shared/settings.ts';

/**
 * The stage settings as a table (docs/deploy.md, "Stage settings"): each setting's name, the reader that parses
 * it, its default and its bounds, in one place. `infra/config.ts` and `infra/webhook-config.ts` each declare
 * their part; the app reads both once, from the stage's merged settings, through `tableReader`. CDK-free.
 */

/** A default that differs between the two stages. */
export interface PerStage<T> {
  readonly staging: T;
  readonly production: T;
}
export type StageName = keyof PerStage<unknown>;

/**
 * How one setting is read. `default` undefined: no default (optional, or derived from other settings by the
 * code that reads it, which says so). A number's `bounds` are inclusive.
 */
export type SettingSpec =
  | {
      readonly reader: 'number';
      readonly default: number | PerStage<number> | undefined;
      readonly bounds: Bounds;
    }
  | { readonly reader: 'numberList'; readonly default: readonly number[]; readonly bounds: Bounds }
  | { readonly reader: 'flag'; readonly default: boolean }
  | {
      readonly reader: 'oneOf';
      readonly allowed: readonly (string | number)[];
      readonly default: string | number | PerStage<number> | undefined;
      /** Applied to the raw text before comparing (e.g. upper-casing). */
      readonly normalize?: (raw: string) => string | number;
    }
  | { readonly reader: 'text' | 'list' };

export type SettingTable = Readonly<Record<string, SettingSpec>>;

/** The typed readers over one table, for one stage; each throws `ConfigError` naming the setting. */
export interface TableReader<Name extends string> {
  /** The number within the table's bounds; when not set, the table's default, else `derived`. */
  number(name: Name, derived?: number): number;
  numberList(name: Name): number[];
  flag(name: Name): boolean;
  /** One of the table's `allowed` values; when not set, its default (none: "is required"). */
  oneOf(name: Name): string | number;
  /** The trimmed text, or undefined when not set, whatever the setting's reader (e.g. to tell whether it was set). */
  text(name: Name): string | undefined;
  /** The comma-separated (or JSON array) items, or undefined when not set. */
  list(name: Name): string[] | undefined;
}

/**
 * Readers that take each setting's reader, default and bounds from `table`, resolving per-stage defaults for
 * `stage`. Asking a setting through the wrong reader is a programming error (plain `Error`).
 *
 * @example
 * const settings = tableReader({ batchSize: { reader: 'number', default: 10, bounds: { min: 1, max: 10 } } },
 *   settingsReader({ batchSize: '5' }), 'staging');
 * settings.number('batchSize'); // 5
 */
export function tableReader<T extends SettingTable>(
  table: T,
  read: SettingsReader,
  stage: StageName,
): TableReader<keyof T & string> {
  const spec = <R extends SettingSpec['reader']>(name: string, reader: R) => {
    const found = table[name];
    if (found?.reader !== reader) throw new Error(`setting ${name} is not read as ${reader} in the table`);
    return found as Extract<SettingSpec, { reader: R }>;
  };
  const ofStage = <V>(value: V | PerStage<V>): V =>
    typeof value === 'object' && value !== null && 'staging' in value ? value[stage] : (value as V);

  return {
    number(name, derived) {
      const { default: fallback, bounds } = spec(name, 'number');
      const value = fallback === undefined ? derived : ofStage(fallback);
      if (value === undefined) throw new Error(`setting ${name} has neither a default nor a derived value`);
      return read.number(name, value, bounds);
    },
    numberList(name) {
      const { default: fallback, bounds } = spec(name, 'numberList');
      return read.numberList(name, fallback, bounds);
    },
    flag(name) {
      return read.flag(name, spec(name, 'flag').default);
    },
    oneOf(name) {
      const { allowed, default: fallback, normalize } = spec(name, 'oneOf');
      return read.oneOf(name, allowed, fallback === undefined ? undefined : ofStage(fallback), normalize);
    },
    text(name) {
      return read.text(name);
    },
    list(name) {
      spec(name, 'list');
      return read.list(name);
    },
  };
}

/** A name given as a setting that is not one (`variable`: the name as given): fix or remove it, never set it. */
export class UnknownSettingError extends ConfigError {}

/** The `UnknownSettingError` for a setting name that is not in `known`, with a did-you-mean when one is close. */
export function unknownSetting(name: string, where: string, known: readonly string[]): UnknownSettingError {
  const suggestion = closestName(name, known);
  return new UnknownSettingError(
    name,
    `is not a setting of this app (${where})` +
      (suggestion === undefined ? '' : `; did you mean ${suggestion}?`) +
      `; known settings: ${known.join(', ')}`,
  );
}
