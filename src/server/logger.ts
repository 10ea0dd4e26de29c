/**
 * JSON logs (pino): one line per start, stop and store state change; connections and
 * request-level detail only at debug. Values are plain JSON: bigints are converted by the
 * caller.
 *
 * Logs are written asynchronously through a bounded buffer. Whoever reads stdout (a pipe, a
 * log shipper) may stall; a synchronous write would then stall every call the process
 * serves. Lines that do not fit the buffer are dropped and counted
 * (`syncgen_log_lines_dropped_total`), never waited for.
 */
import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger };

/** How much unwritten log output is kept while the reader is slow; beyond it, lines are dropped. */
export const LOG_BUFFER_BYTES = 4 << 20;

/** The longest shutdown waits for buffered lines to be written: the reader may be stalled for good. */
const FLUSH_TIMEOUT_MS = 2000;

/** Where the logs go: stdout, asynchronously, within a bounded buffer. */
export class LogOutput {
  readonly #destination: ReturnType<typeof pino.destination>;
  #dropped = 0;

  constructor(fd = 1, bufferBytes = LOG_BUFFER_BYTES) {
    this.#destination = pino.destination({ dest: fd, sync: false, maxLength: bufferBytes });
    this.#destination.on("drop", () => this.#dropped++);
    // A reader that went away (EPIPE) must not take the server with it: what cannot be written
    // stays buffered, and once the buffer is full further lines are dropped and counted.
    this.#destination.on("error", () => {});
  }

  /** The stream pino writes to. */
  get stream(): DestinationStream {
    return this.#destination;
  }

  /** Lines dropped because the buffer was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Resolves once what is buffered is written, or after a short wait if the reader is stalled. */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, FLUSH_TIMEOUT_MS);
      timer.unref();
      this.#destination.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** A JSON logger at `level`, writing to `output` (stdout by default). */
export function createLogger(level: string, output: LogOutput = new LogOutput()): Logger {
  return pino({ level, base: { service: "syncgen" }, timestamp: pino.stdTimeFunctions.isoTime }, output.stream);
}

/** A logger that writes nothing, for embedding and tests. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
