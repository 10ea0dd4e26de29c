/**
 * The hub's ordering rules, driven through a real MemoryStore whose change feed we also feed
 * by hand: notifications can arrive late (pub/sub and reads travel on different Redis
 * connections), and after a resync a read is authoritative even when it goes back.
 */

import { describe, expect, test } from "vitest";
import type { WatchResponse } from "../../src/gen/generation/v1/generation_pb.js";
import type { ResponseSink } from "../../src/server/handler.js";
import type { KeyState } from "../../src/server/store/generation-store.js";
import { MemoryStore } from "../../src/server/store/memory-store.js";
import { WatchHub } from "../../src/server/watch-hub.js";
import { cleanupsAfterEach } from "../helpers/cleanups.js";
import { Condition, withDeadline } from "../helpers/deadline.js";

class RecordingSink implements ResponseSink<WatchResponse> {
  readonly responses: [string, bigint][][] = [];
  writable = true;
  #drain: (() => void) | undefined;
  readonly #sent = new Condition();
  send(response: WatchResponse): boolean {
    this.responses.push(response.changes.map((c) => [c.key, c.generation]));
    this.#sent.notify();
    return this.writable;
  }
  onDrain(listener: () => void): void {
    this.#drain = listener;
  }
  drain(): void {
    this.writable = true;
    this.#drain?.();
  }
  /** Waits for the n-th response. */
  response(n: number): Promise<[string, bigint][]> {
    return this.#sent.until(() => this.responses[n], 2000, `response ${n}`);
  }
  /** Waits for a response that `matches`. */
  responseThat(matches: (changes: [string, bigint][]) => boolean, ms: number, what: string): Promise<unknown> {
    return this.#sent.until(() => this.responses.find(matches), ms, what);
  }
}

/** A sink whose every write costs 20 µs of CPU, as a real stream's write costs some. */
class CostlySink extends RecordingSink {
  override send(response: WatchResponse): boolean {
    const until = performance.now() + 0.02;
    while (performance.now() < until) {
      // spinning: the cost of a write
    }
    return super.send(response);
  }
}

/** The hub's `end` for streams whose end no test looks at. */
const unended = (): void => {};

const cleanups = cleanupsAfterEach();

async function setup(): Promise<{ store: MemoryStore; hub: WatchHub }> {
  const store = new MemoryStore();
  cleanups.push(() => store.close());
  await store.connect();
  const hub = new WatchHub(store, store, { heartbeatMs: 60_000 });
  return { store, hub };
}

/** Lets pending setImmediate work (the hub's fan-out) run. */
const fanOutRuns = () => new Promise((resolve) => setImmediate(resolve));

describe("WatchHub", () => {
  test("a late notification older than what the stream has is ignored", async () => {
    const { store, hub } = await setup();
    const first = await store.bump("k");
    const second = await store.bump("k");
    const sink = new RecordingSink();
    hub.open(sink, ["k"], new Map(), unended);
    expect(await sink.response(0)).toEqual([["k", second]]);
    store.emit("change", "k", { generation: first, revision: first });
    await fanOutRuns();
    await fanOutRuns();
    expect(sink.responses).toHaveLength(1);
    const third = await store.bump("k");
    expect(await sink.response(1)).toEqual([["k", third]]);
    hub.shutdown();
  });

  test("after a resync a read wins even when it goes back (the store lost its data)", async () => {
    const { store, hub } = await setup();
    const sink = new RecordingSink();
    const generation = await store.bump("k");
    hub.open(sink, ["k"], new Map(), unended);
    expect(await sink.response(0)).toEqual([["k", generation]]);
    // The hub is told of a state the store no longer has (as after Redis lost its data).
    const lost = generation + 1_000_000n;
    store.emit("change", "k", { generation: lost, revision: lost });
    expect(await sink.response(1)).toEqual([["k", lost]]);
    store.emit("resync");
    expect(await sink.response(2)).toEqual([["k", generation]]);
    hub.shutdown();
  });

  test("subscribes before it reads: a write between the two is not lost", async () => {
    // A store where a write lands exactly while the hub subscribes.
    class RacingStore extends MemoryStore {
      override async subscribe(keys: readonly string[]): Promise<void> {
        await this.bump("k");
        await super.subscribe(keys);
      }
    }
    const store = new RacingStore();
    cleanups.push(() => store.close());
    await store.connect();
    const before = await store.bump("k");
    const hub = new WatchHub(store, store, { heartbeatMs: 60_000 });
    const sink = new RecordingSink();
    hub.open(sink, ["k"], new Map([["k", before]]), unended);
    const [[, generation] = ["", 0n]] = await sink.response(0);
    expect(generation).toBeGreaterThan(before);
    expect(generation).toBe((await store.read(["k"]))[0]?.generation);
    hub.shutdown();
  });

  test("a stream released while its keys load in batches leaves no key subscribed", async () => {
    // A store that counts subscriptions, holds the first subscribe until told, and says when
    // it is first read.
    class CountingStore extends MemoryStore {
      readonly subscribed = new Set<string>();
      release: (() => void) | undefined;
      readonly firstSubscribe = new Promise<void>((resolve) => {
        this.release = resolve;
      });
      markRead: (() => void) | undefined;
      readonly firstRead = new Promise<void>((resolve) => {
        this.markRead = resolve;
      });
      override async subscribe(keys: readonly string[]): Promise<void> {
        const first = this.subscribed.size === 0;
        for (const key of keys) this.subscribed.add(key);
        if (first) await this.firstSubscribe;
        await super.subscribe(keys);
      }
      override async unsubscribe(keys: readonly string[]): Promise<void> {
        for (const key of keys) this.subscribed.delete(key);
        await super.unsubscribe(keys);
      }
      override async read(keys: readonly string[]): Promise<KeyState[]> {
        const states = await super.read(keys);
        this.markRead?.();
        return states;
      }
    }
    const store = new CountingStore();
    cleanups.push(() => store.close());
    await store.connect();
    const hub = new WatchHub(store, store, { heartbeatMs: 60_000 });
    // 2,500 keys: three batches of subscribe-then-read; the stream goes during the first.
    const keys = Array.from({ length: 2500 }, (_, i) => `k${i}`);
    const stream = hub.open(new RecordingSink(), keys, new Map(), unended);
    stream.close();
    store.release?.();
    await withDeadline(store.firstRead, 2000, "the first batch's read");
    await fanOutRuns();
    expect(store.subscribed.size).toBe(0);
    expect(hub.stats().keys).toBe(0);
    hub.shutdown();
  });

  test("a blocked stream is written nothing until drain, then gets only the latest", async () => {
    const { store, hub } = await setup();
    const sink = new RecordingSink();
    sink.writable = false;
    hub.open(sink, ["a", "b"], new Map(), unended);
    await sink.response(0); // the first response is written, and blocks
    for (let i = 0; i < 100; i++) await store.bump("a");
    const latestA = await store.bump("a");
    const latestB = await store.bump("b");
    await fanOutRuns();
    expect(sink.responses.length).toBe(1);
    expect(hub.stats()).toMatchObject({ streams: 1, blockedStreams: 1, pendingKeys: 2 });
    sink.drain();
    expect(await sink.response(1)).toEqual([
      ["a", latestA],
      ["b", latestB],
    ]);
    hub.shutdown();
  });

  test("refuses new streams with UNAVAILABLE while the store is not ready", async () => {
    const { store, hub } = await setup();
    await store.close();
    const ended: string[] = [];
    hub.open(new RecordingSink(), ["k"], new Map(), (error) => ended.push(`${error.code}: ${error.message}`));
    expect(ended).toEqual(["14: the store (memory) is closed; retry"]);
    expect(hub.stats().keys).toBe(0);
  });

  test("the last watcher of a key releases its subscription", async () => {
    const { hub } = await setup();
    const one = hub.open(new RecordingSink(), ["k", "j"], new Map(), unended);
    const two = hub.open(new RecordingSink(), ["k"], new Map(), unended);
    expect(hub.stats().keys).toBe(2);
    one.close();
    expect(hub.stats().keys).toBe(1); // k, which `two` still watches
    two.close();
    expect(hub.stats().keys).toBe(0);
  });

  test("fans out in slices: other work runs between them, and every stream gets the change once", async () => {
    const { store, hub } = await setup();
    const sinks = Array.from({ length: 2000 }, () => new CostlySink());
    for (const sink of sinks) hub.open(sink, ["k"], new Map(), unended);
    await Promise.all(sinks.map((sink) => sink.response(0)));
    const written = (): number => sinks.filter((sink) => sink.responses.length === 2).length;
    const generation = await store.bump("k");
    // Queued right after the change, as the reply to the Bump that made it is.
    const writtenWhenOtherWorkRan = await new Promise<number>((resolve) => setImmediate(() => resolve(written())));
    expect(writtenWhenOtherWorkRan).toBeGreaterThan(0);
    expect(writtenWhenOtherWorkRan).toBeLessThan(sinks.length / 10);
    await Promise.all(sinks.map((sink) => sink.response(1)));
    await fanOutRuns();
    expect(sinks.every((sink) => sink.responses.length === 2 && sink.responses[1]?.[0]?.[1] === generation)).toBe(true);
    hub.shutdown();
  });

  test("a key that changes all the time keeps neither a drained stream from its other keys nor heartbeats from streams", async () => {
    const store = new MemoryStore();
    cleanups.push(() => store.close());
    await store.connect();
    const hub = new WatchHub(store, store, { heartbeatMs: 50 });
    cleanups.push(() => hub.shutdown());
    // Each pass over the hot key's watchers takes many slices.
    const hotWatchers = Array.from({ length: 1000 }, () => new CostlySink());
    for (const sink of hotWatchers) hub.open(sink, ["hot"], new Map(), unended);
    const late = new RecordingSink();
    hub.open(late, ["hot", "cold"], new Map(), unended);
    const quiet = new RecordingSink();
    hub.open(quiet, ["quiet"], new Map(), unended);
    await Promise.all([...hotWatchers, late, quiet].map((sink) => sink.response(0)));
    // `late` blocks on a change of the hot key, then misses one of the cold key.
    late.writable = false;
    await store.bump("hot");
    await late.response(1);
    const cold = await store.bump("cold");
    // From now on the hot key always has a pass in progress or waiting.
    const hammer = setInterval(() => void store.bump("hot"), 1);
    cleanups.push(() => clearInterval(hammer));
    late.drain();
    await late.responseThat(
      (changes) => changes.some(([key, generation]) => key === "cold" && generation === cold),
      20_000,
      "the drained stream's missed change of the cold key",
    );
    await quiet.responseThat((changes) => changes.length === 0, 20_000, "a heartbeat to the stream of a quiet key");
  });

  test("a change that comes while its key is being fanned out reaches every stream, the latest last", async () => {
    const { store, hub } = await setup();
    const sinks = Array.from({ length: 1000 }, () => new CostlySink());
    for (const sink of sinks) hub.open(sink, ["k"], new Map(), unended);
    await Promise.all(sinks.map((sink) => sink.response(0)));
    await store.bump("k");
    // A second Bump lands between two slices of the first one's fan-out.
    const second = await new Promise<bigint>((resolve) => setImmediate(() => resolve(store.bump("k"))));
    await Promise.all(sinks.map((sink) => sink.response(1)));
    for (const sink of sinks) {
      await sink.response(sink.responses.length === 2 && sink.responses[1]?.[0]?.[1] === second ? 1 : 2);
    }
    await fanOutRuns();
    for (const sink of sinks) {
      // Level-triggered: each stream ends at the latest, having got at most both.
      expect(sink.responses.at(-1)).toEqual([["k", second]]);
      expect(sink.responses.length).toBeLessThanOrEqual(3);
    }
    hub.shutdown();
  });
});
