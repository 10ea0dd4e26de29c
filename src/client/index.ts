/**
 * syncgen's client library (`syncgen/client`). Imports nothing of the server.
 */

export type { KeyGeneration, WatchResponse } from "../gen/generation/v1/generation_pb.js";
export { Code, GenerationServiceError } from "./client-error.js";
export {
  type CallOptions,
  createGenerationClient,
  type GenerationClient,
  type GenerationClientOptions,
  type WatchOptions,
} from "./generation-client.js";
