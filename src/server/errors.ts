/**
 * The server's one error type: a message a person can act on, and the gRPC status it is
 * answered with. Handlers throw it; the RPC adapter turns anything thrown into a status.
 */
import { status as Status } from "@grpc/grpc-js";
import { StoreUnavailableError } from "./store/generation-store.js";

export { Status };

/** An error that carries the gRPC status code it must be answered with. */
export class ServiceError extends Error {
  override readonly name = "ServiceError";
  constructor(
    message: string,
    readonly code: Status,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /**
   * Normalises anything thrown: a ServiceError as it is, a store that cannot serve as
   * UNAVAILABLE, and everything else — a bug of ours — as INTERNAL without its details.
   */
  static from(error: unknown): ServiceError {
    if (error instanceof ServiceError) return error;
    if (error instanceof StoreUnavailableError)
      return new ServiceError(error.message, Status.UNAVAILABLE, { cause: error });
    return new ServiceError("internal error", Status.INTERNAL, { cause: error });
  }
}
