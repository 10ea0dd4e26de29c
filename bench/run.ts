/**
 * `npm run bench`: starts a private redis-server and the servers under test as separate
 * processes, runs every benchmark, prints one table of figures beside their baselines (as
 * ratios), and writes bench/results/latest.{json,md}.
 */
import os from "node:os";
import { RedisProcess } from "../test/helpers/redis-process.js";
import { clientBench } from "./client-bench.js";
import { ServerProcess } from "./processes.js";
import { publish } from "./report.js";

const redis = await RedisProcess.start();
const servers: ServerProcess[] = [];
try {
  const redisArgs = ["--redis", redis.url, ];
  const [replicaA, replicaB] = await Promise.all([ServerProcess.syncgen(redisArgs), ServerProcess.syncgen(redisArgs)]);
  servers.push(replicaA, replicaB);
  const rows = [...(await clientBench(replicaA, replicaB, redis.url))];
  await publish(rows, {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    command: "npm run bench",
  });
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  await redis.stop();
}
