/**
 * syncgen's client library (`@syncgen/client`, built from here by packages/client): a typed client of GenerationService and
 * djblets' GenerationSynchronizer on top of it. Imports nothing of the server.
 */

export type { KeyGeneration } from "../gen/generation/v1/generation_pb.js";
export { Code, GenerationServiceError } from "../rpc/generation-service-error.js";
export { Backoff, type BackoffOptions } from "./backoff.js";
export { type CacheKeyOptions, MAX_CACHE_KEY_LENGTH, makeCacheKey } from "./cache-key.js";
export {
  type CallOptions,
  type ConnectionState,
  createGenerationClient,
  type GenerationClient,
  type GenerationClientOptions,
  type TlsOptions,
  type WatchEvent,
  type WatchOptions,
} from "./generation-client.js";
export {
  type ExpiredListener,
  GenerationSynchronizer,
  type SyncAction,
  type SynchronizerOptions,
} from "./generation-synchronizer.js";
export type { SyncLogger } from "./rate-limited-log.js";
export { isRetryable } from "./retryable.js";
