/**
 * Wiring: a grpc-js server with GenerationService, grpc.health.v1 (SERVING only while the
 * store is ready) and server reflection, over the configured store; graceful shutdown.
 */
import { toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { file_generation_v1_generation, GenerationService } from "../gen/generation/v1/generation_pb.js";
import type { ServerConfig } from "./config.js";
import { Code } from "./errors.js";
import { generationServiceHandlers } from "./generation-service.js";
import { addGeneratedService, CallCounter } from "./grpc-service.js";
import { ServerHealth } from "./health.js";
import type { Logger } from "./logger.js";
import { createStore } from "./store/create-store.js";
import type { GenerationStore } from "./store/generation-store.js";
import { SHUTDOWN_MESSAGE, WatchHub } from "./watch-hub.js";

/** What `startServer` needs besides the configuration. */
export interface StartServerOptions {
  logger: Logger;
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
  /**
   * Shuts down gracefully: health NOT_SERVING, Watch streams end with UNAVAILABLE (clients
   * reconnect elsewhere), unary calls in flight finish, then everything is cut off at the
   * configured deadline. Resolves when closed; safe to call more than once.
   */
  shutdown(reason: string): Promise<void>;
}

const SERVICE_NAME = GenerationService.typeName;

/** Starts a server as configured; resolves once it listens (the store may still be connecting). */
export async function startServer(config: ServerConfig, options: StartServerOptions): Promise<RunningServer> {
  const { logger } = options;
  const store = options.store ?? createStore(config);
  const hub = new WatchHub(store, {
    heartbeatMs: config.heartbeatMs,
    onResyncError: (error) =>
      logger.warn({ event: "resync_failed", err: error }, "re-reading watched keys failed; retrying"),
  });
  const health = new ServerHealth([SERVICE_NAME]);
  let stopping = false;
  store.on("state", (state, reason) => {
    logger.info({ event: "store_state", store: store.description, state, reason }, `store ${state}: ${reason}`);
    // Once stopping, a reconnect must not advertise a replica that is on its way out.
    health.setServing(!stopping && state === "ready");
  });

  const server = new Server({
    // A Watch of the most keys, each of the longest size, plus its `known` map, must fit.
    "grpc.max_receive_message_length": Math.max(4 << 20, 2 * config.maxWatchKeys * (config.maxKeyBytes + 16)),
  });
  const calls = new CallCounter();
  addGeneratedService(server, GenerationService, generationServiceHandlers(store, hub, config), {
    calls,
    onError: (method, error) => {
      if (error.code === Code.INTERNAL)
        logger.error({ event: "internal_error", method, err: error.cause }, "internal error");
      else
        logger.debug({ event: "call_failed", method, code: Code[error.code], details: error.message }, "call failed");
    },
  });
  health.addToServer(server);
  new ReflectionService(reflectionPackage()).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(config.listen, ServerCredentials.createInsecure(), (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    );
  });
  const address = config.listen.replace(/:\d+$/, `:${port}`);
  logger.info(
    { event: "start", address, store: store.description, prefix: config.redisUrl ? config.prefix : undefined },
    config.redisUrl
      ? `syncgen serving on ${address}, store ${store.description}`
      : `syncgen serving on ${address} from the in-memory store (one replica only; give --redis to share state)`,
  );
  store
    .connect()
    .catch((error: unknown) => logger.warn({ event: "store_connect_failed", err: error }, "store connect failed"));

  let closing: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    closing ??= (async () => {
      logger.info({ event: "stopping", reason }, `stopping: ${reason}`);
      stopping = true;
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
      await store.close();
      logger.info({ event: "stop", outcome }, outcome === "drained" ? "stopped" : "stopped at the shutdown deadline");
    })();
    return closing;
  };

  return { address, port, store, hub, calls, shutdown };
}

/** Server reflection needs our file descriptor, in the shape proto-loader would give it. */
function reflectionPackage(): ConstructorParameters<typeof ReflectionService>[0] {
  const descriptor = Buffer.from(toBinary(FileDescriptorProtoSchema, file_generation_v1_generation.proto));
  // The reflection service reads only `fileDescriptorProtos` of each entry.
  return { [SERVICE_NAME]: { fileDescriptorProtos: [descriptor] } } as unknown as ConstructorParameters<
    typeof ReflectionService
  >[0];
}
