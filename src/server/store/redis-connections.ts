/**
 * How the Redis store reaches Redis: one server, the master a Sentinel group names, or a
 * Cluster. ioredis does the connecting (Sentinel discovery and failover, Cluster slots and
 * redirections); this module gives the store one shape over all three: a command
 * connection, a change feed, and the connections whose readiness makes the store ready.
 *
 * One server and Sentinel use broadcast pub/sub (PUBLISH/SUBSCRIBE) on a dedicated
 * subscriber connection. A Cluster uses sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7):
 * each key's channel lives on the shard that holds its record (see redis-keys.ts), so a
 * change travels no further than its shard, and ioredis keeps one subscriber per master.
 */
import calculateSlot from "cluster-key-slot";
import { Cluster, Redis, type RedisOptions } from "ioredis";

/** host:port of a Redis node or Sentinel. */
export interface HostPort {
  host: string;
  port: number;
}

/** Which Redis to use, and how. */
export type RedisTarget =
  /** One server, by redis:// or rediss:// URL. */
  | { mode: "single"; url: string }
  /** The master of the Sentinel group `name`, found through `sentinels`. */
  | { mode: "sentinel"; sentinels: HostPort[]; name: string; username?: string; password?: string }
  /** A Cluster, found through any of `nodes`. */
  | { mode: "cluster"; nodes: HostPort[] };

/** A Redis connection as the store uses it: one server's, or a whole Cluster's. */
export type Connection = Redis | Cluster;

/** What the store needs of Redis, whatever the topology. */
export interface RedisConnections {
  /** For commands. */
  readonly commands: Connection;
  /**
   * For writes (the write script is defined on it as `syncgenWrite`): `commands` itself, or
   * a connection of its own when writes wait for replicas (WAIT blocks its connection, and
   * reads must not queue behind it).
   */
  readonly writes: Connection;
  /** Every connection that must be `ready` for the store to be. */
  readonly connections: readonly (readonly [name: string, connection: Connection])[];
  /** The command the write script publishes a change with. */
  readonly publish: "PUBLISH" | "SPUBLISH";
  /** Starts the change feed of channels; resolves once the subscriptions are in place. */
  subscribe(channels: readonly string[]): Promise<void>;
  /**
   * Subscribes `channels` afresh after a reconnect or a topology change, without piling up
   * duplicates; resolves once they are in place. Messages may be lost meanwhile: the store
   * re-reads every watched key after it.
   */
  renew(channels: readonly string[]): Promise<void>;
  /** Stops the change feed of channels. */
  unsubscribe(channels: readonly string[]): Promise<void>;
  /** GETs of many keys, grouped as the topology allows (one MGET on one server). */
  mget(keys: readonly string[]): Promise<(string | null)[]>;
  /** Calls `listener` with every change message. */
  onMessage(listener: (channel: string, message: string) => void): void;
  /**
   * Calls `listener` after ioredis moved subscriptions to new owners (the Cluster's slots
   * changed hands): messages may have been lost in between.
   */
  onResubscribed(listener: () => void): void;
  /**
   * Renewing failed. "reconnect": the subscriber connection was dropped, and its reconnect
   * renews. "retry": the store must renew again later (a Cluster is never torn down for one
   * shard's trouble).
   */
  recoverFeed(): "reconnect" | "retry";
  /**
   * A command timed out: drop each connection that has commands waiting and has sent nothing
   * for `silentMs` (a hung server) at once, failing the commands already written to it. True when one was dropped
   * and the store has no working connection until it reconnects (one server, Sentinel);
   * false when nothing was silent that long, or the topology serves on (Cluster).
   */
  dropHung(silentMs: number): boolean;
  disconnect(): void;
}

/**
 * Opens (lazily: connect() each connection) what `target` needs, with `options` for every
 * node; `separateWrites` gives writes a connection of their own (one server or Sentinel).
 */
export function openRedis(target: RedisTarget, options: RedisOptions, separateWrites = false): RedisConnections {
  return target.mode === "cluster"
    ? new ClusterConnections(target.nodes, options)
    : new ServerConnections(target, options, separateWrites);
}

/** A short description for logs. */
export function describeTarget(target: RedisTarget): string {
  switch (target.mode) {
    case "single":
      return `redis ${new URL(target.url).host}`;
    case "sentinel":
      return `redis sentinel "${target.name}" via ${target.sentinels.map(hostPort).join(",")}`;
    case "cluster":
      return `redis cluster via ${target.nodes.map(hostPort).join(",")}`;
  }
}

function hostPort({ host, port }: HostPort): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** One server, or the Sentinel group's master: a command and a subscriber connection. */
class ServerConnections implements RedisConnections {
  /** When each command connection last received anything (performance.now()), to tell a hung server from a slow one. */
  readonly #heardAt = new Map<Redis, number>();
  readonly commands: Redis;
  readonly writes: Redis;
  readonly #subscriber: Redis;
  readonly connections: readonly (readonly [string, Connection])[];
  readonly publish = "PUBLISH";

  constructor(target: Exclude<RedisTarget, { mode: "cluster" }>, options: RedisOptions, separateWrites: boolean) {
    const open = (connectionName: string): Redis => {
      if (target.mode === "single") return new Redis(target.url, { ...options, connectionName });
      return new Redis({
        ...options,
        connectionName,
        sentinels: target.sentinels,
        name: target.name,
        ...(target.username !== undefined ? { username: target.username } : {}),
        ...(target.password !== undefined ? { password: target.password } : {}),
        // Told of a failover by the Sentinels at once, not only when the old master stops answering.
        failoverDetector: true,
        // A demoted master answers writes with READONLY: reconnect, and Sentinel names the new one.
        reconnectOnError: (error) => error.message.startsWith("READONLY"),
      });
    };
    this.commands = open("syncgen");
    this.writes = separateWrites ? open("syncgen-writer") : this.commands;
    this.#subscriber = open("syncgen-subscriber");
    this.connections = [
      ["commands", this.commands],
      ["subscriber", this.#subscriber],
      ...(separateWrites ? [["writer", this.writes] as const] : []),
    ];
    for (const connection of new Set([this.commands, this.writes])) {
      connection.on("connect", () => {
        const heard = (): void => void this.#heardAt.set(connection, performance.now());
        heard();
        connection.stream.on("data", heard);
      });
    }
  }

  async subscribe(channels: readonly string[]): Promise<void> {
    if (channels.length > 0) await this.#subscriber.subscribe(...channels);
  }

  renew(channels: readonly string[]): Promise<void> {
    // SUBSCRIBE of a subscribed channel changes nothing: no duplicates to avoid.
    return this.subscribe(channels);
  }

  async unsubscribe(channels: readonly string[]): Promise<void> {
    // While disconnected there is nothing to undo: a reconnect subscribes only what is wanted.
    if (this.#subscriber.status === "ready" && channels.length > 0) await this.#subscriber.unsubscribe(...channels);
  }

  mget(keys: readonly string[]): Promise<(string | null)[]> {
    return this.commands.mget(...keys);
  }

  onMessage(listener: (channel: string, message: string) => void): void {
    this.#subscriber.on("message", listener);
  }

  onResubscribed(): void {
    // Subscriptions never move on one server: the store resubscribes after a reconnect itself.
  }

  recoverFeed(): "reconnect" {
    this.#subscriber.disconnect(true);
    return "reconnect";
  }

  dropHung(silentMs: number): boolean {
    let dropped = false;
    for (const connection of new Set([this.commands, this.writes])) {
      // Only a connection with commands waiting for replies can be hung (an idle writer is silent too).
      const silent =
        connection.commandQueue.length > 0 && performance.now() - (this.#heardAt.get(connection) ?? 0) >= silentMs;
      // Not disconnect(true): that half-closes the socket and waits for the peer, which a hung
      // Redis never answers, so ioredis destroys it (and emits close) only disconnectTimeout
      // (2 s) later; meanwhile the status stays "ready", and the commands auto-pipelining wrote
      // behind the timed-out one wait out timeouts of their own. Destroyed, the socket closes
      // now: ioredis fails those commands (maxRetriesPerRequest 0) and reconnects. Once per
      // hang: every command of a timed-out batch lands here.
      if (silent && connection.status === "ready" && !connection.stream.destroyed) {
        connection.stream.destroy();
        dropped = true;
      }
    }
    return dropped;
  }

  disconnect(): void {
    for (const [, connection] of this.connections) connection.disconnect();
  }
}

/** A Cluster: commands routed by slot, sharded pub/sub with one subscriber per master. */
class ClusterConnections implements RedisConnections {
  readonly commands: Cluster;
  get writes(): Cluster {
    return this.commands;
  }
  readonly #unsubscribeLater = new Set<string>();
  /** Every per-slot command, sent in the order asked for, a bounded number at a time. */
  readonly #pacer = new CommandPacer();
  readonly connections: readonly (readonly [string, Connection])[];
  readonly publish = "SPUBLISH";

  constructor(nodes: HostPort[], options: RedisOptions) {
    const { retryStrategy, enableOfflineQueue, enableAutoPipelining: _, ...nodeOptions } = options;
    this.commands = new Cluster(nodes, {
      redisOptions: nodeOptions,
      lazyConnect: true,
      enableOfflineQueue: enableOfflineQueue ?? false,
      // Auto-pipelined batches mix slots; while a slot migrates, an ASK for one command of a
      // batch comes back as an error instead of being followed. One command at a time is.
      enableAutoPipelining: false,
      shardedSubscribers: true,
      // Slots that changed hands are noticed within a second even with no MOVED reply.
      slotsRefreshInterval: 1000,
      ...(retryStrategy ? { clusterRetryStrategy: (attempt: number) => retryStrategy(attempt) ?? null } : {}),
    });
    this.connections = [["cluster", this.commands]];
  }

  async subscribe(channels: readonly string[]): Promise<void> {
    // One SSUBSCRIBE per slot: a command may only name channels of one slot.
    await this.#pacer.each([...bySlot(channels).values()], (group) => this.commands.ssubscribe(...group));
  }

  async renew(channels: readonly string[]): Promise<void> {
    // ioredis keeps every SSUBSCRIBE's channels in a list it re-sends after each topology
    // change, duplicates included: unsubscribe first (also what could not be unsubscribed
    // while disconnected), then subscribe each channel once.
    const stale = new Set([...this.#unsubscribeLater, ...channels]);
    this.#unsubscribeLater.clear();
    await this.#pacer.each([...bySlot([...stale]).values()], (group) =>
      this.commands.sunsubscribe(...group).catch(() => {}),
    );
    await this.subscribe(channels);
  }

  async unsubscribe(channels: readonly string[]): Promise<void> {
    if (this.commands.status !== "ready") {
      // Refused now, and ioredis would re-subscribe them on reconnect: undo at the next renewal.
      for (const channel of channels) this.#unsubscribeLater.add(channel);
      return;
    }
    await this.#pacer.each([...bySlot(channels).values()], (group) => this.commands.sunsubscribe(...group));
  }

  async mget(keys: readonly string[]): Promise<(string | null)[]> {
    // Keys of one slot share an MGET (a command may only name keys of one slot).
    const groups = bySlot(keys);
    const values = new Map<string, string | null>();
    await this.#pacer.each([...groups.values()], async (group) => {
      const replies = await this.commands.mget(...group);
      for (const [index, key] of group.entries()) values.set(key, replies[index] ?? null);
    });
    return keys.map((key) => values.get(key) ?? null);
  }

  onMessage(listener: (channel: string, message: string) => void): void {
    this.commands.on("smessage", listener);
  }

  onResubscribed(listener: () => void): void {
    this.commands.on("subscribersReady", listener);
  }

  recoverFeed(): "retry" {
    // Disconnecting the Cluster would take every shard down for one shard's trouble, and can
    // leave ioredis's sharded subscribers stopped mid-connect for good.
    return "retry";
  }

  dropHung(): false {
    // The same: a hung node's calls time out one by one; ioredis finds a failed-over node.
    return false;
  }

  disconnect(): void {
    this.commands.disconnect();
  }
}

/**
 * Most per-slot commands in flight at once (a Watch of 10,000 keys spans 10,000 slots, so
 * 10,000 commands): sent all at once, the last would wait behind the others long enough to
 * time out on a busy host.
 */
const MAX_IN_FLIGHT = 64;

/**
 * Sends commands at most MAX_IN_FLIGHT at a time, each started in the order it was asked for,
 * across calls: an unsubscribe asked for before a subscribe of the same channel is sent first,
 * so it cannot undo it.
 */
class CommandPacer {
  #inFlight = 0;
  /** Commands waiting for a slot, each started (sent) synchronously when it gets one. */
  readonly #waiting: (() => void)[] = [];

  /** Runs `command` for every group; rejects with the first failure (the rest still run). */
  each<T>(groups: readonly T[], command: (group: T) => Promise<unknown>): Promise<unknown[]> {
    return Promise.all(groups.map((group) => this.#run(() => command(group))));
  }

  #run<R>(command: () => Promise<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const start = (): void => {
        this.#inFlight++;
        command()
          .then(resolve, reject)
          .finally(() => {
            this.#inFlight--;
            this.#waiting.shift()?.();
          });
      };
      if (this.#inFlight < MAX_IN_FLIGHT && this.#waiting.length === 0) start();
      else this.#waiting.push(start);
    });
  }
}

/** Groups keys or channels by Cluster slot. */
function bySlot(names: readonly string[]): Map<number, string[]> {
  const groups = new Map<number, string[]>();
  for (const name of names) {
    const slot = calculateSlot(name);
    const group = groups.get(slot);
    if (group) group.push(name);
    else groups.set(slot, [name]);
  }
  return groups;
}
