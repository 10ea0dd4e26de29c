/**
 * Says in words a person can act on why a call never reached the server. grpc-js reports a
 * server that is down as, e.g., `UNAVAILABLE: round_robin: No connection established. Last
 * error: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:54737
 * (2026-11-30T09:00:00.000Z)`; this reads `UNAVAILABLE: cannot reach 127.0.0.1:54737:
 * connection refused; is syncgen serve running there?`. Only grpc-js's own "no connection"
 * and "name resolution" failures are reworded: an UNAVAILABLE the server answered (its store
 * cannot reach Redis, say) is about the server's side and keeps its words. The code stays;
 * the original error stays as the cause.
 */
import { Code, GenerationServiceError } from "../rpc/generation-service-error.js";

/** What the socket errors grpc-js passes on mean. */
const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: "connection refused; is `syncgen serve` running there?",
  ETIMEDOUT: "the connection timed out; is the address right, and the port open?",
  EHOSTUNREACH: "no route to the host",
  ENETUNREACH: "the network is unreachable",
  ECONNRESET: "the connection was reset",
};

/**
 * `failure` reworded when it is grpc-js's failure to connect or to resolve the target;
 * otherwise `failure` itself. `target` is what the client was created with, for when the
 * details name no address.
 */
export function explainUnreachable(failure: GenerationServiceError, target: string): GenerationServiceError {
  if (failure.code !== Code.UNAVAILABLE) return failure;
  const details = (failure.cause as { details?: unknown } | undefined)?.details;
  if (typeof details !== "string") return failure;
  const resolution = /Name resolution failed for target (?:dns:)?(\S+)/.exec(details);
  if (resolution) return reworded(failure, `cannot resolve ${resolution[1]}: is the host name right?`);
  if (!/No connection established/.test(details)) return failure;
  const socket = /\bconnect (E[A-Z]+) (\S+?)\.?(?=\s|$)/.exec(details);
  const meaning = socket ? SOCKET_ERRORS[socket[1] as string] : undefined;
  if (socket && meaning) return reworded(failure, `cannot reach ${socket[2]}: ${meaning}`);
  // Anything else (a TLS handshake refused, say): grpc-js's last error is the useful part.
  const last = /Last error: (?!No connection established)(.+?)(?:\. Resolution note:.*)?$/.exec(details)?.[1];
  return reworded(failure, `cannot reach ${target}: no connection could be established${last ? ` (${last})` : ""}`);
}

function reworded(failure: GenerationServiceError, why: string): GenerationServiceError {
  return new GenerationServiceError(`UNAVAILABLE: ${why}`, Code.UNAVAILABLE, { cause: failure.cause });
}
