/**
 * `npm run bench`: starts a private redis-server and the servers under test as separate
 * processes, runs every benchmark, prints one table of figures beside their baselines (as
 * ratios), and writes bench/results/latest.{json,md}.
 */
import os from "node:os";
import { RedisProcess } from "../test/helpers/redis-process.js";
import { bumpUnderFanOutBench } from "./bump-fanout-bench.js";
import { clientBench } from "./client-bench.js";
import { clusterBench } from "./cluster-bench.js";
import { connectFanOutBench, connectUnaryBench } from "./connect-bench.js";
import { fanOutBench } from "./fanout-bench.js";
import { cpuTimes, pinLoad, ServerProcess } from "./processes.js";
import { type BenchRow, publish } from "./report.js";
import { unaryBench } from "./unary-bench.js";
import { bigWatchBench, propagationBench } from "./watch-bench.js";

const started = Date.now();
const cpuAtStart = await cpuTimes();
const pinning = await pinLoad();
const redis = await RedisProcess.start();
const rows: BenchRow[] = [];
try {
  console.error("unary calls...");
  rows.push(...(await unaryBench(redis.url)));
  console.error("watch fan-out...");
  rows.push(...(await fanOutBench(redis.url)));
  console.error("a Bump's round trip while its watchers are served...");
  rows.push(...(await bumpUnderFanOutBench(redis.url)));
  console.error("the HTTP port (Connect) against the gRPC port...");
  rows.push(...(await connectUnaryBench()));
  rows.push(...(await connectFanOutBench()));
  const replicaPrefix = "bench-replicas:";
  const replicaArgs = ["--redis", redis.url, "--prefix", replicaPrefix];
  const [replicaA, replicaB] = await Promise.all([
    ServerProcess.syncgen(replicaArgs),
    ServerProcess.syncgen(replicaArgs),
  ]);
  try {
    console.error("cross-replica propagation...");
    rows.push(...(await propagationBench(replicaA, replicaB, redis.url, replicaPrefix)));
    console.error("a Watch of 10,000 keys...");
    rows.push(...(await bigWatchBench(replicaA)));
    console.error("the client...");
    rows.push(...(await clientBench(replicaA, replicaB, redis.url)));
  } finally {
    await Promise.all([replicaA.stop(), replicaB.stop()]);
  }
  console.error("Redis Cluster against one node...");
  rows.push(...(await clusterBench()));
} finally {
  await redis.stop();
}
const cpuAtEnd = await cpuTimes();
const stolen = (cpuAtEnd.steal - cpuAtStart.steal) / (cpuAtEnd.total - cpuAtStart.total);
await publish(rows, {
  date: new Date().toISOString(),
  machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
  pinning,
  command: "npm run bench",
  duration: `${Math.round((Date.now() - started) / 1000)} s`,
  "CPU time stolen by the hypervisor": `${(stolen * 100).toFixed(2)}%`,
});
