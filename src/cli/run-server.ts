/**
 * `syncgen serve`: resolves the configuration from flags and environment, runs the server,
 * and shuts it down gracefully on SIGTERM or SIGINT (a second signal exits at once).
 */
import { ConfigError, resolveServerConfig, type ServerConfig } from "../server/config.js";
import { createLogger } from "../server/logger.js";
import { startServer } from "../server/server.js";

/** Runs the server until a signal stops it. */
export async function runServer(flags: Record<string, string>): Promise<void> {
  let config: ServerConfig;
  try {
    config = resolveServerConfig(flags, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`syncgen serve: ${error.message}\n`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel);
  const server = await startServer(config, { logger }).catch((error: unknown) => {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`syncgen serve: ${error.message}\n`);
    process.exit(2);
  });
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn({ event: "forced_exit", signal }, `${signal} again: exiting at once`);
      process.exit(1);
    }
    signalled = true;
    server.shutdown(`received ${signal}`).then(() => process.exit(0));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // Token rotation without a restart; a bad file is logged and changes nothing.
  process.on("SIGHUP", () => void server.reloadAuthFile().catch(() => {}));
}
