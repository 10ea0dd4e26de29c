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

const TRIALS = 7;
const now = (): number => performance.timeOrigin + performance.now();

interface FanOut {
  lastMs: number;
  rssPerStream: number;
}

/** Opens `streams` watchers on `server`, then times `trigger` to the last watcher, TRIALS times. */
async function fanOut(
  server: ServerProcess,
  streams: number,
  key: string,
  trigger: () => Promise<unknown>,
): Promise<FanOut> {
  // Open and close a first batch, so one-off costs (code, pools, the Redis subscription)
  // are not charged to the streams measured.
  const warmup = await WatchLoad.start({ target: server.address, key, streams: 500, perConnection: 100 });
  await warmup.arm();
  await trigger();
  await warmup.result();
  await warmup.close();
  const rssBefore = await server.rssBytes();
  const load = await WatchLoad.start({ target: server.address, key, streams, perConnection: 100 });
  try {
    const latencies: number[] = [];
    for (let trial = 0; trial < TRIALS; trial++) {
      await load.arm();
      const start = now();
      await trigger();
      const { last } = await load.result();
      latencies.push(last - start);
    }
    // Read after the trials, in the steady state: right after opening, garbage from the
    // opening itself (decoded requests, first writes) inflates RSS by chance amounts.
    const rssAfter = await server.rssBytes();
    return { lastMs: median(latencies), rssPerStream: (rssAfter - rssBefore) / streams };
  } finally {
    await load.close();
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
