/** A real syncgen server on a free loopback port, with a real client, for tests. */
import { createGenerationClient, type GenerationClient, type GenerationClientOptions } from "../../src/client/index.js";
import { defaultServerConfig, type ServerConfig } from "../../src/server/config.js";
import { formatHostPort } from "../../src/server/host-port.js";
import { createLogger, type Logger, silentLogger } from "../../src/server/logger.js";
import { createStore, SyncgenServer } from "../../src/server/server.js";
import type { GenerationStore } from "../../src/server/store/generation-store.js";
import type { Cleanups } from "./cleanups.js";
import { waitForEvent } from "./deadline.js";
import { metricValue } from "./metrics.js";

export interface TestServer {
  readonly server: SyncgenServer;
  /** The store it serves from: made here, so a test may follow its feed's state and resyncs. */
  readonly store: GenerationStore;
  readonly client: GenerationClient;
  /** HOST:PORT it listens on. */
  readonly address: string;
  /** HOST:PORT of its Prometheus metrics. */
  readonly metricsAddress: string;
  /** http://HOST:PORT of its HTTP port (Connect, gRPC-Web), when `httpListen` is set; "" otherwise. */
  readonly httpUrl: string;
  /** The sum of a metric's samples whose labels contain `labels`, scraped now. */
  metric(name: string, labels?: string): Promise<number>;
  /** Calls of a GenerationService method (e.g. "Get") started and not yet answered, from the metrics. */
  callsInFlight(method: string): Promise<number>;
  /** Calls of every method started so far, from the metrics. */
  callsStarted(): Promise<number>;
  /** A further client of this server (closed with it). */
  newClient(options?: GenerationClientOptions): GenerationClient;
  close(): Promise<void>;
}

/** Options of startTestServer. */
export interface TestServerOptions {
  /** Serve from this store instead of the one the configuration names. */
  store?: GenerationStore;
  /** Wait until the store is ready (default true). */
  waitReady?: boolean;
  /** Log here (default: silent, or SYNCGEN_TEST_LOG's level on stdout). */
  logger?: Logger;
  /** Where to register the server's close, so the test's teardown closes it. */
  cleanups?: Cleanups;
}

/**
 * Starts a server on 127.0.0.1 (a free port, metrics on another), from the memory store
 * unless `overrides` names a Redis, and waits until its store is ready.
 */
export async function startTestServer(
  overrides: Partial<ServerConfig> = {},
  options: TestServerOptions = {},
): Promise<TestServer> {
  const config = defaultServerConfig({
    listen: { host: "127.0.0.1", port: 0 },
    metricsListen: { host: "127.0.0.1", port: 0 },
    shutdownTimeoutMs: 2000,
    ...overrides,
  });
  const logger =
    options.logger ?? (process.env.SYNCGEN_TEST_LOG ? createLogger(process.env.SYNCGEN_TEST_LOG) : silentLogger());
  const store = options.store ?? createStore(config);
  const server = await SyncgenServer.start(config, { logger, store });
  if ((options.waitReady ?? true) && store.feed.state !== "ready") {
    await waitForEvent(store.feed, "state", (state) => state === "ready", 10_000);
  }
  const address = formatHostPort(server.address);
  const metricsAddress = server.metricsAddress ? formatHostPort(server.metricsAddress) : "";
  const httpUrl = server.httpAddress ? `http://${formatHostPort(server.httpAddress)}` : "";
  const clients: GenerationClient[] = [];
  const newClient = (clientOptions?: GenerationClientOptions): GenerationClient => {
    const client = createGenerationClient(address, clientOptions);
    clients.push(client);
    return client;
  };
  const ts: TestServer = {
    server,
    store,
    client: newClient(),
    address,
    metricsAddress,
    httpUrl,
    metric: (name, labels) => metricValue(metricsAddress, name, labels),
    async callsInFlight(method) {
      const labels = `grpc_method="${method}"`;
      const [started, handled] = await Promise.all([
        metricValue(metricsAddress, "grpc_server_started_total", labels),
        metricValue(metricsAddress, "grpc_server_handled_total", labels),
      ]);
      return started - handled;
    },
    callsStarted: () => metricValue(metricsAddress, "grpc_server_started_total"),
    newClient,
    async close() {
      for (const c of clients) c.close();
      await server.shutdown("test finished");
      // A store passed in is the test's to close; one made here is closed with the server.
      if (options.store === undefined) await store.close();
    },
  };
  options.cleanups?.push(() => ts.close());
  return ts;
}
