/** Picks the store the configuration asks for: Redis when a URL is given, memory otherwise. */
import { redisTarget, type ServerConfig } from "../config.js";
import type { GenerationStore } from "./generation-store.js";
import { MemoryStore } from "./memory-store.js";
import { RedisStore } from "./redis-store.js";

/** Creates (but does not connect) the configured store. */
export function createStore(config: ServerConfig): GenerationStore {
  const target = redisTarget(config);
  if (target === undefined) return new MemoryStore();
  return new RedisStore({
    target,
    prefix: config.prefix,
    commandTimeoutMs: config.redisTimeoutMs,
    ...(config.redisWaitReplicas > 0
      ? { waitForReplicas: { count: config.redisWaitReplicas, timeoutMs: config.redisWaitMs } }
      : {}),
  });
}
