/**
 * Unary Get and Bump at concurrency 1, 16 and 128 through syncgen (Redis store and memory
 * store), beside the bare grpc-js echo server (the transport ceiling) and raw ioredis against
 * the same Redis; and server CPU per call, syncgen beside echo.
 *
 * This machine is noisy (two cores shared by load, server and Redis), so every syncgen run
 * is paired with an echo run at the same concurrency right before or after it (alternately),
 * and the table reports the median of the per-pair ratios over several rounds: drift hits both
 * sides of a pair. At concurrency 1 the pair is one run whose calls take turns between the two
 * servers. Latency p99 is taken over every call of the rounds, pooled.
 */

import { ServerProcess, UnaryLoad } from "./processes.js";
import type { BenchRow } from "./report.js";
import { measurePair, median, pairStats, pooledPercentileOfGroups } from "./report.js";

interface LoadResult {
  calls: number;
  totalCalls: number;
  seconds: number;
  busySeconds: number;
  p50: number;
  p99: number;
  latencies?: number[];
  /** An alternating run's other side. */
  alternate?: LoadResult;
}

export interface Run {
  callsPerSecond: number;
  cpuMicrosPerCall: number;
  p99: number;
  /** Every measured call's latency, ms (empty unless the spec asked for them). */
  latencies: number[];
}

/** The figures of a run compared with a baseline run's: each a ratio. */
export type RunRatios = Omit<Run, "latencies">;

/** A run's figures as ratios to `baseline`'s. */
export function ratios(run: Run, baseline: Run): RunRatios {
  return {
    callsPerSecond: run.callsPerSecond / baseline.callsPerSecond,
    cpuMicrosPerCall: run.cpuMicrosPerCall / baseline.cpuMicrosPerCall,
    p99: run.p99 / baseline.p99,
  };
}

const CONCURRENCIES = [1, 16, 128];
/** Pairs per row: with 5, the median of the pair ratios swung by up to 38% between full runs. */
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
export const TIMING = { durationMs: 1000, warmupMs: 500 };
/**
 * Raw ioredis runs last longer: their throughput (the load generator's and Redis's, sharing
 * one core) is the noisiest figure here. In 1-second runs its ratio to syncgen's ranged over
 * 2x from round to round (p10-p90); at 3 s, right beside the pair, the rows still move by
 * 10-33% between full runs.
 */
const RAW_DURATION_MS = 3000;
/**
 * How long each path is driven before the rounds. With one 1.5-second run per path, a
 * server's CPU per call was still falling through the rounds (JIT, heap sizing): the ratio to
 * echo moved by 7-28% between the first and second half of 18 back-to-back pairs. After 15 s
 * per path it moved by 0-10%.
 */
const WARMUP_MS = 8000;
/**
 * How long a syncgen server is driven, untimed, when it comes back to work after idling
 * through the other store's runs (10-14 s; echo serves every pair and never idles). Idle for
 * over ~8 s, V8's memory reducer shrinks the heap, and the first run after it paid to grow it
 * back: memory-store Get, always first after the idle stretch, read 1.36-1.45x echo's CPU per
 * call at c=16 where Bump on the same server read 1.07-1.14x. In a focused test (idle 12 s,
 * then two Get runs), the first cost 0.92-1.65x the second (median 1.27x); with the server
 * started with --no-memory-reducer, 0.78-1.36x (median 1.03x). Production traffic that idles
 * pays this too; a figure per call at steady load should not.
 */
const REWARM_MS = 2000;

/**
 * Drives each distinct spec for WARMUP_MS, so no figure pays for a cold JIT, heap or
 * connection. Distinct: every store's configurations share one echo baseline, which would
 * otherwise be warmed once per configuration (four times at c=16: 24 s of nothing).
 */
export async function warmUp(load: UnaryLoad, specs: object[]): Promise<void> {
  const distinct = new Map(specs.map((spec) => [JSON.stringify(spec), spec]));
  for (const spec of distinct.values()) {
    await load.run({ ...spec, latencies: false, warmupMs: 0, durationMs: WARMUP_MS });
  }
}

/** One load run; server CPU per call when a server is given. */
export async function run(load: UnaryLoad, spec: object, server?: ServerProcess): Promise<Run> {
  const before = await server?.cpuSeconds();
  const result = await load.run<LoadResult>({ ...TIMING, ...spec });
  const after = await server?.cpuSeconds();
  verbose(spec, result);
  return figures(result, result.seconds, cpuSeconds(before, after));
}

/**
 * One run at concurrency 1 whose calls take turns, call by call, between `spec` against
 * `server` and `baselineSpec` against `baselineServer`, so both sides meet the same moments
 * of a noisy machine. A side's throughput is its calls over the time they took (1 / mean
 * latency: what one caller in a loop gets), its CPU per call its own server's.
 */
async function runAlternating(
  load: UnaryLoad,
  [spec, server]: [object, ServerProcess],
  [baselineSpec, baselineServer]: [object, ServerProcess],
): Promise<[Run, Run]> {
  const cpu = () => Promise.all([server.cpuSeconds(), baselineServer.cpuSeconds()]);
  const before = await cpu();
  // Twice a run of one side: each side makes about as many calls as in a run of its own.
  const timing = { ...TIMING, durationMs: 2 * TIMING.durationMs };
  const result = await load.run<LoadResult>({ ...timing, ...spec, alternate: { ...timing, ...baselineSpec } });
  const after = await cpu();
  verbose(spec, result);
  const { alternate } = result;
  if (alternate === undefined) throw new Error("the load generator answered an alternating run for one side");
  return [
    figures(result, result.busySeconds, after[0] - before[0]),
    figures(alternate, alternate.busySeconds, after[1] - before[1]),
  ];
}

function cpuSeconds(before: number | undefined, after: number | undefined): number {
  return before !== undefined && after !== undefined ? after - before : Number.NaN;
}

/** A run's figures: throughput over `seconds`, and `serverCpuSeconds` per call made (warm-up included). */
function figures(result: LoadResult, seconds: number, serverCpuSeconds: number): Run {
  return {
    callsPerSecond: result.calls / seconds,
    cpuMicrosPerCall: (serverCpuSeconds * 1e6) / result.totalCalls,
    p99: result.p99,
    latencies: result.latencies ?? [],
  };
}

function verbose(spec: object, result: LoadResult): void {
  if (!process.env.BENCH_VERBOSE) return;
  const shown = ({ latencies, alternate, ...figures }: LoadResult): object => ({
    ...figures,
    ...(alternate ? { alternate: shown(alternate) } : {}),
  });
  console.error(JSON.stringify({ spec, result: shown(result) }));
}

export async function unaryBench(redisUrl: string): Promise<BenchRow[]> {
  const echo = await ServerProcess.echo();
  const memory = await ServerProcess.syncgen([]);
  const redis = await ServerProcess.syncgen(["--redis", redisUrl, "--prefix", "bench-unary:"]);
  const load = new UnaryLoad();
  const base = { key: "bench-unary", prefix: "bench-unary:", latencies: true };
  /**
   * Every syncgen configuration: a name, the load spec, its server, its echo baseline and,
   * on the Redis store, the raw ioredis run it is compared with too.
   */
  const configs = CONCURRENCIES.flatMap((concurrency) =>
    (["Redis", "memory"] as const).flatMap((store) =>
      (["Get", "Bump"] as const).map((method) => ({
        id: `${method}/${store}/${concurrency}`,
        spec: {
          ...base,
          concurrency,
          mode: method === "Get" ? "grpc-get" : "grpc-bump",
          target: store === "Redis" ? redis.address : memory.address,
        },
        server: store === "Redis" ? redis : memory,
        echo: { id: `echo/${concurrency}`, spec: { ...base, concurrency, mode: "grpc-get", target: echo.address } },
        raw:
          store === "Redis"
            ? {
                id: `raw/${method}/${concurrency}`,
                spec: {
                  ...base,
                  concurrency,
                  mode: method === "Get" ? "redis-get" : "redis-bump",
                  target: redisUrl,
                  latencies: false,
                },
              }
            : undefined,
      })),
    ),
  );
  const runs = new Map<string, Run[]>();
  /** Per syncgen config, the ratios to the echo run paired with it. */
  const pairs = new Map<string, RunRatios[]>();
  /** Per Redis-store config, the throughput ratios to the raw ioredis run beside it. */
  const rawPairs = new Map<string, number[]>();
  const record = <T>(into: Map<string, T[]>, id: string, value: T): void => {
    into.set(id, [...(into.get(id) ?? []), value]);
  };
  try {
    await warmUp(
      load,
      configs
        .filter((c) => c.spec.concurrency === 16)
        .flatMap((config) => [config.spec, config.echo.spec, ...(config.raw ? [config.raw.spec] : [])]),
    );
    let lastServer: ServerProcess | undefined;
    for (let round = 0; round < ROUNDS; round++) {
      for (const config of configs) {
        if (config.server !== lastServer) {
          await load.run({ ...config.spec, latencies: false, warmupMs: 0, durationMs: REWARM_MS });
          lastServer = config.server;
        }
        const [measured, baseline] =
          config.spec.concurrency === 1
            ? await runAlternating(load, [config.spec, config.server], [config.echo.spec, echo])
            : await measurePair(
                round,
                () => run(load, config.spec, config.server),
                () => run(load, config.echo.spec, echo),
              );
        record(runs, config.id, measured);
        record(runs, config.echo.id, baseline);
        record(pairs, config.id, ratios(measured, baseline));
        if (config.raw) {
          // Right beside the pair, in a loop of its own: the raw rate moves with the load core
          // from minute to minute. (Taking turns with syncgen's calls would time another thing:
          // a Redis call made cold, after a gRPC call, takes several times one made in a loop.)
          const raw = await run(load, { ...config.raw.spec, durationMs: RAW_DURATION_MS });
          record(runs, config.raw.id, raw);
          record(rawPairs, config.id, measured.callsPerSecond / raw.callsPerSecond);
        }
      }
    }
  } finally {
    await Promise.all([load.close(), echo.stop(), memory.stop(), redis.stop()]);
  }
  const pick = (id: string, field: keyof RunRatios): number => median((runs.get(id) ?? []).map((r) => r[field]));
  const paired = (id: string, field: keyof RunRatios) => pairStats((pairs.get(id) ?? []).map((r) => r[field]));
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
            ...pooledP99(runs.get(id), runs.get(echoId), paired(id, "p99")),
            name: `${label}: latency p99`,
            baselineName: "bare grpc-js echo",
          },
        );
        if (store === "Redis") {
          rows.push({
            name: `${label}: throughput vs raw ioredis`,
            value: pick(id, "callsPerSecond"),
            baselineName: method === "Get" ? "ioredis GET" : "ioredis bump script",
            baselineValue: pick(`raw/${method}/${concurrency}`, "callsPerSecond"),
            unit: "calls/s",
            better: "higher",
            ...pairStats(rawPairs.get(id) ?? []),
          });
        }
      }
    }
  }
  return rows;
}

/**
 * A latency p99 row: the p99 of every call of the rounds, pooled, beside the baseline's; the
 * pairs column keeps the spread of the per-round ratios. (A p99 taken per 1-second run is its
 * 10th-50th slowest call, and the median of such ratios swung by 13-38% between full runs;
 * pooled over the rounds it rests on hundreds of calls.)
 */
export function pooledP99(
  measured: Run[] | undefined,
  baseline: Run[] | undefined,
  paired: Pick<BenchRow, "pairs">,
): Pick<BenchRow, "value" | "baselineValue" | "unit" | "better" | "pairs" | "interval"> {
  return {
    ...pooledPercentileOfGroups(
      (measured ?? []).map((run) => run.latencies),
      (baseline ?? []).map((run) => run.latencies),
      99,
    ),
    unit: "ms",
    better: "lower",
    pairs: paired.pairs,
  };
}
