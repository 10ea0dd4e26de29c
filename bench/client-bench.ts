/**
 * The client's figures (issue "The client libraries"): isExpired() per second in watch mode
 * against poll mode, and the time from a Bump on one replica to onExpired on another, beside
 * raw Redis PUBLISH -> message latency measured in the same run.
 */
import { performance } from "node:perf_hooks";
import { createGenerationClient, GenerationSynchronizer } from "../src/client/index.js";
import { pollUntil } from "../test/helpers/deadline.js";
import { nextExpiry } from "../test/helpers/synchronizer.js";
import type { ServerProcess } from "./processes.js";
import type { BenchRow } from "./report.js";
import { measurePair, median, pairStats, percentileOfTrials } from "./report.js";
import { RawPubSub } from "./watch-bench.js";

/** Calls `check` back to back for `ms` milliseconds; returns calls per second. */
async function rate(check: () => Promise<unknown>, ms: number): Promise<number> {
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 100; i++) await check();
    calls += 100;
    now = performance.now();
  }
  return (calls * 1000) / (now - start);
}

export async function clientBench(
  replicaA: ServerProcess,
  replicaB: ServerProcess,
  redisUrl: string,
): Promise<BenchRow[]> {
  const a = createGenerationClient(replicaA.address);
  const b = createGenerationClient(replicaB.address);
  const key = `bench-client-${Date.now()}`;
  const poll = await GenerationSynchronizer.create(a, key);
  const watched = await GenerationSynchronizer.create(a, key, { watch: true });
  await pollUntil(() => watched.live, "the watch-mode synchronizer to go live", 10_000, 10);

  // Pairs, reported as the median of their ratios; 7 let it move by a third between runs. The
  // watch-mode rate is this process's own JIT's: warm both paths first.
  await rate(() => poll.isExpired(), 1000);
  await rate(() => watched.isExpired(), 1000);
  const pollRates: number[] = [];
  const watchRates: number[] = [];
  for (let pair = 0; pair < 15; pair++) {
    const [pollRate, watchRate] = await measurePair(
      pair,
      () => rate(() => poll.isExpired(), 1000),
      () => rate(() => watched.isExpired(), 1000),
    );
    pollRates.push(pollRate);
    watchRates.push(watchRate);
  }

  // Bump on B, onExpired on A; each trial also times raw pub/sub, so drift hits both alike.
  const rawPubSub = await RawPubSub.open(redisUrl);
  const latencies: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const expired = nextExpiry(watched, 10_000);
    const start = performance.now();
    await b.bump(key);
    await expired;
    latencies.push(performance.now() - start);
    // Current again, so the next Bump expires it again.
    await watched.refresh();
    raw.push(await rawPubSub.sample());
  }

  rawPubSub.close();
  poll.close();
  watched.close();
  a.close();
  b.close();

  return [
    {
      name: "isExpired() watch mode",
      value: median(watchRates),
      baselineName: "isExpired() poll mode",
      baselineValue: median(pollRates),
      unit: "checks/s",
      better: "higher",
      target: 1000,
      ...pairStats(watchRates.map((checks, run) => checks / (pollRates[run] ?? Number.NaN))),
    },
    {
      name: "Bump on B -> onExpired on A, p50",
      ...percentileOfTrials(latencies, raw, 50),
      baselineName: "raw Redis PUBLISH -> message, p50",
      unit: "ms",
      better: "lower",
    },
    {
      name: "Bump on B -> onExpired on A, p99",
      ...percentileOfTrials(latencies, raw, 99),
      baselineName: "raw Redis PUBLISH -> message, p99",
      unit: "ms",
      better: "lower",
    },
  ];
}
