/**
 * `syncgen serve`: resolves the configuration from flags and environment, runs the server,
 * and shuts it down gracefully on SIGTERM or SIGINT (a second signal exits at once).
 */
import { resolveServerConfig } from "../server/config.js";
import { createLogger, LogOutput } from "../server/logger.js";
import { SyncgenServer } from "../server/server.js";
import type { SettingTexts } from "../server/settings.js";
import { exitOnConfigError } from "./config-errors.js";

/** Runs the server until a signal stops it. */
export async function runServer(flags: SettingTexts): Promise<void> {
  const config = await exitOnConfigError("serve", () => resolveServerConfig(flags, process.env));
  const logOutput = new LogOutput();
  const logger = createLogger(config.logLevel, logOutput);
  const server = await exitOnConfigError("serve", () => SyncgenServer.start(config, { logger, logOutput }));
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn({ event: "forced_exit", signal }, `${signal} again: exiting at once`);
      process.exit(1);
    }
    signalled = true;
    // The log's last lines are written before exit (unless its reader is stalled).
    server
      .shutdown(`received ${signal}`)
      .then(() => logOutput.flush())
      .then(() => process.exit(0));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // Token rotation without a restart; a bad file is logged and changes nothing.
  process.on("SIGHUP", () => void server.reloadAuthFile().catch(() => {}));
}
