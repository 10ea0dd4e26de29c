/**
 * The server's configuration: one table of settings (settings.ts), each with its flag, its
 * environment variable and its default, parsed once into typed values (HOST:PORT as a
 * HostPort, the Redis to use as a RedisTarget) and checked as a whole into one ServerConfig.
 * The CLI builds its flags from this table, so flags, environment and defaults cannot drift
 * apart.
 */
import { parseHostPort, parseHostPortList } from "./host-port.js";
import {
  ConfigError,
  integer,
  optional,
  readSettings,
  type SettingsTable,
  type SettingTexts,
  type SettingValues,
  text,
} from "./settings.js";
import type { RedisServerTarget, RedisTarget } from "./store/redis-target.js";

/** Log levels, most severe first. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** redis:// or rediss:// (one server), or redis+sentinel://[[user]:password@]HOST:PORT,.../NAME (a Sentinel group's master). */
function parseRedisUrl(text: string): RedisServerTarget | { error: string } {
  if (text.startsWith("redis+sentinel://")) {
    // The text is not repeated: it may hold a password.
    return (
      parseSentinelUrl(text) ?? {
        error: "must be redis+sentinel://[[USER]:PASSWORD@]HOST:PORT,HOST:PORT/NAME, percent-encoded",
      }
    );
  }
  try {
    const url = new URL(text);
    if (url.protocol === "redis:" || url.protocol === "rediss:") return { mode: "single", url: text };
  } catch {
    // Falls through to the message below.
  }
  return { error: `must be a redis://, rediss:// or redis+sentinel:// URL, not "${text}"` };
}

function parseSentinelUrl(text: string): Extract<RedisTarget, { mode: "sentinel" }> | undefined {
  const match = /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/@]+)\/([^/?#]+)\/?$/.exec(text);
  if (!match) return undefined;
  const [, username, password, hosts = "", name = ""] = match;
  const sentinels = parseHostPortList(hosts);
  if ("error" in sentinels) return undefined;
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

/** Browser origins, comma-separated: each SCHEME://HOST[:PORT] exactly as a browser sends it, or "*". */
function parseOrigins(text: string): string[] | { error: string } {
  const origins = text
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "");
  for (const origin of origins) {
    if (origin === "*") continue;
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      // Refused below.
    }
    if (parsed?.origin !== origin) {
      return {
        error: `must be origins such as https://app.example.com (scheme, host and port only) or *, not "${origin}"`,
      };
    }
  }
  return origins;
}

/** Every setting of `syncgen serve`, in the order --help lists them. */
export const SERVER_SETTINGS = {
  listen: {
    flag: "listen",
    placeholder: "host:port",
    env: "SYNCGEN_LISTEN",
    description: "HOST:PORT to serve gRPC on",
    default: "127.0.0.1:50051",
    parse: parseHostPort,
  },
  httpListen: {
    flag: "http-listen",
    placeholder: "host:port",
    env: "SYNCGEN_HTTP_LISTEN",
    description:
      "HOST:PORT to serve Connect (JSON or binary, HTTP/1.1 or HTTP/2), gRPC-Web and the status page on; none by default",
    default: "",
    parse: optional(parseHostPort),
  },
  corsOrigins: {
    flag: "cors-origin",
    placeholder: "origin,...",
    env: "SYNCGEN_CORS_ORIGINS",
    description:
      "browser origins that may call the HTTP port (https://app.example.com,...; * for any); none by default",
    default: "",
    parse: parseOrigins,
  },
  redisServer: {
    flag: "redis",
    placeholder: "url",
    env: "REDIS_URL",
    description:
      "Redis URL: redis:// or rediss:// (TLS), or redis+sentinel://HOST:PORT,.../NAME; without Redis, an in-memory store for a single replica",
    default: "",
    parse: optional(parseRedisUrl),
  },
  sentinels: {
    flag: "sentinels",
    placeholder: "host:port,...",
    env: "SYNCGEN_SENTINELS",
    description: "Redis Sentinels HOST:PORT,HOST:PORT,... (with --sentinel-name), instead of --redis",
    default: "",
    parse: optional(parseHostPortList),
  },
  sentinelName: {
    flag: "sentinel-name",
    placeholder: "name",
    env: "SYNCGEN_SENTINEL_NAME",
    description: "the master's name in the Sentinels' configuration",
    default: "",
    parse: optional(text),
  },
  redisCluster: {
    flag: "redis-cluster",
    placeholder: "host:port,...",
    env: "SYNCGEN_REDIS_CLUSTER",
    description: "Redis Cluster nodes HOST:PORT,HOST:PORT,... to discover the cluster from, instead of --redis",
    default: "",
    parse: optional(parseHostPortList),
  },
  prefix: {
    flag: "prefix",
    placeholder: "prefix",
    env: "SYNCGEN_PREFIX",
    description: "prefix of every Redis key and channel",
    default: "syncgen:",
    // Braces would move the hash tag that keeps a key's record and channel on one Cluster shard.
    parse: (value: string) => (/[{}]/.test(value) ? { error: `must not contain { or }, not "${value}"` } : value),
  },
  maxKeyBytes: {
    flag: "max-key-bytes",
    placeholder: "bytes",
    env: "SYNCGEN_MAX_KEY_BYTES",
    description: "longest key, in UTF-8 bytes",
    default: "1024",
    parse: integer(1, 65536),
  },
  maxWatchKeys: {
    flag: "max-watch-keys",
    placeholder: "n",
    env: "SYNCGEN_MAX_WATCH_KEYS",
    description: "most keys one Watch may name",
    default: "10000",
    parse: integer(1, 1_000_000),
  },
  heartbeatMs: {
    flag: "heartbeat-ms",
    placeholder: "ms",
    env: "SYNCGEN_HEARTBEAT_MS",
    description: "interval of Watch heartbeats, in milliseconds",
    default: "15000",
    parse: integer(10, 3_600_000),
  },
  shutdownTimeoutMs: {
    flag: "shutdown-timeout-ms",
    placeholder: "ms",
    env: "SYNCGEN_SHUTDOWN_TIMEOUT_MS",
    description: "how long shutdown lets calls finish, in milliseconds",
    default: "10000",
    parse: integer(0, 600_000),
  },
  redisTimeoutMs: {
    flag: "redis-timeout-ms",
    placeholder: "ms",
    env: "SYNCGEN_REDIS_TIMEOUT_MS",
    description: "how long a Redis command may take before the call fails with UNAVAILABLE, in milliseconds",
    default: "2000",
    parse: integer(10, 600_000),
  },
  redisWaitReplicas: {
    flag: "redis-wait-replicas",
    placeholder: "n",
    env: "SYNCGEN_REDIS_WAIT_REPLICAS",
    description:
      "a write succeeds only once this many Redis replicas have it (WAIT), so a failover cannot lose an acknowledged Bump; 0 does not wait",
    default: "0",
    parse: integer(0, 64),
  },
  redisWaitMs: {
    flag: "redis-wait-ms",
    placeholder: "ms",
    env: "SYNCGEN_REDIS_WAIT_MS",
    description: "how long a write waits for --redis-wait-replicas before failing with UNAVAILABLE, in milliseconds",
    default: "250",
    parse: integer(1, 600_000),
  },
  logLevel: {
    flag: "log-level",
    placeholder: "level",
    env: "SYNCGEN_LOG_LEVEL",
    description: `log level (${LOG_LEVELS.join(", ")})`,
    default: "info",
    parse: (value: string): LogLevel | { error: string } =>
      (LOG_LEVELS as readonly string[]).includes(value)
        ? (value as LogLevel)
        : { error: `must be one of ${LOG_LEVELS.join(", ")}, not "${value}"` },
  },
  tlsCert: {
    flag: "tls-cert",
    placeholder: "file",
    env: "SYNCGEN_TLS_CERT",
    description: "PEM certificate chain file: serve TLS (with --tls-key)",
    default: "",
    parse: optional(text),
  },
  tlsKey: {
    flag: "tls-key",
    placeholder: "file",
    env: "SYNCGEN_TLS_KEY",
    description: "PEM private key file of --tls-cert",
    default: "",
    parse: optional(text),
  },
  tlsClientCa: {
    flag: "tls-client-ca",
    placeholder: "file",
    env: "SYNCGEN_TLS_CLIENT_CA",
    description: "PEM CA file: refuse clients without a certificate it signed (mutual TLS)",
    default: "",
    parse: optional(text),
  },
  authFile: {
    flag: "auth-file",
    placeholder: "file",
    env: "SYNCGEN_AUTH_FILE",
    description: "JSON file of bearer tokens and the key prefixes each may read and write; without one, no auth",
    default: "",
    parse: optional(text),
  },
  metricsListen: {
    flag: "metrics-listen",
    placeholder: "host:port",
    env: "SYNCGEN_METRICS_LISTEN",
    description: "HOST:PORT to serve Prometheus metrics on, at /metrics",
    default: "",
    parse: optional(parseHostPort),
  },
  maxWatchStreams: {
    flag: "max-watch-streams",
    placeholder: "n",
    env: "SYNCGEN_MAX_WATCH_STREAMS",
    description: "most Watch streams open on this server at once",
    default: "50000",
    parse: integer(1, 10_000_000),
  },
  maxWatchStreamsPerConnection: {
    flag: "max-watch-streams-per-connection",
    placeholder: "n",
    env: "SYNCGEN_MAX_WATCH_STREAMS_PER_CONNECTION",
    description: "most Watch streams open on one client connection at once",
    default: "500",
    parse: integer(1, 10_000_000),
  },
  maxConcurrentStreams: {
    flag: "max-concurrent-streams",
    placeholder: "n",
    env: "SYNCGEN_MAX_CONCURRENT_STREAMS",
    description: "most concurrent calls on one HTTP/2 connection (grpc.max_concurrent_streams)",
    default: "1000",
    parse: integer(1, 2 ** 31 - 1),
  },
  maxMessageBytes: {
    flag: "max-message-bytes",
    placeholder: "bytes",
    env: "SYNCGEN_MAX_MESSAGE_BYTES",
    description:
      "largest Watch request, in bytes (and of Get, Bump and Clear, if below their own limit); 0 fits the largest Watch that --max-watch-keys and --max-key-bytes allow",
    default: "0",
    parse: integer(0, 2 ** 31 - 1),
  },
  maxPendingRequestBytes: {
    flag: "max-pending-request-bytes",
    placeholder: "bytes",
    env: "SYNCGEN_MAX_PENDING_REQUEST_BYTES",
    description:
      "most bytes of large requests (over 64 KiB, i.e. big Watches) the server reads at once, whatever connections they come on; 0 is four times the largest Watch request",
    default: "0",
    parse: integer(0, Number.MAX_SAFE_INTEGER),
  },
  keepaliveMs: {
    flag: "keepalive-ms",
    placeholder: "ms",
    env: "SYNCGEN_KEEPALIVE_MS",
    description: "how often an idle connection is pinged to find dead clients, in milliseconds",
    default: "60000",
    parse: integer(1000, 2 ** 31 - 1),
  },
  keepaliveTimeoutMs: {
    flag: "keepalive-timeout-ms",
    placeholder: "ms",
    env: "SYNCGEN_KEEPALIVE_TIMEOUT_MS",
    description: "how long a ping may go unanswered before the connection is closed, in milliseconds",
    default: "20000",
    parse: integer(100, 2 ** 31 - 1),
  },
  maxConnectionAgeMs: {
    flag: "max-connection-age-ms",
    placeholder: "ms",
    env: "SYNCGEN_MAX_CONNECTION_AGE_MS",
    description: "close connections after about this long (±10%), so clients rebalance over replicas; 0 never",
    default: "1800000",
    parse: integer(0, 2 ** 31 - 1),
  },
  maxConnectionAgeGraceMs: {
    flag: "max-connection-age-grace-ms",
    placeholder: "ms",
    env: "SYNCGEN_MAX_CONNECTION_AGE_GRACE_MS",
    description: "how long calls, Watch streams included, go on after a connection is told to close",
    default: "30000",
    parse: integer(0, 2 ** 31 - 1),
  },
} as const satisfies SettingsTable;

/** The values the settings give, before the Redis settings are combined into one target. */
type ServerSettingValues = SettingValues<typeof SERVER_SETTINGS>;

/** The settings that each name a Redis; at most one may be given. */
const REDIS_SETTINGS = ["redisServer", "sentinels", "redisCluster"] as const;

/** The server's validated configuration: every setting, with the Redis ones combined into `redis`. */
export type ServerConfig = Omit<ServerSettingValues, (typeof REDIS_SETTINGS)[number] | "sentinelName"> & {
  /** The Redis to share state through; undefined serves from the in-memory store (one replica). */
  redis: RedisTarget | undefined;
};

/**
 * Resolves the configuration: a flag wins over its environment variable, which wins over the
 * default. Throws ConfigError naming the flag or variable of the first bad value.
 */
export function resolveServerConfig(flags: SettingTexts, env: SettingTexts = {}): ServerConfig {
  const { values, fromFlags } = readSettings(SERVER_SETTINGS, flags, env);
  const { redisServer, sentinels, sentinelName, redisCluster, ...rest } = values;
  // One Redis: a flag naming one kind wins over the environment naming another (REDIS_URL
  // set for the whole shell should not stop `serve --redis-cluster ...`).
  let given = REDIS_SETTINGS.filter((name) => values[name] !== undefined);
  const byFlag = given.filter((name) => fromFlags.has(name));
  if (byFlag.length === 1) given = byFlag;
  if (given.length > 1) {
    throw new ConfigError("give one Redis: --redis, --sentinels or --redis-cluster (or their environment variables)");
  }
  let redis: RedisTarget | undefined;
  switch (given[0]) {
    case "redisServer":
      redis = redisServer;
      break;
    case "sentinels":
      if (sentinelName === undefined) {
        throw new ConfigError("--sentinels needs --sentinel-name: the master's name in the Sentinels' configuration");
      }
      redis = { mode: "sentinel", sentinels: sentinels ?? [], name: sentinelName };
      break;
    case "redisCluster":
      redis = { mode: "cluster", nodes: redisCluster ?? [] };
      break;
  }
  return checkServerConfig({ ...rest, redis });
}

/**
 * Checks what no single setting can: settings that go together, or exclude each other.
 * Returns the configuration, or throws ConfigError. resolveServerConfig calls it, and so
 * does the server, for configurations built in code.
 */
export function checkServerConfig(config: ServerConfig): ServerConfig {
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    throw new ConfigError("--tls-cert and --tls-key go together: give both to serve TLS, or neither");
  }
  if (config.corsOrigins.length > 0 && config.httpListen === undefined) {
    throw new ConfigError("--cors-origin applies to the HTTP port: give --http-listen as well");
  }
  if (config.tlsClientCa !== undefined && config.tlsCert === undefined) {
    throw new ConfigError("--tls-client-ca needs TLS: give --tls-cert and --tls-key as well");
  }
  if (config.redisWaitReplicas > 0 && config.redis?.mode === "cluster") {
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
