/**
 * JSON logs (pino): one line per start, stop and store state change; request-level detail
 * only at debug. Values are plain JSON: bigints are converted by the caller.
 */
import { type Logger, pino } from "pino";

export type { Logger };

/**
 * A JSON logger writing to stdout. Synchronously: an asynchronous write still in flight at
 * exit could land after the final lines, so the log would end out of order.
 */
export function createLogger(level: string): Logger {
  return pino(
    { level, base: { service: "syncgen" }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: true }),
  );
}

/** A logger that writes nothing, for embedding and tests. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
