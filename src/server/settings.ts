/**
 * Settings read from flags and environment variables, the same way for every command: a
 * table of settings, each with its flag, its environment variable, its default as a person
 * would type it, and its parser. A flag wins over its variable, which wins over the default;
 * every value, the default included, goes through the parser, so a value has one type
 * wherever it came from. The CLI builds its options and help from the tables, so flags,
 * environment, defaults and help cannot drift apart.
 */

/** One setting: where it comes from and how it is read. */
export interface Setting<V> {
  /** The CLI flag, without leading dashes. */
  readonly flag: string;
  /** What its value looks like, for --help: `--flag <placeholder>`. */
  readonly placeholder: string;
  /** The environment variable. */
  readonly env: string;
  /** What it means, for --help. */
  readonly description: string;
  /** The text used when neither flag nor environment gives one; "" for none (the parser says what that means). */
  readonly default: string;
  /** Parses a text value; returns an error message on bad input. */
  readonly parse: (text: string) => V | { error: string };
}

/** Settings by the name of their value. */
export type SettingsTable = Readonly<Record<string, Setting<unknown>>>;

/** The values a table's settings parse to. */
export type SettingValues<T extends SettingsTable> = {
  -readonly [K in keyof T]: T[K] extends Setting<infer V> ? V : never;
};

/** A setting was given a value it cannot take, or settings that do not go together. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Texts by flag name (without dashes), or by environment variable name. */
export type SettingTexts = Readonly<Partial<Record<string, string>>>;

/**
 * Reads every setting of `table` from `flags` (by flag name), then `env`, then its default.
 * Throws ConfigError naming the flag or variable of the first bad value. `fromFlags` names
 * the settings a flag gave.
 */
export function readSettings<T extends SettingsTable>(
  table: T,
  flags: SettingTexts,
  env: SettingTexts = {},
): { values: SettingValues<T>; fromFlags: Set<keyof T> } {
  const values: Partial<Record<keyof T, unknown>> = {};
  const fromFlags = new Set<keyof T>();
  for (const [name, setting] of Object.entries(table) as [keyof T, Setting<unknown>][]) {
    const fromFlag = flags[setting.flag];
    const fromEnv = env[setting.env];
    const [text, source] =
      fromFlag !== undefined
        ? [fromFlag, `--${setting.flag}`]
        : fromEnv !== undefined
          ? [fromEnv, setting.env]
          : [setting.default, `the default of --${setting.flag}`];
    const value = setting.parse(text);
    if (typeof value === "object" && value !== null && "error" in value) {
      throw new ConfigError(`${source} ${(value as { error: string }).error}`);
    }
    values[name] = value;
    if (fromFlag !== undefined) fromFlags.add(name);
  }
  // Every setting of the table was parsed to its own type above.
  return { values: values as SettingValues<T>, fromFlags };
}

/** A setting's parser: whole numbers from `min` to `max`. */
export function integer(min: number, max: number): (text: string) => number | { error: string } {
  return (text) => {
    const value = Number(text);
    return /^\d+$/.test(text.trim()) && value >= min && value <= max
      ? value
      : { error: `must be a whole number from ${min} to ${max}, not "${text}"` };
  };
}

/** A setting's parser for text that may be left out: "" is undefined. */
export function optional<V>(
  parse: (text: string) => V | { error: string },
): (text: string) => V | undefined | { error: string } {
  return (text) => (text === "" ? undefined : parse(text));
}

/** A setting's parser for free text (a name, a path, a token). */
export function text(value: string): string {
  return value;
}
