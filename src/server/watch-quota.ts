/**
 * Bounds on open Watch streams, on the whole server and per client connection, so no one
 * client (or a bug in one) can hold every stream a replica can serve.
 */
import type { ServerConfig } from "./config.js";
import { Code, GenerationServiceError } from "./errors.js";

/** The stream limits. */
export type WatchLimits = Pick<ServerConfig, "maxWatchStreams" | "maxWatchStreamsPerConnection">;

/** Counts open Watch streams, in total and per connection. */
export class WatchQuota {
  #total = 0;
  readonly #byConnection = new Map<string, number>();

  constructor(private readonly limits: WatchLimits) {}

  /**
   * Takes a slot for a Watch on the connection `peer`, given back with its `release` (once,
   * however often it is called). RESOURCE_EXHAUSTED when a limit is reached.
   */
  acquire(peer: string): WatchSlot {
    const { maxWatchStreams, maxWatchStreamsPerConnection } = this.limits;
    const onConnection = this.#byConnection.get(peer) ?? 0;
    if (onConnection >= maxWatchStreamsPerConnection) {
      throw new GenerationServiceError(
        `this connection already has ${onConnection} Watch streams open, the limit per connection (server setting --max-watch-streams-per-connection); watch more keys per stream, or open another connection`,
        Code.RESOURCE_EXHAUSTED,
      );
    }
    if (this.#total >= maxWatchStreams) {
      throw new GenerationServiceError(
        `this server already has ${this.#total} Watch streams open, its limit (server setting --max-watch-streams); try another replica`,
        Code.RESOURCE_EXHAUSTED,
      );
    }
    this.#total++;
    this.#byConnection.set(peer, onConnection + 1);
    return new WatchSlot(this, peer);
  }

  /** Gives back a slot taken on `peer`: for WatchSlot.release, which calls it once. */
  giveBack(peer: string): void {
    this.#total--;
    const left = (this.#byConnection.get(peer) ?? 1) - 1;
    if (left === 0) this.#byConnection.delete(peer);
    else this.#byConnection.set(peer, left);
  }
}

/** One open Watch's place in the quota. A class, not a closure: one is held per open stream. */
export class WatchSlot {
  #released = false;

  constructor(
    private readonly quota: WatchQuota,
    private readonly peer: string,
  ) {}

  /** Gives the slot back; later calls do nothing. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.quota.giveBack(this.peer);
  }
}
