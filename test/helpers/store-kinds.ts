/**
 * The stores the contract suite runs against. Each gives server settings and a teardown.
 * Single Redis runs on REDIS_URL (CI's shared server) or a private redis-server; Sentinel
 * (master, replica, three Sentinels) and Cluster (three masters) on private processes.
 */
import type { ServerConfig } from "../../src/server/config.js";
import { RedisCluster } from "./redis-cluster.js";
import { sharedRedis, uniquePrefix } from "./redis-process.js";
import { RedisSentinelGroup } from "./redis-sentinel.js";

export interface StoreKind {
  name: string;
  start(): Promise<{ settings: Partial<ServerConfig>; close(): Promise<void> }>;
}

export const STORE_KINDS: StoreKind[] = [
  { name: "memory", start: async () => ({ settings: {}, close: async () => {} }) },
  {
    name: "redis",
    start: async () => {
      const redis = await sharedRedis();
      return { settings: { redis: redis.target, prefix: redis.prefix() }, close: () => redis.close() };
    },
  },
  {
    name: "Redis Sentinel",
    start: async () => {
      const group = await RedisSentinelGroup.start();
      return { settings: { redis: group.target, prefix: uniquePrefix() }, close: () => group.stop() };
    },
  },
  {
    name: "Redis Cluster",
    start: async () => {
      const cluster = await RedisCluster.start();
      return { settings: { redis: cluster.target, prefix: uniquePrefix() }, close: () => cluster.stop() };
    },
  },
];
