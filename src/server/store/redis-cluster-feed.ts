/**
 * The change feed of a Redis Cluster: commands routed by slot, and sharded pub/sub
 * (SPUBLISH/SSUBSCRIBE, Redis 7): each key's channel lives on the shard that holds its record
 * (see redis-keys.ts), so a change travels no further than its shard, and ioredis keeps one
 * subscriber per master.
 *
 * Recovery is by renewing, never by reconnecting: disconnecting the Cluster would take every
 * shard down for one shard's trouble (and can leave ioredis's sharded subscribers stopped
 * mid-connect for good). After ioredis moved subscriptions to new owners (slots changed
 * hands), the feed subscribes once more, retrying with backoff until it holds, then asks for
 * a re-read: a change published on the new owner before the move was lost. A hung node's
 * calls time out one by one; ioredis finds a failed-over node.
 */
import calculateSlot from "cluster-key-slot";
import { Cluster, type RedisOptions } from "ioredis";
import type { HostPort } from "../host-port.js";
import { messageOf, RedisFeed } from "./redis-feed.js";
import type { RedisKeys } from "./redis-keys.js";

/** Bounds of the pause before renewing the subscriptions again after a failure. */
const RENEW_RETRY_MS = { initial: 100, max: 2000 };

/** The feed of a Cluster, found through any of its nodes. */
export class RedisClusterFeed extends RedisFeed {
  readonly description: string;
  readonly commands: Cluster;
  readonly publish = "SPUBLISH";
  /** Channels unsubscribed while disconnected: ioredis would subscribe them again, so the next renewal undoes them. */
  readonly #unsubscribeLater = new Set<string>();
  /** Every per-slot command, sent in the order asked for, a bounded number at a time. */
  readonly #pacer = new CommandPacer();
  /** A pending retry of renewing the subscriptions, and the pause before the next. */
  #renewRetry: NodeJS.Timeout | undefined;
  #renewRetryMs = RENEW_RETRY_MS.initial;

  constructor(
    nodes: readonly HostPort[],
    options: { description: string; keys: RedisKeys; redisOptions: RedisOptions },
  ) {
    super(options.keys);
    this.description = options.description;
    const { retryStrategy, enableOfflineQueue, ...nodeOptions } = options.redisOptions;
    this.commands = new Cluster(
      nodes.map(({ host, port }) => ({ host, port })),
      {
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
      },
    );
    this.follow("cluster", this.commands);
    this.commands.on("smessage", (channel: string, message: string) => this.onMessage(channel, message));
    this.commands.on("subscribersReady", () => void this.#renewWhileReady());
  }

  /** One connection serves both. */
  get writes(): Cluster {
    return this.commands;
  }

  /** Not hung: a node's calls time out one by one while ioredis finds its failed-over replacement. */
  protected async commandTimedOut(reason: string): Promise<void> {
    this.lastError = reason;
  }

  /** Each node's connection is ioredis's own, and the Cluster sends one command at a time (see above). */
  protected coalesceWrites(): void {}

  async mget(keys: readonly string[]): Promise<(string | null)[]> {
    // Keys of one slot share an MGET (a command may only name keys of one slot).
    const values = new Map<string, string | null>();
    await this.#pacer.each([...bySlot(keys).values()], async (group) => {
      const replies = await this.commands.mget(...group);
      for (const [index, key] of group.entries()) values.set(key, replies[index] ?? null);
    });
    return keys.map((key) => values.get(key) ?? null);
  }

  override async close(): Promise<void> {
    clearTimeout(this.#renewRetry);
    await super.close();
  }

  protected async subscribeChannels(channels: readonly string[]): Promise<void> {
    // One SSUBSCRIBE per slot: a command may only name channels of one slot.
    await this.#pacer.each([...bySlot(channels).values()], (group) => this.commands.ssubscribe(...group));
  }

  protected async unsubscribeChannels(channels: readonly string[]): Promise<void> {
    if (this.commands.status !== "ready") {
      for (const channel of channels) this.#unsubscribeLater.add(channel);
      return;
    }
    await this.#pacer.each([...bySlot(channels).values()], (group) => this.commands.sunsubscribe(...group));
  }

  /** Serves the shards that answer even if renewing fails, and renews the rest until they do (then re-reads). */
  protected async restore(epoch: number, reason: string): Promise<void> {
    const failure = await this.#renew().then(
      () => undefined,
      (error: unknown) => error,
    );
    if (!this.current(epoch)) return;
    if (failure !== undefined) this.#retryLater(failure);
    // Say so in the log: the store serves, but some keys' notifications wait for the retry.
    this.setReady(
      failure === undefined ? reason : `${reason}; renewing subscriptions failed, retrying: ${messageOf(failure)}`,
    );
  }

  /**
   * ioredis keeps every SSUBSCRIBE's channels in a list it re-sends after each topology
   * change, duplicates included: unsubscribe first (also what could not be unsubscribed while
   * disconnected), then subscribe each channel once; resolves once they are in place.
   */
  async #renew(): Promise<void> {
    const channels = [...this.channels.keys()];
    const stale = new Set([...this.#unsubscribeLater, ...channels]);
    this.#unsubscribeLater.clear();
    await this.#pacer.each([...bySlot([...stale]).values()], (group) =>
      this.commands.sunsubscribe(...group).catch(() => {}),
    );
    await this.subscribeChannels(channels);
  }

  /** Subscriptions moved (or a renewal failed): renew, then have every watched key read again. */
  async #renewWhileReady(): Promise<void> {
    if (this.state !== "ready" || this.channels.size === 0) return;
    try {
      await this.#renew();
    } catch (error) {
      if (this.state === "ready") this.#retryLater(error);
      return;
    }
    if (this.state !== "ready") return;
    this.#renewRetryMs = RENEW_RETRY_MS.initial;
    this.emit("resync");
  }

  #retryLater(error: unknown): void {
    this.renewalFailed(error);
    if (this.#renewRetry !== undefined) return;
    const delay = Math.random() * this.#renewRetryMs;
    this.#renewRetryMs = Math.min(this.#renewRetryMs * 2, RENEW_RETRY_MS.max);
    this.#renewRetry = setTimeout(() => {
      this.#renewRetry = undefined;
      void this.#renewWhileReady();
    }, delay).unref();
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
