/**
 * A Watch whose reader stops pulling after the first response, so the server's writes back
 * up (grpc-js reads on demand, HTTP/2 flow control does the rest) — a slow consumer.
 */
import type { GenerationClient } from "../../src/client/index.js";
import { withDeadline } from "./deadline.js";

export function pausedWatch(client: GenerationClient, keys: string[]) {
  const iterator = client.watch(keys)[Symbol.asyncIterator]();
  const seen = new Map<string, bigint>();
  let reading = false;
  const paused = iterator.next().then((first) => {
    if (first.done) throw new Error("watch ended before its first response");
    if (first.value.type !== "live") throw new Error(`expected the live event, got ${first.value.type}`);
    for (const change of first.value.changes) seen.set(change.key, change.generation);
  });
  const waiters = new Set<() => void>();
  return {
    paused,
    stream: {
      /** Reads everything from now on. */
      resume(): void {
        if (reading) return;
        reading = true;
        void (async () => {
          for (;;) {
            const next = await iterator.next();
            if (next.done) return;
            if (next.value.type === "changes") {
              for (const change of next.value.changes) seen.set(change.key, change.generation);
            }
            for (const waiter of waiters) waiter();
          }
        })().catch(() => {});
      },
      cancel(): void {
        void iterator.return?.();
      },
    },
    /** Resolves once `key` has been read at `generation`. */
    latest(key: string, generation: bigint): Promise<void> {
      return withDeadline(
        new Promise<void>((resolve) => {
          const check = (): void => {
            if (seen.get(key) === generation) {
              waiters.delete(check);
              resolve();
            }
          };
          waiters.add(check);
          check();
        }),
        10_000,
        `${key} at ${generation}`,
      );
    },
  };
}
