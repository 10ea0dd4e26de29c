/** A real syncgen server on a free loopback port, with a real client, for tests. */
import { createGenerationClient, type GenerationClient, type GenerationClientOptions } from "../../src/client/index.js";
import { defaultServerConfig, type ServerConfig } from "../../src/server/config.js";
import { createLogger, silentLogger } from "../../src/server/logger.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import type { GenerationStore } from "../../src/server/store/generation-store.js";
import { waitForEvent } from "./deadline.js";

export interface TestServer {
  readonly server: RunningServer;
  readonly client: GenerationClient;
  readonly address: string;
  /** A further client of this server (closed with it). */
  newClient(options?: GenerationClientOptions): GenerationClient;
  close(): Promise<void>;
}

/** Starts a server (memory store unless `redisUrl` is given) and waits until its store is ready. */
export async function startTestServer(
  overrides: Partial<ServerConfig> = {},
  options: { store?: GenerationStore; waitReady?: boolean } = {},
): Promise<TestServer> {
  const config = defaultServerConfig({ listen: "127.0.0.1:0", shutdownTimeoutMs: 2000, ...overrides });
  const logger = process.env.SYNCGEN_TEST_LOG ? createLogger(process.env.SYNCGEN_TEST_LOG) : silentLogger();
  const server = await startServer(config, { logger, ...(options.store ? { store: options.store } : {}) });
  if ((options.waitReady ?? true) && server.store.state !== "ready") {
    await waitForEvent(server.store, "state", (state) => state === "ready", 10_000);
  }
  const clients: GenerationClient[] = [];
  const newClient = (clientOptions?: GenerationClientOptions): GenerationClient => {
    const client = createGenerationClient(server.address, clientOptions);
    clients.push(client);
    return client;
  };
  const client = newClient();
  return {
    server,
    client,
    address: server.address,
    newClient,
    async close() {
      for (const c of clients) c.close();
      await server.shutdown("test finished");
    },
  };
}
