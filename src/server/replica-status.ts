/**
 * What the status page shows of this replica, as one snapshot every few seconds: its store
 * and health, uptime and version, Watch streams and watched keys, bumps and fan-out per
 * second, and how long fan-out took. A snapshot is made once per interval, and only while
 * someone looks; every viewer is sent the same text, so a viewer costs the server about what
 * a watcher of one busy key does. Nothing of a token or a key is in it.
 */
import type { ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import type { StatusSnapshot } from "./status-snapshot.js";
import type { ChangeFeed, GenerationRecords } from "./store/generation-store.js";
import type { RedisTarget } from "./store/redis-target.js";
import { VERSION } from "./version.js";
import type { FanOutObserver, WatchHub } from "./watch-hub.js";

/** How often a snapshot is sent. */
export const STATUS_INTERVAL_MS = 2000;

/** Most status streams open at once; more are refused (each is a connection held open). */
const MAX_VIEWERS = 100;

/** `records`, with every successful Bump counted in `status`. */
export function countingBumps(records: GenerationRecords, status: ReplicaStatus): GenerationRecords {
  return {
    get: (key) => records.get(key),
    bump: async (key) => {
      const generation = await records.bump(key);
      status.bumped();
      return generation;
    },
    clear: (key) => records.clear(key),
    read: (keys) => records.read(keys),
  };
}

/** What a status snapshot is made from. */
export interface ReplicaStatusSources {
  feed: ChangeFeed;
  hub: WatchHub;
  redis: RedisTarget | undefined;
  auth: () => boolean;
}

/** A viewer's response stream: either HTTP version's response, as far as a stream of text goes. */
type Viewer = Pick<
  ServerResponse | Http2ServerResponse,
  "writeHead" | "once" | "end" | "destroy" | "writableLength"
> & {
  write(text: string): boolean;
};

/** This replica's figures for the status page. */
export class ReplicaStatus implements FanOutObserver {
  readonly #sources: ReplicaStatusSources;
  readonly #startedAt = Date.now();
  readonly #viewers = new Set<Viewer>();
  #timer: NodeJS.Timeout | undefined;
  #intervalStartedAt = performance.now();
  #bumps = 0;
  #fanOutMessages = 0;
  #fanOuts = 0;
  #lagSecondsSum = 0;
  #lagSecondsMax = 0;
  /** The last snapshot's text, sent to viewers who join between snapshots. */
  #latest: string | undefined;
  /** The last snapshot made, and when: asked for again within an interval, it is reused. */
  #cached: { at: number; snapshot: StatusSnapshot } | undefined;
  /** Set at shutdown: no more viewers. */
  #closed = false;

  constructor(sources: ReplicaStatusSources) {
    this.#sources = sources;
  }

  /** Counts a Bump this replica made. */
  bumped(): void {
    this.#bumps++;
  }

  fannedOut(messages: number, lagSeconds: number): void {
    this.#fanOutMessages += messages;
    this.#fanOuts++;
    this.#lagSecondsSum += lagSeconds;
    if (lagSeconds > this.#lagSecondsMax) this.#lagSecondsMax = lagSeconds;
  }

  /**
   * The figures, at most one interval old (a snapshot walks every Watch stream, so asking
   * often costs no more than asking every interval). Rates are over the interval before it.
   */
  snapshot(): StatusSnapshot {
    const now = performance.now();
    if (this.#cached === undefined || now - this.#cached.at >= STATUS_INTERVAL_MS) {
      this.#cached = { at: now, snapshot: this.#figures() };
    }
    return this.#cached.snapshot;
  }

  /** Whether shutdown has ended the status streams (no more are taken). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The figures now; the rates are over the time since the last snapshot sent to viewers. */
  #figures(): StatusSnapshot {
    const { feed, hub, redis, auth } = this.#sources;
    const seconds = Math.max((performance.now() - this.#intervalStartedAt) / 1000, 0.001);
    const stats = hub.stats();
    const snapshot: StatusSnapshot = {
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
      store: { ...storeKind(redis), state: feed.state },
      health: feed.state === "ready" ? "SERVING" : "NOT_SERVING",
      auth: auth(),
      watchStreams: stats.streams,
      watchedKeys: stats.keys,
      blockedStreams: stats.blockedStreams,
      bumpsPerSecond: round(this.#bumps / seconds),
      fanOutPerSecond: round(this.#fanOutMessages / seconds),
      fanOutLagMs: {
        mean: this.#fanOuts === 0 ? 0 : round((this.#lagSecondsSum / this.#fanOuts) * 1000),
        max: round(this.#lagSecondsMax * 1000),
      },
    };
    return snapshot;
  }

  /** Starts a new interval of the rates. */
  #restartInterval(): void {
    this.#intervalStartedAt = performance.now();
    this.#bumps = 0;
    this.#fanOutMessages = 0;
    this.#fanOuts = 0;
    this.#lagSecondsSum = 0;
    this.#lagSecondsMax = 0;
  }

  /**
   * Streams snapshots to `response` as server-sent events until it closes. False (nothing
   * written) when the most viewers are already connected.
   */
  stream(response: Viewer): boolean {
    if (this.#closed || this.#viewers.size >= MAX_VIEWERS) return false;
    response.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    });
    this.#viewers.add(response);
    response.once("close", () => {
      this.#viewers.delete(response);
      if (this.#viewers.size === 0) this.#stop();
    });
    if (this.#latest !== undefined) response.write(this.#latest);
    this.#timer ??= setInterval(() => this.#broadcast(), STATUS_INTERVAL_MS).unref();
    if (this.#latest === undefined) this.#broadcast();
    return true;
  }

  /** Ends every status stream (the server is shutting down). */
  close(): void {
    this.#closed = true;
    for (const viewer of this.#viewers) viewer.end();
    this.#viewers.clear();
    this.#stop();
  }

  #broadcast(): void {
    this.#cached = { at: performance.now(), snapshot: this.#figures() };
    this.#latest = `data: ${JSON.stringify(this.#cached.snapshot)}\n\n`;
    this.#restartInterval();
    // A viewer that does not read gets no more than its socket buffers: snapshots are small,
    // and one that falls behind by a whole buffer is dropped.
    for (const viewer of this.#viewers) {
      if (viewer.writableLength > 64 << 10) viewer.destroy();
      else viewer.write(this.#latest);
    }
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#latest = undefined;
  }
}

/** The store's kind and node count, without addresses (the page may be public). */
function storeKind(redis: RedisTarget | undefined): { kind: string; nodes: number } {
  switch (redis?.mode) {
    case undefined:
      return { kind: "memory (one replica)", nodes: 0 };
    case "single":
      return { kind: "Redis", nodes: 1 };
    case "sentinel":
      return { kind: "Redis Sentinel", nodes: redis.sentinels.length };
    case "cluster":
      return { kind: "Redis Cluster", nodes: redis.nodes.length };
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
