/**
 * The change feed of one Redis server, or of the master a Sentinel group names (ioredis finds
 * it, and follows failovers). Broadcast pub/sub (PUBLISH/SUBSCRIBE) on a subscriber
 * connection of its own, beside the command connection (and a writer, when writes wait for
 * replicas).
 *
 * Recovery is by reconnecting: a subscriber that could not renew its subscriptions is dropped,
 * and its reconnect renews them; a command connection that hangs (a hung Redis keeps its TCP
 * connections open, so nothing else notices) is dropped as soon as a command times out.
 */
import { Redis, type RedisOptions } from "ioredis";
import { RedisFeed } from "./redis-feed.js";
import type { RedisKeys } from "./redis-keys.js";
import type { RedisServerTarget } from "./redis-target.js";

/** The feed of one server (or Sentinel's master): a command and a subscriber connection. */
export class RedisServerFeed extends RedisFeed {
  readonly description: string;
  readonly commands: Redis;
  readonly writes: Redis;
  readonly publish = "PUBLISH";
  readonly #subscriber: Redis;
  /** When each command connection last received anything (performance.now()), to tell a hung server from a slow one. */
  readonly #heardAt = new Map<Redis, number>();
  readonly #commandTimeoutMs: number;
  /** Whether the command connections' sockets are corked until this turn of the event loop ends. */
  #coalescing = false;

  constructor(
    target: RedisServerTarget,
    options: { description: string; keys: RedisKeys; redisOptions: RedisOptions; separateWrites: boolean },
  ) {
    super(options.keys);
    this.description = options.description;
    this.#commandTimeoutMs = options.redisOptions.commandTimeout ?? Number.POSITIVE_INFINITY;
    const open = (connectionName: string): Redis => {
      const redisOptions = { ...options.redisOptions, connectionName };
      if (target.mode === "single") return new Redis(target.url, redisOptions);
      return new Redis({
        ...redisOptions,
        sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
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
    this.writes = options.separateWrites ? open("syncgen-writer") : this.commands;
    this.#subscriber = open("syncgen-subscriber");
    this.follow("commands", this.commands);
    this.follow("subscriber", this.#subscriber);
    if (this.writes !== this.commands) this.follow("writer", this.writes);
    for (const connection of new Set([this.commands, this.writes])) {
      connection.on("connect", () => {
        const heard = (): void => void this.#heardAt.set(connection, performance.now());
        heard();
        connection.stream.on("data", heard);
      });
    }
    this.#subscriber.on("message", (channel: string, message: string) => this.onMessage(channel, message));
  }

  mget(keys: readonly string[]): Promise<(string | null)[]> {
    return this.commands.mget(...keys);
  }

  /**
   * Commands sent in one turn of the event loop leave in one socket write: the command
   * connections' sockets stay corked until the turn's I/O callbacks are done (setImmediate).
   * That is the batching of ioredis's auto-pipelining without its Pipeline object per batch:
   * 0.88-0.97x the server CPU per call, measured pair by pair against auto-pipelining (the
   * README's Performance section).
   */
  protected coalesceWrites(): void {
    if (this.#coalescing) return;
    const sockets = [...new Set([this.commands, this.writes])]
      .map((connection) => connection.stream)
      // No socket before the first connect (lazyConnect), whatever the type says.
      .filter((socket) => socket?.writable);
    for (const socket of sockets) socket.cork();
    this.#coalescing = true;
    setImmediate(() => {
      this.#coalescing = false;
      for (const socket of sockets) socket.uncork();
    });
  }

  protected async subscribeChannels(channels: readonly string[]): Promise<void> {
    if (channels.length > 0) await this.#subscriber.subscribe(...channels);
  }

  protected async unsubscribeChannels(channels: readonly string[]): Promise<void> {
    // While disconnected there is nothing to undo: a reconnect subscribes only what is wanted.
    if (this.#subscriber.status === "ready" && channels.length > 0) await this.#subscriber.unsubscribe(...channels);
  }

  /** SUBSCRIBE of a subscribed channel changes nothing, so renewing is subscribing everything again. */
  protected async restore(epoch: number, reason: string): Promise<void> {
    try {
      await this.subscribeChannels([...this.channels.keys()]);
    } catch (error) {
      if (!this.current(epoch)) return;
      this.renewalFailed(error);
      // Its reconnect renews them (and this runs again).
      this.#subscriber.disconnect(true);
      return;
    }
    if (this.current(epoch)) this.setReady(reason);
  }

  /**
   * A command timed out. If Redis has sent nothing on its connection for half a command
   * timeout (a reply to an earlier command may have come just after this one was sent), it
   * hangs: the store is unavailable now, before this caller hears of it (health follows the
   * state event synchronously). A Redis that is only slow (a large reply still arriving), or a
   * timer that fired late because this process was busy, is not hung: replies already
   * received are read first (one turn of the event loop) and count as signs of life.
   */
  protected async commandTimedOut(reason: string): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    this.lastError = reason;
    let dropped = false;
    for (const connection of new Set([this.commands, this.writes])) {
      // Only a connection with commands waiting for replies can be hung (an idle writer is silent too).
      const silent =
        connection.commandQueue.length > 0 &&
        performance.now() - (this.#heardAt.get(connection) ?? 0) >= this.#commandTimeoutMs / 2;
      // Not disconnect(true): that half-closes the socket and waits for the peer, which a hung
      // Redis never answers, so ioredis destroys it (and emits close) only disconnectTimeout
      // (2 s) later; meanwhile the status stays "ready", and the commands written
      // behind the timed-out one wait out timeouts of their own. Destroyed, the socket closes
      // now: ioredis fails those commands (maxRetriesPerRequest 0) and reconnects. Once per
      // hang: every command of a timed-out batch lands here.
      if (silent && connection.status === "ready" && !connection.stream.destroyed) {
        connection.stream.destroy();
        dropped = true;
      }
    }
    if (dropped) this.lost("Redis did not answer in time");
  }
}
