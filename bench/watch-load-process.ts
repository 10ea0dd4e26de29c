/** Drives a watch-load.ts process (see there) from the orchestrator, one JSON line each way. */
import { fileURLToPath } from "node:url";
import { LineAgent } from "../test/helpers/line-agent.js";
import { LOAD_NODE_ARGS } from "./processes.js";

const SCRIPT = fileURLToPath(new URL("./load/watch-load.ts", import.meta.url));

export class WatchLoad {
  private constructor(readonly agent: LineAgent) {}

  /** Starts the watchers; resolves once every stream is live. */
  static async start(spec: {
    /** gRPC HOST:PORT, or with protocol "connect" the HTTP port's http://HOST:PORT. */
    target: string;
    /** "grpc" (default), or "connect": Connect streaming calls (binary) over HTTP/2. */
    protocol?: "grpc" | "connect";
    key: string;
    streams: number;
    perConnection: number;
    /**
     * Only when nothing else wants the core: on a machine with one core for all load, the
     * process whose round trip is timed gets the core at once when its reply arrives, as it
     * would if the watchers were on other machines. SCHED_IDLE (chrt, from util-linux), not
     * nice 19: Linux's EEVDF scheduler lets a task it has just picked, at any nice level,
     * keep the core for its whole time slice, and a woken nice-0 process waited up to 5 ms
     * behind the watchers (seen with ftrace); a SCHED_IDLE task gives way at once.
     */
    lowPriority?: boolean;
  }): Promise<WatchLoad> {
    const { lowPriority, ...watchSpec } = spec;
    const args = [...LOAD_NODE_ARGS, "--import", "tsx", SCRIPT, JSON.stringify(watchSpec)];
    const agent = lowPriority
      ? new LineAgent("chrt", ["--idle", "0", process.execPath, ...args], process.cwd())
      : new LineAgent(process.execPath, args, process.cwd());
    await agent.next(60_000, "every watch stream to be live");
    return new WatchLoad(agent);
  }

  /** Arms every stream to time its next message. */
  async arm(): Promise<void> {
    await this.agent.ask(JSON.stringify({ op: "arm" }), 10_000);
  }

  /** Resolves with the arrival times of the first and last stream's message (ms on the machine's monotonic clock, clock.ts). */
  async result(): Promise<{ first: number; last: number }> {
    // The load process reports exactly these two fields.
    return (await this.agent.next(30_000, "the watch load's result")) as { first: number; last: number };
  }

  async close(): Promise<void> {
    this.agent.send(JSON.stringify({ op: "close" }));
    await this.agent.close();
  }
}
