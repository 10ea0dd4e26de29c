/**
 * The one interface between the RPC layer and storage. A store implements storage and its
 * change feed; the rules (validation, the generation scheme, level-triggered merging) live
 * in generation-scheme.ts and the watch hub, shared by every store.
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
 * A store's connection state. Transitions: `connecting -> ready`, `connecting -> unavailable`
 * (the first attempt failed; it keeps trying), `ready -> unavailable`, `unavailable -> ready`
 * (after which the store emits `resync`), and any state `-> closed`.
 */
export type StoreState = "connecting" | "ready" | "unavailable" | "closed";

/** What a store emits. */
export interface StoreEvents {
  /** A subscribed key changed (on this replica or another). May arrive out of order: compare revisions. */
  change: [key: string, state: KeyState];
  /**
   * The change feed was interrupted and is whole again: notifications may have been lost,
   * so every subscribed key must be read again. The states read are authoritative (they
   * may even go back, when the store lost its data).
   */
  resync: [];
  /** The connection state changed; `reason` says why, for the log. */
  state: [state: StoreState, reason: string];
}

/** Storage for generations, with a change feed for the keys someone subscribed to. */
export interface GenerationStore extends EventEmitter<StoreEvents> {
  /** What the store can do now. Calls fail with StoreUnavailableError unless `ready`. */
  readonly state: StoreState;
  /** A short description for logs, e.g. "memory" or "redis 127.0.0.1:6379". */
  readonly description: string;
  /** Connects; resolves once `ready` (retrying through failures), rejects only if closed first. */
  connect(): Promise<void>;
  /** Returns the key's generation, creating one if absent ("fetch or create"). */
  get(key: string): Promise<bigint>;
  /** Advances the key's generation (creating one if absent) and returns it. */
  bump(key: string): Promise<bigint>;
  /** Forgets the key, leaving a tombstone so a re-created key never repeats a generation. */
  clear(key: string): Promise<void>;
  /** Reads keys without creating anything; one state per key, in order. */
  read(keys: readonly string[]): Promise<KeyState[]>;
  /** Starts the change feed for keys; resolves once changes made from now on will be emitted. */
  subscribe(keys: readonly string[]): Promise<void>;
  /** Stops the change feed for keys. */
  unsubscribe(keys: readonly string[]): Promise<void>;
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
