/**
 * The processes a benchmark runs: servers under test and load generators, each its own
 * process so no figure includes another's CPU. Server CPU and memory are read from /proc
 * (the same counters process.cpuUsage() and process.memoryUsage().rss report inside).
 */
import { fileURLToPath } from "node:url";
import { CliProcess } from "../test/helpers/cli.js";
import { LineAgent } from "../test/helpers/line-agent.js";
import { ServeProcess } from "../test/helpers/serve-process.js";

const BENCH = fileURLToPath(new URL(".", import.meta.url));

/** A process under test with a gRPC address (and, for `syncgen serve --http-listen`, an HTTP one). */
export class ServerProcess {
  private constructor(
    readonly cli: CliProcess,
    readonly address: string,
    /** http://HOST:PORT of its HTTP port (Connect, gRPC-Web), when started with --http-listen. */
    readonly httpUrl?: string,
  ) {}

  /**
   * Starts `syncgen serve` with `args` (no metrics: they cost CPU per call); resolves once its
   * store is ready. With `--http-listen` in `args`, httpUrl is the HTTP port it bound.
   */
  static async syncgen(args: string[]): Promise<ServerProcess> {
    const served = await ServeProcess.start(["--metrics-listen", "", "--log-level", "info", ...args]);
    const http = served.httpAddress;
    return new ServerProcess(served.cli, served.address, http === undefined ? undefined : `http://${http}`);
  }

  /** Starts the bare grpc-js echo server (peers/echo-server.ts). */
  static async echo(): Promise<ServerProcess> {
    const cli = new CliProcess([], {}, { nodeArgs: ["--import", "tsx"], script: `${BENCH}peers/echo-server.ts` });
    const line = await cli.line((candidate) => candidate.startsWith("ready "), 20_000);
    return new ServerProcess(cli, `127.0.0.1:${/ready (\d+)/.exec(line)?.[1]}`);
  }

  /** CPU seconds (user + system) the process has used. */
  cpuSeconds(): Promise<number> {
    return this.cli.cpuSeconds();
  }

  /** Resident memory, in bytes. */
  rssBytes(): Promise<number> {
    return this.cli.rssBytes();
  }

  async stop(): Promise<void> {
    await this.cli.stop("SIGTERM", 15_000).catch(() => this.cli.stop("SIGKILL"));
  }
}

/** A long-lived load/unary-load.ts process: one run per call, in order. */
export class UnaryLoad {
  readonly #agent = new LineAgent(process.execPath, ["--import", "tsx", `${BENCH}load/unary-load.ts`], process.cwd());

  /** Runs one load and resolves with its JSON result. */
  async run<T>(spec: object): Promise<T> {
    // The load process answers with T's JSON form.
    return (await this.#agent.ask(JSON.stringify(spec), 120_000)) as T;
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
