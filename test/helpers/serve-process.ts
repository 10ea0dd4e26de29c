/**
 * A `syncgen serve` process as an operator runs it, with a capped heap, for attacks on real
 * processes: tests read its memory after a garbage collection (serve-with-gc.mjs) and its
 * Prometheus metrics.
 */
import { fileURLToPath } from "node:url";
import { CliProcess } from "./cli.js";
import { withDeadline } from "./deadline.js";

const SERVE_WITH_GC = fileURLToPath(new URL("./serve-with-gc.mjs", import.meta.url));

/** The heap a capped server gets: an attack that keeps what it sends cannot fit in it. */
export const CAPPED_HEAP_MB = 256;

/** Memory figures of the process right after a full garbage collection, in bytes. */
export interface MemoryReading {
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

/** A running `syncgen serve` with a capped heap and metrics. */
export class ServeProcess {
  private constructor(
    readonly cli: CliProcess,
    /** HOST:PORT of its gRPC port. */
    readonly address: string,
    /** HOST:PORT of its metrics endpoint. */
    readonly metricsAddress: string,
  ) {}

  /**
   * Starts `syncgen serve` (in-memory store) with `flags` added, and waits for its start
   * line. Stop it in the test's cleanup.
   */
  static async start(flags: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
    const cli = new CliProcess(
      [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--shutdown-timeout-ms",
        "3000",
        ...flags,
      ],
      { REDIS_URL: "", ...env },
      { nodeArgs: ["--expose-gc", `--max-old-space-size=${CAPPED_HEAP_MB}`], script: SERVE_WITH_GC },
    );
    try {
      const { address, metricsAddress } = await cli.listening();
      if (metricsAddress === undefined) throw new Error("syncgen serve reported no metrics address");
      return new ServeProcess(cli, address, metricsAddress);
    } catch (error) {
      await cli.stop("SIGKILL").catch(() => {});
      throw error;
    }
  }

  /** The process's memory right after a full garbage collection. */
  async memory(): Promise<MemoryReading> {
    const seen = this.cli.stderrLines.length;
    this.cli.child.kill("SIGUSR2");
    const line = await this.cli.line(
      (candidate) => candidate.startsWith('{"memory"') && this.cli.stderrLines.indexOf(candidate) >= seen,
      20_000,
      "stderr",
    );
    return (JSON.parse(line) as { memory: MemoryReading }).memory;
  }

  /** The value of one metric (the sum over its label sets), from GET /metrics. */
  async metric(name: string): Promise<number> {
    const response = await withDeadline(fetch(`http://${this.metricsAddress}/metrics`), 20_000, "a metrics scrape");
    const text = await response.text();
    let sum = 0;
    let found = false;
    for (const line of text.split("\n")) {
      const match = /^([a-z_:]+)(?:\{[^}]*\})? (\S+)$/.exec(line);
      if (match?.[1] === name) {
        sum += Number(match[2]);
        found = true;
      }
    }
    if (!found) throw new Error(`no metric ${name} in the scrape`);
    return sum;
  }

  /** Whether the process is still running (a heap exhausted by an attack would have ended it). */
  get running(): boolean {
    return this.cli.child.exitCode === null && this.cli.child.signalCode === null;
  }

  /** Stops it (SIGTERM, then SIGKILL if it lingers). */
  async stop(): Promise<void> {
    await this.cli.stop("SIGTERM", 10_000).catch(() => this.cli.stop("SIGKILL"));
  }
}
