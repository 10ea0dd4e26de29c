/**
 * Exponential backoff with full jitter: the n-th wait is uniform in [0, min(max, initial·2^n)].
 * Full jitter spreads a crowd of clients that lost the same server, so they do not all come
 * back at the same instant (the reconnect storms users of etcd and Consul report).
 */

/** Backoff settings, in milliseconds. */
export interface BackoffOptions {
  /** The cap of the first wait (default 100). */
  initialMs?: number;
  /** The largest cap (default 5000). */
  maxMs?: number;
}

/** Counts attempts and says how long to wait before the next. */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#initialMs = options.initialMs ?? 100;
    this.#maxMs = options.maxMs ?? 5000;
  }

  /** The settings in force, defaults filled in. */
  get options(): Required<BackoffOptions> {
    return { initialMs: this.#initialMs, maxMs: this.#maxMs };
  }

  /** The wait before the next attempt; each call raises the cap. */
  next(): number {
    const cap = Math.min(this.#maxMs, this.#initialMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.random() * cap;
  }

  /** After a success: start again from the smallest wait. */
  reset(): void {
    this.#attempt = 0;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
