/**
 * A load generator process: keeps `concurrency` calls in flight for `durationMs` (after a
 * warm-up) and prints one JSON line: calls, seconds, latency p50/p99 in ms.
 *
 * Modes: grpc-get / grpc-bump through the syncgen client (against syncgen or the echo
 * server), redis-get / redis-bump straight to Redis with ioredis (what a service talking to
 * Redis directly would pay: GET, or the same Lua script syncgen runs).
 */
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { createGenerationClient } from "../../src/client/index.js";
import { WRITE_SCRIPT } from "../../src/server/store/redis-scripts.js";
import { percentile } from "../report.js";

interface LoadSpec {
  mode: "grpc-get" | "grpc-bump" | "redis-get" | "redis-bump";
  target: string;
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  key: string;
  prefix: string;
}

const spec = JSON.parse(process.argv[2] ?? "{}") as LoadSpec;

async function makeCall(): Promise<{ call: () => Promise<unknown>; close: () => void }> {
  if (spec.mode === "grpc-get" || spec.mode === "grpc-bump") {
    const client = createGenerationClient(spec.target);
    await client.get(spec.key);
    const call = spec.mode === "grpc-get" ? () => client.get(spec.key) : () => client.bump(spec.key);
    return { call, close: () => client.close() };
  }
  const redis = new Redis(spec.target, { enableAutoPipelining: true });
  redis.defineCommand("syncgenWrite", { numberOfKeys: 1, lua: WRITE_SCRIPT });
  const record = `${spec.prefix}gen:${spec.key}`;
  const channel = `${spec.prefix}chg:${spec.key}`;
  // defineCommand adds a method ioredis cannot type.
  const write = (redis as unknown as Record<string, (...args: string[]) => Promise<string>>).syncgenWrite as (
    ...args: string[]
  ) => Promise<string>;
  const call =
    spec.mode === "redis-get"
      ? () => redis.get(record)
      : () => write.call(redis, record, "bump", channel, "10000");
  await call();
  return { call, close: () => redis.disconnect() };
}

const { call, close } = await makeCall();
const latencies: number[] = [];
let measuring = false;
let calls = 0;
let totalCalls = 0;
let stop = false;

async function worker(): Promise<void> {
  while (!stop) {
    const start = performance.now();
    await call();
    totalCalls++;
    if (measuring) {
      calls++;
      if (latencies.length < 200_000) latencies.push(performance.now() - start);
    }
  }
}

const workers = Array.from({ length: spec.concurrency }, () => worker());
await new Promise((resolve) => setTimeout(resolve, spec.warmupMs));
measuring = true;
const started = performance.now();
await new Promise((resolve) => setTimeout(resolve, spec.durationMs));
measuring = false;
const seconds = (performance.now() - started) / 1000;
stop = true;
await Promise.all(workers);
close();
process.stdout.write(
  `${JSON.stringify({ calls, totalCalls, seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) })}\n`,
);
