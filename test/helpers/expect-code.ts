/** The one way tests await a call that must fail: with which gRPC code, and what message. */
import { expect } from "vitest";
import { Code, GenerationServiceError } from "../../src/client/index.js";

/**
 * Awaits `call`, which must reject with a GenerationServiceError of `code` (and, when given,
 * a message matching `message`); resolves with that error. The test fails if it succeeds.
 */
export async function expectCode(
  call: Promise<unknown>,
  code: Code,
  message?: RegExp,
): Promise<GenerationServiceError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, "the call to fail").toBeInstanceOf(GenerationServiceError);
  const failure = error as GenerationServiceError;
  // Code names, not numbers, so a failure reads "UNAVAILABLE" rather than 14.
  expect(Code[failure.code], failure.message).toBe(Code[code]);
  if (message) expect(failure.message).toMatch(message);
  return failure;
}
