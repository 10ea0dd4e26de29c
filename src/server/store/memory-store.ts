/**
 * The embedded store: one process, no dependencies. The default when no Redis URL is given,
 * for a single replica (its data is this process's memory; replicas do not share it).
 */
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import {
  decodeRecord,
  encodeRecord,
  nextRevision,
  TOMBSTONE_MARGIN_MS,
  tombstoneTtlMs,
  type Write,
} from "./generation-scheme.js";
import {
  type ChangeFeed,
  type ChangeFeedEvents,
  checkTransition,
  type GenerationRecords,
  type GenerationStore,
  type KeyState,
  type StoreState,
  StoreUnavailableError,
} from "./generation-store.js";

/** Options of the memory store. */
export interface MemoryStoreOptions {
  /** The clock generations are taken from, in microseconds since the epoch (default: monotonic wall clock). */
  clock?: () => bigint;
}

interface MemoryRecord {
  /** The stored signed form (generation-scheme.ts). */
  value: bigint;
  /** For tombstones: when (performance.now() ms) the record may be forgotten. */
  expiresAt: number;
}

/** Microseconds since the epoch from a monotonic source, so it never steps back in-process. */
function monotonicMicros(): bigint {
  return BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
}

/** A store in this process's memory: its own records and its own change feed. */
export class MemoryStore
  extends EventEmitter<ChangeFeedEvents>
  implements GenerationRecords, ChangeFeed, GenerationStore
{
  readonly description = "memory";
  readonly records: GenerationRecords = this;
  readonly feed: ChangeFeed = this;
  #state: StoreState = "connecting";
  readonly #records = new Map<string, MemoryRecord>();
  readonly #subscriptions = new Set<string>();
  readonly #clock: () => bigint;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: MemoryStoreOptions = {}) {
    super();
    this.#clock = options.clock ?? monotonicMicros;
    // Expired tombstones are also ignored on read; the sweep only bounds memory.
    this.#sweeper = setInterval(() => this.#sweep(), TOMBSTONE_MARGIN_MS).unref();
  }

  get state(): StoreState {
    return this.#state;
  }

  async connect(): Promise<void> {
    this.#ensureOpen();
    if (this.#state === "connecting") this.#setState("ready", "memory store created");
  }

  async get(key: string): Promise<bigint> {
    this.#ensureReady();
    const current = this.#load(key);
    return current.generation > 0n ? current.generation : this.#write(key, current, "create").generation;
  }

  async bump(key: string): Promise<bigint> {
    this.#ensureReady();
    return this.#write(key, this.#load(key), "bump").generation;
  }

  async clear(key: string): Promise<void> {
    this.#ensureReady();
    const current = this.#load(key);
    // Clearing an absent key changes nothing; a live key becomes a tombstone.
    if (current.generation > 0n) this.#write(key, current, "clear");
  }

  async read(keys: readonly string[]): Promise<KeyState[]> {
    this.#ensureReady();
    return keys.map((key) => this.#load(key));
  }

  async subscribe(keys: readonly string[]): Promise<void> {
    this.#ensureReady();
    for (const key of keys) this.#subscriptions.add(key);
  }

  async unsubscribe(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.#subscriptions.delete(key);
  }

  async close(): Promise<void> {
    if (this.#state === "closed") return;
    clearInterval(this.#sweeper);
    this.#setState("closed", "what it held in memory is dropped");
  }

  #load(key: string): KeyState {
    const record = this.#records.get(key);
    if (record === undefined) return decodeRecord(null);
    if (record.expiresAt <= performance.now()) {
      this.#records.delete(key);
      return decodeRecord(null);
    }
    return decodeRecord(record.value);
  }

  #write(key: string, previous: KeyState, write: Write): KeyState {
    // The clock is read once, and only by a write that needs it.
    let now: bigint | undefined;
    const clock = (): bigint => {
      now ??= this.#clock();
      return now;
    };
    const revision = nextRevision(previous, write, clock);
    const state: KeyState = { generation: write === "clear" ? 0n : revision, revision };
    const expiresAt =
      write === "clear"
        ? performance.now() + tombstoneTtlMs(revision, clock(), TOMBSTONE_MARGIN_MS)
        : Number.POSITIVE_INFINITY;
    this.#records.set(key, { value: encodeRecord(state), expiresAt });
    if (this.#subscriptions.has(key)) this.emit("change", key, state);
    return state;
  }

  #sweep(): void {
    const now = performance.now();
    for (const [key, record] of this.#records) {
      if (record.expiresAt <= now) this.#records.delete(key);
    }
  }

  #setState(state: StoreState, reason: string): void {
    checkTransition(this.#state, state, this.description);
    this.#state = state;
    this.emit("state", state, reason);
  }

  #ensureOpen(): void {
    if (this.#state === "closed") throw new StoreUnavailableError("the store is closed");
  }

  #ensureReady(): void {
    this.#ensureOpen();
    if (this.#state !== "ready") throw new StoreUnavailableError("the store is not connected yet");
  }
}
