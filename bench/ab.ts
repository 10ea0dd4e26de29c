/**
 * A focused A/B for one unary configuration: syncgen and the bare echo server alternate,
 * pair by pair, on one warm load process, and the median per-pair ratios are printed. For
 * checking whether a change moves the unary figures more than this machine's drift does.
 *
 *   npx tsx bench/ab.ts grpc-get 16 redis     # MODE CONCURRENCY STORE (memory or redis)
 *
 * The Redis store uses REDIS_URL (default redis://127.0.0.1:6379) with prefix "ab:"; AB_PAIRS
 * sets the number of pairs (default 8). Pinned as `npm run bench` is.
 */
import { pinLoad, ServerProcess, UnaryLoad } from "./processes.js";
import { measurePair, median } from "./report.js";
import { run } from "./unary-bench.js";

const [mode = "grpc-get", concurrencyText = "16", store = "memory"] = process.argv.slice(2);
const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const PAIRS = Number(process.env.AB_PAIRS ?? 8);
await pinLoad();
const spec = { concurrency: Number(concurrencyText), key: "k", prefix: "ab:" };

const echo = await ServerProcess.echo();
const syncgen = await ServerProcess.syncgen(store === "redis" ? ["--redis", redisUrl, "--prefix", "ab:"] : []);
const load = new UnaryLoad();
try {
  for (const server of [echo, syncgen]) await run(load, { ...spec, mode, target: server.address });
  const throughput: number[] = [];
  const cpu: number[] = [];
  for (let pair = 0; pair < PAIRS; pair++) {
    const [ours, theirs] = await measurePair(
      pair,
      () => run(load, { ...spec, mode, target: syncgen.address }, syncgen),
      () => run(load, { ...spec, mode: "grpc-get", target: echo.address }, echo),
    );
    throughput.push(ours.callsPerSecond / theirs.callsPerSecond);
    cpu.push(ours.cpuMicrosPerCall / theirs.cpuMicrosPerCall);
  }
  console.log(
    `${mode} c=${spec.concurrency} ${store}: throughput ${median(throughput).toFixed(3)}x echo, ` +
      `server CPU per call ${median(cpu).toFixed(3)}x echo (pairs: ${cpu.map((x) => x.toFixed(2)).join(" ")})`,
  );
} finally {
  await Promise.all([load.close(), echo.stop(), syncgen.stop()]);
}
