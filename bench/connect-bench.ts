/**
 * The HTTP port (--http-listen) against the gRPC port of the same server, memory store:
 *
 * - unary Get over Connect JSON (Connect's own Node client; HTTP/2, and HTTP/1.1) beside
 *   grpc-get on the same server process: throughput, server CPU per call and latency p99 at
 *   concurrency 1 and 16. Each round runs the gRPC baseline and every Connect variant at one
 *   concurrency back to back (in an order that rotates from round to round), and the table
 *   reports the median of the per-round ratios, as unary-bench.ts does.
 * - Watch fan-out (as fanout-bench.ts): Bump to the last of N watchers opened over Connect
 *   binary on HTTP/2, beside as many watchers over gRPC on a second, identical server; the
 *   trials alternate between the two, and the table reports the median per-pair ratio. Both
 *   kinds of watcher are one minimal client (load/watch-load.ts), so the difference is the
 *   server's; server CPU per message delivered is reported too. And server RSS per open
 *   stream, each server's own. The trials run in three parts, each on two fresh servers, as
 *   RSS differs between processes. N is 1,000 and 5,000, not fanout-bench.ts's 10,000:
 *   opening 10,000 Connect streams takes ~7 s here and each trial over a second, which would
 *   add ~15 s to this benchmark's ~60.
 */
import {
  type FanOutWatchers,
  rssRow,
  TRIALS,
  type WatchedServer,
  type WatchVia,
  withWatchedPair,
} from "./fanout-bench.js";
import { ServerProcess, UnaryLoad } from "./processes.js";
import { type BenchRow, measurePair, median, pairStats } from "./report.js";
import { pooledP99, ROUNDS, type Run, type RunRatios, ratios, run, warmUp } from "./unary-bench.js";

const CONCURRENCIES = [1, 16];
/** The Connect variants at each concurrency. */
const VARIANTS = [
  { id: "connect-json-h2", httpVersion: "2", label: "Connect JSON (HTTP/2)", concurrencies: [1, 16] },
  { id: "connect-json-h1", httpVersion: "1.1", label: "Connect JSON (HTTP/1.1)", concurrencies: [16] },
] as const;
const BASELINE = "gRPC Get, same server";
const FANOUT_STREAMS = [1000, 5000];
const HTTP = ["--http-listen", "127.0.0.1:0"];

/** Unary Get through the HTTP port with Connect JSON, beside Get through the gRPC port. */
export async function connectUnaryBench(): Promise<BenchRow[]> {
  const server = await ServerProcess.syncgen(HTTP);
  const httpUrl = server.httpUrl;
  if (httpUrl === undefined) {
    await server.stop();
    throw new Error("syncgen serve --http-listen reported no HTTP address");
  }
  const load = new UnaryLoad();
  const base = { key: "bench-connect", prefix: "bench-connect:", latencies: true };
  const configs = CONCURRENCIES.map((concurrency) => ({
    concurrency,
    sides: [
      { id: `grpc/${concurrency}`, spec: { ...base, concurrency, mode: "grpc-get", target: server.address } },
      ...VARIANTS.filter((v) => (v.concurrencies as readonly number[]).includes(concurrency)).map((v) => ({
        id: `${v.id}/${concurrency}`,
        spec: { ...base, concurrency, mode: "connect-json-get", target: httpUrl, httpVersion: v.httpVersion },
      })),
    ],
  }));
  const runs = new Map<string, Run[]>();
  /** Per Connect side, its ratios to the gRPC run of the same round. */
  const pairs = new Map<string, RunRatios[]>();
  const record = <T>(into: Map<string, T[]>, id: string, value: T): void => {
    into.set(id, [...(into.get(id) ?? []), value]);
  };
  try {
    await warmUp(
      load,
      (configs.find((c) => c.concurrency === 16)?.sides ?? []).map((side) => side.spec),
    );
    for (let round = 0; round < ROUNDS; round++) {
      for (const { concurrency, sides } of configs) {
        // Rotate who goes first, so a drift within the round cancels out over rounds.
        const shift = round % sides.length;
        const order = [...sides.slice(shift), ...sides.slice(0, shift)];
        const measured = new Map<string, Run>();
        for (const side of order) {
          const result = await run(load, side.spec, server);
          measured.set(side.id, result);
          record(runs, side.id, result);
        }
        const baseline = measured.get(`grpc/${concurrency}`) as Run;
        for (const side of sides) {
          if (side.id.startsWith("grpc/")) continue;
          const value = measured.get(side.id) as Run;
          record(pairs, side.id, ratios(value, baseline));
        }
      }
    }
  } finally {
    await Promise.all([load.close(), server.stop()]);
  }
  const pick = (id: string, field: keyof RunRatios): number => median((runs.get(id) ?? []).map((r) => r[field]));
  const paired = (id: string, field: keyof RunRatios) => pairStats((pairs.get(id) ?? []).map((r) => r[field]));
  const rows: BenchRow[] = [];
  for (const concurrency of CONCURRENCIES) {
    const grpcId = `grpc/${concurrency}`;
    for (const variant of VARIANTS) {
      if (!(variant.concurrencies as readonly number[]).includes(concurrency)) continue;
      const id = `${variant.id}/${concurrency}`;
      const label = `Get c=${concurrency} over ${variant.label}, memory store`;
      rows.push(
        {
          name: `${label}: throughput`,
          value: pick(id, "callsPerSecond"),
          baselineName: BASELINE,
          baselineValue: pick(grpcId, "callsPerSecond"),
          unit: "calls/s",
          better: "higher",
          ...paired(id, "callsPerSecond"),
        },
        {
          name: `${label}: server CPU per call`,
          value: pick(id, "cpuMicrosPerCall"),
          baselineName: BASELINE,
          baselineValue: pick(grpcId, "cpuMicrosPerCall"),
          unit: "µs",
          better: "lower",
          ...paired(id, "cpuMicrosPerCall"),
        },
        {
          ...pooledP99(runs.get(id), runs.get(grpcId), paired(id, "p99")),
          name: `${label}: latency p99`,
          baselineName: BASELINE,
        },
      );
    }
  }
  return rows;
}

/** Fresh servers per this many parts of a configuration's trials: RSS per stream differs between processes (fanout-bench.ts). */
const SEGMENTS = 3;

/** Per side: each trial's time to the last watcher, the server's CPU over all trials, and its RSS per stream, read every 5 trials. */
interface FanOutSide {
  ms: number[];
  cpuSeconds: number;
  rss: number[];
}

/** Starts two identical servers (so each one's RSS counts only its own watchers), opens `streams` watchers over gRPC on one and Connect on the other, and runs their trials from `firstTrial` on. */
function connectFanOutSegment(
  streams: number,
  firstTrial: number,
  trials: number,
): Promise<{ grpc: FanOutSide; connect: FanOutSide }> {
  const server = (via?: WatchVia): WatchedServer => ({
    start: () => ServerProcess.syncgen(HTTP),
    trigger: (writer) => writer.bump("fanout"),
    ...(via ? { via } : {}),
  });
  return withWatchedPair(streams, [server(), server({ protocol: "connect" })], async (overGrpc, overConnect) => {
    const grpc: FanOutSide = { ms: [], cpuSeconds: 0, rss: [] };
    const connect: FanOutSide = { ms: [], cpuSeconds: 0, rss: [] };
    const trialOf = async (watchers: FanOutWatchers, side: FanOutSide): Promise<void> => {
      const { lastMs, serverCpuSeconds } = await watchers.trial();
      side.ms.push(lastMs);
      side.cpuSeconds += serverCpuSeconds;
    };
    for (let trial = firstTrial; trial < firstTrial + trials; trial++) {
      if (trial % 5 === 4) {
        grpc.rss.push(await overGrpc.rssPerStream());
        connect.rss.push(await overConnect.rssPerStream());
      }
      await measurePair(
        trial,
        () => trialOf(overConnect, connect),
        () => trialOf(overGrpc, grpc),
      );
    }
    return { grpc, connect };
  });
}

/** Watch fan-out with the watchers over Connect binary (HTTP/2), beside as many over gRPC. */
export async function connectFanOutBench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const streams of FANOUT_STREAMS) {
    const segments: { grpc: FanOutSide; connect: FanOutSide }[] = [];
    for (let index = 0; index < SEGMENTS; index++) {
      const first = Math.round((index * TRIALS) / SEGMENTS);
      const next = Math.round(((index + 1) * TRIALS) / SEGMENTS);
      segments.push(await connectFanOutSegment(streams, first, next - first));
    }
    const ms = (side: "grpc" | "connect"): number[] => segments.flatMap((segment) => segment[side].ms);
    const rss = (side: "grpc" | "connect"): number[][] => segments.map((segment) => segment[side].rss);
    const perMessage = (side: "grpc" | "connect"): number =>
      (segments.reduce((sum, segment) => sum + segment[side].cpuSeconds, 0) * 1e6) / (TRIALS * streams);
    const [grpcMs, connectMs] = [ms("grpc"), ms("connect")];
    const label = `fan-out to ${streams.toLocaleString("en-US")} watchers over Connect binary (HTTP/2), memory store`;
    const baseline = { baselineName: "the same over gRPC", better: "lower" } as const;
    rows.push(
      {
        name: `${label}: Bump to last watcher`,
        value: median(connectMs),
        baselineValue: median(grpcMs),
        unit: "ms",
        ...baseline,
        ...pairStats(connectMs.map((value, trial) => value / (grpcMs[trial] ?? Number.NaN))),
      },
      {
        name: `${label}: server CPU per message delivered`,
        value: perMessage("connect"),
        baselineValue: perMessage("grpc"),
        unit: "µs",
        ...baseline,
      },
      {
        name: `${label}: server RSS per open stream`,
        ...rssRow(rss("connect"), rss("grpc")),
        unit: "KiB",
        ...baseline,
      },
    );
  }
  return rows;
}
