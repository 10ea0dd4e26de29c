/**
 * The server's side of the one error type: handlers throw GenerationServiceError, and
 * toServiceError() turns anything thrown into one, so every call ends with a status.
 */
import { Code, GenerationServiceError } from "../rpc/generation-service-error.js";
import { StoreUnavailableError } from "./store/generation-store.js";

export { Code, GenerationServiceError };

/** INVALID_ARGUMENT for a request that does not decode as a `typeName`, saying why. */
export function undecodable(typeName: string, error: unknown): GenerationServiceError {
  const reason = error instanceof Error ? error.message : String(error);
  return new GenerationServiceError(`the request is not a valid ${typeName}: ${reason}`, Code.INVALID_ARGUMENT);
}

/**
 * Normalises anything thrown in the server: a GenerationServiceError as it is, a store that
 * cannot serve as UNAVAILABLE, and everything else — a bug of ours — as INTERNAL without
 * its details.
 */
export function toServiceError(error: unknown): GenerationServiceError {
  if (error instanceof GenerationServiceError) return error;
  if (error instanceof StoreUnavailableError) {
    return new GenerationServiceError(error.message, Code.UNAVAILABLE, { cause: error });
  }
  return new GenerationServiceError("internal error", Code.INTERNAL, { cause: error });
}
