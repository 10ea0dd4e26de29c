/**
 * Unary Get and Bump at concurrency 1, 16 and 128 through syncgen (Redis store and memory
 * store), beside the bare grpc-js echo server (the transport ceiling) and raw ioredis against
 * the same Redis; and server CPU per call, syncgen beside echo.
 */
import type { BenchRow } from "./report.js";
import { median } from "./report.js";
import { ServerProcess, runScript } from "./processes.js";

interface LoadResult {
  calls: number;
  totalCalls: number;
  seconds: number;
  p50: number;
  p99: number;
}

interface Measured {
  callsPerSecond: number;
  cpuMicrosPerCall: number;
  p50: number;
  p99: number;
}

const CONCURRENCIES = [1, 16, 128];
const RUNS = 3;
const TIMING = { durationMs: 1500, warmupMs: 500 };

/** Median of RUNS load runs; server CPU per call when a server is measured. */
async function measure(spec: object, server?: ServerProcess): Promise<Measured> {
  const rates: number[] = [];
  const cpu: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const before = await server?.cpuSeconds();
    const result = await runScript<LoadResult>("load/unary-load.ts", { ...spec, ...TIMING });
    const after = await server?.cpuSeconds();
    rates.push(result.calls / result.seconds);
    if (before !== undefined && after !== undefined) cpu.push(((after - before) * 1e6) / result.totalCalls);
    p50.push(result.p50);
    p99.push(result.p99);
  }
  return { callsPerSecond: median(rates), cpuMicrosPerCall: median(cpu), p50: median(p50), p99: median(p99) };
}

export async function unaryBench(redisUrl: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const echo = await ServerProcess.echo();
  const memory = await ServerProcess.syncgen([]);
  const redis = await ServerProcess.syncgen(["--redis", redisUrl, "--prefix", "bench-unary:"]);
  try {
    for (const concurrency of CONCURRENCIES) {
      const base = { concurrency, key: "bench-unary", prefix: "bench-unary:" };
      const echoed = await measure({ ...base, mode: "grpc-get", target: echo.address }, echo);
      const target = concurrency >= 16 ? 0.9 : undefined;
      const cpuTarget = concurrency >= 16 ? 1.15 : undefined;
      for (const [storeName, server] of [
        ["Redis", redis],
        ["memory", memory],
      ] as const) {
        for (const method of ["Get", "Bump"] as const) {
          const mode = method === "Get" ? "grpc-get" : "grpc-bump";
          const measured = await measure({ ...base, mode, target: server.address }, server);
          const label = `${method} c=${concurrency}, ${storeName} store`;
          rows.push({
            name: `${label}: throughput`,
            value: measured.callsPerSecond,
            baselineName: "bare grpc-js echo",
            baselineValue: echoed.callsPerSecond,
            unit: "calls/s",
            better: "higher",
            ...(target ? { target } : {}),
          });
          rows.push({
            name: `${label}: server CPU per call`,
            value: measured.cpuMicrosPerCall,
            baselineName: "bare grpc-js echo",
            baselineValue: echoed.cpuMicrosPerCall,
            unit: "µs",
            better: "lower",
            ...(cpuTarget ? { target: cpuTarget } : {}),
          });
          rows.push({
            name: `${label}: latency p99`,
            value: measured.p99,
            baselineName: "bare grpc-js echo p99",
            baselineValue: echoed.p99,
            unit: "ms",
            better: "lower",
          });
          if (storeName === "Redis") {
            const raw = await measure({ ...base, mode: method === "Get" ? "redis-get" : "redis-bump", target: redisUrl });
            rows.push({
              name: `${label}: throughput vs raw ioredis`,
              value: measured.callsPerSecond,
              baselineName: method === "Get" ? "ioredis GET" : "ioredis bump script",
              baselineValue: raw.callsPerSecond,
              unit: "calls/s",
              better: "higher",
            });
          }
        }
      }
    }
  } finally {
    await Promise.all([echo.stop(), memory.stop(), redis.stop()]);
  }
  return rows;
}
