/**
 * A Watch whose reader stops pulling after the first response, so the server's writes back
 * up (grpc-js reads on demand, HTTP/2 flow control does the rest) — a slow consumer.
 */
import type { GenerationClient } from "../../src/client/index.js";
import { withDeadline } from "./deadline.js";

export function pausedWatch(client: GenerationClient, keys: string[]) {
  const abort = new AbortController();
  const iterator = client.watch(keys, { signal: abort.signal, resume: false })[Symbol.asyncIterator]();
  const seen = new Map<string, bigint>();
  const waiters = new Set<() => void>();
  let reading: Promise<void> | undefined;
  const record = (changes: { key: string; generation: bigint }[]): void => {
    for (const change of changes) seen.set(change.key, change.generation);
    for (const waiter of [...waiters]) waiter();
  };
  const live = iterator.next().then((first) => {
    if (first.done || first.value.type !== "live") throw new Error("expected the watch's live event first");
    record(first.value.changes);
  });
  return {
    /** Resolves once the first response has been read. */
    live,
    /** Reads everything from now on. */
    resume(): void {
      reading ??= (async () => {
        for (;;) {
          const next = await iterator.next();
          if (next.done) return;
          if (next.value.type === "changes") record(next.value.changes);
        }
      })();
    },
    /** Resolves once `key` has been read at `generation`. */
    sees(key: string, generation: bigint): Promise<void> {
      let check: (() => void) | undefined;
      return withDeadline(
        new Promise<void>((resolve) => {
          check = () => seen.get(key) === generation && resolve();
          waiters.add(check);
          check();
        }),
        10_000,
        `${key.slice(0, 40)} at ${generation}`,
      ).finally(() => check && waiters.delete(check));
    },
    /** Cancels the stream and waits for the reader to stop. */
    async close(): Promise<void> {
      abort.abort();
      await reading;
    },
  };
}
