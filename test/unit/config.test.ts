import { describe, expect, test } from "vitest";
import { resolveServerConfig } from "../../src/server/config.js";
import { ConfigError } from "../../src/server/settings.js";

describe("resolveServerConfig()", () => {
  test("uses the defaults when nothing is set", () => {
    expect(resolveServerConfig({}, {})).toEqual({
      listen: { host: "127.0.0.1", port: 50051 },
      httpListen: undefined,
      corsOrigins: [],
      redis: undefined,
      prefix: "syncgen:",
      maxKeyBytes: 1024,
      maxWatchKeys: 10_000,
      heartbeatMs: 15_000,
      shutdownTimeoutMs: 10_000,
      redisTimeoutMs: 2_000,
      redisWaitReplicas: 0,
      redisWaitMs: 250,
      logLevel: "info",
      tlsCert: undefined,
      tlsKey: undefined,
      tlsClientCa: undefined,
      authFile: undefined,
      metricsListen: undefined,
      maxWatchStreams: 50_000,
      maxWatchStreamsPerConnection: 500,
      maxConcurrentStreams: 1000,
      maxMessageBytes: 0,
      maxPendingRequestBytes: 0,
      keepaliveMs: 60_000,
      keepaliveTimeoutMs: 20_000,
      maxConnectionAgeMs: 1_800_000,
      maxConnectionAgeGraceMs: 30_000,
    });
  });

  test("a flag wins over its environment variable, which wins over the default", () => {
    const config = resolveServerConfig(
      { listen: "0.0.0.0:7000" },
      { SYNCGEN_LISTEN: "127.0.0.1:6000", REDIS_URL: "redis://127.0.0.1:6380", SYNCGEN_PREFIX: "team-a:" },
    );
    expect(config.listen).toEqual({ host: "0.0.0.0", port: 7000 });
    expect(config.redis).toEqual({ mode: "single", url: "redis://127.0.0.1:6380" });
    expect(config.prefix).toBe("team-a:");
  });

  test("--cors-origin takes a list of origins, or *", () => {
    const config = resolveServerConfig(
      { "http-listen": "127.0.0.1:8080" },
      { SYNCGEN_CORS_ORIGINS: "https://a.example, http://localhost:3000,*" },
    );
    expect(config.httpListen).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(config.corsOrigins).toEqual(["https://a.example", "http://localhost:3000", "*"]);
  });

  test("an empty REDIS_URL means the in-memory store", () => {
    expect(resolveServerConfig({}, { REDIS_URL: "" }).redis).toBeUndefined();
  });

  test.each([
    [{ listen: "localhost" }, {}, '--listen must be HOST:PORT (e.g. 127.0.0.1:50051), not "localhost"'],
    [{}, { REDIS_URL: "http://x" }, 'REDIS_URL must be a redis://, rediss:// or redis+sentinel:// URL, not "http://x"'],
    [{ "max-key-bytes": "0" }, {}, '--max-key-bytes must be a whole number from 1 to 65536, not "0"'],
    [{}, { SYNCGEN_HEARTBEAT_MS: "1.5" }, 'SYNCGEN_HEARTBEAT_MS must be a whole number from 10 to 3600000, not "1.5"'],
    [{ "log-level": "loud" }, {}, "--log-level must be one of fatal, error, warn, info, debug, trace, silent"],
    [{ "tls-cert": "cert.pem" }, {}, "--tls-cert and --tls-key go together"],
    [{}, { SYNCGEN_TLS_KEY: "key.pem" }, "--tls-cert and --tls-key go together"],
    [{ "tls-client-ca": "ca.pem" }, {}, "--tls-client-ca needs TLS"],
    [{ "cors-origin": "https://a.example" }, {}, "--cors-origin applies to the HTTP port: give --http-listen"],
    [
      { "http-listen": "127.0.0.1:8080", "cors-origin": "https://a.example/app" },
      {},
      '--cors-origin must be origins such as https://app.example.com (scheme, host and port only) or *, not "https://a.example/app"',
    ],
    [{ "metrics-listen": "9090" }, {}, '--metrics-listen must be HOST:PORT (e.g. 127.0.0.1:50051), not "9090"'],
  ])("refuses %j %j: %s", (flags, env, message) => {
    expect(() => resolveServerConfig(flags, env)).toThrow(ConfigError);
    expect(() => resolveServerConfig(flags, env)).toThrow(message);
  });
});

describe("resolveServerConfig(): the Redis target", () => {
  test("one server, by URL", () => {
    expect(resolveServerConfig({ redis: "rediss://10.0.0.5:6380" }).redis).toEqual({
      mode: "single",
      url: "rediss://10.0.0.5:6380",
    });
    expect(resolveServerConfig({}).redis).toBeUndefined();
  });

  test("Sentinel, by redis+sentinel:// URL or by --sentinels and --sentinel-name", () => {
    expect(
      resolveServerConfig({ redis: "redis+sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2:26380/main" }).redis,
    ).toEqual({
      mode: "sentinel",
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "10.0.0.2", port: 26380 },
      ],
      name: "main",
      password: "s@cret",
    });
    expect(resolveServerConfig({}, { SYNCGEN_SENTINELS: "[::1]:26379", SYNCGEN_SENTINEL_NAME: "main" }).redis).toEqual({
      mode: "sentinel",
      sentinels: [{ host: "::1", port: 26379 }],
      name: "main",
    });
  });

  test("Cluster, by --redis-cluster", () => {
    expect(resolveServerConfig({ "redis-cluster": "127.0.0.1:7000,127.0.0.1:7001" }).redis).toEqual({
      mode: "cluster",
      nodes: [
        { host: "127.0.0.1", port: 7000 },
        { host: "127.0.0.1", port: 7001 },
      ],
    });
  });

  test("a flag naming one Redis wins over the environment naming another", () => {
    const config = resolveServerConfig({ "redis-cluster": "127.0.0.1:7000" }, { REDIS_URL: "redis://127.0.0.1:6379" });
    expect(config.redis?.mode).toBe("cluster");
  });

  test.each([
    [{ redis: "redis://a:1", "redis-cluster": "b:2" }, {}, "give one Redis: --redis, --sentinels or --redis-cluster"],
    [{}, { REDIS_URL: "redis://a:1", SYNCGEN_REDIS_CLUSTER: "b:2" }, "give one Redis"],
    [{ sentinels: "a:26379" }, {}, "--sentinels needs --sentinel-name"],
    [{ redis: "redis+sentinel://a:26379" }, {}, "--redis must be redis+sentinel://[[USER]:PASSWORD@]HOST:PORT"],
    [{ redis: "redis+sentinel://:50%off@a:26379/main" }, {}, "percent-encoded"],
    [{ "redis-cluster": "a" }, {}, '--redis-cluster must be HOST:PORT,HOST:PORT,..., not "a"'],
    [{ prefix: "team{a}:" }, {}, '--prefix must not contain { or }, not "team{a}:"'],
    [
      { "redis-cluster": "a:1", "redis-wait-replicas": "1" },
      {},
      "--redis-wait-replicas works with --redis or Sentinel",
    ],
    [
      { redis: "redis://a:1", "redis-wait-replicas": "1", "redis-wait-ms": "5000" },
      {},
      "--redis-wait-ms (5000) must be below half --redis-timeout-ms",
    ],
  ])("refuses %j %j: %s", (flags, env, message) => {
    expect(() => resolveServerConfig(flags, env)).toThrow(ConfigError);
    expect(() => resolveServerConfig(flags, env)).toThrow(message);
  });
});
