/**
 * The `syncgen` command's exit codes, stable for scripts: 0 on success; 2 for a usage error (a
 * bad or missing flag, argument or setting); 64 plus the gRPC status code when a call fails,
 * as grpcurl exits (so 67 INVALID_ARGUMENT, 71 PERMISSION_DENIED, 78 UNAVAILABLE,
 * 80 UNAUTHENTICATED); 1 for anything else.
 */
import type { Code } from "../client/index.js";

/** A bad flag or setting. */
export const USAGE_ERROR = 2;

/** The exit code of a call that failed with `code`. */
export function exitCodeOf(code: Code): number {
  return 64 + code;
}
