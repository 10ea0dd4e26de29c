/**
 * The stores the contract suite runs against. Each gives server settings and a teardown;
 * Redis runs on REDIS_URL (CI's shared server) or a private redis-server.
 */
import type { ServerConfig } from "../../src/server/config.js";
import { sharedRedis } from "./redis-process.js";

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
      return { settings: { redisUrl: redis.url, prefix: redis.prefix() }, close: () => redis.close() };
    },
  },
];
