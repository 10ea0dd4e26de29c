/**
 * The two interfaces between the RPC layer and storage, one per consumer:
 *
 * - the records (GenerationRecords): get, bump, clear and read, what the RPC handlers need;
 * - the change feed (ChangeFeed): subscriptions, change and resync notifications, and the
 *   store's one state, what the watch hub, health and metrics need.
 *
 * A store (GenerationStore) is the pair, connected and closed together. The rules (the
 * generation scheme, level-triggered merging) live in generation-scheme.ts and the watch hub,
 * shared by every store; a store implements storage, not rules.
 */
import type { EventEmitter } from "node:events";

/** A key's state as a store holds it. */
export interface KeyState {
  /** The current generation; 0n when the key is absent (never created, or cleared). */
  readonly generation: bigint;
  /**
   * Orders the states of one key: every write (create, bump, clear) gets a higher revision
   * than any before it. 0n means nothing is recorded (absent, and no recent clear). Watchers
   * use it to tell a stale change notification from a fresh one.
   */
  readonly revision: bigint;
}

/** An absent key of which nothing is recorded. */
export const ABSENT: KeyState = Object.freeze({ generation: 0n, revision: 0n });

/**
 * A store's state. Transitions: `connecting -> ready`, `connecting -> unavailable` (the first
 * attempt failed; it keeps trying), `ready -> unavailable`, `unavailable -> ready` (after
 * which the feed emits `resync`), and any state `-> closed`.
 */
export type StoreState = "connecting" | "ready" | "unavailable" | "closed";

/** The transitions StoreState documents. */
const TRANSITIONS: Readonly<Record<StoreState, readonly StoreState[]>> = {
  connecting: ["ready", "unavailable", "closed"],
  ready: ["unavailable", "closed"],
  unavailable: ["ready", "closed"],
  closed: [],
};

/** Throws unless `from -> to` is a transition StoreState documents: a store attempting another has a bug. */
export function checkTransition(from: StoreState, to: StoreState, store: string): void {
  if (!TRANSITIONS[from].includes(to)) throw new Error(`store ${store}: no transition from ${from} to ${to}`);
}

/** The records: what the RPC handlers need. Every call fails with StoreUnavailableError unless the store is `ready`. */
export interface GenerationRecords {
  /** Returns the key's generation, creating one if absent ("fetch or create"). */
  get(key: string): Promise<bigint>;
  /** Advances the key's generation (creating one if absent) and returns it. */
  bump(key: string): Promise<bigint>;
  /** Forgets the key, leaving a tombstone so a re-created key never repeats a generation. */
  clear(key: string): Promise<void>;
  /** Reads keys without creating anything; one state per key, in order. */
  read(keys: readonly string[]): Promise<KeyState[]>;
}

/** What a change feed emits. */
export interface ChangeFeedEvents {
  /** A subscribed key changed (on this replica or another). May arrive out of order: compare revisions. */
  change: [key: string, state: KeyState];
  /**
   * The feed was interrupted and is whole again: notifications may have been lost, so every
   * subscribed key must be read again. The states read are authoritative (they may even go
   * back, when the store lost its data).
   */
  resync: [];
  /** The store's state changed; `reason` says why, for the log. */
  state: [state: StoreState, reason: string];
}

/** The change feed: notifications for the keys someone subscribed to, and the store's state. */
export interface ChangeFeed extends EventEmitter<ChangeFeedEvents> {
  /** The store's one state: the records serve, and the feed notifies, only while `ready`. */
  readonly state: StoreState;
  /** A short description for logs, e.g. "memory" or "redis 127.0.0.1:6379". */
  readonly description: string;
  /** Starts notifications for keys; resolves once changes made from now on will be emitted. */
  subscribe(keys: readonly string[]): Promise<void>;
  /** Stops notifications for keys. */
  unsubscribe(keys: readonly string[]): Promise<void>;
}

/** A store: its records and its change feed, over the same data and connections. */
export interface GenerationStore {
  readonly records: GenerationRecords;
  readonly feed: ChangeFeed;
  /** Connects; resolves once `ready` (retrying through failures), rejects only if closed first. */
  connect(): Promise<void>;
  /** Closes connections; every later call fails. */
  close(): Promise<void>;
}

/**
 * The store cannot serve the call now (connection down, timed out, Redis refusing writes).
 * The RPC layer answers it with UNAVAILABLE: the caller may retry.
 */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Resolves once `feed` is ready; rejects if it is closed (already, or first). */
export function untilReady(feed: ChangeFeed): Promise<void> {
  if (feed.state === "ready") return Promise.resolve();
  if (feed.state === "closed") return Promise.reject(new StoreUnavailableError("the store is closed"));
  return new Promise<void>((resolve, reject) => {
    const onState = (state: StoreState): void => {
      if (state !== "ready" && state !== "closed") return;
      feed.off("state", onState);
      if (state === "ready") resolve();
      else reject(new StoreUnavailableError("the store was closed while connecting"));
    };
    feed.on("state", onState);
  });
}
