/**
 * What every Redis change feed shares, whatever the topology. A feed owns the store's
 * connections (the records send their commands through it), so its state is the store's one
 * state: `ready` only while every connection is, and set in one place (#setState) along the
 * transitions generation-store.ts writes down. Each topology's feed, in the manner of
 * ioredis's connectors, says how it subscribes and how it recovers:
 * redis-server-feed.ts (one server, or the master a Sentinel group names) and
 * redis-cluster-feed.ts (a Cluster).
 *
 * Every loss of a connection starts a new epoch; a restore (resubscribing after a reconnect)
 * that began in an older epoch gives up, because the connection it saw ready is gone.
 */
import { EventEmitter } from "node:events";
import type { Cluster, Redis, RedisOptions } from "ioredis";
import { decodeRecord } from "./generation-scheme.js";
import {
  type ChangeFeed,
  type ChangeFeedEvents,
  checkTransition,
  type StoreState,
  StoreUnavailableError,
  untilReady,
} from "./generation-store.js";
import type { RedisKeys } from "./redis-keys.js";

/** A Redis connection as the store uses it: one server's, or a whole Cluster's. */
export type Connection = Redis | Cluster;

/** Longest pause between reconnect attempts: Redis back means service back within about a second. */
const MAX_RECONNECT_DELAY_MS = 1000;
/** How often an idle store checks that Redis still answers. */
const PING_INTERVAL_MS = 1000;

/** ioredis options every connection of the store shares, whatever the topology. */
export function connectionOptions(commandTimeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    // Fail fast while disconnected: a queued command would hang until the caller's deadline.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    autoResubscribe: false,
    // The server feed batches writes itself (RedisServerFeed.coalesceWrites), for less CPU per
    // call than a Pipeline object per batch; a Cluster sends one command at a time.
    enableAutoPipelining: false,
    // Full jitter, capped low.
    retryStrategy: (attempt) => Math.round(Math.random() * Math.min(MAX_RECONNECT_DELAY_MS, 50 * 2 ** attempt)),
  };
}

/** An error's message, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * What the records (redis-records.ts) need of a feed: its connections, and the way commands
 * are sent over them. Internal to the Redis store: the store hands its feed out as a
 * ChangeFeed only.
 */
export interface RedisCommandPath {
  /** For commands. */
  readonly commands: Connection;
  /**
   * For writes (the records define their write script on it): `commands` itself, or a
   * connection of its own when writes wait for replicas (WAIT blocks its connection, and
   * reads must not queue behind it).
   */
  readonly writes: Connection;
  /** The command the write script publishes a change with. */
  readonly publish: "PUBLISH" | "SPUBLISH";
  /** Throws StoreUnavailableError unless the store is ready. */
  ensureReady(): void;
  /**
   * Sends a command on one of the connections (what `send` returns) and awaits it; every
   * failure becomes StoreUnavailableError.
   */
  call<T>(send: () => Promise<T>): Promise<T>;
  /** GETs of many keys, grouped as the topology allows (one MGET on one server). */
  mget(keys: readonly string[]): Promise<(string | null)[]>;
}

/** The change feed of a Redis store, and the connections the store's records use. */
export abstract class RedisFeed extends EventEmitter<ChangeFeedEvents> implements ChangeFeed, RedisCommandPath {
  abstract readonly description: string;
  abstract readonly commands: Connection;
  abstract readonly writes: Connection;
  abstract readonly publish: "PUBLISH" | "SPUBLISH";

  /** The key of each channel subscribed (or to be subscribed again after a reconnect). */
  protected readonly channels = new Map<string, string>();
  /** Why the store is not ready, for the message of calls refused meanwhile. */
  protected lastError = "";
  readonly #keys: RedisKeys;
  #state: StoreState = "connecting";
  #epoch = 0;
  readonly #connections: (readonly [name: string, connection: Connection])[] = [];
  readonly #pinger: NodeJS.Timeout;

  constructor(keys: RedisKeys) {
    super();
    this.#keys = keys;
    this.#pinger = setInterval(() => {
      if (this.#state === "ready") this.call(() => this.commands.ping()).catch(() => {});
    }, PING_INTERVAL_MS).unref();
  }

  get state(): StoreState {
    return this.#state;
  }

  abstract mget(keys: readonly string[]): Promise<(string | null)[]>;
  /**
   * A command timed out: a sign of a hung connection, or of a slow Redis or a busy process.
   * The topology decides; `reason` says which command, for the message of later refusals.
   */
  protected abstract commandTimedOut(reason: string): Promise<void>;
  /** Called before each command is sent: the topology may hold its writes back to send them together. */
  protected abstract coalesceWrites(): void;
  /** Subscribes channels; resolves once the subscriptions are in place. */
  protected abstract subscribeChannels(channels: readonly string[]): Promise<void>;
  /** Unsubscribes channels (while disconnected, what the next renewal must leave out). */
  protected abstract unsubscribeChannels(channels: readonly string[]): Promise<void>;
  /** Every connection is ready (again): renew the subscriptions, then setReady(). */
  protected abstract restore(epoch: number, reason: string): Promise<void>;

  /** Every Redis failure (connection lost, timeout, READONLY, LOADING, OOM...) means "not now". */
  async call<T>(send: () => Promise<T>): Promise<T> {
    try {
      this.coalesceWrites();
      return await send();
    } catch (error) {
      const message = messageOf(error);
      if (message.includes("timed out")) await this.commandTimedOut(`commands connection: ${message}`);
      throw new StoreUnavailableError(`Redis did not serve the request: ${message}`, { cause: error });
    }
  }

  /** Connects every connection; resolves once ready (retrying through failures), rejects if closed (before or meanwhile). */
  connect(): Promise<void> {
    const ready = untilReady(this);
    if (this.#state === "closed") return ready;
    // A failed first attempt is not final: ioredis keeps retrying and `ready` follows.
    for (const [, connection] of this.#connections) connection.connect().catch(() => {});
    return ready;
  }

  async subscribe(keys: readonly string[]): Promise<void> {
    this.ensureReady();
    const channels = keys.map((key) => this.#keys.channel(key));
    for (const [index, channel] of channels.entries()) this.channels.set(channel, keys[index] as string);
    await this.call(() => this.subscribeChannels(channels));
  }

  async unsubscribe(keys: readonly string[]): Promise<void> {
    const channels = keys.map((key) => this.#keys.channel(key));
    for (const channel of channels) this.channels.delete(channel);
    await this.unsubscribeChannels(channels).catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#state === "closed") return;
    clearInterval(this.#pinger);
    this.#setState("closed", "its Redis connections were closed");
    for (const [, connection] of this.#connections) connection.disconnect();
  }

  /** Throws StoreUnavailableError unless the store is ready. */
  ensureReady(): void {
    if (this.#state === "ready") return;
    const why =
      this.#state === "closed" ? "the store is closed" : `Redis is unreachable (${this.lastError || this.#state})`;
    throw new StoreUnavailableError(why);
  }

  /**
   * Follows a connection's life: the store is ready once every connection followed is (and
   * restore() has renewed the subscriptions), and unavailable as soon as one is lost.
   */
  protected follow(name: string, connection: Connection): void {
    this.#connections.push([name, connection]);
    connection.on("error", (error: Error) => {
      this.lastError = `${name} connection: ${error.message}`;
    });
    connection.on("ready", () => this.#onReady(`${name} connection ready`));
    connection.on("close", () => this.lost(`${name} connection closed`));
    // ioredis gives up on a connection in some races (its Sentinel failover detector
    // disconnecting one that is still connecting ends it for good): start it again.
    connection.on("end", () => {
      if (this.#state === "closed") return;
      this.lost(`${name} connection ended`);
      setTimeout(() => {
        if (this.#state !== "closed") connection.connect().catch(() => {});
      }, MAX_RECONNECT_DELAY_MS * Math.random()).unref();
    });
  }

  /** A connection is gone: a new epoch, and the store is unavailable until restore() ends it. */
  protected lost(reason: string): void {
    this.#epoch++;
    // While connecting, a closed connection means the attempt failed: say so once.
    if (this.#state === "ready" || this.#state === "connecting") {
      this.#setState("unavailable", `${reason}${this.lastError ? `: ${this.lastError}` : ""}`);
    }
  }

  /** Whether a restore begun in `epoch` may still finish: no connection was lost since. */
  protected current(epoch: number): boolean {
    return epoch === this.#epoch && this.#state !== "closed";
  }

  /** The subscriptions are renewed: ready, and every watched key must be read again (unless this is the first connect). */
  protected setReady(reason: string): void {
    const reconnected = this.#state !== "connecting";
    this.lastError = "";
    this.#setState("ready", reason);
    if (reconnected) this.emit("resync");
  }

  /** Never throws: whatever is published on our channels, the process stays up. */
  protected onMessage(channel: string, message: string): void {
    const key = this.channels.get(channel);
    if (key === undefined) return;
    // A message that is not a record decodes as "absent, revision 0", which no watcher
    // takes over what it holds (see the hub's ordering).
    this.emit("change", key, decodeRecord(message));
  }

  /** Renewing the subscriptions failed: say so in the message of later refusals. */
  protected renewalFailed(error: unknown): void {
    this.lastError = `resubscribe failed: ${messageOf(error)}`;
  }

  #setState(state: StoreState, reason: string): void {
    if (this.#state === state) return;
    checkTransition(this.#state, state, this.description);
    this.#state = state;
    this.emit("state", state, reason);
  }

  #onReady(reason: string): void {
    if (this.#state === "closed" || this.#state === "ready") return;
    if (this.#connections.every(([, connection]) => connection.status === "ready")) {
      void this.restore(++this.#epoch, reason);
    }
  }
}
