/**
 * syncgen's client library (`syncgen/client`). Imports nothing of the server.
 */

export type { KeyGeneration } from "../gen/generation/v1/generation_pb.js";
export { Backoff, type BackoffOptions } from "./backoff.js";
export { Code, GenerationServiceError } from "./client-error.js";
export {
  type CallOptions,
  createGenerationClient,
  type GenerationClient,
  type GenerationClientOptions,
  type WatchEvent,
  type WatchOptions,
} from "./generation-client.js";
