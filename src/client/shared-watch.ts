/**
 * One Watch stream per client, shared by all its synchronizers in watch mode. A key that
 * joins or leaves restarts the stream with the new key set and `known` set to what is
 * already held (so the server answers only what differs); the old stream keeps serving
 * until the new one is live ("make before break").
 */
import type { KeyGeneration } from "../gen/generation/v1/generation_pb.js";
import type { GenerationClient } from "./generation-client.js";

/** Who watches a key through the shared stream. */
export interface KeyListener {
  /** The key's new generation (0n: absent). */
  changed(generation: bigint): void;
  /** The stream ended with an error it cannot resume from (e.g. PERMISSION_DENIED). */
  failed(error: unknown): void;
}

interface WatchedKey {
  /** The latest generation known for the key; undefined until a stream reported it. */
  generation: bigint | undefined;
  readonly listeners: Set<KeyListener>;
}

interface StreamRun {
  readonly keys: ReadonlySet<string>;
  readonly abort: AbortController;
  live: boolean;
}

/** The shared Watch of one client. */
export class SharedWatch {
  readonly #client: GenerationClient;
  readonly #keys = new Map<string, WatchedKey>();
  /** The stream whose reports are current. */
  #active: StreamRun | undefined;
  /** A stream started for a new key set, not yet live. */
  #next: StreamRun | undefined;
  #restartScheduled = false;
  /** Refusals in a row, and the pending retry after the last one. */
  #refusals = 0;
  #refusedRetry: NodeJS.Timeout | undefined;

  constructor(client: GenerationClient) {
    this.#client = client;
  }

  /** Watches `key`, telling `listener` of each change and of a failure; returns the function that stops. */
  join(key: string, listener: KeyListener): () => void {
    let entry = this.#keys.get(key);
    if (entry === undefined) {
      entry = { generation: undefined, listeners: new Set() };
      this.#keys.set(key, entry);
      this.#scheduleRestart();
    }
    entry.listeners.add(listener);
    return () => {
      const current = this.#keys.get(key);
      if (!current?.listeners.delete(listener) || current.listeners.size > 0) return;
      this.#keys.delete(key);
      this.#scheduleRestart();
    };
  }

  /**
   * The key's generation as the live stream reports it, or undefined when no live stream
   * covers the key (then only a call to the server can tell).
   */
  current(key: string): bigint | undefined {
    const stream = this.#active;
    if (stream === undefined || !stream.live || !stream.keys.has(key)) return undefined;
    return this.#keys.get(key)?.generation;
  }

  /**
   * Records a generation the caller just got from the server (Get, Bump, Clear), which may
   * be newer than what the stream has reported so far; the key's listeners are told (the
   * caller's own compares it with what it just adopted).
   */
  observe(key: string, generation: bigint): void {
    const entry = this.#keys.get(key);
    if (entry !== undefined) this.#record(entry, generation);
  }

  /** Ends every stream. */
  close(): void {
    clearTimeout(this.#refusedRetry);
    this.#keys.clear();
    this.#next?.abort.abort();
    this.#active?.abort.abort();
    this.#next = this.#active = undefined;
  }

  /** After a refusal: restarts the stream after a wait of 1 s, doubling up to 1 min. */
  #retryRefused(): void {
    const waitMs = Math.min(REFUSED_RETRY_MS.max, REFUSED_RETRY_MS.initial * 2 ** this.#refusals++);
    clearTimeout(this.#refusedRetry);
    // Jittered, so clients refused together do not come back together.
    this.#refusedRetry = setTimeout(() => this.#scheduleRestart(), waitMs * (0.5 + Math.random() / 2));
    this.#refusedRetry.unref();
  }

  #scheduleRestart(): void {
    if (this.#restartScheduled) return;
    this.#restartScheduled = true;
    // Keys that join in the same turn (many synchronizers created at once) share a restart.
    queueMicrotask(() => {
      this.#restartScheduled = false;
      this.#restart();
    });
  }

  #restart(): void {
    this.#next?.abort.abort();
    this.#next = undefined;
    if (this.#keys.size === 0) {
      this.#active?.abort.abort();
      this.#active = undefined;
      return;
    }
    const run: StreamRun = { keys: new Set(this.#keys.keys()), abort: new AbortController(), live: false };
    this.#next = run;
    const known: Record<string, bigint> = {};
    for (const [key, entry] of this.#keys) if (entry.generation !== undefined) known[key] = entry.generation;
    void this.#consume(run, known);
  }

  async #consume(run: StreamRun, known: Record<string, bigint>): Promise<void> {
    try {
      for await (const event of this.#client.watch([...run.keys], { known, signal: run.abort.signal })) {
        if (event.type === "live") {
          run.live = true;
          this.#refusals = 0;
          if (this.#next === run) {
            this.#active?.abort.abort();
            this.#active = run;
            this.#next = undefined;
          }
          this.#apply(run, event.changes);
        } else if (event.type === "changes") {
          this.#apply(run, event.changes);
        } else if (event.type === "down") {
          run.live = false;
        }
      }
    } catch (error) {
      // Refused for good (PERMISSION_DENIED, RESOURCE_EXHAUSTED, ...): checks fall back to
      // calls, whoever watches the keys of this stream is told, and the stream is tried again
      // later, slowly, in case what refused it changes (a token's access, a freed quota).
      for (const key of run.keys)
        for (const listener of [...(this.#keys.get(key)?.listeners ?? [])]) listener.failed(error);
      if (this.#active === run || this.#next === run) this.#retryRefused();
    } finally {
      run.live = false;
    }
  }

  #apply(run: StreamRun, changes: KeyGeneration[]): void {
    if (this.#active !== run) return;
    for (const change of changes) {
      const entry = this.#keys.get(change.key);
      if (entry !== undefined) this.#record(entry, change.generation);
    }
  }

  /**
   * Keeps `generation` unless it is what is held or older, and tells the key's listeners.
   * A report older than what observe() recorded is the stream catching up: skipped.
   */
  #record(entry: WatchedKey, generation: bigint): void {
    if (entry.generation === generation || !isNewer(generation, entry.generation)) return;
    entry.generation = generation;
    for (const listener of [...entry.listeners]) listener.changed(generation);
  }
}

/** Bounds of the wait before a refused stream is tried again. */
const REFUSED_RETRY_MS = { initial: 1000, max: 60_000 };

/**
 * Whether `candidate` supersedes `held`. Live generations of a key only grow (each write
 * takes a larger number), so a smaller non-zero one is stale; 0 (cleared) always counts.
 */
function isNewer(candidate: bigint, held: bigint | undefined): boolean {
  return held === undefined || held === 0n || candidate === 0n || candidate > held;
}
