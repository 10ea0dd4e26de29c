/**
 * A Watch whose reader stops pulling after the first response, so the server's writes back
 * up (grpc-js reads on demand, HTTP/2 flow control does the rest) — a slow consumer.
 */
import type { GenerationClient } from "../../src/client/index.js";
import { Condition } from "./deadline.js";

export function pausedWatch(client: Pick<GenerationClient, "watch">, keys: string[]) {
  const abort = new AbortController();
  const iterator = client.watch(keys, { signal: abort.signal, resume: false })[Symbol.asyncIterator]();
  const seen = new Map<string, bigint>();
  const read = new Condition();
  let reading: Promise<void> | undefined;
  const record = (changes: { key: string; generation: bigint }[]): void => {
    for (const change of changes) seen.set(change.key, change.generation);
    read.notify();
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
    async sees(key: string, generation: bigint): Promise<void> {
      await read.until(() => seen.get(key) === generation || undefined, 10_000, `${key.slice(0, 40)} at ${generation}`);
    },
    /** Cancels the stream and waits for the reader to stop. */
    async close(): Promise<void> {
      abort.abort();
      await reading;
    },
  };
}
