/**
 * Unary Get and Bump at concurrency 1, 16 and 128 through syncgen (Redis store and memory
 * store), beside the bare grpc-js echo server (the transport ceiling) and raw ioredis against
 * the same Redis; and server CPU per call, syncgen beside echo.
 *
 * This machine is noisy (two cores shared by load, server and Redis), so every syncgen run
 * is paired with an echo run at the same concurrency right before or after it (alternately), and the table reports
 * the median of the per-pair ratios over several rounds: drift hits both sides of a pair.
 */

import { ServerProcess, UnaryLoad } from "./processes.js";
import type { BenchRow } from "./report.js";
import { measurePair, median, pairStats } from "./report.js";

interface LoadResult {
  calls: number;
  totalCalls: number;
  seconds: number;
  p50: number;
  p99: number;
}

export interface Run {
  callsPerSecond: number;
  cpuMicrosPerCall: number;
  p99: number;
}

const CONCURRENCIES = [1, 16, 128];
/** Pairs per row: 9, so two full runs agree within ±10% (5 did not: the median of 5 pair ratios swung by up to 38%). */
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
export const TIMING = { durationMs: 1000, warmupMs: 500 };

/** One load run; server CPU per call when a server is given. */
export async function run(load: UnaryLoad, spec: object, server?: ServerProcess): Promise<Run> {
  const before = await server?.cpuSeconds();
  const result = await load.run<LoadResult>({ ...spec, ...TIMING });
  const after = await server?.cpuSeconds();
  const cpu = before !== undefined && after !== undefined ? ((after - before) * 1e6) / result.totalCalls : Number.NaN;
  if (process.env.BENCH_VERBOSE) console.error(JSON.stringify({ spec, result, cpuMicrosPerCall: cpu }));
  return { callsPerSecond: result.calls / result.seconds, cpuMicrosPerCall: cpu, p99: result.p99 };
}

export async function unaryBench(redisUrl: string): Promise<BenchRow[]> {
  const echo = await ServerProcess.echo();
  const memory = await ServerProcess.syncgen([]);
  const redis = await ServerProcess.syncgen(["--redis", redisUrl, "--prefix", "bench-unary:"]);
  const load = new UnaryLoad();
  const base = { key: "bench-unary", prefix: "bench-unary:" };
  /** Every configuration: a name, the load spec and the server whose CPU counts. */
  const configs = CONCURRENCIES.flatMap((concurrency) => [
    { id: `echo/${concurrency}`, spec: { ...base, concurrency, mode: "grpc-get", target: echo.address }, server: echo },
    ...(["Redis", "memory"] as const).flatMap((store) =>
      (["Get", "Bump"] as const).map((method) => ({
        id: `${method}/${store}/${concurrency}`,
        spec: {
          ...base,
          concurrency,
          mode: method === "Get" ? "grpc-get" : "grpc-bump",
          target: store === "Redis" ? redis.address : memory.address,
        },
        server: store === "Redis" ? redis : memory,
      })),
    ),
    ...(["Get", "Bump"] as const).map((method) => ({
      id: `raw/${method}/${concurrency}`,
      spec: { ...base, concurrency, mode: method === "Get" ? "redis-get" : "redis-bump", target: redisUrl },
      server: undefined,
    })),
  ]);
  const runs = new Map<string, Run[]>();
  /** Per syncgen config, the ratios to the echo run just before it. */
  const pairs = new Map<string, Run[]>();
  const record = (into: Map<string, Run[]>, id: string, value: Run): void => {
    into.set(id, [...(into.get(id) ?? []), value]);
  };
  try {
    // Warm each server's JIT (and connections) first, so no figure pays for it.
    for (const config of configs.filter((c) => c.spec.concurrency === 16)) await run(load, config.spec);
    for (let round = 0; round < ROUNDS; round++) {
      for (const config of configs) {
        if (config.id.startsWith("echo/")) continue;
        const echoConfig = configs.find((c) => c.id === `echo/${config.spec.concurrency}`);
        if (config.server === undefined || echoConfig === undefined) {
          record(runs, config.id, await run(load, config.spec, config.server));
          continue;
        }
        const [measured, baseline] = await measurePair(
          round,
          () => run(load, config.spec, config.server),
          () => run(load, echoConfig.spec, echo),
        );
        record(runs, config.id, measured);
        record(runs, echoConfig.id, baseline);
        record(pairs, config.id, {
          callsPerSecond: measured.callsPerSecond / baseline.callsPerSecond,
          cpuMicrosPerCall: measured.cpuMicrosPerCall / baseline.cpuMicrosPerCall,
          p99: measured.p99 / baseline.p99,
        });
      }
    }
  } finally {
    await Promise.all([load.close(), echo.stop(), memory.stop(), redis.stop()]);
  }
  const pick = (id: string, field: keyof Run): number => median((runs.get(id) ?? []).map((r) => r[field]));
  const paired = (id: string, field: keyof Run) => pairStats((pairs.get(id) ?? []).map((r) => r[field]));
  const rows: BenchRow[] = [];
  for (const concurrency of CONCURRENCIES) {
    const echoId = `echo/${concurrency}`;
    const targets = concurrency >= 16;
    for (const store of ["Redis", "memory"] as const) {
      for (const method of ["Get", "Bump"] as const) {
        const id = `${method}/${store}/${concurrency}`;
        const label = `${method} c=${concurrency}, ${store} store`;
        rows.push(
          {
            name: `${label}: throughput`,
            value: pick(id, "callsPerSecond"),
            baselineName: "bare grpc-js echo",
            baselineValue: pick(echoId, "callsPerSecond"),
            unit: "calls/s",
            better: "higher",
            ...paired(id, "callsPerSecond"),
            ...(targets ? { target: 0.9 } : {}),
          },
          {
            name: `${label}: server CPU per call`,
            value: pick(id, "cpuMicrosPerCall"),
            baselineName: "bare grpc-js echo",
            baselineValue: pick(echoId, "cpuMicrosPerCall"),
            unit: "µs",
            better: "lower",
            ...paired(id, "cpuMicrosPerCall"),
            ...(targets ? { target: 1.15 } : {}),
          },
          {
            name: `${label}: latency p99`,
            value: pick(id, "p99"),
            baselineName: "bare grpc-js echo",
            baselineValue: pick(echoId, "p99"),
            unit: "ms",
            better: "lower",
            ...paired(id, "p99"),
          },
        );
        if (store === "Redis") {
          // Paired by round: the raw run of the same round, a few runs later.
          const raw = runs.get(`raw/${method}/${concurrency}`) ?? [];
          rows.push({
            name: `${label}: throughput vs raw ioredis`,
            value: pick(id, "callsPerSecond"),
            baselineName: method === "Get" ? "ioredis GET" : "ioredis bump script",
            baselineValue: pick(`raw/${method}/${concurrency}`, "callsPerSecond"),
            unit: "calls/s",
            better: "higher",
            ...pairStats(
              (runs.get(id) ?? []).map((run, round) => run.callsPerSecond / (raw[round]?.callsPerSecond ?? Number.NaN)),
            ),
          });
        }
      }
    }
  }
  return rows;
}
