/**
 * The Redis store: many replicas share one Redis (one server, a Sentinel-managed master, or a
 * Cluster). Its change feed is the topology's (redis-server-feed.ts, redis-cluster-feed.ts),
 * which owns the connections and the store's state; its records (redis-records.ts) send
 * commands through them. Changes travel over pub/sub, one channel per key, and this process
 * holds one subscription per key however many watchers it has.
 */
import type { ChangeFeed, GenerationStore } from "./generation-store.js";
import { RedisClusterFeed } from "./redis-cluster-feed.js";
import { connectionOptions, type RedisFeed } from "./redis-feed.js";
import { RedisKeys } from "./redis-keys.js";
import { RedisRecords, type WaitForReplicas } from "./redis-records.js";
import { RedisServerFeed } from "./redis-server-feed.js";
import { describeTarget, type RedisClusterTarget, type RedisServerTarget } from "./redis-target.js";

/** Options of the Redis store. */
export type RedisStoreOptions = {
  /** Prepended to every Redis key and channel, so deployments can share one Redis. */
  prefix: string;
  /**
   * A command without a reply after this long fails with UNAVAILABLE, and the connection is
   * treated as broken (a hung Redis keeps its TCP connections open, so nothing else notices).
   */
  commandTimeoutMs: number;
} & (
  | {
      target: RedisServerTarget;
      /** Writes wait for this many replicas (WAIT goes to the master; a Cluster has none to send it to). */
      waitForReplicas?: WaitForReplicas;
    }
  | { target: RedisClusterTarget }
);

/** A GenerationStore on Redis: one server, Sentinel, or Cluster. */
export class RedisStore implements GenerationStore {
  readonly records: RedisRecords;
  readonly feed: ChangeFeed;
  readonly #feed: RedisFeed;

  constructor(options: RedisStoreOptions) {
    const keys = new RedisKeys(options.prefix);
    const common = {
      description: describeTarget(options.target),
      keys,
      redisOptions: connectionOptions(options.commandTimeoutMs),
    };
    const waitForReplicas = "waitForReplicas" in options ? options.waitForReplicas : undefined;
    this.#feed =
      options.target.mode === "cluster"
        ? new RedisClusterFeed(options.target.nodes, common)
        : new RedisServerFeed(options.target, { ...common, separateWrites: waitForReplicas !== undefined });
    this.feed = this.#feed;
    this.records = new RedisRecords(this.#feed, keys, waitForReplicas);
  }

  connect(): Promise<void> {
    return this.#feed.connect();
  }

  close(): Promise<void> {
    return this.#feed.close();
  }
}
