/**
 * The server, read top to bottom as its life goes: `start` builds it (the store, the watch
 * hub, health, metrics, and the services — GenerationService, grpc.health.v1 and reflection —
 * on a grpc-js server and, with --http-listen, on the HTTP port over Connect and gRPC-Web),
 * listens, and connects the store; it serves until `shutdown`, which drains (health
 * NOT_SERVING, Watch streams ended so clients move to another replica, unary calls in flight
 * finished) and then stops (what is left cut off, connections and the store closed). Both
 * ports share one set of handlers, tokens, limits and metrics.
 */
import { readFile } from "node:fs/promises";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { type ChannelOptions, Server, ServerCredentials, type ServerInterceptor } from "@grpc/grpc-js";
import { file_generation_v1_generation, GenerationService } from "../gen/generation/v1/generation_pb.js";
import { file_grpc_health_v1_health, Health } from "../gen/grpc/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection, ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import {
  file_grpc_reflection_v1alpha_reflection,
  ServerReflection as ServerReflectionV1alpha,
} from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { AccessControl } from "./access-control.js";
import { checkServerConfig, type ServerConfig } from "./config.js";
import { ConnectAccess, connectMetricsInterceptor } from "./connect-interceptors.js";
import { ConnectRoutes } from "./connect-routes.js";
import { type ConnectionListener, listenForConnections } from "./connection-listener.js";
import { Code, type GenerationServiceError } from "./errors.js";
import {
  generationServiceAccess,
  generationServiceHandlers,
  generationServiceReadings,
  maxWatchRequestBytes,
} from "./generation-service.js";
import { addService, type ServeOptions } from "./grpc-service.js";
import type { ServiceHandlers, ServiceReadings } from "./handler.js";
import { HealthService } from "./health-service.js";
import { formatHostPort, type HostPort } from "./host-port.js";
import { HttpEndpoint, type HttpTls } from "./http-endpoint.js";
import { accessInterceptor, metricsInterceptor } from "./interceptors.js";
import type { Logger, LogOutput } from "./logger.js";
import { type MetricsEndpoint, ServerMetrics } from "./metrics.js";
import { ReflectionService } from "./reflection-service.js";
import { countingBumps, ReplicaStatus } from "./replica-status.js";
import { RequestSizeLimits } from "./request-limits.js";
import { ConfigError } from "./settings.js";
import { statusPageHandler } from "./status-page.js";
import type { GenerationRecords, GenerationStore, StoreState } from "./store/generation-store.js";
import { MemoryStore } from "./store/memory-store.js";
import { RedisStore } from "./store/redis-store.js";
import { SHUTDOWN_MESSAGE, WatchHub } from "./watch-hub.js";
import { WatchQuota } from "./watch-quota.js";

/** What a server needs besides the configuration. */
export interface ServerOptions {
  logger: Logger;
  /** Where `logger` writes, when it is a LogOutput: its dropped lines are counted in the metrics. */
  logOutput?: LogOutput;
  /** A store to serve from instead of the one the configuration names (embedding, tests). */
  store?: GenerationStore;
}

/** Plaintext, TLS or mutual TLS, and which, for the log. */
interface Transport {
  credentials: ServerCredentials;
  tls: "plaintext" | "TLS" | "mutual TLS";
  /** The PEM files, for the HTTP port; undefined in plaintext. */
  files: HttpTls | undefined;
}

/** A running syncgen server. */
export class SyncgenServer {
  readonly #config: ServerConfig;
  readonly #logger: Logger;
  readonly #store: GenerationStore;
  /** Whether the store is this server's own, to close; a store passed in is the caller's. */
  readonly #ownsStore: boolean;
  readonly #hub: WatchHub;
  readonly #health = new HealthService([GenerationService.typeName]);
  readonly #metrics: ServerMetrics | undefined;
  readonly #grpc: Server;
  /** What the HTTP port serves, when --http-listen is set. */
  readonly #connect: ConnectRoutes | undefined;
  /** What the status page shows, when --http-listen is set. */
  readonly #status: ReplicaStatus | undefined;
  #http: HttpEndpoint | undefined;
  #accessControl: AccessControl | undefined;
  #listener: ConnectionListener | undefined;
  #metricsEndpoint: MetricsEndpoint | undefined;
  /** Set as shutdown begins: from then on a reconnecting store must not make health SERVING again. */
  #draining = false;
  #stopped: Promise<void> | undefined;

  /**
   * Starts a server as configured; resolves once it listens (the store may still be
   * connecting). Throws ConfigError when a file the configuration names (TLS, auth) is missing
   * or malformed, or an address cannot be listened on; nothing is left running then.
   */
  static async start(config: ServerConfig, options: ServerOptions): Promise<SyncgenServer> {
    checkServerConfig(config);
    const [transport, accessControl] = await Promise.all([
      serverTransport(config),
      config.authFile === undefined ? undefined : AccessControl.fromFile(config.authFile),
    ]);
    const server = new SyncgenServer(config, options, accessControl);
    try {
      await server.#listen(transport);
    } catch (error) {
      await server.#stop(true);
      throw error;
    }
    server.#store
      .connect()
      .catch((error: unknown) =>
        server.#logger.warn({ event: "store_connect_failed", err: error }, "store connect failed"),
      );
    return server;
  }

  /** Builds every part and registers the services; nothing listens or connects yet. */
  private constructor(config: ServerConfig, options: ServerOptions, accessControl: AccessControl | undefined) {
    this.#config = config;
    this.#logger = options.logger;
    this.#accessControl = accessControl;
    this.#ownsStore = options.store === undefined;
    this.#store = options.store ?? createStore(config);
    const { records, feed } = this.#store;
    this.#hub = new WatchHub(feed, records, {
      heartbeatMs: config.heartbeatMs,
      onResyncError: (error) =>
        this.#logger.warn({ event: "resync_failed", err: error }, "re-reading watched keys failed; retrying"),
    });
    if (config.metricsListen !== undefined) {
      this.#metrics = new ServerMetrics(feed, this.#hub, options.logOutput);
      this.#hub.observe(this.#metrics);
    }
    feed.on("state", this.#onStoreState);
    const sizeLimits = new RequestSizeLimits(config.maxPendingRequestBytes || 4 * maxWatchRequestBytes(config));
    this.#grpc = new Server({ ...transportOptions(config), interceptors: this.#interceptors(sizeLimits) });
    let served = records;
    if (config.httpListen !== undefined) {
      const status = new ReplicaStatus({
        feed,
        hub: this.#hub,
        redis: config.redis,
        auth: () => this.#accessControl !== undefined,
      });
      this.#hub.observe(status);
      served = countingBumps(records, status);
      this.#status = status;
      const access = accessControl
        ? new ConnectAccess(
            () => this.#accessControl as AccessControl,
            GenerationService,
            generationServiceAccess,
            this.#onCallRefused,
          )
        : undefined;
      this.#connect = new ConnectRoutes({
        limits: sizeLimits,
        // Metrics outermost, so they count the calls access control refuses.
        interceptors: [
          ...(this.#metrics ? [connectMetricsInterceptor(this.#metrics)] : []),
          ...(access ? [access.interceptor()] : []),
        ],
        onError: this.#onCallError,
        corsOrigins: config.corsOrigins,
        fallback: statusPageHandler(status),
        ...(access ? { beforeBody: access.beforeBody } : {}),
        observer: this.#metrics,
      });
    }
    this.#registerServices(sizeLimits, served);
  }

  /** Logs the store's state and makes health follow it. */
  readonly #onStoreState = (state: StoreState, reason: string): void => {
    const store = this.#store.feed.description;
    this.#logger.info({ event: "store_state", store, state, reason }, `store ${state}: ${reason}`);
    this.#health.setServing(!this.#draining && state === "ready");
  };

  /**
   * Size limits first: only the first interceptor is handed grpc-js's own call. Metrics next:
   * it wraps access control, so it also counts the calls access control refuses.
   */
  #interceptors(sizeLimits: RequestSizeLimits): ServerInterceptor[] {
    const interceptors = [
      sizeLimits.interceptor(() =>
        this.#logger.warn(
          { event: "size_limits_unenforced" },
          "this grpc-js reads requests up to the largest method's limit before checking each method's own",
        ),
      ),
    ];
    if (this.#metrics) interceptors.push(metricsInterceptor(this.#metrics));
    if (this.#accessControl) {
      interceptors.push(
        accessInterceptor(
          () => this.#accessControl as AccessControl,
          GenerationService,
          generationServiceAccess,
          this.#onCallRefused,
        ),
      );
    }
    return interceptors;
  }

  /** Logs a call access control refused (the token itself is never logged). */
  readonly #onCallRefused = (method: string, error: GenerationServiceError, principal: string | undefined): void =>
    this.#logger.debug(
      { event: "call_refused", method, code: Code[error.code], principal, details: error.message },
      "call refused",
    );

  /** Logs a call that ended with an error: a bug of ours as an error, anything else at debug level. */
  readonly #onCallError = (method: string, error: GenerationServiceError): void => {
    if (error.code === Code.INTERNAL) {
      this.#logger.error({ event: "internal_error", method, err: error.cause }, "internal error");
    } else {
      this.#logger.debug(
        { event: "call_failed", method, code: Code[error.code], details: error.message },
        "call failed",
      );
    }
  };

  /**
   * GenerationService, health and reflection (v1 and v1alpha), on the grpc-js server and on the
   * HTTP port: one set of handlers, so one Watch quota and one health state.
   */
  #registerServices(limits: RequestSizeLimits, records: GenerationRecords): void {
    const config = this.#config;
    const reflection = new ReflectionService([
      file_generation_v1_generation,
      file_grpc_health_v1_health,
      file_grpc_reflection_v1_reflection,
      file_grpc_reflection_v1alpha_reflection,
    ]);
    const services = [
      serviceEntry(
        GenerationService,
        generationServiceHandlers({ records, hub: this.#hub, limits: config, watchQuota: new WatchQuota(config) }),
        generationServiceReadings(config),
      ),
      serviceEntry(Health, this.#health.handlers(), this.#health.readings()),
      serviceEntry(ServerReflection, reflection.handlers(), reflection.readings()),
      serviceEntry(ServerReflectionV1alpha, reflection.handlersV1alpha(), reflection.readings()),
    ];
    const options: ServeOptions = { limits, onError: this.#onCallError };
    for (const serve of services) {
      serve((service, handlers, readings) => {
        addService(this.#grpc, service, handlers, readings, options);
        this.#connect?.add(service, handlers, readings);
      });
    }
  }

  /** Listens on the metrics address, then the gRPC one (if either is taken, nothing is left listening), and says so. */
  async #listen(transport: Transport): Promise<void> {
    const { listen, metricsListen } = this.#config;
    if (this.#metrics && metricsListen) {
      this.#metricsEndpoint = await this.#metrics.listen(metricsListen).catch((error: Error) => {
        throw new ConfigError(`--metrics-listen ${formatHostPort(metricsListen)}: ${error.message}`);
      });
    }
    this.#listener = await listenForConnections(this.#grpc, transport.credentials, {
      hostPort: listen,
      keepaliveTimeoutMs: this.#config.keepaliveTimeoutMs,
      logger: this.#logger,
      observer: this.#metrics,
    }).catch((error: Error) => {
      throw new ConfigError(`--listen ${formatHostPort(listen)}: ${error.message}`);
    });
    const { httpListen } = this.#config;
    if (this.#connect && httpListen) {
      this.#http = await HttpEndpoint.listen({
        hostPort: httpListen,
        tls: transport.files,
        handler: this.#connect.handle,
        maxConcurrentStreams: this.#config.maxConcurrentStreams,
        keepalive: { intervalMs: this.#config.keepaliveMs, timeoutMs: this.#config.keepaliveTimeoutMs },
        maxConnectionAge: { ageMs: this.#config.maxConnectionAgeMs, graceMs: this.#config.maxConnectionAgeGraceMs },
        logger: this.#logger,
        observer: this.#metrics,
      }).catch((error: Error) => {
        throw new ConfigError(`--http-listen ${formatHostPort(httpListen)}: ${error.message}`);
      });
    }
    this.#logStart(transport);
  }

  /** The first log line: where, from which store, how secured, and whether anyone may do anything. */
  #logStart(transport: Transport): void {
    const config = this.#config;
    const address = formatHostPort(this.address);
    const store = this.#store.feed.description;
    const auth = this.#accessControl;
    this.#logger.info(
      {
        event: "start",
        address,
        store,
        prefix: config.redis ? config.prefix : undefined,
        tls: transport.tls,
        auth: auth ? `${auth.size} tokens` : "open",
        metrics: this.#metricsEndpoint?.url,
        http: this.#http ? formatHostPort(this.#http.address) : undefined,
      },
      [
        `syncgen serving gRPC on ${address}${this.#http ? ` and Connect, gRPC-Web and the status page on ${formatHostPort(this.#http.address)}` : ""} (${transport.tls})`,
        config.redis
          ? `store ${store}`
          : "from the in-memory store (one replica only; give --redis, --sentinels or --redis-cluster to share state)",
        auth
          ? `${auth.size} tokens from ${config.authFile}`
          : "OPEN: no --auth-file, so every client may read and write every key",
      ].join(", "),
    );
  }

  /** Where it listens, with the port actually bound. */
  get address(): HostPort {
    if (this.#listener === undefined) throw new Error("SyncgenServer: not listening");
    return this.#listener.address;
  }

  /** Where it serves Connect, gRPC-Web and the status page, when --http-listen is set. */
  get httpAddress(): HostPort | undefined {
    return this.#http?.address;
  }

  /** Where it serves Prometheus metrics, when --metrics-listen is set. */
  get metricsAddress(): HostPort | undefined {
    return this.#metricsEndpoint?.address;
  }

  /**
   * Reads the auth file again (SIGHUP): calls that start afterwards are checked against the
   * new tokens. A file that does not parse changes nothing and rejects with ConfigError.
   */
  async reloadAuthFile(): Promise<void> {
    const path = this.#config.authFile;
    if (path === undefined || this.#accessControl === undefined) {
      this.#logger.warn({ event: "auth_reload_failed" }, "no --auth-file to reload: this server runs open");
      throw new ConfigError("no --auth-file to reload: this server runs open");
    }
    try {
      this.#accessControl = await AccessControl.fromFile(path);
    } catch (error) {
      this.#logger.error({ event: "auth_reload_failed", err: error }, "auth file not reloaded; the old tokens stay");
      throw error;
    }
    const tokens = this.#accessControl.size;
    this.#logger.info({ event: "auth_reloaded", tokens }, `${tokens} tokens from ${path}`);
  }

  /**
   * Shuts down gracefully: drains, then stops at the configured deadline at the latest.
   * Resolves when closed; safe to call more than once.
   */
  shutdown(reason: string): Promise<void> {
    this.#stopped ??= (async () => {
      this.#logger.info({ event: "stopping", reason }, `stopping: ${reason}`);
      const outcome = await this.#drain();
      await this.#stop(outcome === "deadline");
      this.#logger.info(
        { event: "stop", outcome },
        outcome === "drained" ? "stopped" : "stopped at the shutdown deadline",
      );
    })();
    return this.#stopped;
  }

  /**
   * Health NOT_SERVING, no new connections, every stream ended with UNAVAILABLE (streams never
   * end by themselves; clients reconnect to another replica), then unary calls in flight
   * (even those not yet dispatched) finish, until the shutdown deadline at the latest.
   */
  async #drain(): Promise<"drained" | "deadline"> {
    this.#draining = true;
    this.#listener?.stopAccepting();
    this.#health.setServing(false);
    this.#hub.shutdown();
    this.#health.endWatches(SHUTDOWN_MESSAGE);
    this.#status?.close();
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      Promise.all([new Promise<void>((resolve) => this.#grpc.tryShutdown(() => resolve())), this.#http?.drain()]).then(
        () => "drained" as const,
      ),
      new Promise<"deadline">((resolve) => {
        timer = setTimeout(() => resolve("deadline"), this.#config.shutdownTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return outcome;
  }

  /**
   * Cuts off what is left (`force`), closes every connection and the metrics endpoint, lets
   * go of the store, and closes it if it is this server's own.
   */
  async #stop(force: boolean): Promise<void> {
    if (force) this.#grpc.forceShutdown();
    // Connections that never spoke HTTP/2 (or never finished TLS) are not grpc-js's to close.
    this.#listener?.closeAll();
    this.#http?.close();
    this.#hub.shutdown();
    await Promise.all([this.#ownsStore ? this.#store.close() : undefined, this.#metricsEndpoint?.close()]);
    // After the close, so that it is logged.
    this.#store.feed.off("state", this.#onStoreState);
  }
}

/** A service with its handlers and readings, kept together so each may be added to both ports with its own types. */
function serviceEntry<T extends GenServiceMethods>(
  service: GenService<T>,
  handlers: ServiceHandlers<T>,
  readings: ServiceReadings<T>,
): (
  add: <U extends GenServiceMethods>(
    service: GenService<U>,
    handlers: ServiceHandlers<U>,
    readings: ServiceReadings<U>,
  ) => void,
) => void {
  return (add) => add(service, handlers, readings);
}

/** Creates (but does not connect) the store the configuration names: Redis when it names one, memory otherwise. */
export function createStore(config: ServerConfig): GenerationStore {
  if (config.redis === undefined) return new MemoryStore();
  const common = { prefix: config.prefix, commandTimeoutMs: config.redisTimeoutMs };
  if (config.redis.mode === "cluster") return new RedisStore({ ...common, target: config.redis });
  return new RedisStore({
    ...common,
    target: config.redis,
    ...(config.redisWaitReplicas > 0
      ? { waitForReplicas: { count: config.redisWaitReplicas, timeoutMs: config.redisWaitMs } }
      : {}),
  });
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

/** Plaintext, TLS, or mutual TLS, from the configured PEM files. */
async function serverTransport(config: ServerConfig): Promise<Transport> {
  if (config.tlsCert === undefined || config.tlsKey === undefined) {
    return { credentials: ServerCredentials.createInsecure(), tls: "plaintext", files: undefined };
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
      files: { cert, key, clientCa },
    };
  } catch (error) {
    throw new ConfigError(`--tls-cert/--tls-key/--tls-client-ca: ${(error as Error).message}`);
  }
}
