/**
 * The Redis store: many replicas share one Redis (one server, a Sentinel-managed master, or a
 * Cluster). Its change feed is the topology's (redis-server-feed.ts, redis-cluster-feed.ts),
 * which owns the connections and the store's state; its records (redis-records.ts) send
 * commands through them. Changes travel over pub/sub, one channel per key, and this process
 * holds one subscription per key however many watchers it has.
 */

import type { HostPort } from "../host-port.js";
import { formatHostPort } from "../host-port.js";
import type { GenerationStore } from "./generation-store.js";
import { RedisClusterFeed } from "./redis-cluster-feed.js";
import { connectionOptions, type RedisFeed } from "./redis-feed.js";
import { RedisKeys } from "./redis-keys.js";
import { RedisRecords, type WaitForReplicas } from "./redis-records.js";
import { RedisServerFeed, type RedisServerTarget } from "./redis-server-feed.js";

/** Which Redis to use, and how. */
export type RedisTarget =
  /** One server (redis:// or rediss:// URL), or the master of a Sentinel group. */
  | RedisServerTarget
  /** A Cluster, found through any of `nodes`. */
  | { mode: "cluster"; nodes: HostPort[] };

/** Options of the Redis store. */
export interface RedisStoreOptions {
  /** Which Redis, and how to reach it. */
  target: RedisTarget;
  /** Prepended to every Redis key and channel, so deployments can share one Redis. */
  prefix: string;
  /**
   * A command without a reply after this long fails with UNAVAILABLE, and the connection is
   * treated as broken (a hung Redis keeps its TCP connections open, so nothing else notices).
   */
  commandTimeoutMs: number;
  /** Writes wait for this many replicas (one server or Sentinel only). */
  waitForReplicas?: WaitForReplicas | undefined;
}

/** A GenerationStore on Redis: one server, Sentinel, or Cluster. */
export class RedisStore implements GenerationStore {
  readonly records: RedisRecords;
  readonly feed: RedisFeed;

  constructor(options: RedisStoreOptions) {
    const keys = new RedisKeys(options.prefix);
    const common = {
      description: describeTarget(options.target),
      keys,
      redisOptions: connectionOptions(options.commandTimeoutMs),
    };
    this.feed =
      options.target.mode === "cluster"
        ? new RedisClusterFeed(options.target.nodes, common)
        : new RedisServerFeed(options.target, { ...common, separateWrites: options.waitForReplicas !== undefined });
    this.records = new RedisRecords(this.feed, keys, options.waitForReplicas);
  }

  connect(): Promise<void> {
    return this.feed.connect();
  }

  close(): Promise<void> {
    return this.feed.close();
  }
}

/** A short description for logs (never a password). */
export function describeTarget(target: RedisTarget): string {
  switch (target.mode) {
    case "single":
      return `redis ${new URL(target.url).host}`;
    case "sentinel":
      return `redis sentinel "${target.name}" via ${target.sentinels.map(formatHostPort).join(",")}`;
    case "cluster":
      return `redis cluster via ${target.nodes.map(formatHostPort).join(",")}`;
  }
}
