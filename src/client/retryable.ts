/**
 * Which failures are worth another try: the server could not serve the call now
 * (UNAVAILABLE), or the connection under the call was torn down before the server answered.
 * grpc-js reports the second as INTERNAL "Received RST_STREAM with code N ...", e.g. when
 * Node's HTTP/2 on the server closes a connection whose client cancelled too many calls
 * (watch-mode synchronizers coming and going). An INTERNAL the server itself answers carries
 * a gRPC status and never reads so.
 */
import { Code, GenerationServiceError } from "../rpc/generation-service-error.js";

/**
 * How grpc-js words a call ended by a stream reset rather than by the server's status, for
 * the codes a torn-down connection gives: NO_ERROR (0) and INTERNAL_ERROR (2). Others (a
 * protocol error, say) would fail the same way again.
 */
const STREAM_RESET = /^Received RST_STREAM with code [02]\b/;

/**
 * Whether a failed call may be tried again (Get, Clear, a Watch's resume). A Bump may too,
 * at the price of perhaps advancing the generation twice.
 */
export function isRetryable(error: unknown): boolean {
  const failure = GenerationServiceError.from(error);
  if (failure.code === Code.UNAVAILABLE) return true;
  const details = (failure.cause as { details?: unknown } | undefined)?.details;
  return failure.code === Code.INTERNAL && typeof details === "string" && STREAM_RESET.test(details);
}
