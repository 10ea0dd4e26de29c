/**
 * The Redis store: many replicas share one Redis. Writes are one Lua script each
 * (redis-scripts.ts); changes travel over Redis pub/sub, one channel per key, and this
 * process holds one subscription per key however many watchers it has.
 *
 * Two connections: commands, and a dedicated subscriber. The store is `ready` only while
 * both are; calls fail fast with StoreUnavailableError otherwise (no offline queue, no
 * retries of in-flight commands, a command timeout), so a caller never hangs on a Redis that
 * is down. After a reconnect the subscriber resubscribes every channel and the store emits
 * `resync`, because messages published while it was away are lost.
 */
import { EventEmitter } from "node:events";
import { Redis, type RedisOptions } from "ioredis";
import { decodeRecord, TOMBSTONE_MARGIN_MS } from "./generation-scheme.js";
import {
  type GenerationStore,
  type KeyState,
  type StoreEvents,
  type StoreState,
  StoreUnavailableError,
} from "./generation-store.js";
import { WRITE_SCRIPT } from "./redis-scripts.js";

/** Options of the Redis store. */
export interface RedisStoreOptions {
  /** A redis:// or rediss:// URL. */
  url: string;
  /** Prepended to every Redis key and channel, so deployments can share one Redis. */
  prefix: string;
  /**
   * A command without a reply after this long fails with UNAVAILABLE, and the connection is
   * treated as broken (a hung Redis keeps its TCP connections open, so nothing else notices).
   */
  commandTimeoutMs: number;
}

type WriteMode = "get" | "bump" | "clear";

/** The command defineCommand adds; ioredis cannot type custom commands itself. */
interface RedisWithScripts extends Redis {
  syncgenWrite(recordKey: string, mode: WriteMode, channel: string, tombstoneMarginMs: string): Promise<string>;
}

/** Longest pause between reconnect attempts: Redis back means service back within about a second. */
const MAX_RECONNECT_DELAY_MS = 1000;
/** The write script's tombstone margin argument. */
const TOMBSTONE_MARGIN_ARG = String(TOMBSTONE_MARGIN_MS);
/** How often an idle store checks that Redis still answers. */
const PING_INTERVAL_MS = 1000;

/** The transitions generation-store.ts documents; anything else is a bug. */
const TRANSITIONS: Record<StoreState, readonly StoreState[]> = {
  connecting: ["ready", "unavailable", "closed"],
  ready: ["unavailable", "closed"],
  unavailable: ["ready", "closed"],
  closed: [],
};

/** A GenerationStore on one Redis server (or anything that speaks to ioredis as one). */
export class RedisStore extends EventEmitter<StoreEvents> implements GenerationStore {
  readonly description: string;
  #state: StoreState = "connecting";
  readonly #commands: RedisWithScripts;
  readonly #subscriber: Redis;
  readonly #recordPrefix: string;
  readonly #channelPrefix: string;
  /** Channels this process is subscribed to (or will resubscribe to after a reconnect). */
  readonly #channels = new Set<string>();
  readonly #pinger: NodeJS.Timeout;
  /** Counts restore attempts, so a stale one (the connection dropped again) gives up. */
  #restoreAttempt = 0;
  #lastError = "";

  constructor(options: RedisStoreOptions) {
    super();
    const url = new URL(options.url);
    this.description = `redis ${url.host}`;
    this.#recordPrefix = `${options.prefix}gen:`;
    this.#channelPrefix = `${options.prefix}chg:`;
    const redisOptions: RedisOptions = {
      lazyConnect: true,
      // Fail fast while disconnected: a queued command would hang until the caller's deadline.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs,
      autoResubscribe: false,
      // Full jitter, capped low.
      retryStrategy: (attempt) => Math.round(Math.random() * Math.min(MAX_RECONNECT_DELAY_MS, 50 * 2 ** attempt)),
    };
    this.#commands = new Redis(options.url, {
      ...redisOptions,
      connectionName: "syncgen",
      enableAutoPipelining: true,
    }) as RedisWithScripts;
    this.#commands.defineCommand("syncgenWrite", { numberOfKeys: 1, lua: WRITE_SCRIPT });
    this.#subscriber = new Redis(options.url, { ...redisOptions, connectionName: "syncgen-subscriber" });
    this.#subscriber.on("message", (channel: string, message: string) => this.#onMessage(channel, message));
    for (const [name, connection] of [
      ["commands", this.#commands],
      ["subscriber", this.#subscriber],
    ] as const) {
      connection.on("error", (error: Error) => {
        this.#lastError = `${name} connection: ${error.message}`;
      });
      connection.on("ready", () => this.#onReady(`${name} connection ready`));
      connection.on("close", () => this.#onClose(`${name} connection closed`));
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
    this.#commands.connect().catch(() => {});
    this.#subscriber.connect().catch(() => {});
    return ready;
  }

  async get(key: string): Promise<bigint> {
    this.#ensureReady();
    // Most keys exist: a plain GET is cheaper here and in Redis than the script.
    const existing = decodeRecord(await this.#call(this.#commands.get(this.#recordPrefix + key))).generation;
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
    const records = await this.#call(this.#commands.mget(keys.map((key) => this.#recordPrefix + key)));
    return records.map((record) => decodeRecord(record));
  }

  async subscribe(keys: readonly string[]): Promise<void> {
    this.#ensureReady();
    const channels = keys.map((key) => this.#channelPrefix + key);
    for (const channel of channels) this.#channels.add(channel);
    await this.#call(this.#subscriber.subscribe(...channels));
  }

  async unsubscribe(keys: readonly string[]): Promise<void> {
    const channels = keys.map((key) => this.#channelPrefix + key);
    for (const channel of channels) this.#channels.delete(channel);
    // While disconnected there is nothing to undo: a reconnect subscribes only #channels.
    if (this.#subscriber.status === "ready" && channels.length > 0) {
      await this.#subscriber.unsubscribe(...channels).catch(() => {});
    }
  }

  async close(): Promise<void> {
    if (this.#state === "closed") return;
    clearInterval(this.#pinger);
    this.#setState("closed", "store closed");
    this.#commands.disconnect();
    this.#subscriber.disconnect();
  }

  #write(key: string, mode: WriteMode): Promise<string> {
    this.#ensureReady();
    return this.#call(
      this.#commands.syncgenWrite(this.#recordPrefix + key, mode, this.#channelPrefix + key, TOMBSTONE_MARGIN_ARG),
    );
  }

  /** Every Redis failure (connection lost, timeout, READONLY, LOADING, OOM...) means "not now". */
  async #call<T>(command: Promise<T>): Promise<T> {
    try {
      return await command;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (message.includes("timed out") && this.#commands.status === "ready") {
        // A hung Redis keeps the socket open: drop it, so the store (and health) say so.
        this.#lastError = `commands connection: ${message}`;
        this.#commands.disconnect(true);
      }
      throw new StoreUnavailableError(`Redis did not serve the request: ${message}`, { cause: error });
    }
  }

  #ensureReady(): void {
    if (this.#state === "ready") return;
    const why =
      this.#state === "closed" ? "the store is closed" : `Redis is unreachable (${this.#lastError || this.#state})`;
    throw new StoreUnavailableError(why);
  }

  /** Never throws: whatever is published on our channels, the process stays up. */
  #onMessage(channel: string, message: string): void {
    if (!channel.startsWith(this.#channelPrefix)) return;
    // A message that is not a record decodes as "absent, revision 0", which no watcher
    // takes over what it holds (see the hub's ordering).
    this.emit("change", channel.slice(this.#channelPrefix.length), decodeRecord(message));
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
    if (this.#commands.status === "ready" && this.#subscriber.status === "ready") void this.#restore(reason);
  }

  /** Both connections are up: resubscribe, then declare the store ready and ask for a re-read. */
  async #restore(reason: string): Promise<void> {
    const attempt = ++this.#restoreAttempt;
    const wasConnecting = this.#state === "connecting";
    try {
      if (this.#channels.size > 0) await this.#subscriber.subscribe(...this.#channels);
    } catch (error) {
      if (attempt !== this.#restoreAttempt || this.#state === "closed") return;
      // Resubscribing failed on a live connection: drop it, and the reconnect tries again.
      this.#lastError = `resubscribe failed: ${error instanceof Error ? error.message : String(error)}`;
      this.#subscriber.disconnect(true);
      return;
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
