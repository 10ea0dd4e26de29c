/**
 * Watch fan-out: one table of watched keys per process, shared by every Watch stream.
 *
 * - One store subscription per key however many streams watch it; a key's first watcher
 *   subscribes and then reads it (subscribe first, so no change falls in between), later
 *   watchers are answered from the table without touching the store.
 * - Level-triggered: the table keeps only each key's latest state, ordered by revision, so a
 *   stale notification never overwrites a fresh read. Per key and stream, only the generation
 *   last sent is kept, and whether that is out of date — bounded by the stream's keys, never
 *   by the rate of changes. Transport backpressure is honoured: while a stream cannot take
 *   more it is skipped, and on drain it gets what is latest.
 * - While the store is not ready nothing in the table is trusted: new streams are refused
 *   with UNAVAILABLE, and after the store's `resync` every watched key is read again and
 *   streams get what differs, so no latest value is lost to a dropped pub/sub message.
 * - Fan-out happens on a later turn of the event loop, never inside the write that caused it,
 *   and each change is one response object for all the streams it goes to (the transport
 *   encodes it once).
 * - Fan-out works in slices of at most FAN_OUT_SLICE_MS and yields to other I/O between them,
 *   so the reply to the Bump that caused it (and every other call) leaves after one slice,
 *   not after the last of its 10,000 watchers. A change that comes while its key is being
 *   fanned out goes to the streams not yet reached at once, and to the others next.
 */
import { create } from "@bufbuild/protobuf";
import {
  type KeyGeneration,
  KeyGenerationSchema,
  type WatchResponse,
  WatchResponseSchema,
} from "../gen/generation/v1/generation_pb.js";
import { Code, GenerationServiceError, toServiceError } from "./errors.js";
import type { ResponseSink } from "./handler.js";
import {
  ABSENT,
  type ChangeFeed,
  type GenerationRecords,
  type KeyState,
  type StoreState,
} from "./store/generation-store.js";

/** Ends a Watch stream with an error status. */
export type EndWatch = (error: GenerationServiceError) => void;

/** Options of the hub. */
export interface WatchHubOptions {
  /** How often a live, idle stream gets an empty response. */
  heartbeatMs: number;
  /** Called when a resync read fails (it is retried with backoff); once per resync, for the log. */
  onResyncError?: (error: unknown) => void;
}

/** Sees the fan-out of each change notification. */
export interface FanOutObserver {
  /** A notified change went out as `messages` responses, `lagSeconds` after it reached the hub. */
  fannedOut(messages: number, lagSeconds: number): void;
}

/** An open Watch stream, as its handler sees it. */
export interface WatchStream {
  /** The keys it watches (distinct). */
  readonly keys: readonly string[];
  /** Stops its updates and releases its keys. Idempotent. */
  close(): void;
}

/** What the hub holds, for metrics. */
export interface WatchHubStats {
  /** Open streams. */
  readonly streams: number;
  /** Distinct keys watched (= store subscriptions). */
  readonly keys: number;
  /** Streams the transport asked to wait for drain: nothing is written to them until then. */
  readonly blockedStreams: number;
  /** Keys whose latest generation waits for a blocked stream's drain (at most one entry per key and stream). */
  readonly pendingKeys: number;
}

/** The message a stream ends with when the server shuts down. */
export const SHUTDOWN_MESSAGE = "the server is shutting down; reconnect to another replica";

/** The `loaded` of an entry whose state was read after the last reconnect. */
const LOADED = Promise.resolve();

/** Largest response the hub writes, in bytes: well under every client's 4 MiB default. */
const MAX_RESPONSE_BYTES = 1 << 20;
/** How many keys one store command covers when keys are loaded or read again. */
const STORE_BATCH = 1000;
/**
 * The longest stretch of fan-out before it yields to other I/O. Short enough that a call
 * waiting behind it barely notices (grpc-js takes a few event-loop turns to send a reply,
 * and each turn may run one slice); long enough that yielding (one turn, a few µs) costs
 * little against the writes done in it. Measured by `npm run bench` (a Bump's round trip
 * while 10,000 watchers of its key are served, against a Bump of an unwatched key): 1 ms
 * slices made it about 2x, 0.25 ms 1.3-2x, 0.1 ms about 1.1x.
 */
const FAN_OUT_SLICE_MS = 0.1;
/** Bounds of the pause before a failed resync read is tried again. */
const RESYNC_RETRY_MS = { initial: 100, max: 5000 };

/** A watched key: its latest known state and the streams that watch it. */
interface KeyEntry {
  readonly key: string;
  state: KeyState;
  /**
   * The streams that watch it, each with the generation last sent to it (or known by its
   * client; undefined: the client holds nothing). Kept here rather than per stream: a stream
   * of one key, the usual Watch, then needs no table of its own.
   */
  readonly streams: Map<Stream, bigint | undefined>;
  /** Settles once the entry holds a state read after subscribing; undefined: must (re)load. */
  loaded: Promise<void> | undefined;
  /** When a notification last changed it (performance.now()), until it is fanned out. */
  notifiedAt?: number | undefined;
}

/** A key being fanned out: where its pass over its streams has got to. */
interface FanOutPass {
  readonly entry: KeyEntry;
  readonly streams: Iterator<Stream>;
  /** The response for the key's latest generation, made when first needed. */
  response: WatchResponse | undefined;
  messages: number;
  /** When the notification that started it reached the hub, for the lag metric. */
  readonly notifiedAt: number | undefined;
}

/** A stream's state; only the hub touches it. */
class Stream implements WatchStream {
  /**
   * Keys whose latest generation may differ from what the stream was sent: made when a
   * change finds the stream blocked (most streams never are), dropped once it is flushed.
   */
  dirty: Set<string> | undefined;
  live = false;
  blocked = false;
  closed = false;

  constructor(
    readonly hub: WatchHub,
    readonly sink: ResponseSink<WatchResponse>,
    readonly end: EndWatch,
    readonly keys: readonly string[],
  ) {}

  close(): void {
    this.hub.release(this);
  }
}

/** The process's watch fan-out over one store. */
export class WatchHub {
  readonly #feed: ChangeFeed;
  readonly #records: Pick<GenerationRecords, "read">;
  readonly #options: WatchHubOptions;
  readonly #entries = new Map<string, KeyEntry>();
  readonly #streams = new Set<Stream>();
  /** Entries changed since the last fan-out. */
  readonly #changed = new Set<KeyEntry>();
  /** Streams that drained with keys pending. */
  readonly #drained = new Set<Stream>();
  /** The key whose fan-out a slice ended in the middle of. */
  #pass: FanOutPass | undefined;
  /** Streams still to get this beat's heartbeat, when a beat is being sent. */
  #heartbeats: Iterator<Stream> | undefined;
  /** The work the next fan-out slice starts with: 0 changes, 1 drained streams, 2 heartbeats. */
  #firstWork = 0;
  #fanOutScheduled = false;
  readonly #heartbeat: NodeJS.Timeout;
  /** Bumped on every resync so an older, slower one gives up. */
  #resyncRound = 0;
  #shutDown = false;
  readonly #observers: FanOutObserver[] = [];

  /** Watches through `feed`, and reads the keys it watches from `records`. */
  constructor(feed: ChangeFeed, records: Pick<GenerationRecords, "read">, options: WatchHubOptions) {
    this.#feed = feed;
    this.#records = records;
    this.#options = options;
    feed.on("change", this.#onChange);
    feed.on("resync", this.#onResync);
    feed.on("state", this.#onState);
    this.#heartbeat = setInterval(() => this.#sendHeartbeats(), options.heartbeatMs).unref();
  }

  /** Reports every change fanned out to `observer` (metrics, the status page). */
  observe(observer: FanOutObserver): void {
    this.#observers.push(observer);
  }

  /** What the hub holds now (counted on demand: metrics ask every scrape, not every change). */
  stats(): WatchHubStats {
    let blockedStreams = 0;
    let pendingKeys = 0;
    for (const stream of this.#streams) {
      if (stream.blocked) blockedStreams++;
      pendingKeys += stream.dirty?.size ?? 0;
    }
    return { streams: this.#streams.size, keys: this.#entries.size, blockedStreams, pendingKeys };
  }

  /**
   * Opens a stream on `keys` (distinct, validated) whose client holds the `known`
   * generations. The first response goes out once every key's state is known; if the store
   * cannot serve, `end` ends the stream with UNAVAILABLE.
   */
  open(
    sink: ResponseSink<WatchResponse>,
    keys: readonly string[],
    known: ReadonlyMap<string, bigint>,
    end: EndWatch,
  ): WatchStream {
    const stream = new Stream(this, sink, end, keys);
    const refusal = this.#shutDown
      ? SHUTDOWN_MESSAGE
      : this.#feed.state !== "ready"
        ? `the store (${this.#feed.description}) is ${this.#feed.state}; retry`
        : undefined;
    if (refusal !== undefined) {
      stream.closed = true;
      end(new GenerationServiceError(refusal, Code.UNAVAILABLE));
      return stream;
    }
    this.#streams.add(stream);
    const toLoad: KeyEntry[] = [];
    const loads = new Set<Promise<void>>();
    for (const key of keys) {
      let entry = this.#entries.get(key);
      if (entry === undefined) {
        entry = { key, state: ABSENT, streams: new Map(), loaded: undefined };
        this.#entries.set(key, entry);
      }
      entry.streams.set(stream, known.get(key));
      if (entry.loaded === undefined) toLoad.push(entry);
      else loads.add(entry.loaded);
    }
    if (toLoad.length > 0) loads.add(this.#load(toLoad));
    Promise.all(loads).then(
      () => this.#goLive(stream),
      (error: unknown) => {
        if (stream.closed) return;
        end(toServiceError(error));
        this.release(stream);
      },
    );
    return stream;
  }

  /** Releases a stream's keys; the last watcher of a key unsubscribes it. */
  release(stream: WatchStream): void {
    if (!(stream instanceof Stream) || stream.closed) return;
    stream.closed = true;
    this.#streams.delete(stream);
    this.#drained.delete(stream);
    const unwatched: string[] = [];
    for (const key of stream.keys) {
      const entry = this.#entries.get(key);
      if (entry === undefined) continue;
      entry.streams.delete(stream);
      if (entry.streams.size === 0) {
        this.#entries.delete(key);
        this.#changed.delete(entry);
        unwatched.push(key);
      }
    }
    // A failed unsubscribe leaves a harmless extra subscription until the next reconnect.
    if (unwatched.length > 0) this.#feed.unsubscribe(unwatched).catch(() => {});
  }

  /** Ends every stream with UNAVAILABLE (clients reconnect elsewhere), refuses new ones, and lets go of the feed. */
  shutdown(): void {
    this.#shutDown = true;
    clearInterval(this.#heartbeat);
    this.#feed.off("change", this.#onChange);
    this.#feed.off("resync", this.#onResync);
    this.#feed.off("state", this.#onState);
    const error = new GenerationServiceError(SHUTDOWN_MESSAGE, Code.UNAVAILABLE);
    for (const stream of [...this.#streams]) {
      stream.end(error);
      this.release(stream);
    }
  }

  /**
   * Subscribes, then reads, then records the states (unless a newer change already came),
   * in batches: one command for 10,000 keys could outlast the store's command timeout.
   */
  #load(entries: KeyEntry[]): Promise<void> {
    const loaded = (async () => {
      for (let start = 0; start < entries.length; start += STORE_BATCH) {
        // Keys whose last watcher left meanwhile were released (and unsubscribed): skip them.
        const batch = entries
          .slice(start, start + STORE_BATCH)
          .filter((entry) => this.#entries.get(entry.key) === entry);
        if (batch.length === 0) continue;
        const keys = batch.map((entry) => entry.key);
        await this.#feed.subscribe(keys);
        const states = await this.#records.read(keys);
        for (const [index, entry] of batch.entries()) this.#apply(entry, states[index] ?? ABSENT, "read");
      }
    })();
    for (const entry of entries) entry.loaded = loaded;
    loaded.catch(() => {
      // Let the next watcher of these keys try again.
      for (const entry of entries) if (entry.loaded === loaded) entry.loaded = undefined;
    });
    return loaded;
  }

  /**
   * Records a key's state. A notification must be newer than what is held; a read taken
   * after subscribing is at least as new as anything notified before it, so it wins ties.
   */
  #apply(entry: KeyEntry, state: KeyState, source: "read" | "notification"): void {
    const newer = source === "read" ? state.revision >= entry.state.revision : state.revision > entry.state.revision;
    if (!newer) return;
    const changed = state.generation !== entry.state.generation;
    entry.state = state;
    if (changed) {
      if (source === "notification") entry.notifiedAt ??= performance.now();
      this.#changed.add(entry);
      this.#scheduleFanOut();
    }
  }

  readonly #onChange = (key: string, state: KeyState): void => {
    const entry = this.#entries.get(key);
    if (entry !== undefined) this.#apply(entry, state, "notification");
  };

  readonly #onResync = (): void => void this.#resync();

  /** What the table holds may go stale while the store is away: new watchers must read. */
  readonly #onState = (state: StoreState): void => {
    if (state !== "ready") for (const entry of this.#entries.values()) entry.loaded = undefined;
  };

  #goLive(stream: Stream): void {
    if (stream.closed) return;
    stream.live = true;
    // The first response is sent even when nothing differs: it says the watch is live.
    this.#flush(stream, stream.keys, true);
  }

  #scheduleFanOut(): void {
    if (this.#fanOutScheduled) return;
    this.#fanOutScheduled = true;
    setImmediate(() => this.#fanOut());
  }

  /**
   * Serialize once, write many: a change goes to every stream that can take it as one
   * response encoded once. A blocked stream only notes the key; on drain it gets one
   * response with the latest of everything it missed. Runs for one slice, and schedules
   * itself again while work is left. Each slice starts with the next kind of work in turn
   * (changes, drained streams, heartbeats), so a key that changes all the time, whose pass
   * never ends, cannot starve the other two.
   */
  #fanOut(): void {
    this.#fanOutScheduled = false;
    const deadline = performance.now() + FAN_OUT_SLICE_MS;
    const sliceOver = (): boolean => {
      if (performance.now() < deadline) return false;
      this.#scheduleFanOut();
      return true;
    };
    const first = this.#firstWork;
    this.#firstWork = (first + 1) % 3;
    for (let turn = 0; turn < 3; turn++) {
      const work = (first + turn) % 3;
      const done =
        work === 0
          ? this.#sendChanges(sliceOver)
          : work === 1
            ? this.#flushDrained(sliceOver)
            : this.#sendBeat(sliceOver);
      if (!done) return;
    }
  }

  /** Fans out changed keys until none is left (true) or the slice is over (false). */
  #sendChanges(sliceOver: () => boolean): boolean {
    for (;;) {
      const pass = this.#pass ?? this.#nextPass();
      if (pass === undefined) return true;
      this.#pass = pass;
      if (!this.#continuePass(pass, sliceOver)) return false;
      this.#pass = undefined;
    }
  }

  /** Sends drained streams what they missed while blocked, until done (true) or the slice is over (false). */
  #flushDrained(sliceOver: () => boolean): boolean {
    for (const stream of this.#drained) {
      this.#drained.delete(stream);
      const { dirty } = stream;
      if (dirty !== undefined && !stream.blocked && !stream.closed) {
        stream.dirty = undefined;
        this.#flush(stream, dirty, false);
      }
      if (sliceOver()) return false;
    }
    return true;
  }

  /** Sends the beat under way to its remaining streams, until done (true) or the slice is over (false). */
  #sendBeat(sliceOver: () => boolean): boolean {
    for (let step = this.#heartbeats?.next(); step?.done === false; step = this.#heartbeats?.next()) {
      const stream = step.value;
      if (stream.live && !stream.blocked) this.#send(stream, HEARTBEAT);
      if (sliceOver()) return false;
    }
    this.#heartbeats = undefined;
    return true;
  }

  /** Starts the fan-out of the next changed key, if any. */
  #nextPass(): FanOutPass | undefined {
    const next = this.#changed.values().next();
    if (next.done) return undefined;
    const entry = next.value;
    this.#changed.delete(entry);
    const { notifiedAt } = entry;
    // A notification during the pass starts the lag of the next one.
    entry.notifiedAt = undefined;
    return { entry, streams: entry.streams.keys(), response: undefined, messages: 0, notifiedAt };
  }

  /** Sends the key's latest generation to its streams until done (true) or the slice is over (false). */
  #continuePass(pass: FanOutPass, sliceOver: () => boolean): boolean {
    const { entry } = pass;
    for (let step = pass.streams.next(); !step.done; step = pass.streams.next()) {
      const stream = step.value;
      // The latest: a change that came during the pass goes to the streams not yet reached.
      const { key } = entry;
      const { generation } = entry.state;
      if (stream.live) {
        if (stream.blocked) {
          stream.dirty ??= new Set();
          stream.dirty.add(key);
        } else if (entry.streams.get(stream) !== generation) {
          entry.streams.set(stream, generation);
          if (pass.response?.changes[0]?.generation !== generation) {
            pass.response = create(WatchResponseSchema, {
              changes: [create(KeyGenerationSchema, { key, generation })],
            });
          }
          this.#send(stream, pass.response);
          pass.messages++;
        }
      }
      if (sliceOver()) return false;
    }
    if (pass.notifiedAt !== undefined && pass.messages > 0) {
      const lagSeconds = (performance.now() - pass.notifiedAt) / 1000;
      for (const observer of this.#observers) observer.fannedOut(pass.messages, lagSeconds);
    }
    return true;
  }

  /**
   * Sends each of `keys` whose latest generation the stream lacks: one response, or several
   * of at most MAX_RESPONSE_BYTES each, all but the last marked `continued`.
   */
  #flush(stream: Stream, keys: Iterable<string>, always: boolean): void {
    let changes: KeyGeneration[] = [];
    let bytes = 0;
    for (const key of keys) {
      // Every key of an open stream has its entry.
      const entry = this.#entries.get(key);
      if (entry === undefined) continue;
      const { generation } = entry.state;
      if (entry.streams.get(stream) === generation) continue;
      entry.streams.set(stream, generation);
      // A KeyGeneration costs its key, a varint generation and a few bytes of framing.
      const size = Buffer.byteLength(key) + 16;
      if (bytes + size > MAX_RESPONSE_BYTES && changes.length > 0) {
        this.#send(stream, create(WatchResponseSchema, { changes, continued: true }));
        changes = [];
        bytes = 0;
      }
      changes.push(create(KeyGenerationSchema, { key, generation }));
      bytes += size;
    }
    if (changes.length > 0 || always) this.#send(stream, create(WatchResponseSchema, { changes }));
  }

  #send(stream: Stream, response: WatchResponse): void {
    if (stream.sink.send(response) || stream.blocked) return;
    stream.blocked = true;
    stream.sink.onDrain(() => {
      stream.blocked = false;
      if (stream.closed || stream.dirty === undefined) return;
      this.#drained.add(stream);
      this.#scheduleFanOut();
    });
  }

  /** Starts a beat: every live stream that can take it gets a heartbeat, in slices. */
  #sendHeartbeats(): void {
    // A beat not finished within a whole interval is superseded: each stream gets one.
    this.#heartbeats = this.#streams.values();
    this.#scheduleFanOut();
  }

  /** Reads every watched key again; the reads are authoritative, even if they go back. */
  async #resync(): Promise<void> {
    const round = ++this.#resyncRound;
    for (const entry of this.#entries.values()) {
      // Forget the ordering: after data loss a key's revision may legitimately go back.
      entry.state = { generation: entry.state.generation, revision: 0n };
    }
    const entries = [...this.#entries.values()];
    let retryMs = RESYNC_RETRY_MS.initial;
    let reported = false;
    for (let start = 0; start < entries.length; ) {
      if (round !== this.#resyncRound || this.#shutDown) return;
      const batch = entries.slice(start, start + STORE_BATCH);
      try {
        const states = await this.#records.read(batch.map((entry) => entry.key));
        for (const [index, entry] of batch.entries()) {
          this.#apply(entry, states[index] ?? ABSENT, "read");
          // Fresh again: new watchers of this key can be answered from the table.
          entry.loaded ??= LOADED;
        }
        start += STORE_BATCH;
      } catch (error) {
        if (!reported) this.#options.onResyncError?.(error);
        reported = true;
        // Down again: the next `resync` starts over. Otherwise retry this batch, backing off.
        if (this.#feed.state !== "ready") return;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * retryMs));
        retryMs = Math.min(retryMs * 2, RESYNC_RETRY_MS.max);
      }
    }
  }
}

/** The heartbeat: one empty response for every stream and every beat. */
const HEARTBEAT = create(WatchResponseSchema);
