/**
 * The fan-out bench's own parts against real servers: its minimal watcher client (gRPC and
 * Connect framing), the writer process that sends each change, and what a trial does when a
 * server goes away mid-run. `npm run bench` takes minutes; these take seconds, so a change
 * that breaks the bench's timing machinery shows here first.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type FanOutWatchers, type WatchedServer, withWatchedPair } from "../bench/fanout-bench.js";
import { ServerProcess } from "../bench/processes.js";
import { type SharedRedis, sharedRedis } from "./helpers/redis-process.js";

const STREAMS = 200;
let redis: SharedRedis;

beforeAll(async () => {
  redis = await sharedRedis();
});
afterAll(() => redis.close());

const syncgen = (via?: WatchedServer["via"]): WatchedServer => ({
  start: () =>
    ServerProcess.syncgen(["--redis", redis.url, "--prefix", redis.prefix(), "--http-listen", "127.0.0.1:0"]),
  trigger: (writer) => writer.bump("fanout"),
  ...(via ? { via } : {}),
});
const bare: WatchedServer = { start: () => ServerProcess.echo(), trigger: (writer) => writer.clear("fanout") };

/** Runs a few trials of each side and checks each reached every watcher in a sane time. */
async function expectTrials(...sides: FanOutWatchers[]): Promise<void> {
  for (let i = 0; i < 3; i++) {
    for (const side of sides) {
      const { lastMs, serverCpuSeconds } = await side.trial();
      // Timed across processes on one clock: never negative, never a wall-clock jump.
      expect(lastMs).toBeGreaterThan(0);
      expect(lastMs).toBeLessThan(10_000);
      expect(serverCpuSeconds).toBeGreaterThanOrEqual(0);
    }
  }
}

describe("fan-out bench", () => {
  test("a Bump on syncgen (Redis store) and a Clear on the bare server reach every gRPC watcher", async () => {
    await withWatchedPair(STREAMS, [syncgen(), bare], expectTrials);
  }, 120_000);

  test("a Bump on syncgen's memory store reaches every gRPC watcher, as on Redis", async () => {
    const memory: WatchedServer = {
      start: () => ServerProcess.syncgen([]),
      trigger: (writer) => writer.bump("fanout"),
    };
    await withWatchedPair(STREAMS, [memory, bare], expectTrials);
  }, 120_000);

  test("Connect watchers on syncgen's HTTP port get every Bump, as gRPC ones do", async () => {
    await withWatchedPair(STREAMS, [syncgen(), syncgen({ protocol: "connect" })], expectTrials);
  }, 120_000);

  test("a server gone mid-run fails the next trial with why, not after a deadline", async () => {
    const servers: ServerProcess[] = [];
    const starting = (side: WatchedServer): WatchedServer => ({
      ...side,
      start: async () => {
        const server = await side.start();
        servers.push(server);
        return server;
      },
    });
    await withWatchedPair(STREAMS, [starting(syncgen()), starting(bare)], async (measured) => {
      await servers[0]?.stop();
      const started = Date.now();
      // Whichever notices first: the watchers (their streams ended) or the writer (its Bump failed).
      await expect(measured.trial()).rejects.toThrow(/Watch stream \d+ of .* ended: .*shutting down|bump .* failed/);
      // The watch load's own deadline for a result is 30 s; this is an exit, not a timeout.
      expect(Date.now() - started).toBeLessThan(25_000);
    });
  }, 120_000);
});
