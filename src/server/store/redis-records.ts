/**
 * The records of the Redis store: Get, Bump and Clear are one Lua script each
 * (redis-scripts.ts), which also publishes the change; reads are plain GET and MGET. Commands
 * go through the feed's connections (redis-feed.ts), which fail fast while the store is not
 * ready (no offline queue, no retries of in-flight commands, a command timeout), so a caller
 * never hangs on a Redis that is down.
 */
import { decodeRecord, TOMBSTONE_MARGIN_MS } from "./generation-scheme.js";
import { type GenerationRecords, type KeyState, StoreUnavailableError } from "./generation-store.js";
import type { Connection, RedisCommandPath } from "./redis-feed.js";
import type { RedisKeys } from "./redis-keys.js";
import { WRITE_SCRIPT } from "./redis-scripts.js";

/**
 * Writes succeed only once `count` replicas acknowledge them (WAIT) within `timeoutMs`: a Bump
 * the caller was told of then survives a failover. One server or Sentinel only.
 */
export interface WaitForReplicas {
  count: number;
  timeoutMs: number;
}

type WriteMode = "get" | "bump" | "clear";

/** The command defineCommand adds; ioredis cannot type custom commands itself. */
type WithWriteScript = Connection & {
  syncgenWrite(
    recordKey: string,
    mode: WriteMode,
    channel: string,
    tombstoneMarginMs: string,
    publish: "PUBLISH" | "SPUBLISH",
  ): Promise<string>;
};

/** The write script's tombstone margin argument. */
const TOMBSTONE_MARGIN_ARG = String(TOMBSTONE_MARGIN_MS);

/** GenerationRecords on Redis, through a feed's connections. */
export class RedisRecords implements GenerationRecords {
  readonly #feed: RedisCommandPath;
  readonly #keys: RedisKeys;
  readonly #writes: WithWriteScript;
  readonly #waitForReplicas: WaitForReplicas | undefined;
  /** The WAIT in flight on the write connection, and the one writes that replied since share. */
  #waitInFlight: Promise<number> | undefined;
  #waitNext: Promise<number> | undefined;

  constructor(feed: RedisCommandPath, keys: RedisKeys, waitForReplicas: WaitForReplicas | undefined) {
    this.#feed = feed;
    this.#keys = keys;
    this.#waitForReplicas = waitForReplicas;
    this.#writes = feed.writes as WithWriteScript;
    this.#writes.defineCommand("syncgenWrite", { numberOfKeys: 1, lua: WRITE_SCRIPT });
  }

  async get(key: string): Promise<bigint> {
    this.#feed.ensureReady();
    // Most keys exist: a plain GET is cheaper here and in Redis than the script.
    const existing = decodeRecord(
      await this.#feed.call(() => this.#feed.commands.get(this.#keys.record(key))),
    ).generation;
    return existing > 0n ? existing : decodeRecord(await this.#write(key, "get")).generation;
  }

  bump(key: string): Promise<bigint> {
    return this.#write(key, "bump").then((record) => decodeRecord(record).generation);
  }

  async clear(key: string): Promise<void> {
    await this.#write(key, "clear");
  }

  async read(keys: readonly string[]): Promise<KeyState[]> {
    if (keys.length === 0) return [];
    this.#feed.ensureReady();
    const records = await this.#feed.call(() => this.#feed.mget(keys.map((key) => this.#keys.record(key))));
    return records.map((record) => decodeRecord(record));
  }

  async #write(key: string, mode: WriteMode): Promise<string> {
    this.#feed.ensureReady();
    const record = await this.#feed.call(() =>
      this.#writes.syncgenWrite(
        this.#keys.record(key),
        mode,
        this.#keys.channel(key),
        TOMBSTONE_MARGIN_ARG,
        this.#feed.publish,
      ),
    );
    const wait = this.#waitForReplicas;
    if (wait) {
      const acknowledged = await this.#replicated(wait);
      if (acknowledged < wait.count) {
        throw new StoreUnavailableError(
          `the write reached ${acknowledged} of ${wait.count} Redis replicas within ${wait.timeoutMs} ms (--redis-wait-replicas), so a failover could lose it; it may or may not have happened`,
        );
      }
    }
    return record;
  }

  /**
   * How many replicas have every write that replied so far. A WAIT covers all the writes its
   * connection made before it, and blocks the connection while it waits, so one runs at a
   * time: a write that replied while one was in flight shares the next.
   */
  #replicated(wait: WaitForReplicas): Promise<number> {
    if (this.#waitInFlight === undefined) return this.#startWait(wait);
    this.#waitNext ??= this.#waitInFlight
      .then(
        () => {},
        () => {},
      )
      .then(() => {
        this.#waitNext = undefined;
        return this.#startWait(wait);
      });
    return this.#waitNext;
  }

  #startWait(wait: WaitForReplicas): Promise<number> {
    const started: Promise<number> = this.#feed
      .call(() => this.#writes.wait(wait.count, wait.timeoutMs))
      .finally(() => {
        if (this.#waitInFlight === started) this.#waitInFlight = undefined;
      });
    this.#waitInFlight = started;
    return started;
  }
}
