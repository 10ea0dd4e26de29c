/**
 * Watch fan-out: 1,000 and 10,000 watchers of one key, 100 streams per connection; the time
 * from a Bump to the last watcher receiving it, beside a bare grpc-js server pushing one
 * message to as many streams; and server RSS per open stream, beside the bare server's.
 */
import { performance } from "node:perf_hooks";
import { createGenerationClient } from "../src/client/index.js";
import { ServerProcess } from "./processes.js";
import type { BenchRow } from "./report.js";
import { median } from "./report.js";
import { WatchLoad } from "./watch-load-process.js";

export const TRIALS = 7;
const now = (): number => performance.timeOrigin + performance.now();

interface FanOut {
  lastMs: number;
  rssPerStream: number;
}

/** How the watchers reach the server: over gRPC (the default) or Connect on its HTTP port. */
export interface WatchVia {
  protocol?: "grpc" | "connect";
  /** Connect: JSON instead of binary. */
  json?: boolean;
}

/** `streams` watchers open on a server, each trial timing `trigger` to the last of them. */
export class FanOutWatchers {
  private constructor(
    private readonly server: ServerProcess,
    private readonly streams: number,
    private readonly trigger: () => Promise<unknown>,
    private readonly load: WatchLoad,
    private readonly rssBefore: number,
  ) {}

  /** Opens `streams` watchers of `key` on `server` (over `via`), after a warm-up batch. */
  static async open(
    server: ServerProcess,
    streams: number,
    key: string,
    trigger: () => Promise<unknown>,
    via: WatchVia = {},
  ): Promise<FanOutWatchers> {
    const target = via.protocol === "connect" ? server.httpUrl : server.address;
    if (target === undefined) throw new Error("Connect watchers need a server started with --http-listen");
    const spec = { ...via, target, key, perConnection: 100 };
    // Open and close a first batch, so one-off costs (code, pools, the Redis subscription)
    // are not charged to the streams measured.
    const warmup = await WatchLoad.start({ ...spec, streams: 500 });
    await warmup.arm();
    await trigger();
    await warmup.result();
    await warmup.close();
    const rssBefore = await server.rssBytes();
    const load = await WatchLoad.start({ ...spec, streams });
    return new FanOutWatchers(server, streams, trigger, load, rssBefore);
  }

  /**
   * Times one `trigger` to the last watcher receiving it (ms), and counts the server's CPU
   * time from before the trigger until the last watcher has it (seconds).
   */
  async trial(): Promise<{ lastMs: number; serverCpuSeconds: number }> {
    await this.load.arm();
    const cpuBefore = await this.server.cpuSeconds();
    const start = now();
    await this.trigger();
    const { last } = await this.load.result();
    return { lastMs: last - start, serverCpuSeconds: (await this.server.cpuSeconds()) - cpuBefore };
  }

  /** The server's RSS per open stream, in bytes, since before they opened. */
  async rssPerStream(): Promise<number> {
    return ((await this.server.rssBytes()) - this.rssBefore) / this.streams;
  }

  close(): Promise<void> {
    return this.load.close();
  }
}

/** Opens `streams` watchers on `server`, then times `trigger` to the last watcher, TRIALS times. */
async function fanOut(
  server: ServerProcess,
  streams: number,
  key: string,
  trigger: () => Promise<unknown>,
): Promise<FanOut> {
  const watchers = await FanOutWatchers.open(server, streams, key, trigger);
  try {
    const latencies: number[] = [];
    for (let trial = 0; trial < TRIALS; trial++) latencies.push((await watchers.trial()).lastMs);
    // Read after the trials, in the steady state: right after opening, garbage from the
    // opening itself (decoded requests, first writes) inflates RSS by chance amounts.
    return { lastMs: median(latencies), rssPerStream: await watchers.rssPerStream() };
  } finally {
    await watchers.close();
  }
}

export async function fanOutBench(redisUrl: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const streams of [1000, 10_000]) {
    const bare = await ServerProcess.echo();
    const syncgen = await ServerProcess.syncgen(["--redis", redisUrl, "--prefix", `bench-fanout-${streams}:`]);
    const bareClient = createGenerationClient(bare.address);
    const client = createGenerationClient(syncgen.address);
    try {
      const baseline = await fanOut(bare, streams, "fanout", () => bareClient.clear("fanout"));
      const measured = await fanOut(syncgen, streams, "fanout", () => client.bump("fanout"));
      rows.push(
        {
          name: `fan-out to ${streams.toLocaleString("en-US")} watchers: Bump to last watcher`,
          value: measured.lastMs,
          baselineName: "bare grpc-js push to as many streams",
          baselineValue: baseline.lastMs,
          unit: "ms",
          better: "lower",
          target: 1.05,
        },
        {
          name: `fan-out to ${streams.toLocaleString("en-US")} watchers: server RSS per open stream`,
          value: measured.rssPerStream / 1024,
          baselineName: "bare grpc-js server",
          baselineValue: baseline.rssPerStream / 1024,
          unit: "KiB",
          better: "lower",
          target: 1.1,
        },
      );
    } finally {
      bareClient.close();
      client.close();
      await Promise.all([bare.stop(), syncgen.stop()]);
    }
  }
  return rows;
}
