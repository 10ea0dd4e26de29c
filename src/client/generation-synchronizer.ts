/**
 * djblets' GenerationSynchronizer on syncgen: a process remembers the generation of a cache
 * key it loaded its state at (`syncGen`) and asks whether it is still current.
 *
 * Behaviour matches djblets (djblets.cache.synchronizer, and what its own tests assert) case for case:
 * creating fetches or creates the generation; `isExpired()` reads without creating and is
 * true when the shared value differs or is absent; `refresh()` adopts; `clear()` deletes
 * without touching `syncGen`; `markUpdated()` bumps and adopts. Service errors are logged
 * (at most once per key and action per interval), passed to `onError`, and never thrown;
 * `isExpired()` then answers true, fail-safe, after one short attempt so a check never
 * blocks its caller for long. `update()` is the exception: when its bump fails after the
 * write, readers were not told, and the caller must know.
 *
 * In watch mode the client's shared Watch stream keeps the shared value in memory: while it
 * is live `isExpired()` makes no call at all, and `onExpired()` tells of a change within
 * milliseconds. While it is down, checks fall back to a call.
 */
import { Code, GenerationServiceError } from "../rpc/generation-service-error.js";
import { type CacheKeyOptions, makeCacheKey } from "./cache-key.js";
import type { GenerationClient } from "./generation-client.js";
import { RateLimitedLog, type SyncLogger } from "./rate-limited-log.js";
import { SharedWatch } from "./shared-watch.js";

/** Options of a synchronizer. */
export interface SynchronizerOptions {
  /** Pass the key through makeCacheKey (default true); when false the key must be a string. */
  normalizeCacheKey?: boolean;
  /** makeCacheKey's options: a prefix (djblets' site domain) and HMAC mode. */
  cacheKey?: CacheKeyOptions;
  /** Keep current from the client's shared Watch stream instead of a call per check (default false). */
  watch?: boolean;
  /** Where swallowed errors go (default console). */
  logger?: SyncLogger;
  /** At most one log line per key and action per this many milliseconds (default 60000; the first synchronizer of a logger sets it). */
  logIntervalMs?: number;
  /**
   * Called with every service error a synchronizer swallows (each one, unlike the log), and
   * what it was doing: for metrics, or to act on a failed invalidation (`markUpdated`).
   */
  onError?: (error: GenerationServiceError, action: SyncAction) => void;
  /** Deadline of the single call a check makes when it must ask the server (default 500 ms). */
  checkDeadlineMs?: number;
}

/** Synchronizer calls never retry: when the service is down they fail at once and fail safe. */
const ONE_ATTEMPT = { retry: false } as const;

/** One Watch stream per client, shared by all its synchronizers in watch mode. */
const watchByClient = new WeakMap<GenerationClient, SharedWatch>();
/** One limiter per logger, so "once per key per interval" holds across synchronizers. */
const logByLogger = new WeakMap<SyncLogger, RateLimitedLog>();

/** Called when the shared generation moves away from `syncGen`. */
export type ExpiredListener = (generation: bigint) => void;

/** What a synchronizer was doing when a service error was swallowed. */
export type SyncAction = "checking" | "refreshing" | "clearing" | "marking as updated" | "loading" | "watching";

/** Knows whether this process's copy of the state behind one cache key is current. */
export class GenerationSynchronizer {
  /** The final cache key (after normalisation). */
  readonly cacheKey: string;
  readonly #client: GenerationClient;
  readonly #log: RateLimitedLog;
  readonly #onError: SynchronizerOptions["onError"];
  readonly #checkDeadlineMs: number;
  readonly #watch: SharedWatch | undefined;
  readonly #expiredListeners = new Set<ExpiredListener>();
  #leave: (() => void) | undefined;
  #syncGen: bigint | null = null;

  private constructor(client: GenerationClient, cacheKey: string, options: SynchronizerOptions) {
    this.cacheKey = cacheKey;
    this.#client = client;
    this.#checkDeadlineMs = options.checkDeadlineMs ?? 500;
    const logger = options.logger ?? console;
    let log = logByLogger.get(logger);
    if (log === undefined) {
      log = new RateLimitedLog(logger, options.logIntervalMs ?? 60_000);
      logByLogger.set(logger, log);
    }
    this.#log = log;
    this.#onError = options.onError;
    if (options.watch) {
      let watch = watchByClient.get(client);
      if (watch === undefined) {
        watch = new SharedWatch(client);
        watchByClient.set(client, watch);
      }
      this.#watch = watch;
      this.#leave = this.#watch.join(cacheKey, {
        changed: (generation) => {
          if (generation !== this.#syncGen) for (const listener of [...this.#expiredListeners]) listener(generation);
        },
        failed: (error) => this.#warn("watching", error),
      });
    }
  }

  /**
   * Creates a synchronizer and fetches (or creates) the key's current generation. Never
   * throws for service errors (they are logged and `syncGen` stays null); throws TypeError
   * at once, before any call, for a non-string key when normalisation is off.
   */
  static async create(
    client: GenerationClient,
    cacheKey: string | readonly string[],
    options: SynchronizerOptions = {},
  ): Promise<GenerationSynchronizer> {
    let key: string;
    if (options.normalizeCacheKey ?? true) {
      key = makeCacheKey(cacheKey, options.cacheKey);
    } else if (typeof cacheKey === "string") {
      key = cacheKey;
    } else {
      throw new TypeError("cacheKey must be a string when normalizeCacheKey is false");
    }
    const synchronizer = new GenerationSynchronizer(client, key, options);
    await synchronizer.refresh();
    return synchronizer;
  }

  /**
   * Watch mode: whether the shared stream is live and covers this key, so `isExpired()`
   * answers from memory. False in poll mode.
   */
  get live(): boolean {
    return this.#watch?.current(this.cacheKey) !== undefined;
  }

  /** The generation this instance last fetched or set; null when none could be read. */
  get syncGen(): bigint | null {
    return this.#syncGen;
  }

  /**
   * Whether the shared generation differs from `syncGen` (or is absent). Never creates the
   * key. In watch mode with a live stream: no call at all. On a service error: true.
   */
  async isExpired(): Promise<boolean> {
    const watched = this.#watch?.current(this.cacheKey);
    if (watched !== undefined) return watched === 0n || watched !== this.#syncGen;
    try {
      const current = await this.#client.get(this.cacheKey, {
        peek: true,
        retry: false,
        deadlineMs: this.#checkDeadlineMs,
      });
      return current === 0n || current !== this.#syncGen;
    } catch (error) {
      this.#warn("checking", error);
      return true;
    }
  }

  /** Adopts the shared generation, creating one if the key is absent. */
  async refresh(): Promise<void> {
    try {
      this.#adopt(await this.#client.get(this.cacheKey, ONE_ATTEMPT));
    } catch (error) {
      this.#warn("refreshing", error);
    }
  }

  /** Deletes the shared generation; everyone, this instance included, now reads as expired. */
  async clear(): Promise<void> {
    try {
      await this.#client.clear(this.cacheKey, ONE_ATTEMPT);
      // This instance reads as expired at once, not only when its stream reports the clear.
      this.#watch?.observe(this.cacheKey, 0n);
    } catch (error) {
      this.#warn("clearing", error);
    }
  }

  /** Bumps the shared generation and adopts the result, so this writer stays current. */
  async markUpdated(): Promise<void> {
    try {
      this.#adopt(await this.#client.bump(this.cacheKey));
    } catch (error) {
      this.#warn("marking as updated", error);
    }
  }

  /**
   * Writes, then bumps: `write` changes the shared state, and only afterwards do others learn
   * it changed. (Bumping first would let a reader reload the old state and think it current.)
   * Rejects when the bump fails: the state was written, but no reader was told, so they keep
   * the old copy until the next bump; the caller must retry `markUpdated()` or otherwise act.
   */
  async update<T>(write: () => Promise<T>): Promise<T> {
    const result = await write();
    try {
      this.#adopt(await this.#client.bump(this.cacheKey));
    } catch (error) {
      const failure = GenerationServiceError.from(error);
      // The failure's own message starts with its code, which leads this one already.
      const why = failure.message.replace(`${Code[failure.code]}: `, "");
      throw new GenerationServiceError(
        `${Code[failure.code]}: the data was written, but bumping the generation of cache key "${this.cacheKey}" failed, so readers were not told: ${why}`,
        failure.code,
        { cause: error },
      );
    }
    return result;
  }

  /**
   * Notes the generation, then loads: `read` loads the shared state, and the generation it
   * is recorded at was read before it. (Reading it after would let a change made during the
   * load go unnoticed; this way such a change only causes one extra reload.)
   */
  async load<T>(read: () => Promise<T>): Promise<T> {
    let generation: bigint | null = null;
    try {
      generation = await this.#client.get(this.cacheKey, ONE_ATTEMPT);
    } catch (error) {
      this.#warn("loading", error);
    }
    const result = await read();
    if (generation === null) this.#syncGen = null;
    else this.#adopt(generation);
    return result;
  }

  /**
   * Watch mode only: calls `listener` whenever the shared generation moves away from
   * `syncGen`. Returns the function that stops it.
   */
  onExpired(listener: ExpiredListener): () => void {
    if (this.#watch === undefined) throw new Error("onExpired needs a synchronizer created with { watch: true }");
    this.#expiredListeners.add(listener);
    return () => this.#expiredListeners.delete(listener);
  }

  /** Stops watching (watch mode); the synchronizer then checks by calls. */
  close(): void {
    this.#leave?.();
    this.#leave = undefined;
    this.#expiredListeners.clear();
  }

  #adopt(generation: bigint): void {
    this.#syncGen = generation;
    this.#watch?.observe(this.cacheKey, generation);
  }

  #warn(action: SyncAction, error: unknown): void {
    const failure = GenerationServiceError.from(error);
    this.#log.warn(
      `${action} ${this.cacheKey}`,
      `syncgen: ${action} generation of cache key "${this.cacheKey}" failed: ${failure.message}`,
    );
    try {
      this.#onError?.(failure, action);
    } catch (hookError) {
      // The synchronizer never throws for service errors, not even through its hook.
      this.#log.warn(`onError ${this.cacheKey}`, `syncgen: onError threw: ${String(hookError)}`);
    }
  }
}
