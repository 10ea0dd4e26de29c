/** Waiting on a watch-mode GenerationSynchronizer: its events, never a sleep. */
import type { GenerationSynchronizer } from "../../src/client/index.js";
import { withDeadline } from "./deadline.js";

/** Resolves with the generation of the synchronizer's next onExpired; rejects at the deadline. */
export function nextExpiry(sync: GenerationSynchronizer, ms = 5000): Promise<bigint> {
  let stop: (() => void) | undefined;
  return withDeadline(
    new Promise<bigint>((resolve) => {
      stop = sync.onExpired(resolve);
    }),
    ms,
    `onExpired of ${sync.cacheKey}`,
  ).finally(() => stop?.());
}
