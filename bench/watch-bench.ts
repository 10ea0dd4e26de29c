/**
 * Cross-replica propagation (Bump on one replica to a watcher on the other, beside raw Redis
 * PUBLISH -> message) and the cost of a big Watch: 10,000 keys from cold, then a resume
 * after a disconnect during which 10 keys changed — time, and bytes on the wire each way.
 */
import { performance } from "node:perf_hooks";
import { create, toBinary } from "@bufbuild/protobuf";
import { Client, credentials, status } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { createGenerationClient } from "../src/client/index.js";
import { GenerationService, WatchRequestSchema, type WatchResponse } from "../src/gen/generation/v1/generation_pb.js";
import { grpcServiceDefinition } from "../src/rpc/service-definition.js";
import { RedisKeys } from "../src/server/store/redis-keys.js";
import { WRITE_SCRIPT } from "../src/server/store/redis-scripts.js";
import { monotonicMs } from "./clock.js";
import type { ServerProcess } from "./processes.js";
import type { BenchRow } from "./report.js";
import { median, pairStats, percentileOfTrials } from "./report.js";
import { WatchLoad } from "./watch-load-process.js";

/**
 * Bump on B, watcher on A (in its own process), trial after trial; each trial also times one
 * raw Redis PUBLISH -> message, so drift hits both sides alike. 1,000 trials: a p99 from 300
 * (taken apart from the baseline's) swung by 30-40% between runs.
 */
export async function propagationBench(
  a: ServerProcess,
  b: ServerProcess,
  redisUrl: string,
  prefix: string,
): Promise<BenchRow[]> {
  const trials = 1000;
  const key = "bench-propagation";
  const bumper = createGenerationClient(b.address);
  // The write replica B's store makes for a Bump, made here so its start can be timed.
  const writer = new Redis(redisUrl);
  const names = new RedisKeys(prefix);
  const write = () =>
    writer.call("EVAL", WRITE_SCRIPT, 1, names.record(key), "bump", names.channel(key), "10000", "PUBLISH");
  const load = await WatchLoad.start({ target: a.address, key, streams: 1, perConnection: 1 });
  const rawPubSub = await RawPubSub.open(redisUrl);
  const latencies: number[] = [];
  const roundTrips: number[] = [];
  const fromRedis: number[] = [];
  const raw: number[] = [];
  try {
    for (let i = 0; i < trials; i++) {
      await load.arm();
      const start = monotonicMs();
      await bumper.bump(key);
      roundTrips.push(monotonicMs() - start);
      latencies.push((await load.result()).last - start);
      await load.arm();
      const written = monotonicMs();
      await write();
      fromRedis.push((await load.result()).last - written);
      raw.push(await rawPubSub.sample());
    }
  } finally {
    rawPubSub.close();
    await load.close();
    bumper.close();
    writer.disconnect();
  }
  const roundTripRows = [50, 99].map((p) => ({
    name: `(context) the Bump's own round trip through replica B, p${p}`,
    ...percentileOfTrials(roundTrips, raw, p),
    baselineName: `raw Redis PUBLISH -> message, p${p}`,
    unit: "ms",
    better: "lower" as const,
  }));
  const propagationRows = [50, 99].map((p) => ({
    name: `replica B's Bump write in Redis -> watcher on replica A, p${p}`,
    ...percentileOfTrials(fromRedis, raw, p),
    baselineName: `raw Redis PUBLISH -> message, p${p}`,
    unit: "ms",
    better: "lower" as const,
    ...(p === 99 ? { target: 3 } : {}),
  }));
  const endToEndRows = [50, 99].map((p) => ({
    name: `Bump RPC on replica B -> watcher on replica A, p${p}`,
    ...percentileOfTrials(latencies, raw, p),
    baselineName: `raw Redis PUBLISH -> message, p${p}`,
    unit: "ms",
    better: "lower" as const,
  }));
  return [...propagationRows, ...endToEndRows, ...roundTripRows];
}

/** Raw Redis pub/sub, the baseline of propagation: PUBLISH on one connection to the message on another. */
export class RawPubSub {
  #sent = 0;

  private constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly channel: string,
  ) {}

  static async open(redisUrl: string): Promise<RawPubSub> {
    const channel = `bench-raw-${Date.now()}-${Math.random()}`;
    const subscriber = new Redis(redisUrl);
    await subscriber.subscribe(channel);
    return new RawPubSub(new Redis(redisUrl), subscriber, channel);
  }

  /** One PUBLISH until its message arrives, in ms. */
  async sample(): Promise<number> {
    const received = new Promise<void>((resolve) => this.subscriber.once("message", () => resolve()));
    const start = performance.now();
    await this.publisher.publish(this.channel, String(this.#sent++));
    await received;
    return performance.now() - start;
  }

  close(): void {
    this.publisher.disconnect();
    this.subscriber.disconnect();
  }
}

interface WatchCost {
  ms: number;
  requestBytes: number;
  responseBytes: number;
}

/** Opens a Watch and measures it until live (the first response with continued false). */
function openUntilLive(target: string, keys: string[], known: Record<string, bigint>): Promise<WatchCost> {
  const method = grpcServiceDefinition(GenerationService).watch;
  const client = new Client(target, credentials.createInsecure());
  const request = create(WatchRequestSchema, { keys, known });
  let responseBytes = 0;
  return new Promise<WatchCost>((resolve, reject) => {
    const start = performance.now();
    const call = client.makeServerStreamRequest(
      method.path,
      method.requestSerialize,
      (bytes: Buffer) => {
        responseBytes += bytes.length;
        return method.responseDeserialize(bytes);
      },
      request,
    );
    call.on("data", (response: WatchResponse) => {
      if (response.continued) return;
      const ms = performance.now() - start;
      call.cancel();
      client.close();
      resolve({ ms, requestBytes: toBinary(WatchRequestSchema, request).length, responseBytes });
    });
    call.on("error", (error: Error & { code?: number }) => {
      if (error.code !== status.CANCELLED) reject(error);
    });
  });
}

/** 10,000 keys: cold snapshot, then resume with `known` after 10 changed. */
export async function bigWatchBench(server: ServerProcess): Promise<BenchRow[]> {
  const keys = Array.from({ length: 10_000 }, (_, i) => `bench-big-watch/${i}`);
  const client = createGenerationClient(server.address);
  const known: Record<string, bigint> = {};
  try {
    for (let i = 0; i < keys.length; i += 200) {
      const batch = keys.slice(i, i + 200);
      const generations = await Promise.all(batch.map((key) => client.bump(key)));
      batch.forEach((key, index) => {
        known[key] = generations[index] as bigint;
      });
    }
    const cold: WatchCost[] = [];
    const resumed: WatchCost[] = [];
    // Pairs of a cold and a resumed Watch; 3 let the time ratio swing by 40% between runs, 9
    // by 15%. A pair takes about 0.6 s.
    for (let run = 0; run < 21; run++) {
      cold.push(await openUntilLive(server.address, keys, {}));
      for (const key of keys.slice(run * 10, run * 10 + 10)) await client.bump(key);
      resumed.push(await openUntilLive(server.address, keys, known));
      for (const key of keys.slice(run * 10, run * 10 + 10)) known[key] = await client.get(key);
    }
    const pick = (costs: WatchCost[], field: keyof WatchCost) => median(costs.map((c) => c[field]));
    return [
      {
        name: "Watch of 10,000 keys, resumed after 10 changed: time to live",
        value: pick(resumed, "ms"),
        baselineName: "the same Watch from cold",
        baselineValue: pick(cold, "ms"),
        unit: "ms",
        better: "lower",
        ...pairStats(resumed.map((cost, run) => cost.ms / (cold[run]?.ms ?? Number.NaN))),
      },
      {
        name: "Watch of 10,000 keys, resumed after 10 changed: bytes received",
        value: pick(resumed, "responseBytes"),
        baselineName: "the same Watch from cold",
        baselineValue: pick(cold, "responseBytes"),
        unit: "B",
        better: "lower",
        // O(changed keys): 10 of 10,000 changed, so about a thousandth, with room for framing.
        target: 0.01,
      },
      {
        name: "Watch of 10,000 keys, resumed: bytes sent (keys and known)",
        value: pick(resumed, "requestBytes"),
        baselineName: "the same Watch from cold",
        baselineValue: pick(cold, "requestBytes"),
        unit: "B",
        better: "lower",
      },
    ];
  } finally {
    client.close();
  }
}
