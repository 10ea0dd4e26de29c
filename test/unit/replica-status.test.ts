/** The status page's snapshots: made once per interval however many look, and only while someone does. */
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { ReplicaStatus, STATUS_INTERVAL_MS } from "../../src/server/replica-status.js";
import { MemoryStore } from "../../src/server/store/memory-store.js";
import { WatchHub } from "../../src/server/watch-hub.js";
import { cleanupsAfterEach } from "../helpers/cleanups.js";

const cleanups = cleanupsAfterEach();

/** A status stream's response, as far as ReplicaStatus writes to it. */
class FakeViewer {
  readonly written: string[] = [];
  writableLength = 0;
  #onClose: (() => void) | undefined;
  writeHead(): this {
    return this;
  }
  write(text: string): boolean {
    this.written.push(text);
    return true;
  }
  once(_event: "close", listener: () => void): this {
    this.#onClose = listener;
    return this;
  }
  end(): this {
    this.#onClose?.();
    return this;
  }
  destroy(): this {
    return this.end();
  }
}

describe("ReplicaStatus", () => {
  let status: ReplicaStatus;
  /** A snapshot's cost: it walks the hub's streams. */
  let snapshots: ReturnType<typeof vi.spyOn>;

  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "setTimeout", "clearTimeout", "Date", "performance"] });
    const store = new MemoryStore();
    await store.connect();
    const hub = new WatchHub(store.feed, store.records, { heartbeatMs: 60_000 });
    cleanups.push(
      () => hub.shutdown(),
      () => store.close(),
    );
    status = new ReplicaStatus({ feed: store.feed, hub, redis: undefined, auth: () => false });
    snapshots = vi.spyOn(hub, "stats");
  });
  afterEach(() => {
    status.close();
    vi.useRealTimers();
  });

  test("50 viewers cost one snapshot per interval, and all get the same text", () => {
    const viewers = Array.from({ length: 50 }, () => new FakeViewer());
    // The test's fakes stand for either HTTP version's response.
    for (const viewer of viewers) expect(status.stream(viewer as never)).toBe(true);
    vi.advanceTimersByTime(5 * STATUS_INTERVAL_MS);
    expect(snapshots).toHaveBeenCalledTimes(6);
    for (const viewer of viewers) expect(viewer.written).toEqual(viewers[0]?.written);
    expect(viewers[0]?.written).toHaveLength(6);
  });

  test("no snapshots while nobody looks; asked often, one per interval; rates count from the last one sent", () => {
    const viewer = new FakeViewer();
    status.stream(viewer as never);
    viewer.end();
    vi.advanceTimersByTime(10 * STATUS_INTERVAL_MS);
    expect(snapshots).toHaveBeenCalledTimes(1);
    status.bumped();
    status.fannedOut(10, 0.002);
    const figures = status.snapshot();
    expect(figures.bumpsPerSecond).toBeGreaterThan(0);
    expect(figures.fanOutLagMs).toEqual({ mean: 2, max: 2 });
    for (let i = 0; i < 100; i++) status.snapshot();
    expect(snapshots).toHaveBeenCalledTimes(2);
  });

  test("after shutdown, no new viewers", () => {
    status.close();
    expect(status.stream(new FakeViewer() as never)).toBe(false);
  });

  test("a viewer that stops reading is dropped, not buffered for", () => {
    const slow = new FakeViewer();
    status.stream(slow as never);
    slow.writableLength = 1 << 20;
    const destroyed = vi.spyOn(slow, "destroy");
    vi.advanceTimersByTime(STATUS_INTERVAL_MS);
    expect(destroyed).toHaveBeenCalled();
  });
});
