/**
 * The server's configuration: one table of settings, each with its flag, its environment
 * variable and its default, parsed and validated into one object. The CLI builds its flags
 * from this table, so flags, environment and defaults cannot drift apart.
 */

/** The server's validated configuration. */
export interface ServerConfig {
  /** HOST:PORT to serve gRPC on (port 0 picks a free one). */
  listen: string;
  /** redis:// or rediss:// URL; undefined serves from the in-memory store (one replica). */
  redisUrl: string | undefined;
  /** Prepended to every Redis key and channel, so several deployments can share one Redis. */
  prefix: string;
  /** Longest key, in UTF-8 bytes. */
  maxKeyBytes: number;
  /** Most keys one Watch may name. */
  maxWatchKeys: number;
  /** How often an idle Watch stream gets an empty response, in milliseconds. */
  heartbeatMs: number;
  /** How long shutdown waits for calls to finish before cutting them off, in milliseconds. */
  shutdownTimeoutMs: number;
  /** A Redis command without a reply after this long fails with UNAVAILABLE, in milliseconds. */
  redisTimeoutMs: number;
  /** pino log level: fatal, error, warn, info, debug, trace or silent. */
  logLevel: string;
}

/** One setting: where it comes from and how it is read. */
export interface Setting<K extends keyof ServerConfig = keyof ServerConfig> {
  key: K;
  /** The CLI flag, without leading dashes. */
  flag: string;
  /** The environment variable. */
  env: string;
  /** What it means, for --help. */
  description: string;
  /** The value when neither flag nor environment sets it. */
  default: ServerConfig[K];
  /** Parses a text value; returns an error message on bad input. */
  parse: (text: string) => ServerConfig[K] | { error: string };
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function integer(min: number, max: number): (text: string) => number | { error: string } {
  return (text) => {
    const value = Number(text);
    return /^\d+$/.test(text.trim()) && value >= min && value <= max
      ? value
      : { error: `must be a whole number from ${min} to ${max}, not "${text}"` };
  };
}

function hostPort(text: string): string | { error: string } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  return match && port <= 65535 ? text : { error: `must be HOST:PORT (e.g. 127.0.0.1:50051), not "${text}"` };
}

function redisUrl(text: string): string | undefined | { error: string } {
  if (text === "") return undefined;
  try {
    const url = new URL(text);
    if (url.protocol === "redis:" || url.protocol === "rediss:") return text;
  } catch {
    // Falls through to the message below.
  }
  return { error: `must be a redis:// or rediss:// URL, not "${text}"` };
}

function define<K extends keyof ServerConfig>(setting: Setting<K>): Setting<K> {
  return setting;
}

/** Every setting, in the order --help lists them. */
export const SETTINGS = [
  define({
    key: "listen",
    flag: "listen",
    env: "SYNCGEN_LISTEN",
    description: "HOST:PORT to serve gRPC on",
    default: "127.0.0.1:50051",
    parse: hostPort,
  }),
  define({
    key: "redisUrl",
    flag: "redis",
    env: "REDIS_URL",
    description: "Redis URL (redis:// or rediss://); without one, an in-memory store for a single replica",
    default: undefined,
    parse: redisUrl,
  }),
  define({
    key: "prefix",
    flag: "prefix",
    env: "SYNCGEN_PREFIX",
    description: "prefix of every Redis key and channel",
    default: "syncgen:",
    parse: (text) => text,
  }),
  define({
    key: "maxKeyBytes",
    flag: "max-key-bytes",
    env: "SYNCGEN_MAX_KEY_BYTES",
    description: "longest key, in UTF-8 bytes",
    default: 1024,
    parse: integer(1, 65536),
  }),
  define({
    key: "maxWatchKeys",
    flag: "max-watch-keys",
    env: "SYNCGEN_MAX_WATCH_KEYS",
    description: "most keys one Watch may name",
    default: 10_000,
    parse: integer(1, 1_000_000),
  }),
  define({
    key: "heartbeatMs",
    flag: "heartbeat-ms",
    env: "SYNCGEN_HEARTBEAT_MS",
    description: "interval of Watch heartbeats, in milliseconds",
    default: 15_000,
    parse: integer(10, 3_600_000),
  }),
  define({
    key: "shutdownTimeoutMs",
    flag: "shutdown-timeout-ms",
    env: "SYNCGEN_SHUTDOWN_TIMEOUT_MS",
    description: "how long shutdown lets calls finish, in milliseconds",
    default: 10_000,
    parse: integer(0, 600_000),
  }),
  define({
    key: "redisTimeoutMs",
    flag: "redis-timeout-ms",
    env: "SYNCGEN_REDIS_TIMEOUT_MS",
    description: "how long a Redis command may take before the call fails with UNAVAILABLE, in milliseconds",
    default: 2_000,
    parse: integer(10, 600_000),
  }),
  define({
    key: "logLevel",
    flag: "log-level",
    env: "SYNCGEN_LOG_LEVEL",
    description: `log level (${LOG_LEVELS.join(", ")})`,
    default: "info",
    parse: (text) =>
      LOG_LEVELS.includes(text) ? text : { error: `must be one of ${LOG_LEVELS.join(", ")}, not "${text}"` },
  }),
] as const satisfies readonly Setting[];

/** A setting was given a value it cannot take. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Resolves the configuration: a flag wins over its environment variable, which wins over the
 * default. Throws ConfigError naming the flag or variable of the first bad value.
 */
export function resolveServerConfig(
  flags: Readonly<Partial<Record<string, string>>>,
  env: Readonly<Partial<Record<string, string>>> = {},
): ServerConfig {
  const config: Record<string, unknown> = {};
  for (const setting of SETTINGS as readonly Setting[]) {
    const fromFlag = flags[setting.flag];
    const fromEnv = env[setting.env];
    const [text, source] =
      fromFlag !== undefined
        ? [fromFlag, `--${setting.flag}`]
        : fromEnv !== undefined
          ? [fromEnv, setting.env]
          : [undefined, ""];
    if (text === undefined) {
      config[setting.key] = setting.default;
      continue;
    }
    const value = setting.parse(text);
    if (typeof value === "object" && value !== null && "error" in value) {
      throw new ConfigError(`${source} ${value.error}`);
    }
    config[setting.key] = value;
  }
  // Every key of ServerConfig is a setting above, each parsed to its own type.
  return config as unknown as ServerConfig;
}

/** The configuration with every default, overridden by `overrides` (for embedding and tests). */
export function defaultServerConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return { ...resolveServerConfig({}), ...overrides };
}
