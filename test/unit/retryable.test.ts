import { describe, expect, test } from "vitest";
import { Code, isRetryable } from "../../src/client/index.js";

/** What a grpc-js client call rejects with. */
function grpcError(code: Code, details: string): Error {
  return Object.assign(new Error(`${code} ${Code[code]}: ${details}`), { code, details });
}

describe("isRetryable()", () => {
  test.each([
    [Code.UNAVAILABLE, "Connection dropped", true],
    [Code.UNAVAILABLE, "the store (redis 127.0.0.1:6379) is unavailable; retry", true],
    [
      Code.INTERNAL,
      "Received RST_STREAM with code 2 triggered by internal client error: Session closed with error code 2",
      true,
    ],
    [Code.INTERNAL, "Received RST_STREAM with code 2 (Internal server error)", true],
    [Code.INTERNAL, "Received RST_STREAM with code 0 (Call ended without gRPC status)", true],
    [Code.INTERNAL, "Received RST_STREAM with code 1", false],
    [Code.INTERNAL, "internal error", false],
    [Code.INVALID_ARGUMENT, "key must not be empty", false],
    [Code.RESOURCE_EXHAUSTED, "this connection already has 500 Watch streams open", false],
  ])("%s %j -> %s", (code, details, retryable) => {
    expect(isRetryable(grpcError(code, details))).toBe(retryable);
  });
});
