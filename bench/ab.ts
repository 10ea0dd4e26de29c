/**
 * A focused A/B for one unary configuration: syncgen and the bare echo server alternate,
 * pair by pair, on one warm load process, and the median per-pair ratios are printed. For
 * checking whether a change moves the unary figures more than this machine's drift does.
 *
 *   npx tsx bench/ab.ts grpc-get 16 redis     # MODE CONCURRENCY STORE (memory or redis)
 *
 * The Redis store uses REDIS_URL (default redis://127.0.0.1:6379) with prefix "ab:".
 */
import { pinLoad, ServerProcess, UnaryLoad } from "./processes.js";
import { median } from "./report.js";

const [mode = "grpc-get", concurrencyText = "16", store = "memory"] = process.argv.slice(2);
const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const PAIRS = Number(process.env.AB_PAIRS ?? 8);
await pinLoad();
const spec = { concurrency: Number(concurrencyText), key: "k", prefix: "ab:", durationMs: 1500, warmupMs: 300 };

const echo = await ServerProcess.echo();
const syncgen = await ServerProcess.syncgen(store === "redis" ? ["--redis", redisUrl, "--prefix", "ab:"] : []);
const load = new UnaryLoad();
try {
  for (const server of [echo, syncgen]) await load.run({ ...spec, mode, target: server.address });
  const throughput: number[] = [];
  const cpu: number[] = [];
  for (let pair = 0; pair < PAIRS; pair++) {
    const measured = new Map<ServerProcess, { rate: number; cpu: number }>();
    // Alternate which side goes first, so a drift within the pair cancels out over pairs.
    for (const server of pair % 2 ? [echo, syncgen] : [syncgen, echo]) {
      const before = await server.cpuSeconds();
      const result = await load.run<{ calls: number; totalCalls: number; seconds: number }>({
        ...spec,
        mode: server === echo ? "grpc-get" : mode,
        target: server.address,
      });
      const after = await server.cpuSeconds();
      measured.set(server, { rate: result.calls / result.seconds, cpu: ((after - before) * 1e6) / result.totalCalls });
    }
    const a = measured.get(syncgen);
    const b = measured.get(echo);
    if (a && b) {
      throughput.push(a.rate / b.rate);
      cpu.push(a.cpu / b.cpu);
    }
  }
  console.log(
    `${mode} c=${spec.concurrency} ${store}: throughput ${median(throughput).toFixed(3)}x echo, ` +
      `server CPU per call ${median(cpu).toFixed(3)}x echo (pairs: ${cpu.map((x) => x.toFixed(2)).join(" ")})`,
  );
} finally {
  await Promise.all([load.close(), echo.stop(), syncgen.stop()]);
}
