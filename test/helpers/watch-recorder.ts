/**
 * Records a Watch stream: every response, the latest generation per key, and how it ended.
 * `until()` waits on responses (never on sleeps), with a deadline.
 */
import type { GenerationClient, GenerationServiceError, KeyGeneration, WatchEvent } from "../../src/client/index.js";
import { GenerationServiceError as ErrorType } from "../../src/client/index.js";
import type { Cleanups } from "./cleanups.js";
import { Condition } from "./deadline.js";

/** How recordWatch() watches. */
export interface WatchOptions {
  /** The generations the watcher already holds (the Watch's `known`). */
  known?: Record<string, bigint>;
  /** Reconnect after UNAVAILABLE (default false, to see the server's statuses). */
  resume?: boolean;
}

/** Watches `keys` through `client`, recording everything; the test's teardown closes it. */
export function recordWatch(
  cleanups: Cleanups,
  client: Pick<GenerationClient, "watch">,
  keys: readonly string[],
  options: WatchOptions = {},
): WatchRecorder {
  const recorder = new WatchRecorder(client, keys, options);
  cleanups.push(() => recorder.close());
  return recorder;
}

export class WatchRecorder {
  /** Every event the client's watch() yielded, in order. */
  readonly events: WatchEvent[] = [];
  /** Every response, in order: the first, then changes, and heartbeats as empty ones. */
  readonly responses: { changes: KeyGeneration[] }[] = [];
  /** Times the stream broke and was resumed (only with `resume`). */
  readonly downs: Extract<WatchEvent, { type: "down" }>[] = [];
  readonly latest = new Map<string, bigint>();
  error: GenerationServiceError | undefined;
  ended = false;
  readonly #abort = new AbortController();
  /** Notified of every event and of the end. */
  readonly #changed = new Condition();
  readonly done: Promise<void>;

  /** `resume` (default false here, to see the server's statuses) reconnects after UNAVAILABLE. */
  constructor(
    client: Pick<GenerationClient, "watch">,
    keys: readonly string[],
    { known, resume = false }: WatchOptions = {},
  ) {
    this.done = (async () => {
      try {
        const options = { signal: this.#abort.signal, resume, ...(known ? { known } : {}) };
        for await (const event of client.watch(keys, options)) {
          this.events.push(event);
          if (event.type === "down") {
            this.downs.push(event);
          } else {
            const changes = event.type === "heartbeat" ? [] : event.changes;
            this.responses.push({ changes });
            for (const change of changes) this.latest.set(change.key, change.generation);
          }
          this.#changed.notify();
        }
      } catch (error) {
        this.error = error instanceof ErrorType ? error : ErrorType.from(error);
      } finally {
        this.ended = true;
        this.#changed.notify();
      }
    })();
  }

  /** Resolves once `predicate` holds (checked after every response); rejects if the watch ends first, or at the deadline. */
  until(predicate: (recorder: this) => boolean, what: string, ms = 5000): Promise<void> {
    return this.#changed
      .until(
        () => {
          if (predicate(this)) return true;
          if (this.ended) throw new Error(`watch ended (${this.error?.message ?? "no error"}) before ${what}`);
          return undefined;
        },
        ms,
        () => `${what}; latest: ${JSON.stringify([...this.latest].map(([k, v]) => [k, String(v)]))}`,
      )
      .then(() => {});
  }

  /** Waits for the first response (the watch is live). */
  live(ms = 5000): Promise<void> {
    return this.until((r) => r.responses.length > 0, "the first response", ms);
  }

  /** Waits until `key` has been reported at `generation`. */
  sees(key: string, generation: bigint, ms = 5000): Promise<void> {
    return this.until((r) => r.latest.get(key) === generation, `${key} at ${generation}`, ms);
  }

  /** Cancels the stream and waits for it to end. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.done;
  }
}
