/**
 * Wiring: a grpc-js server with GenerationService, grpc.health.v1 (SERVING only while the
 * store is ready) and server reflection, over the configured store; graceful shutdown.
 */
import { readFile } from "node:fs/promises";
import { type ChannelOptions, Server, ServerCredentials, type ServerInterceptor } from "@grpc/grpc-js";
import { file_generation_v1_generation, GenerationService } from "../gen/generation/v1/generation_pb.js";
import { file_grpc_health_v1_health, Health } from "../gen/grpc/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection, ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import {
  file_grpc_reflection_v1alpha_reflection,
  ServerReflection as ServerReflectionV1alpha,
} from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { AccessControl } from "./access-control.js";
import { ConfigError, checkServerConfig, redisTarget, type ServerConfig } from "./config.js";
import { listenForConnections } from "./connection-listener.js";
import { Code } from "./errors.js";
import {
  generationServiceAccess,
  generationServiceHandlers,
  generationServiceReadings,
  maxWatchRequestBytes,
} from "./generation-service.js";
import { addService, CallCounter, type ServeOptions } from "./grpc-service.js";
import { HealthService } from "./health-service.js";
import { accessInterceptor, metricsInterceptor } from "./interceptors.js";
import type { Logger, LogOutput } from "./logger.js";
import { type MetricsEndpoint, ServerMetrics } from "./metrics.js";
import { ReflectionService } from "./reflection-service.js";
import { RequestSizeLimits } from "./request-limits.js";
import { createStore } from "./store/create-store.js";
import type { GenerationStore } from "./store/generation-store.js";
import { SHUTDOWN_MESSAGE, WatchHub } from "./watch-hub.js";
import { WatchQuota } from "./watch-quota.js";

/** What `startServer` needs besides the configuration. */
export interface StartServerOptions {
  logger: Logger;
  /** Where `logger` writes, when it is a LogOutput: its dropped lines are counted in the metrics. */
  logOutput?: LogOutput;
  /** Overrides the store the configuration names (embedding, tests). */
  store?: GenerationStore;
}

/** A running syncgen server. */
export interface RunningServer {
  /** The address it listens on, with the port actually bound. */
  readonly address: string;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** The store it serves from. */
  readonly store: GenerationStore;
  /** Its watch fan-out. */
  readonly hub: WatchHub;
  /** Unary calls seen and in flight. */
  readonly calls: CallCounter;
  /** The Prometheus endpoint, when --metrics-listen is set. */
  readonly metrics: MetricsEndpoint | undefined;
  /**
   * Reads the auth file again (SIGHUP): calls that start afterwards are checked against the
   * new tokens. A file that does not parse changes nothing and rejects with ConfigError.
   */
  reloadAuthFile(): Promise<void>;
  /**
   * Shuts down gracefully: health NOT_SERVING, Watch streams end with UNAVAILABLE (clients
   * reconnect elsewhere), unary calls in flight finish, then everything is cut off at the
   * configured deadline. Resolves when closed; safe to call more than once.
   */
  shutdown(reason: string): Promise<void>;
}

const SERVICE_NAME = GenerationService.typeName;

/**
 * Starts a server as configured; resolves once it listens (the store may still be
 * connecting). Throws ConfigError when a file the configuration names (TLS, auth) is
 * missing or malformed.
 */
export async function startServer(config: ServerConfig, options: StartServerOptions): Promise<RunningServer> {
  const { logger } = options;
  checkServerConfig(config);
  const [{ credentials, tls }, initialAccessControl] = await Promise.all([
    serverCredentials(config),
    config.authFile === undefined ? undefined : AccessControl.fromFile(config.authFile),
  ]);
  let accessControl = initialAccessControl;
  const store = options.store ?? createStore(config);
  const hub = new WatchHub(store, {
    heartbeatMs: config.heartbeatMs,
    onResyncError: (error) =>
      logger.warn({ event: "resync_failed", err: error }, "re-reading watched keys failed; retrying"),
  });
  const metrics = config.metricsListen === undefined ? undefined : new ServerMetrics(store, hub, options.logOutput);
  if (metrics) hub.observe(metrics);
  const health = new HealthService([SERVICE_NAME]);
  let stopping = false;
  store.on("state", (state, reason) => {
    logger.info({ event: "store_state", store: store.description, state, reason }, `store ${state}: ${reason}`);
    // Once stopping, a reconnect must not advertise a replica that is on its way out.
    health.setServing(!stopping && state === "ready");
  });

  // Size limits first: only the first interceptor is handed grpc-js's own call. Metrics next:
  // it wraps access control, so it also counts the calls access control refuses.
  const sizeLimits = new RequestSizeLimits(config.maxPendingRequestBytes || 4 * maxWatchRequestBytes(config));
  const interceptors: ServerInterceptor[] = [
    sizeLimits.interceptor(() =>
      logger.warn(
        { event: "size_limits_unenforced" },
        "this grpc-js reads requests up to the largest method's limit before checking each method's own",
      ),
    ),
  ];
  if (metrics) interceptors.push(metricsInterceptor(metrics));
  if (accessControl) {
    interceptors.push(
      accessInterceptor(
        () => accessControl as AccessControl,
        GenerationService,
        generationServiceAccess,
        (method, error, principal) =>
          logger.debug(
            { event: "call_refused", method, code: Code[error.code], principal, details: error.message },
            "call refused",
          ),
      ),
    );
  }
  const server = new Server({ ...transportOptions(config), interceptors });
  const calls = new CallCounter();
  const watchQuota = new WatchQuota(config);
  const serveOptions: ServeOptions = {
    limits: sizeLimits,
    calls,
    onError: (method, error) => {
      if (error.code === Code.INTERNAL)
        logger.error({ event: "internal_error", method, err: error.cause }, "internal error");
      else
        logger.debug({ event: "call_failed", method, code: Code[error.code], details: error.message }, "call failed");
    },
  };
  addService(
    server,
    GenerationService,
    generationServiceHandlers({ store, hub, limits: config, watchQuota }),
    generationServiceReadings(config),
    serveOptions,
  );
  addService(server, Health, health.handlers(), health.readings(), serveOptions);
  const reflection = new ReflectionService([
    file_generation_v1_generation,
    file_grpc_health_v1_health,
    file_grpc_reflection_v1_reflection,
    file_grpc_reflection_v1alpha_reflection,
  ]);
  addService(server, ServerReflection, reflection.handlers(), reflection.readings(), serveOptions);
  addService(server, ServerReflectionV1alpha, reflection.handlersV1alpha(), reflection.readings(), serveOptions);

  // Metrics first: if either port is taken, nothing is left listening.
  const metricsEndpoint =
    metrics && config.metricsListen
      ? await metrics.listen(config.metricsListen).catch((error: Error) => {
          throw new ConfigError(`--metrics-listen ${config.metricsListen}: ${error.message}`);
        })
      : undefined;
  const listener = await listenForConnections(server, credentials, {
    hostPort: config.listen,
    keepaliveTimeoutMs: config.keepaliveTimeoutMs,
    logger,
    observer: metrics,
  }).catch(async (error: Error) => {
    await metricsEndpoint?.close();
    throw new ConfigError(`--listen ${config.listen}: ${error.message}`);
  });
  const { port } = listener;
  const address = config.listen.replace(/:\d+$/, `:${port}`);
  const usesRedis = redisTarget(config) !== undefined;
  logger.info(
    {
      event: "start",
      address,
      store: store.description,
      prefix: usesRedis ? config.prefix : undefined,
      tls,
      auth: accessControl ? `${accessControl.size} tokens` : "open",
      metrics: metricsEndpoint ? `http://${metricsEndpoint.address}/metrics` : undefined,
    },
    [
      `syncgen serving on ${address} (${tls})`,
      usesRedis
        ? `store ${store.description}`
        : "from the in-memory store (one replica only; give --redis, --sentinels or --redis-cluster to share state)",
      accessControl
        ? `${accessControl.size} tokens from ${config.authFile}`
        : "OPEN: no --auth-file, so every client may read and write every key",
    ].join(", "),
  );
  store
    .connect()
    .catch((error: unknown) => logger.warn({ event: "store_connect_failed", err: error }, "store connect failed"));

  let closing: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    closing ??= (async () => {
      logger.info({ event: "stopping", reason }, `stopping: ${reason}`);
      stopping = true;
      listener.stopAccepting();
      health.setServing(false);
      // Streams never end by themselves: end them with UNAVAILABLE so clients reconnect to
      // another replica. Unary calls in flight (even those not yet dispatched) then drain.
      hub.shutdown();
      health.endWatches(SHUTDOWN_MESSAGE);
      const drained = new Promise<"drained">((resolve) => server.tryShutdown(() => resolve("drained")));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<"deadline">((resolve) => {
        timer = setTimeout(() => resolve("deadline"), config.shutdownTimeoutMs);
      });
      const outcome = await Promise.race([drained, deadline]);
      clearTimeout(timer);
      if (outcome === "deadline") server.forceShutdown();
      // Connections that never spoke HTTP/2 (or never finished TLS) are not grpc-js's to close.
      listener.closeAll();
      await Promise.all([store.close(), metricsEndpoint?.close()]);
      logger.info({ event: "stop", outcome }, outcome === "drained" ? "stopped" : "stopped at the shutdown deadline");
    })();
    return closing;
  };

  const reloadAuthFile = async (): Promise<void> => {
    const path = config.authFile;
    if (path === undefined || accessControl === undefined) {
      logger.warn({ event: "auth_reload_failed" }, "no --auth-file to reload: this server runs open");
      throw new ConfigError("no --auth-file to reload: this server runs open");
    }
    try {
      accessControl = await AccessControl.fromFile(path);
    } catch (error) {
      logger.error({ event: "auth_reload_failed", err: error }, "auth file not reloaded; the old tokens stay");
      throw error;
    }
    logger.info({ event: "auth_reloaded", tokens: accessControl.size }, `${accessControl.size} tokens from ${path}`);
  };

  return { address, port, store, hub, calls, metrics: metricsEndpoint, reloadAuthFile, shutdown };
}

/** grpc-js's transport settings from the configuration. */
function transportOptions(config: ServerConfig): ChannelOptions {
  return {
    // The largest request of any method, a Watch's; each method's own limit is applied per call.
    "grpc.max_receive_message_length": maxWatchRequestBytes(config),
    "grpc.max_concurrent_streams": config.maxConcurrentStreams,
    "grpc.keepalive_time_ms": config.keepaliveMs,
    "grpc.keepalive_timeout_ms": config.keepaliveTimeoutMs,
    ...(config.maxConnectionAgeMs > 0
      ? {
          "grpc.max_connection_age_ms": config.maxConnectionAgeMs,
          "grpc.max_connection_age_grace_ms": config.maxConnectionAgeGraceMs,
        }
      : {}),
  };
}

/** Plaintext, TLS, or mutual TLS, from the configured PEM files; `tls` names which, for the log. */
async function serverCredentials(
  config: ServerConfig,
): Promise<{ credentials: ServerCredentials; tls: "plaintext" | "TLS" | "mutual TLS" }> {
  if (config.tlsCert === undefined || config.tlsKey === undefined) {
    return { credentials: ServerCredentials.createInsecure(), tls: "plaintext" };
  }
  const read = (flag: string, path: string): Promise<Buffer> =>
    readFile(path).catch((error: Error) => {
      throw new ConfigError(`--${flag}: cannot read ${path}: ${error.message}`);
    });
  const [cert, key, clientCa] = await Promise.all([
    read("tls-cert", config.tlsCert),
    read("tls-key", config.tlsKey),
    config.tlsClientCa === undefined ? null : read("tls-client-ca", config.tlsClientCa),
  ]);
  try {
    return {
      credentials: ServerCredentials.createSsl(clientCa, [{ cert_chain: cert, private_key: key }], clientCa !== null),
      tls: clientCa === null ? "TLS" : "mutual TLS",
    };
  } catch (error) {
    throw new ConfigError(`--tls-cert/--tls-key/--tls-client-ca: ${(error as Error).message}`);
  }
}
