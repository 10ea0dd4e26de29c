/** How every `syncgen` command ends on a setting it cannot use: the message, and exit code 2. */
import { ConfigError } from "../server/settings.js";
import { USAGE_ERROR } from "./exit-codes.js";

/**
 * Runs `run`; a ConfigError it throws ends the process with `syncgen COMMAND: message` on
 * stderr and exit code 2 (a usage error, as commander's own). Anything else propagates.
 */
export async function exitOnConfigError<T>(command: string, run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`syncgen ${command}: ${error.message}\n`);
    process.exit(USAGE_ERROR);
  }
}
