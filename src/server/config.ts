/**
 * The server's configuration: one table of settings, each with its flag, its environment
 * variable and its default, parsed and validated into one object. The CLI builds its flags
 * from this table, so flags, environment and defaults cannot drift apart.
 */

import type { HostPort, RedisTarget } from "./store/redis-connections.js";

/** The server's validated configuration. */
export interface ServerConfig {
  /** HOST:PORT to serve gRPC on (port 0 picks a free one). */
  listen: string;
  /**
   * redis:// or rediss:// URL of one server, or redis+sentinel://[[user]:password@]HOST:PORT,.../NAME
   * for a Sentinel group's master; undefined (and no sentinels or cluster) serves from the
   * in-memory store (one replica).
   */
  redisUrl: string | undefined;
  /** Sentinels (HOST:PORT,...) to find the master `sentinelName` through. */
  sentinels: string | undefined;
  /** The Sentinel group's name (its `sentinel monitor` name). */
  sentinelName: string | undefined;
  /** Cluster nodes (HOST:PORT,...) to discover a Redis Cluster from. */
  redisCluster: string | undefined;
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
  /** Writes wait (Redis WAIT) until this many replicas have them; 0 does not wait. */
  redisWaitReplicas: number;
  /** How long a write waits for its replicas before failing with UNAVAILABLE, in milliseconds. */
  redisWaitMs: number;
  /** pino log level: fatal, error, warn, info, debug, trace or silent. */
  logLevel: string;
  /** PEM certificate chain file: serve TLS instead of plaintext (with tlsKey). */
  tlsCert: string | undefined;
  /** PEM private key file of tlsCert. */
  tlsKey: string | undefined;
  /** PEM CA file: clients must present a certificate it signed (mutual TLS). */
  tlsClientCa: string | undefined;
  /** JSON file of bearer tokens and their key prefixes; without one the server is open. */
  authFile: string | undefined;
  /** HOST:PORT to serve Prometheus metrics on (`/metrics`); none when undefined. */
  metricsListen: string | undefined;
  /** Most Watch streams open on the whole server at once. */
  maxWatchStreams: number;
  /** Most Watch streams open on one client connection at once. */
  maxWatchStreamsPerConnection: number;
  /** Most concurrent calls on one HTTP/2 connection (`grpc.max_concurrent_streams`). */
  maxConcurrentStreams: number;
  /** Largest Watch request, in bytes (and of Get, Bump and Clear, if below theirs); 0 sizes it for the largest Watch the key limits allow. */
  maxMessageBytes: number;
  /** Most bytes of large requests (over 64 KiB) read at once; 0 is four times the largest Watch request. */
  maxPendingRequestBytes: number;
  /** How often the server pings an idle connection to find dead clients, in milliseconds. */
  keepaliveMs: number;
  /** How long a ping may go unanswered before the connection is closed, in milliseconds. */
  keepaliveTimeoutMs: number;
  /** Connections are closed (GOAWAY) after about this long, so clients rebalance; 0 never. */
  maxConnectionAgeMs: number;
  /** How long calls, Watch streams included, may go on after a connection's GOAWAY. */
  maxConnectionAgeGraceMs: number;
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

/** Splits a checked HOST:PORT (HOST may be a bracketed IPv6 address). */
export function splitHostPort(hostPort: string): { host: string; port: number } {
  const at = hostPort.lastIndexOf(":");
  return { host: hostPort.slice(0, at).replace(/^\[(.*)\]$/, "$1"), port: Number(hostPort.slice(at + 1)) };
}

function redisUrl(text: string): string | undefined | { error: string } {
  if (text === "") return undefined;
  if (text.startsWith("redis+sentinel://")) {
    // The text is not repeated: it may hold a password.
    return parseSentinelUrl(text)
      ? text
      : { error: "must be redis+sentinel://[[USER]:PASSWORD@]HOST:PORT,HOST:PORT/NAME, percent-encoded" };
  }
  try {
    const url = new URL(text);
    if (url.protocol === "redis:" || url.protocol === "rediss:") return text;
  } catch {
    // Falls through to the message below.
  }
  return { error: `must be a redis://, rediss:// or redis+sentinel:// URL, not "${text}"` };
}

/** redis+sentinel://[[user]:password@]HOST:PORT,HOST:PORT/NAME, as a Sentinel target. */
function parseSentinelUrl(text: string): Extract<RedisTarget, { mode: "sentinel" }> | undefined {
  const match = /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/@]+)\/([^/?#]+)\/?$/.exec(text);
  if (!match) return undefined;
  const [, username, password, hosts = "", name = ""] = match;
  const sentinels = hostPortList(hosts);
  if (!Array.isArray(sentinels)) return undefined;
  try {
    return {
      mode: "sentinel",
      sentinels,
      name: decodeURIComponent(name),
      ...(username ? { username: decodeURIComponent(username) } : {}),
      ...(password !== undefined ? { password: decodeURIComponent(password) } : {}),
    };
  } catch {
    return undefined; // a "%" that starts no escape: the caller says what the form is
  }
}

/** HOST:PORT,HOST:PORT,... */
function hostPortList(text: string): HostPort[] | { error: string } {
  const items = text.split(",").map((item) => item.trim());
  const parsed: HostPort[] = [];
  for (const item of items) {
    if (typeof hostPort(item) !== "string") return { error: `must be HOST:PORT,HOST:PORT,..., not "${text}"` };
    parsed.push(splitHostPort(item));
  }
  return parsed;
}

function hostPortListSetting(text: string): string | undefined | { error: string } {
  if (text === "") return undefined;
  const parsed = hostPortList(text);
  return Array.isArray(parsed) ? text : parsed;
}

/**
 * The Redis the configuration names, or undefined for the in-memory store. The
 * configuration must have come through resolveServerConfig (or be as valid).
 */
export function redisTarget(config: ServerConfig): RedisTarget | undefined {
  if (config.redisCluster !== undefined)
    return { mode: "cluster", nodes: hostPortList(config.redisCluster) as HostPort[] };
  if (config.sentinels !== undefined) {
    return {
      mode: "sentinel",
      sentinels: hostPortList(config.sentinels) as HostPort[],
      name: config.sentinelName ?? "",
    };
  }
  if (config.redisUrl === undefined) return undefined;
  return parseSentinelUrl(config.redisUrl) ?? { mode: "single", url: config.redisUrl };
}

function filePath(text: string): string | undefined {
  return text === "" ? undefined : text;
}

function optionalHostPort(text: string): string | undefined | { error: string } {
  return text === "" ? undefined : hostPort(text);
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
    description:
      "Redis URL: redis:// or rediss:// (TLS), or redis+sentinel://HOST:PORT,.../NAME; without Redis, an in-memory store for a single replica",
    default: undefined,
    parse: redisUrl,
  }),
  define({
    key: "sentinels",
    flag: "sentinels",
    env: "SYNCGEN_SENTINELS",
    description: "Redis Sentinels HOST:PORT,HOST:PORT,... (with --sentinel-name), instead of --redis",
    default: undefined,
    parse: hostPortListSetting,
  }),
  define({
    key: "sentinelName",
    flag: "sentinel-name",
    env: "SYNCGEN_SENTINEL_NAME",
    description: "the master's name in the Sentinels' configuration",
    default: undefined,
    parse: (text) => (text === "" ? undefined : text),
  }),
  define({
    key: "redisCluster",
    flag: "redis-cluster",
    env: "SYNCGEN_REDIS_CLUSTER",
    description: "Redis Cluster nodes HOST:PORT,HOST:PORT,... to discover the cluster from, instead of --redis",
    default: undefined,
    parse: hostPortListSetting,
  }),
  define({
    key: "prefix",
    flag: "prefix",
    env: "SYNCGEN_PREFIX",
    description: "prefix of every Redis key and channel",
    default: "syncgen:",
    // Braces would move the hash tag that keeps a key's record and channel on one Cluster shard.
    parse: (text) => (/[{}]/.test(text) ? { error: `must not contain { or }, not "${text}"` } : text),
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
    key: "redisWaitReplicas",
    flag: "redis-wait-replicas",
    env: "SYNCGEN_REDIS_WAIT_REPLICAS",
    description:
      "a write succeeds only once this many Redis replicas have it (WAIT), so a failover cannot lose an acknowledged Bump; 0 does not wait",
    default: 0,
    parse: integer(0, 64),
  }),
  define({
    key: "redisWaitMs",
    flag: "redis-wait-ms",
    env: "SYNCGEN_REDIS_WAIT_MS",
    description: "how long a write waits for --redis-wait-replicas before failing with UNAVAILABLE, in milliseconds",
    default: 250,
    parse: integer(1, 600_000),
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
  define({
    key: "tlsCert",
    flag: "tls-cert",
    env: "SYNCGEN_TLS_CERT",
    description: "PEM certificate chain file: serve TLS (with --tls-key)",
    default: undefined,
    parse: filePath,
  }),
  define({
    key: "tlsKey",
    flag: "tls-key",
    env: "SYNCGEN_TLS_KEY",
    description: "PEM private key file of --tls-cert",
    default: undefined,
    parse: filePath,
  }),
  define({
    key: "tlsClientCa",
    flag: "tls-client-ca",
    env: "SYNCGEN_TLS_CLIENT_CA",
    description: "PEM CA file: refuse clients without a certificate it signed (mutual TLS)",
    default: undefined,
    parse: filePath,
  }),
  define({
    key: "authFile",
    flag: "auth-file",
    env: "SYNCGEN_AUTH_FILE",
    description: "JSON file of bearer tokens and the key prefixes each may read and write; without one, no auth",
    default: undefined,
    parse: filePath,
  }),
  define({
    key: "metricsListen",
    flag: "metrics-listen",
    env: "SYNCGEN_METRICS_LISTEN",
    description: "HOST:PORT to serve Prometheus metrics on, at /metrics",
    default: undefined,
    parse: optionalHostPort,
  }),
  define({
    key: "maxWatchStreams",
    flag: "max-watch-streams",
    env: "SYNCGEN_MAX_WATCH_STREAMS",
    description: "most Watch streams open on this server at once",
    default: 50_000,
    parse: integer(1, 10_000_000),
  }),
  define({
    key: "maxWatchStreamsPerConnection",
    flag: "max-watch-streams-per-connection",
    env: "SYNCGEN_MAX_WATCH_STREAMS_PER_CONNECTION",
    description: "most Watch streams open on one client connection at once",
    default: 500,
    parse: integer(1, 10_000_000),
  }),
  define({
    key: "maxConcurrentStreams",
    flag: "max-concurrent-streams",
    env: "SYNCGEN_MAX_CONCURRENT_STREAMS",
    description: "most concurrent calls on one HTTP/2 connection (grpc.max_concurrent_streams)",
    default: 1000,
    parse: integer(1, 2 ** 31 - 1),
  }),
  define({
    key: "maxMessageBytes",
    flag: "max-message-bytes",
    env: "SYNCGEN_MAX_MESSAGE_BYTES",
    description:
      "largest Watch request, in bytes (and of Get, Bump and Clear, if below their own limit); 0 fits the largest Watch that --max-watch-keys and --max-key-bytes allow",
    default: 0,
    parse: integer(0, 2 ** 31 - 1),
  }),
  define({
    key: "maxPendingRequestBytes",
    flag: "max-pending-request-bytes",
    env: "SYNCGEN_MAX_PENDING_REQUEST_BYTES",
    description:
      "most bytes of large requests (over 64 KiB, i.e. big Watches) the server reads at once, whatever connections they come on; 0 is four times the largest Watch request",
    default: 0,
    parse: integer(0, Number.MAX_SAFE_INTEGER),
  }),
  define({
    key: "keepaliveMs",
    flag: "keepalive-ms",
    env: "SYNCGEN_KEEPALIVE_MS",
    description: "how often an idle connection is pinged to find dead clients, in milliseconds",
    default: 60_000,
    parse: integer(1000, 2 ** 31 - 1),
  }),
  define({
    key: "keepaliveTimeoutMs",
    flag: "keepalive-timeout-ms",
    env: "SYNCGEN_KEEPALIVE_TIMEOUT_MS",
    description: "how long a ping may go unanswered before the connection is closed, in milliseconds",
    default: 20_000,
    parse: integer(100, 2 ** 31 - 1),
  }),
  define({
    key: "maxConnectionAgeMs",
    flag: "max-connection-age-ms",
    env: "SYNCGEN_MAX_CONNECTION_AGE_MS",
    description: "close connections after about this long (±10%), so clients rebalance over replicas; 0 never",
    default: 1_800_000,
    parse: integer(0, 2 ** 31 - 1),
  }),
  define({
    key: "maxConnectionAgeGraceMs",
    flag: "max-connection-age-grace-ms",
    env: "SYNCGEN_MAX_CONNECTION_AGE_GRACE_MS",
    description: "how long calls, Watch streams included, go on after a connection is told to close",
    default: 30_000,
    parse: integer(0, 2 ** 31 - 1),
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
  const fromFlags = new Set<string>();
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
    if (fromFlag !== undefined) fromFlags.add(setting.key);
  }
  // One Redis: a flag naming one kind wins over the environment naming another (REDIS_URL
  // set for the whole shell should not stop `serve --redis-cluster ...`).
  const redisKinds = REDIS_KINDS.filter((key) => config[key] !== undefined);
  const byFlag = redisKinds.filter((key) => fromFlags.has(key));
  if (byFlag.length === 1) for (const key of redisKinds) if (key !== byFlag[0]) config[key] = undefined;
  // Every key of ServerConfig is a setting above, each parsed to its own type.
  return checkServerConfig(config as unknown as ServerConfig);
}

const REDIS_KINDS = ["redisUrl", "sentinels", "redisCluster"] as const;

/**
 * Checks what no single setting can: settings that go together, or exclude each other.
 * Returns the configuration, or throws ConfigError. resolveServerConfig calls it, and so
 * does startServer, for configurations built in code.
 */
export function checkServerConfig(config: ServerConfig): ServerConfig {
  if (REDIS_KINDS.filter((key) => config[key] !== undefined).length > 1) {
    throw new ConfigError("give one Redis: --redis, --sentinels or --redis-cluster (or their environment variables)");
  }
  if (config.sentinels !== undefined && config.sentinelName === undefined) {
    throw new ConfigError("--sentinels needs --sentinel-name: the master's name in the Sentinels' configuration");
  }
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    throw new ConfigError("--tls-cert and --tls-key go together: give both to serve TLS, or neither");
  }
  if (config.tlsClientCa !== undefined && config.tlsCert === undefined) {
    throw new ConfigError("--tls-client-ca needs TLS: give --tls-cert and --tls-key as well");
  }
  if (config.redisWaitReplicas > 0 && config.redisCluster !== undefined) {
    throw new ConfigError("--redis-wait-replicas works with --redis or Sentinel, not --redis-cluster");
  }
  // A write may queue behind one WAIT and then wait for its own.
  if (config.redisWaitReplicas > 0 && 2 * config.redisWaitMs >= config.redisTimeoutMs) {
    throw new ConfigError(
      `--redis-wait-ms (${config.redisWaitMs}) must be below half --redis-timeout-ms (${config.redisTimeoutMs}), or a write queued behind a wait would time out as a broken connection`,
    );
  }
  if (config.maxConcurrentStreams <= config.maxWatchStreamsPerConnection) {
    throw new ConfigError(
      `--max-concurrent-streams (${config.maxConcurrentStreams}) must exceed --max-watch-streams-per-connection (${config.maxWatchStreamsPerConnection}), so unary calls always have room`,
    );
  }
  return config;
}

/** The configuration with every default, overridden by `overrides` (for embedding and tests). */
export function defaultServerConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return { ...resolveServerConfig({}), ...overrides };
}
