import { status } from "@grpc/grpc-js";
import { describe, expect, test } from "vitest";
import { GenerationServiceError } from "../../src/client/index.js";
import { explainUnreachable } from "../../src/client/unreachable.js";

/** A failure as the client sees it: grpc-js's error, normalised. */
function failure(code: number, details: string): GenerationServiceError {
  return GenerationServiceError.from(Object.assign(new Error(`${code} ${details}`), { code, details }));
}

describe("explainUnreachable()", () => {
  // Details as grpc-js 1.10 and 1.14 word them.
  test.each([
    [
      "round_robin: No connection established. Last error: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:54737 (2026-11-30T09:00:00.000Z)",
      "UNAVAILABLE: cannot reach 127.0.0.1:54737: connection refused; is `syncgen serve` running there?",
    ],
    [
      "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:54737. Resolution note: ",
      "UNAVAILABLE: cannot reach 127.0.0.1:54737: connection refused; is `syncgen serve` running there?",
    ],
    [
      "round_robin: No connection established. Last error: Error: connect ETIMEDOUT 10.0.0.9:50051",
      "UNAVAILABLE: cannot reach 10.0.0.9:50051: the connection timed out; is the address right, and the port open?",
    ],
    [
      "Name resolution failed for target dns:syncgen.invalid:50051",
      "UNAVAILABLE: cannot resolve syncgen.invalid:50051: is the host name right?",
    ],
    [
      "round_robin: No connection established. Last error: Error: self-signed certificate in certificate chain",
      "UNAVAILABLE: cannot reach syncgen:50051: no connection could be established (Error: self-signed certificate in certificate chain)",
    ],
  ])("rewords %j", (details, message) => {
    const reworded = explainUnreachable(failure(status.UNAVAILABLE, details), "syncgen:50051");
    expect(reworded.message).toBe(message);
    expect(reworded.code).toBe(status.UNAVAILABLE);
    expect((reworded.cause as { details: string }).details).toBe(details);
  });

  test.each([
    // The server answered: its store cannot reach Redis. That is the server's side.
    [status.UNAVAILABLE, "Redis did not serve the request: connect ECONNREFUSED 10.0.0.5:6379"],
    [status.UNAVAILABLE, "the server is shutting down; reconnect to another replica"],
    [status.PERMISSION_DENIED, "No connection established"],
  ])("leaves code %i %j as it is", (code, details) => {
    const original = failure(code, details);
    expect(explainUnreachable(original, "syncgen:50051")).toBe(original);
  });
});
