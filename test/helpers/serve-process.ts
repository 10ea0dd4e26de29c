/**
 * `syncgen serve` as an operator runs it, a process of its own: on a free port with metrics,
 * its start line read for the addresses it bound, ready once its store is. With a capped
 * heap (for attacks), tests read its memory after a garbage collection (serve-with-gc.mjs).
 * The one way tests and benchmarks start a server process.
 */
import { fileURLToPath } from "node:url";
import type { Cleanups } from "./cleanups.js";
import { CliProcess } from "./cli.js";
import { metricValue } from "./metrics.js";

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

/** How ServeProcess.start runs `syncgen serve`. */
export interface ServeOptions {
  /** Environment besides this process's; REDIS_URL is unset (in-memory store) unless given here. */
  env?: NodeJS.ProcessEnv;
  /** Where to register its stop, so the test's teardown ends it. */
  cleanups?: Cleanups;
  /** Run with a capped heap and a GC hook, so memory() can be read. */
  cappedHeap?: boolean;
  /** Run with the GC hook only (no cap), so memory() can be read. */
  gcHook?: boolean;
  /** Wait until its store is ready (default true); false resolves once it listens. */
  storeReady?: boolean;
}

/** A running `syncgen serve` with metrics. */
export class ServeProcess {
  private constructor(
    readonly cli: CliProcess,
    /** HOST:PORT of its gRPC port. */
    readonly address: string,
    /** HOST:PORT of its metrics endpoint (undefined when started with `--metrics-listen ""`). */
    readonly metricsAddress: string | undefined,
    /** HOST:PORT of its HTTP port, when started with `--http-listen`. */
    readonly httpAddress: string | undefined,
  ) {}

  /**
   * Starts `syncgen serve` on 127.0.0.1:0 with metrics on 127.0.0.1:0 and `flags` added (a
   * later --listen wins), and waits for its start line (and its store, unless told not to).
   */
  static async start(flags: string[] = [], options: ServeOptions = {}): Promise<ServeProcess> {
    const cli = new CliProcess(
      [
        "serve",
        ...["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--shutdown-timeout-ms", "3000"],
        ...flags,
      ],
      { REDIS_URL: "", ...options.env },
      options.cappedHeap
        ? { nodeArgs: ["--expose-gc", `--max-old-space-size=${CAPPED_HEAP_MB}`], script: SERVE_WITH_GC }
        : options.gcHook
          ? { nodeArgs: ["--expose-gc"], script: SERVE_WITH_GC }
          : {},
    );
    const stop = (): Promise<unknown> => cli.stop("SIGKILL").catch(() => {});
    options.cleanups?.push(stop);
    try {
      const { address, metricsAddress, httpAddress } = await cli.listening();
      if (options.storeReady ?? true) {
        await cli.line((line) => line.includes('"event":"store_state"') && line.includes('"state":"ready"'), 20_000);
      }
      return new ServeProcess(cli, address, metricsAddress, httpAddress);
    } catch (error) {
      await stop();
      throw error;
    }
  }

  /** The process's memory right after a full garbage collection (start it with `cappedHeap` or `gcHook`). */
  memory(): Promise<MemoryReading> {
    return memoryAfterGc(this.cli);
  }

  /** The sum of a metric's samples whose labels contain `labels`, from GET /metrics. */
  async metric(name: string, labels?: string): Promise<number> {
    if (this.metricsAddress === undefined) throw new Error("this syncgen serve runs without metrics");
    return metricValue(this.metricsAddress, name, labels);
  }

  /** Whether the process is still running (a heap exhausted by an attack would have ended it). */
  get running(): boolean {
    return this.cli.child.exitCode === null && this.cli.child.signalCode === null;
  }

  /** Stops it with `signal` and resolves with the exit code (SIGKILL if it lingers). */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    return this.cli.stop(signal, 10_000).catch(() => this.cli.stop("SIGKILL"));
  }
}

/**
 * Memory of a process started with --expose-gc and serve-with-gc.mjs's SIGUSR2 hook (or the
 * same hook of its own), read right after a full garbage collection.
 */
export async function memoryAfterGc(cli: CliProcess): Promise<MemoryReading> {
  const seen = cli.stderrLines.length;
  cli.child.kill("SIGUSR2");
  const line = await cli.line(
    (candidate) => candidate.startsWith('{"memory"') && cli.stderrLines.indexOf(candidate) >= seen,
    20_000,
    "stderr",
  );
  return (JSON.parse(line) as { memory: MemoryReading }).memory;
}
