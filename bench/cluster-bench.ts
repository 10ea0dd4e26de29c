/**
 * Redis Cluster against one Redis node: Bump throughput (16 concurrent calls spread over 1,000
 * keys, so every shard works) and Watch throughput (changes delivered per second to 10
 * watchers of those keys while the Bumps run), through a syncgen server on each. On one
 * machine the cluster cannot be faster (syncgen, not Redis, is the limit here); the row shows
 * what sharding costs per call, which is what a deployment that needs it pays.
 */
import { createGenerationClient } from "../src/client/index.js";
import { RedisCluster } from "../test/helpers/redis-cluster.js";
import { RedisProcess } from "../test/helpers/redis-process.js";
import { ServerProcess, UnaryLoad } from "./processes.js";
import { type BenchRow, measurePair, median, pairStats } from "./report.js";

const KEYS = 1000;
const WATCHERS = 10;
/** Pairs (measurePair); the table reports the median of their ratios. */
const ROUNDS = 7;

interface Throughput {
  bumps: number;
  deliveries: number;
}

/** Bumps spread over KEYS keys for a while, with WATCHERS watching them all; per second. */
async function measure(load: UnaryLoad, server: ServerProcess, prefix: string): Promise<Throughput> {
  const keys = Array.from({ length: KEYS }, (_, i) => `bench-cluster/${i}`);
  const clients = Array.from({ length: WATCHERS }, () =>
    createGenerationClient(server.address, { channelOptions: { "grpc.use_local_subchannel_pool": 1 } }),
  );
  const stop = new AbortController();
  let deliveries = 0;
  let counting = false;
  const live: Promise<void>[] = [];
  const watching = clients.map((client, index) => {
    let markLive: () => void = () => {};
    live[index] = new Promise((resolve) => {
      markLive = resolve;
    });
    return (async () => {
      for await (const event of client.watch(keys, { signal: stop.signal })) {
        if (event.type === "live") markLive();
        else if (event.type === "changes" && counting) deliveries += event.changes.length;
      }
    })();
  });
  try {
    await Promise.all(live);
    counting = true;
    const result = await load.run<{ calls: number; seconds: number }>({
      mode: "grpc-bump",
      target: server.address,
      concurrency: 16,
      durationMs: 4000,
      warmupMs: 0,
      key: "bench-cluster",
      keys: KEYS,
      prefix,
    });
    counting = false;
    return { bumps: result.calls / result.seconds, deliveries: deliveries / result.seconds };
  } finally {
    stop.abort();
    await Promise.all(watching);
    for (const client of clients) client.close();
  }
}

export async function clusterBench(): Promise<BenchRow[]> {
  const prefix = "bench-cluster:";
  const stops: (() => Promise<void>)[] = [];
  const started = async <T extends { stop(): Promise<void> }>(start: Promise<T>): Promise<T> => {
    const process = await start;
    stops.push(() => process.stop());
    return process;
  };
  const runs = { single: [] as Throughput[], sharded: [] as Throughput[] };
  const load = new UnaryLoad();
  try {
    const [node, cluster] = [await started(RedisProcess.start()), await started(RedisCluster.start())];
    const single = await started(ServerProcess.syncgen(["--redis", node.url, "--prefix", prefix]));
    const sharded = await started(ServerProcess.syncgen(["--redis-cluster", cluster.seeds, "--prefix", prefix]));
    await measure(load, single, prefix); // warm up both servers' JIT
    await measure(load, sharded, prefix);
    for (let round = 0; round < ROUNDS; round++) {
      const [one, many] = await measurePair(
        round,
        () => measure(load, single, prefix),
        () => measure(load, sharded, prefix),
      );
      runs.single.push(one);
      runs.sharded.push(many);
    }
  } finally {
    await load.close();
    // Servers first, then the Redis they use.
    for (const stop of stops.reverse()) await stop();
  }
  const med = (which: Throughput[], field: keyof Throughput) => median(which.map((r) => r[field]));
  const paired = (field: keyof Throughput) =>
    pairStats(runs.sharded.map((run, round) => run[field] / (runs.single[round]?.[field] ?? Number.NaN)));
  return [
    {
      name: `Bump over ${KEYS} keys, c=16, 3-master Redis Cluster: throughput`,
      value: med(runs.sharded, "bumps"),
      baselineName: "the same on one Redis node",
      baselineValue: med(runs.single, "bumps"),
      unit: "calls/s",
      better: "higher",
      ...paired("bumps"),
    },
    {
      name: `Watch: changes delivered to ${WATCHERS} watchers of ${KEYS} keys under that load, 3-master Cluster`,
      value: med(runs.sharded, "deliveries"),
      baselineName: "the same on one Redis node",
      baselineValue: med(runs.single, "deliveries"),
      unit: "changes/s",
      better: "higher",
      ...paired("deliveries"),
    },
  ];
}
