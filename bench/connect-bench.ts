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
 *   trials alternate between the two, and the table reports the median per-pair ratio. The
 *   time includes each protocol's client, so server CPU per message delivered is reported
 *   too (the server's alone). And server RSS per open stream, each server's own. N is 1,000
 *   and 5,000, not fanout-bench.ts's 10,000: opening 10,000 Connect streams takes ~7 s here
 *   and each trial over a second, which would add ~15 s to this benchmark's ~60.
 */
import { createGenerationClient } from "../src/client/index.js";
import { FanOutWatchers, TRIALS } from "./fanout-bench.js";
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

/** Watch fan-out with the watchers over Connect binary (HTTP/2), beside as many over gRPC. */
export async function connectFanOutBench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const streams of FANOUT_STREAMS) {
    // Two identical servers, so each one's RSS counts only its own watchers.
    const [grpcServer, connectServer] = await Promise.all([ServerProcess.syncgen(HTTP), ServerProcess.syncgen(HTTP)]);
    const grpcClient = createGenerationClient(grpcServer.address);
    const connectClient = createGenerationClient(connectServer.address);
    const opened: FanOutWatchers[] = [];
    try {
      const overGrpc = await FanOutWatchers.open(grpcServer, streams, "fanout", () => grpcClient.bump("fanout"));
      opened.push(overGrpc);
      const overConnect = await FanOutWatchers.open(
        connectServer,
        streams,
        "fanout",
        () => connectClient.bump("fanout"),
        { protocol: "connect" },
      );
      opened.push(overConnect);
      // Per side: each trial's time to the last watcher, and the server's CPU over all trials.
      const grpc = { watchers: overGrpc, ms: [] as number[], cpuSeconds: 0 };
      const connect = { watchers: overConnect, ms: [] as number[], cpuSeconds: 0 };
      /** RSS per stream of each, read every 5 trials (one reading swung by 2x between runs). */
      const rss = { grpc: [] as number[], connect: [] as number[] };
      for (let trial = 0; trial < TRIALS; trial++) {
        if (trial % 5 === 4) {
          rss.grpc.push(await overGrpc.rssPerStream());
          rss.connect.push(await overConnect.rssPerStream());
        }
        const trialOf = async (side: typeof grpc): Promise<void> => {
          const { lastMs, serverCpuSeconds } = await side.watchers.trial();
          side.ms.push(lastMs);
          side.cpuSeconds += serverCpuSeconds;
        };
        await measurePair(
          trial,
          () => trialOf(connect),
          () => trialOf(grpc),
        );
      }
      const ratios = connect.ms.map((ms, trial) => ms / (grpc.ms[trial] ?? Number.NaN));
      const perMessage = (cpuSeconds: number): number => (cpuSeconds * 1e6) / (TRIALS * streams);
      const label = `fan-out to ${streams.toLocaleString("en-US")} watchers over Connect binary (HTTP/2), memory store`;
      rows.push(
        {
          name: `${label}: Bump to last watcher`,
          value: median(connect.ms),
          baselineName: "the same over gRPC",
          baselineValue: median(grpc.ms),
          unit: "ms",
          better: "lower",
          ...pairStats(ratios),
        },
        {
          name: `${label}: server CPU per message delivered`,
          value: perMessage(connect.cpuSeconds),
          baselineName: "the same over gRPC",
          baselineValue: perMessage(grpc.cpuSeconds),
          unit: "µs",
          better: "lower",
        },
        {
          name: `${label}: server RSS per open stream`,
          value: median(rss.connect) / 1024,
          baselineName: "the same over gRPC",
          baselineValue: median(rss.grpc) / 1024,
          unit: "KiB",
          better: "lower",
          ...pairStats(rss.connect.map((bytes, index) => bytes / (rss.grpc[index] ?? Number.NaN))),
        },
      );
    } finally {
      await Promise.all(opened.map((watchers) => watchers.close()));
      grpcClient.close();
      connectClient.close();
      await Promise.all([grpcServer.stop(), connectServer.stop()]);
    }
  }
  return rows;
}
