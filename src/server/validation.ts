/**
 * Checks of what clients send, shared by every RPC. Each returns the message a person can
 * act on (naming the limit and the setting that controls it), or undefined when all is well.
 */
import type { ServerConfig } from "./config.js";

/** The limits requests are checked against. */
export type RequestLimits = Pick<ServerConfig, "maxKeyBytes" | "maxWatchKeys">;

/** Checks one key: 1 to maxKeyBytes bytes of UTF-8. `field` names it in the message. */
export function keyProblem(key: string, limits: RequestLimits, field = "key"): string | undefined {
  // Decoding already rejected invalid UTF-8; lone surrogates can only come from JS callers.
  if (!key.isWellFormed()) return `${field} is not valid UTF-8`;
  return keySizeProblem(Buffer.byteLength(key, "utf8"), limits, field);
}

/** Checks a key's size in UTF-8 bytes, before it is decoded. */
export function keySizeProblem(bytes: number, limits: RequestLimits, field = "key"): string | undefined {
  if (bytes === 0) return `${field} must not be empty`;
  if (bytes > limits.maxKeyBytes) {
    return `${field} is ${bytes} bytes long; the limit is ${limits.maxKeyBytes} bytes (server setting --max-key-bytes)`;
  }
  return undefined;
}

/** Checks the keys of a Watch and returns them without duplicates, or the problem. */
export function checkWatchKeys(
  keys: readonly string[],
  limits: RequestLimits,
): { keys: string[] } | { problem: string } {
  if (keys.length === 0) return { problem: "keys must name at least one key to watch" };
  const distinct = [...new Set(keys)];
  if (distinct.length > limits.maxWatchKeys) {
    return {
      problem: `keys names ${distinct.length} distinct keys; the limit is ${limits.maxWatchKeys} per Watch (server setting --max-watch-keys)`,
    };
  }
  for (const [index, key] of keys.entries()) {
    const problem = keyProblem(key, limits, `keys[${index}]`);
    if (problem) return { problem };
  }
  return { keys: distinct };
}
