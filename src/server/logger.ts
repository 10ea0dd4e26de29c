/**
 * JSON logs (pino): one line per start, stop and store state change; connections and
 * request-level detail only at debug. Values are plain JSON: bigints are converted by the
 * caller.
 *
 * Logs are written asynchronously through a bounded buffer. Whoever reads stdout (a pipe, a
 * log shipper) may stall; a synchronous write would then stall every call the process
 * serves. Lines that do not fit the buffer are dropped and counted
 * (`syncgen_log_lines_dropped_total`), never waited for. The output is our own rather than
 * pino's asynchronous destination, whose exit hook writes what is still buffered while an
 * earlier write is in flight, so the last lines could come out of order.
 */
import { write as writeToFile } from "node:fs";
import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger };

/** How much unwritten log output is kept while the reader is slow; beyond it, lines are dropped. */
export const LOG_BUFFER_BYTES = 4 << 20;

/** The longest shutdown waits for buffered lines to be written: the reader may be stalled for good. */
const FLUSH_TIMEOUT_MS = 2000;

/** Pause before writing again to a non-blocking pipe that was full (EAGAIN). */
const FULL_PIPE_RETRY_MS = 10;

/** Where the logs go: a file descriptor (stdout by default), asynchronously, within a bounded buffer. */
export class LogOutput implements DestinationStream {
  readonly #fd: number;
  readonly #bufferBytes: number;
  /** Lines waiting to be written, and their bytes plus those being written. */
  #queue: string[] = [];
  #bufferedBytes = 0;
  #writing = false;
  /** The reader went away (EPIPE, or another write error): lines are dropped from now on. */
  #broken = false;
  #dropped = 0;
  readonly #whenIdle: (() => void)[] = [];

  constructor(fd = 1, bufferBytes = LOG_BUFFER_BYTES) {
    this.#fd = fd;
    this.#bufferBytes = bufferBytes;
  }

  /** Lines dropped because the buffer was full or the reader gone. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Takes one line (pino calls this); never blocks. */
  write(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.#broken || this.#bufferedBytes + bytes > this.#bufferBytes) {
      this.#dropped++;
      return;
    }
    this.#queue.push(line);
    this.#bufferedBytes += bytes;
    if (!this.#writing) this.#writeQueued();
  }

  /** Resolves once everything buffered is written, or after a short wait if the reader is stalled. */
  flush(): Promise<void> {
    if (!this.#writing) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, FLUSH_TIMEOUT_MS).unref();
      this.#whenIdle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Writes every queued line as one chunk, then whatever came meanwhile. */
  #writeQueued(): void {
    if (this.#queue.length === 0 || this.#broken) {
      this.#writing = false;
      for (const resolve of this.#whenIdle.splice(0)) resolve();
      return;
    }
    this.#writing = true;
    const chunk = Buffer.from(this.#queue.join(""));
    const lines = this.#queue.length;
    this.#queue = [];
    const writeFrom = (offset: number): void => {
      writeToFile(this.#fd, chunk, offset, chunk.length - offset, null, (error, written) => {
        if (error && (error as NodeJS.ErrnoException).code === "EAGAIN") {
          setTimeout(() => writeFrom(offset), FULL_PIPE_RETRY_MS);
          return;
        }
        if (error) {
          this.#broken = true;
          this.#dropped += lines + this.#queue.length;
          this.#queue = [];
        } else if (offset + written < chunk.length) {
          writeFrom(offset + written);
          return;
        }
        this.#bufferedBytes = error ? 0 : this.#bufferedBytes - chunk.length;
        this.#writeQueued();
      });
    };
    writeFrom(0);
  }
}

/** A JSON logger at `level`, writing to `output` (stdout by default). */
export function createLogger(level: string, output: LogOutput = new LogOutput()): Logger {
  return pino({ level, base: { service: "syncgen" }, timestamp: pino.stdTimeFunctions.isoTime }, output);
}

/** A logger that writes nothing, for embedding and tests. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
