/**
 * The unary load generator: one long-lived process (so its JIT stays warm from run to run)
 * that reads a JSON spec per line on stdin, keeps `concurrency` calls in flight for
 * `durationMs` after `warmupMs`, and answers one JSON line: calls, totalCalls (warm-up
 * included), seconds, busySeconds (the measured calls' latencies summed), latency p50/p99 in
 * ms and, with `latencies` set, every measured call's latency (ms), so percentiles can be
 * taken over many runs. At concurrency 1 a run can take turns, call by call, with a second
 * target (`alternate`), answering for both.
 *
 * Modes: grpc-get / grpc-bump through the syncgen client (against syncgen or the echo
 * server), connect-json-get through Connect's own Node client to syncgen's HTTP port (Connect
 * protocol, JSON, over `httpVersion` "2" or "1.1"; `target` is its http:// URL),
 * redis-get / redis-bump straight to Redis with ioredis (what a service talking to Redis
 * directly would pay: GET, or the same Lua script syncgen runs).
 */
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import { createGenerationClient, type GenerationClient } from "../../src/client/index.js";
import { RedisKeys } from "../../src/server/store/redis-keys.js";
import { WRITE_SCRIPT } from "../../src/server/store/redis-scripts.js";
import { type ContractClient, connectGenerationClient } from "../../test/helpers/connect-client.js";
import { percentile } from "../report.js";

interface LoadSpec {
  mode: "grpc-get" | "grpc-bump" | "connect-json-get" | "redis-get" | "redis-bump";
  /** HOST:PORT (gRPC), http://HOST:PORT (Connect) or redis:// URL. */
  target: string;
  /** connect-json-get: the HTTP version (default "2", HTTP/2 with prior knowledge). */
  httpVersion?: "1.1" | "2";
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  key: string;
  prefix: string;
  /** gRPC modes: spread calls round robin over this many keys (`key/0`, `key/1`, ...); default one key. */
  keys?: number;
  /** Answer with every measured call's latency too. */
  latencies?: boolean;
  /**
   * Concurrency 1 only: a second spec whose calls take turns with this one's, call by call,
   * so both sides meet the same moments of a noisy machine. Its figures come back as
   * `alternate`.
   */
  alternate?: LoadSpec;
}

/** What one side of a run measured. */
class Tally {
  readonly latencies: number[] = [];
  calls = 0;
  totalCalls = 0;
  /** The measured calls' latencies, summed (all of them, past the 200,000 kept). */
  busyMs = 0;

  readonly call: () => Promise<unknown>;

  constructor(readonly spec: LoadSpec) {
    this.call = callOf(spec);
  }

  /** Makes one call, counting it (and its latency while measuring). */
  async time(measuring: boolean): Promise<void> {
    const start = performance.now();
    await this.call();
    this.totalCalls++;
    if (measuring) {
      const latency = performance.now() - start;
      this.calls++;
      this.busyMs += latency;
      if (this.latencies.length < 200_000) this.latencies.push(latency);
    }
  }

  result(seconds: number): object {
    const { calls, totalCalls, latencies } = this;
    const busySeconds = this.busyMs / 1000;
    const figures = {
      calls,
      totalCalls,
      seconds,
      busySeconds,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
    };
    // To the microsecond: the line stays short.
    return this.spec.latencies
      ? { ...figures, latencies: latencies.map((ms) => Math.round(ms * 1000) / 1000) }
      : figures;
  }
}

const grpcClients = new Map<string, GenerationClient>();
const connectClients = new Map<string, ContractClient>();
const redisClients = new Map<string, Redis>();

/** The call a spec makes, on a connection kept for later runs against the same target. */
function callOf(spec: LoadSpec): () => Promise<unknown> {
  if (spec.mode === "grpc-get" || spec.mode === "grpc-bump") {
    let client = grpcClients.get(spec.target);
    if (client === undefined) {
      client = createGenerationClient(spec.target);
      grpcClients.set(spec.target, client);
    }
    const c = client;
    const count = spec.keys ?? 1;
    let turn = 0;
    const key = count === 1 ? () => spec.key : () => `${spec.key}/${turn++ % count}`;
    return spec.mode === "grpc-get" ? () => c.get(key()) : () => c.bump(key());
  }
  if (spec.mode === "connect-json-get") {
    const httpVersion = spec.httpVersion ?? "2";
    const id = `${httpVersion} ${spec.target}`;
    let client = connectClients.get(id);
    if (client === undefined) {
      client = connectGenerationClient(spec.target, {
        name: `Connect JSON, HTTP/${httpVersion}`,
        protocol: "connect",
        binary: false,
        httpVersion,
      });
      connectClients.set(id, client);
    }
    const c = client;
    return () => c.get(spec.key);
  }
  let redis = redisClients.get(spec.target);
  if (redis === undefined) {
    redis = new Redis(spec.target, { enableAutoPipelining: true });
    redis.defineCommand("syncgenWrite", { numberOfKeys: 1, lua: WRITE_SCRIPT });
    redisClients.set(spec.target, redis);
  }
  const r = redis;
  const names = new RedisKeys(spec.prefix);
  const [record, channel] = [names.record(spec.key), names.channel(spec.key)];
  // defineCommand adds a method ioredis cannot type.
  const write = (r as unknown as Record<string, (...args: string[]) => Promise<string>>).syncgenWrite as (
    ...args: string[]
  ) => Promise<string>;
  return spec.mode === "redis-get"
    ? () => r.get(record)
    : () => write.call(r, record, "bump", channel, "10000", "PUBLISH");
}

async function run(spec: LoadSpec): Promise<object> {
  if (spec.alternate && spec.concurrency !== 1) throw new Error("alternating runs take concurrency 1");
  const sides = [spec, ...(spec.alternate ? [spec.alternate] : [])].map((side) => new Tally(side));
  for (const side of sides) await side.call();
  let measuring = false;
  let stop = false;
  const worker = async (): Promise<void> => {
    while (!stop) for (const side of sides) await side.time(measuring);
  };
  const workers = Array.from({ length: spec.concurrency }, () => worker());
  await new Promise((resolve) => setTimeout(resolve, spec.warmupMs));
  measuring = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, spec.durationMs));
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(workers);
  const [own, alternate] = sides.map((side) => side.result(seconds));
  return alternate === undefined ? { ...own } : { ...own, alternate };
}

// One run at a time, in order.
let queue = Promise.resolve();
createInterface({ input: process.stdin })
  .on("line", (line) => {
    queue = queue.then(async () => {
      process.stdout.write(`${JSON.stringify(await run(JSON.parse(line) as LoadSpec))}\n`);
    });
  })
  .on("close", () => {
    void queue.then(() => {
      for (const client of grpcClients.values()) client.close();
      for (const redis of redisClients.values()) redis.disconnect();
    });
  });
