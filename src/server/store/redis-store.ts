/**
 * The Redis store: many replicas share one Redis (one server, a Sentinel-managed master, or
 * a Cluster; see redis-connections.ts). Writes are one Lua script each (redis-scripts.ts);
 * changes travel over pub/sub, one channel per key, and this process holds one subscription
 * per key however many watchers it has.
 *
 * The store is `ready` only while every connection is; calls fail fast with
 * StoreUnavailableError otherwise (no offline queue, no retries of in-flight commands, a
 * command timeout), so a caller never hangs on a Redis that is down. After a reconnect, or
 * after a Cluster's slots changed hands, the subscriptions are renewed and the store emits
 * `resync`, because messages published in between are lost.
 */
import { EventEmitter } from "node:events";
import type { RedisOptions } from "ioredis";
import { decodeRecord, TOMBSTONE_MARGIN_MS } from "./generation-scheme.js";
import {
  type GenerationStore,
  type KeyState,
  type StoreEvents,
  type StoreState,
  StoreUnavailableError,
} from "./generation-store.js";
import {
  type Connection,
  describeTarget,
  openRedis,
  type RedisConnections,
  type RedisTarget,
} from "./redis-connections.js";
import { RedisKeys } from "./redis-keys.js";
import { WRITE_SCRIPT } from "./redis-scripts.js";

/** Options of the Redis store. */
export interface RedisStoreOptions {
  /** Which Redis, and how to reach it. */
  target: RedisTarget;
  /** Prepended to every Redis key and channel, so deployments can share one Redis. */
  prefix: string;
  /**
   * A command without a reply after this long fails with UNAVAILABLE, and the connection is
   * treated as broken (a hung Redis keeps its TCP connections open, so nothing else notices).
   */
  commandTimeoutMs: number;
  /**
   * Writes succeed only once `count` replicas acknowledge them (WAIT) within `timeoutMs`:
   * a Bump the caller was told of then survives a failover. One server or Sentinel only.
   */
  waitForReplicas?: { count: number; timeoutMs: number };
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

/** Longest pause between reconnect attempts: Redis back means service back within about a second. */
const MAX_RECONNECT_DELAY_MS = 1000;
/** The write script's tombstone margin argument. */
const TOMBSTONE_MARGIN_ARG = String(TOMBSTONE_MARGIN_MS);
/** Bounds of the pause before renewing a Cluster's subscriptions again after a failure. */
const FEED_RETRY_MS = { initial: 100, max: 2000 };
/** How often an idle store checks that Redis still answers. */
const PING_INTERVAL_MS = 1000;

/** The transitions generation-store.ts documents; anything else is a bug. */
const TRANSITIONS: Record<StoreState, readonly StoreState[]> = {
  connecting: ["ready", "unavailable", "closed"],
  ready: ["unavailable", "closed"],
  unavailable: ["ready", "closed"],
  closed: [],
};

/** A GenerationStore on Redis: one server, Sentinel, or Cluster. */
export class RedisStore extends EventEmitter<StoreEvents> implements GenerationStore {
  readonly description: string;
  #state: StoreState = "connecting";
  readonly #redis: RedisConnections;
  readonly #commands: Connection;
  readonly #writes: WithWriteScript;
  readonly #keys: RedisKeys;
  readonly #commandTimeoutMs: number;
  readonly #waitForReplicas: RedisStoreOptions["waitForReplicas"];
  /** The WAIT in flight on the write connection, and the one writes that replied since share. */
  #waitInFlight: Promise<number> | undefined;
  #waitNext: Promise<number> | undefined;
  /** The key of each channel this process is subscribed to (or will resubscribe to after a reconnect). */
  readonly #channels = new Map<string, string>();
  readonly #pinger: NodeJS.Timeout;
  /** Counts restore attempts, so a stale one (the connection dropped again) gives up. */
  #restoreAttempt = 0;
  /** A pending retry of renewing the subscriptions (Cluster), and the pause before the next. */
  #feedRetry: NodeJS.Timeout | undefined;
  #feedRetryMs = FEED_RETRY_MS.initial;
  #lastError = "";

  constructor(options: RedisStoreOptions) {
    super();
    this.description = describeTarget(options.target);
    this.#keys = new RedisKeys(options.prefix);
    this.#commandTimeoutMs = options.commandTimeoutMs;
    this.#waitForReplicas = options.waitForReplicas;
    const redisOptions: RedisOptions = {
      lazyConnect: true,
      // Fail fast while disconnected: a queued command would hang until the caller's deadline.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs,
      autoResubscribe: false,
      enableAutoPipelining: true,
      // Full jitter, capped low.
      retryStrategy: (attempt) => Math.round(Math.random() * Math.min(MAX_RECONNECT_DELAY_MS, 50 * 2 ** attempt)),
    };
    this.#redis = openRedis(options.target, redisOptions, options.waitForReplicas !== undefined);
    this.#commands = this.#redis.commands;
    this.#writes = this.#redis.writes as WithWriteScript;
    this.#writes.defineCommand("syncgenWrite", { numberOfKeys: 1, lua: WRITE_SCRIPT });
    this.#redis.onMessage((channel, message) => this.#onMessage(channel, message));
    this.#redis.onResubscribed(() => void this.#renewSubscriptions());
    for (const [name, connection] of this.#redis.connections) {
      connection.on("error", (error: Error) => {
        this.#lastError = `${name} connection: ${error.message}`;
      });
      connection.on("ready", () => this.#onReady(`${name} connection ready`));
      connection.on("close", () => this.#onClose(`${name} connection closed`));
      // ioredis gives up on a connection in some races (its Sentinel failover detector
      // disconnecting one that is still connecting ends it for good): start it again.
      connection.on("end", () => {
        if (this.#state === "closed") return;
        this.#onClose(`${name} connection ended`);
        setTimeout(() => {
          if (this.#state !== "closed") connection.connect().catch(() => {});
        }, MAX_RECONNECT_DELAY_MS * Math.random()).unref();
      });
    }
    this.#pinger = setInterval(() => {
      if (this.#state === "ready") this.#call(this.#commands.ping()).catch(() => {});
    }, PING_INTERVAL_MS).unref();
  }

  get state(): StoreState {
    return this.#state;
  }

  /** Connects both connections; resolves once ready (retrying through failures), rejects if closed first. */
  async connect(): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => {
      const onState = (state: StoreState): void => {
        if (state === "unavailable") return;
        this.off("state", onState);
        if (state === "ready") resolve();
        else reject(new StoreUnavailableError("the store was closed while connecting"));
      };
      this.on("state", onState);
    });
    // A failed first attempt is not final: ioredis keeps retrying and `ready` follows.
    for (const [, connection] of this.#redis.connections) connection.connect().catch(() => {});
    return ready;
  }

  async get(key: string): Promise<bigint> {
    this.#ensureReady();
    // Most keys exist: a plain GET is cheaper here and in Redis than the script.
    const existing = decodeRecord(await this.#call(this.#commands.get(this.#keys.record(key)))).generation;
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
    this.#ensureReady();
    const records = await this.#call(this.#redis.mget(keys.map((key) => this.#keys.record(key))));
    return records.map((record) => decodeRecord(record));
  }

  async subscribe(keys: readonly string[]): Promise<void> {
    this.#ensureReady();
    const channels = keys.map((key) => this.#keys.channel(key));
    for (const [index, channel] of channels.entries()) this.#channels.set(channel, keys[index] as string);
    await this.#call(this.#redis.subscribe(channels));
  }

  async unsubscribe(keys: readonly string[]): Promise<void> {
    const channels = keys.map((key) => this.#keys.channel(key));
    for (const channel of channels) this.#channels.delete(channel);
    await this.#redis.unsubscribe(channels).catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#state === "closed") return;
    clearInterval(this.#pinger);
    clearTimeout(this.#feedRetry);
    this.#setState("closed", "store closed");
    this.#redis.disconnect();
  }

  async #write(key: string, mode: WriteMode): Promise<string> {
    this.#ensureReady();
    const record = await this.#call(
      this.#writes.syncgenWrite(
        this.#keys.record(key),
        mode,
        this.#keys.channel(key),
        TOMBSTONE_MARGIN_ARG,
        this.#redis.publish,
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
  #replicated(wait: { count: number; timeoutMs: number }): Promise<number> {
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

  #startWait(wait: { count: number; timeoutMs: number }): Promise<number> {
    const started: Promise<number> = this.#call(this.#writes.wait(wait.count, wait.timeoutMs)).finally(() => {
      if (this.#waitInFlight === started) this.#waitInFlight = undefined;
    });
    this.#waitInFlight = started;
    return started;
  }

  /** Every Redis failure (connection lost, timeout, READONLY, LOADING, OOM...) means "not now". */
  async #call<T>(command: Promise<T>): Promise<T> {
    try {
      return await command;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (message.includes("timed out")) await this.#checkHung(`commands connection: ${message}`);
      throw new StoreUnavailableError(`Redis did not serve the request: ${message}`, { cause: error });
    }
  }

  /**
   * A command timed out. If Redis has sent nothing on its connection for half a command
   * timeout (a reply to an earlier command may have come just after this one was sent), it hangs (a hung Redis keeps its sockets open, so nothing else notices): one
   * server or Sentinel, the store is unavailable now, before this caller hears of it (health
   * follows the state event synchronously). A Redis that is only slow (a large reply still
   * arriving), or a timer that fired late because this process was busy, is not hung: replies
   * already received are read first (one turn of the event loop) and count as signs of life.
   * A Cluster serves on (see dropHung).
   */
  async #checkHung(reason: string): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    this.#lastError = reason;
    if (!this.#redis.dropHung(this.#commandTimeoutMs / 2)) return;
    // A #restore in flight is stale: the connection it saw ready is gone.
    this.#restoreAttempt++;
    if (this.#state === "ready") this.#setState("unavailable", `Redis did not answer in time: ${reason}`);
  }

  #ensureReady(): void {
    if (this.#state === "ready") return;
    const why =
      this.#state === "closed" ? "the store is closed" : `Redis is unreachable (${this.#lastError || this.#state})`;
    throw new StoreUnavailableError(why);
  }

  /** Never throws: whatever is published on our channels, the process stays up. */
  #onMessage(channel: string, message: string): void {
    const key = this.#channels.get(channel);
    if (key === undefined) return;
    // A message that is not a record decodes as "absent, revision 0", which no watcher
    // takes over what it holds (see the hub's ordering).
    this.emit("change", key, decodeRecord(message));
  }

  /**
   * A Cluster's slots changed hands and ioredis moved the subscriptions: subscribe once
   * more and wait for it (so the renewal is surely in place), then have every watched key
   * read again, because a change published on the new owner before the move was lost.
   */
  async #renewSubscriptions(): Promise<void> {
    if (this.#state !== "ready" || this.#channels.size === 0) return;
    try {
      await this.#redis.renew([...this.#channels.keys()]);
    } catch (error) {
      if (this.#state === "ready") this.#feedFailed(error);
      return;
    }
    if (this.#state !== "ready") return;
    this.#feedRetryMs = FEED_RETRY_MS.initial;
    this.emit("resync");
  }

  /** Renewing subscriptions failed: the subscriber reconnects, or the renewal is retried later. */
  #feedFailed(error: unknown): "reconnect" | "retry" {
    this.#lastError = `resubscribe failed: ${error instanceof Error ? error.message : String(error)}`;
    const recovery = this.#redis.recoverFeed();
    if (recovery === "retry" && this.#feedRetry === undefined) {
      const delay = Math.random() * this.#feedRetryMs;
      this.#feedRetryMs = Math.min(this.#feedRetryMs * 2, FEED_RETRY_MS.max);
      this.#feedRetry = setTimeout(() => {
        this.#feedRetry = undefined;
        void this.#renewSubscriptions();
      }, delay).unref();
    }
    return recovery;
  }

  #onClose(reason: string): void {
    this.#restoreAttempt++;
    // While connecting, a closed connection means the attempt failed: say so once.
    if (this.#state === "ready" || this.#state === "connecting") {
      this.#setState("unavailable", `${reason}${this.#lastError ? `: ${this.#lastError}` : ""}`);
    }
  }

  #onReady(reason: string): void {
    if (this.#state === "closed" || this.#state === "ready") return;
    if (this.#redis.connections.every(([, connection]) => connection.status === "ready")) void this.#restore(reason);
  }

  /** Both connections are up: resubscribe, then declare the store ready and ask for a re-read. */
  async #restore(reason: string): Promise<void> {
    const attempt = ++this.#restoreAttempt;
    const wasConnecting = this.#state === "connecting";
    try {
      await this.#redis.renew([...this.#channels.keys()]);
    } catch (error) {
      if (attempt !== this.#restoreAttempt || this.#state === "closed") return;
      // One server: the subscriber reconnects and this runs again. A Cluster serves the
      // shards that answer, and renews the rest until they do (then re-reads).
      if (this.#feedFailed(error) === "reconnect") return;
    }
    if (attempt !== this.#restoreAttempt || this.#state === "closed") return;
    this.#lastError = "";
    this.#setState("ready", reason);
    if (!wasConnecting) this.emit("resync");
  }

  #setState(state: StoreState, reason: string): void {
    if (this.#state === state) return;
    if (!TRANSITIONS[this.#state].includes(state)) {
      throw new Error(`RedisStore: no transition from ${this.#state} to ${state}`);
    }
    this.#state = state;
    this.emit("state", state, reason);
  }
}
