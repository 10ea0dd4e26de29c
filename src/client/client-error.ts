/** The client's one error type: what the service answered, with its gRPC status code. */
import { status as Code } from "@grpc/grpc-js";

export { Code };

/** A call failed; `code` is the gRPC status (UNAVAILABLE, INVALID_ARGUMENT, ...). */
export class GenerationServiceError extends Error {
  override readonly name = "GenerationServiceError";
  constructor(
    message: string,
    readonly code: Code,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Normalises what grpc-js rejects with (an Error carrying `code` and `details`). */
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
