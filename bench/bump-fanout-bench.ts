/**
 * A Bump's own round trip while its key's watchers are served: a web request that bumps after
 * saving must not pay for the fan-out it causes. On one server with 1,000 (then 10,000)
 * watchers of one key, pairs alternate a Bump of that key (timed until its reply; then until
 * every watcher has it, so each pair starts from a quiet server) with a Bump of a key nobody
 * watches, made the same way (after arming the watchers); each row is the median of the
 * per-pair ratios. Both stores.
 *
 * The watchers run at the lowest CPU priority on the load core, so the Bump's reply is not
 * queued behind their work there, as it would not be with watchers on other machines. The
 * Bumps are timed by a writer process that does nothing else (load/writer.ts says why).
 */
import { FanOutWatchers } from "./fanout-bench.js";
import { KeyWriter, ServerProcess } from "./processes.js";
import { type BenchRow, measurePair, median, pairStats } from "./report.js";

/** Pairs per configuration: one round trip is noisy on two cores, the median of many is not. */
export const BUMP_PAIRS = 81;

export async function bumpUnderFanOutBench(redisUrl: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const store of ["memory", "Redis"] as const) {
    for (const streams of [1000, 10_000]) {
      const args = store === "Redis" ? ["--redis", redisUrl, "--prefix", `bench-bump-fanout-${streams}:`] : [];
      const server = await ServerProcess.syncgen(args);
      const writer = new KeyWriter(server.address);
      try {
        const watchers = await FanOutWatchers.open(server, streams, "watched", () => writer.bump("watched"), {
          lowPriority: true,
        });
        const watched: number[] = [];
        const idle: number[] = [];
        const ratios: number[] = [];
        try {
          /** A Bump of a key nobody watches, after the same preparation as a trial's. */
          const bumpIdle = async (): Promise<number> => {
            await watchers.arm();
            return (await writer.bump("nobody-watches")).ms;
          };
          /** A Bump of the watched key, then the wait for every watcher to have it. */
          const bumpWatched = async (): Promise<number> => {
            await watchers.arm();
            const { ms } = await writer.bump("watched");
            await watchers.delivered();
            return ms;
          };
          // Warm the unwatched key's path too.
          for (let i = 0; i < 5; i++) await bumpIdle();
          for (let pair = 0; pair < BUMP_PAIRS; pair++) {
            const [withWatchers, without] = await measurePair(pair, bumpWatched, bumpIdle);
            watched.push(withWatchers);
            idle.push(without);
            ratios.push(withWatchers / without);
          }
        } finally {
          await watchers.close();
        }
        rows.push({
          name: `Bump round trip while its ${streams.toLocaleString("en-US")} watchers are served, ${store} store, p50`,
          value: median(watched),
          baselineName: "a Bump of a key nobody watches, same server, p50",
          baselineValue: median(idle),
          unit: "ms",
          better: "lower",
          target: 1.5,
          ...pairStats(ratios),
        });
      } finally {
        await writer.close();
        await server.stop();
      }
    }
  }
  return rows;
}
