/**
 * Logging that cannot flood: at most one line per subject (a key and what was done to it)
 * per interval. When the service is down every check of every key fails; djblets logs a
 * traceback each time, we log once. Per action too, so a failed check cannot hide a failed
 * write of the same key.
 */

/** Where the synchronizer reports errors it swallows. `console` fits. */
export interface SyncLogger {
  warn(message: string): void;
}

/** Remembers when each key last logged. */
export class RateLimitedLog {
  readonly #logger: SyncLogger;
  readonly #intervalMs: number;
  readonly #last = new Map<string, number>();

  constructor(logger: SyncLogger, intervalMs: number) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  /** Logs `message` for `key` (a subject) unless it logged within the interval. */
  warn(key: string, message: string): void {
    const now = Date.now();
    const last = this.#last.get(key);
    if (last !== undefined && now - last < this.#intervalMs) return;
    this.#last.set(key, now);
    // Forget keys that have been quiet for an interval, so the map stays small.
    if (this.#last.size > 1000) {
      for (const [k, t] of this.#last) if (now - t >= this.#intervalMs) this.#last.delete(k);
    }
    this.#logger.warn(message);
  }
}
