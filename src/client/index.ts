/**
 * syncgen's client library (`syncgen/client`). Imports nothing of the server.
 */
export {
  type CallOptions,
  type GenerationClient,
  type GenerationClientOptions,
  type WatchOptions,
  createGenerationClient,
} from "./generation-client.js";
export { Code, GenerationServiceError } from "./client-error.js";
export type { KeyGeneration, WatchResponse } from "../gen/generation/v1/generation_pb.js";
