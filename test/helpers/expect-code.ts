/** The one way tests await a call or a Watch that must fail: with which gRPC code, and what message. */
import { expect } from "vitest";
import { Code, GenerationServiceError } from "../../src/client/index.js";
import { withDeadline } from "./deadline.js";

/**
 * Awaits `call`, which must reject with a gRPC error of `code` (a GenerationServiceError, or
 * grpc-js's own) and, when given, a message matching `message`; resolves with it as a
 * GenerationServiceError. The test fails if the call succeeds.
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
  return expectFailure(error, code, message, "the call to fail");
}

/**
 * Awaits the end of a Watch (a WatchRecorder, or anything with `done` and `error`) that must
 * end with `code` (and a message matching `message`); resolves with that error.
 */
export async function expectWatchCode(
  watch: { readonly done: Promise<void>; readonly error: GenerationServiceError | undefined },
  code: Code,
  message?: RegExp,
  ms = 10_000,
): Promise<GenerationServiceError> {
  await withDeadline(watch.done, ms, "the watch to end");
  return expectFailure(watch.error, code, message, "the watch to end with an error");
}

/** Checks a status a raw call ended with (its code by name, and its details). */
export function expectStatus(status: { code: number; details: string }, code: Code, message?: RegExp): void {
  expect(Code[status.code], status.details).toBe(Code[code]);
  if (message) expect(status.details).toMatch(message);
}

/** `error` must be a gRPC failure (syncgen's error type, or grpc-js's) with `code`. */
function expectFailure(error: unknown, code: Code, message: RegExp | undefined, what: string): GenerationServiceError {
  expect(error, what).toBeInstanceOf(Error);
  const failure = GenerationServiceError.from(error);
  // Code names, not numbers, so a failure reads "UNAVAILABLE" rather than 14.
  expect(Code[failure.code], failure.message).toBe(Code[code]);
  if (message) expect(failure.message).toMatch(message);
  return failure;
}
