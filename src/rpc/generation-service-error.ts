/**
 * syncgen's one error type, on both sides of the wire: a message a person can act on and
 * the gRPC status code it travels with. The server throws it to answer a call; the client
 * rejects with it when a call fails.
 */
import { Code } from "./code.js";

export { Code };

/** An error with a gRPC status `code` (UNAVAILABLE, INVALID_ARGUMENT, ...). */
export class GenerationServiceError extends Error {
  override readonly name = "GenerationServiceError";
  constructor(
    message: string,
    readonly code: Code,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /**
   * Normalises what a client call rejects with: grpc-js's Error carrying `code` and
   * `details` (the message then starts with the code's name); anything else is UNKNOWN.
   */
  static from(error: unknown): GenerationServiceError {
    if (error instanceof GenerationServiceError) return error;
    if (error instanceof Error && "code" in error && typeof error.code === "number" && error.code in Code) {
      const details = "details" in error && typeof error.details === "string" ? error.details : error.message;
      return new GenerationServiceError(`${Code[error.code]}: ${details}`, error.code as Code, { cause: error });
    }
    return new GenerationServiceError(error instanceof Error ? error.message : String(error), Code.UNKNOWN, {
      cause: error,
    });
  }
}
