/**
 * GenerationSynchronizer: djblets' own behaviour cases (djblets/cache/tests/
 * test_synchronizer.py) ported, in poll mode and in watch mode, against a real server on a
 * real Redis; then what watch mode adds.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Code, type GenerationClient, GenerationSynchronizer, type SynchronizerOptions } from "../src/client/index.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { Condition } from "./helpers/deadline.js";
import { expectCode } from "./helpers/expect-code.js";
import { freePort } from "./helpers/free-port.js";
import { RedisProcess, sharedRedis, uniquePrefix } from "./helpers/redis-process.js";
import { nextExpiry } from "./helpers/synchronizer.js";
import { isolatedClient } from "./helpers/test-client.js";
import { startTestServer, type TestServer } from "./helpers/test-server.js";
import { recordWatch } from "./helpers/watch-recorder.js";

/** Collects what a synchronizer logs. */
class MemoryLogger {
  readonly lines: string[] = [];
  warn(message: string): void {
    this.lines.push(message);
  }
}

/** Resolves once the synchronizer's shared stream is live for its key (watch mode). */
async function whenLive(sync: GenerationSynchronizer, ms = 5000): Promise<void> {
  await expect.poll(() => sync.live, { timeout: ms, interval: 5 }).toBe(true);
}

let redis: Awaited<ReturnType<typeof sharedRedis>>;
let prefix: string;
let replicaA: TestServer;
let replicaB: TestServer;
const cleanups = cleanupsAfterEach();

function client(of: TestServer = replicaA): GenerationClient {
  return isolatedClient(cleanups, of.address);
}

async function synchronizer(
  on: GenerationClient,
  key: string | string[],
  options: SynchronizerOptions = {},
): Promise<GenerationSynchronizer> {
  const sync = await GenerationSynchronizer.create(on, key, { cacheKey: { prefix: "example.com" }, ...options });
  cleanups.push(() => sync.close());
  return sync;
}

let unique = 0;
const name = (base: string): string => `${base}-${++unique}`;

beforeAll(async () => {
  redis = await sharedRedis();
  prefix = redis.prefix();
  [replicaA, replicaB] = await Promise.all([
    startTestServer({ redis: redis.target, prefix }),
    startTestServer({ redis: redis.target, prefix }),
  ]);
});

afterAll(async () => {
  await Promise.all([replicaA?.close(), replicaB?.close()]);
  await redis?.close();
});

describe.each([
  { mode: "poll", watch: false },
  { mode: "watch", watch: true },
])("GenerationSynchronizer ($mode mode): djblets' cases", ({ watch }) => {
  /** After another writer's change: in watch mode, wait for the stream to tell. */
  async function afterOthersChange(sync: GenerationSynchronizer, change: () => Promise<unknown>): Promise<void> {
    if (!watch) {
      await change();
      return;
    }
    await whenLive(sync);
    const expiry = nextExpiry(sync);
    await change();
    await expiry;
  }

  test("initial state: the cache key is normalised and syncGen is set", async () => {
    const sync = await synchronizer(client(), "test-synchronizer", { watch });
    expect(sync.cacheKey).toBe("example.com:test-synchronizer");
    expect(sync.syncGen).not.toBeNull();
    expect(await client().get(sync.cacheKey, { peek: true })).toBe(sync.syncGen);
  });

  test("is expired after another writer's bump", async () => {
    const key = name("expired");
    const sync = await synchronizer(client(), key, { watch });
    const other = client(replicaB);
    await afterOthersChange(sync, () => other.bump(sync.cacheKey));
    expect(await sync.isExpired()).toBe(true);
  });

  test("is not expired when nothing changed", async () => {
    const sync = await synchronizer(client(), name("unchanged"), { watch });
    expect(await sync.isExpired()).toBe(false);
    if (watch) {
      await whenLive(sync);
      expect(await sync.isExpired()).toBe(false);
    }
  });

  test("is expired while the service is down, logging one line per action however often it checks", async () => {
    const logger = new MemoryLogger();
    const errors: string[] = [];
    const dead = isolatedClient(cleanups, `127.0.0.1:${await freePort()}`);
    const started = Date.now();
    const sync = await synchronizer(dead, name("down"), {
      watch,
      logger,
      checkDeadlineMs: 200,
      onError: (error, action) => errors.push(`${action}: ${Code[error.code]}`),
    });
    expect(sync.syncGen).toBeNull();
    for (let i = 0; i < 5; i++) expect(await sync.isExpired()).toBe(true);
    // One short attempt per call, never seconds of retries.
    expect(Date.now() - started).toBeLessThan(2000);
    // Creating and five checks failed: each told to onError, and each action logged once.
    expect(errors).toEqual(["refreshing: UNAVAILABLE", ...Array(5).fill("checking: UNAVAILABLE")]);
    expect(logger.lines).toHaveLength(2);
    expect(logger.lines[0]).toMatch(/refreshing generation of cache key "example\.com:down-\d+" failed: UNAVAILABLE/);
    expect(logger.lines[1]).toMatch(/checking generation of cache key "example\.com:down-\d+" failed: UNAVAILABLE/);
  });

  test("refresh adopts the shared generation", async () => {
    const sync = await synchronizer(client(), name("refresh"), { watch });
    const bumped = await client(replicaB).bump(sync.cacheKey);
    await sync.refresh();
    expect(sync.syncGen).toBe(bumped);
    expect(await sync.isExpired()).toBe(false);
  });

  test("clear makes everyone expired, the clearing instance included, and keeps syncGen", async () => {
    const key = name("clear");
    const mine = await synchronizer(client(), key, { watch });
    const theirs = await synchronizer(client(replicaB), key, { watch });
    const before = mine.syncGen;
    await afterOthersChange(theirs, () => mine.clear());
    expect(mine.syncGen).toBe(before);
    expect(await mine.isExpired()).toBe(true);
    expect(await theirs.isExpired()).toBe(true);
    expect(await client().get(mine.cacheKey, { peek: true })).toBe(0n);
  });

  test("markUpdated bumps and adopts: the writer stays current, the others expire", async () => {
    const key = name("mark");
    const writer = await synchronizer(client(), key, { watch });
    const reader = await synchronizer(client(replicaB), key, { watch });
    const before = writer.syncGen ?? 0n;
    await afterOthersChange(reader, () => writer.markUpdated());
    expect(writer.syncGen).toBeGreaterThan(before);
    expect(await client().get(writer.cacheKey, { peek: true })).toBe(writer.syncGen);
    expect(await writer.isExpired()).toBe(false);
    expect(await reader.isExpired()).toBe(true);
  });

  test("markUpdated on a cleared key creates a fresh generation and adopts it", async () => {
    const sync = await synchronizer(client(), name("mark-cleared"), { watch });
    await sync.clear();
    await sync.markUpdated();
    expect(sync.syncGen).toBeGreaterThan(0n);
    expect(await sync.isExpired()).toBe(false);
  });

  test("a list key behaves the same, escaped as djblets escapes it", async () => {
    const id = name("list");
    const sync = await synchronizer(client(), ["teams:7", id], { watch });
    expect(sync.cacheKey).toBe(`example.com:teams%3A7:${id}`);
    expect(await sync.isExpired()).toBe(false);
    await afterOthersChange(sync, () => client(replicaB).bump(sync.cacheKey));
    expect(await sync.isExpired()).toBe(true);
  });

  test("without normalisation, a list key is a TypeError before any call", async () => {
    const dead = isolatedClient(cleanups, `127.0.0.1:${await freePort()}`);
    await expect(GenerationSynchronizer.create(dead, ["a", "b"], { normalizeCacheKey: false, watch })).rejects.toThrow(
      TypeError,
    );
    const verbatim = await synchronizer(client(), `raw key ${name("raw")}`, { normalizeCacheKey: false, watch });
    expect(verbatim.cacheKey).toMatch(/^raw key raw-\d+$/);
  });
});

describe("GenerationSynchronizer in watch mode", () => {
  test("a Bump through replica B expires a synchronizer on replica A without any call to A", async () => {
    const sync = await synchronizer(client(), name("no-rpc"), { watch: true });
    await whenLive(sync);
    const callsBefore = await replicaA.callsStarted();
    for (let i = 0; i < 1000; i++) expect(await sync.isExpired()).toBe(false);
    const expiry = nextExpiry(sync);
    const bumped = await client(replicaB).bump(sync.cacheKey);
    expect(await expiry).toBe(bumped);
    for (let i = 0; i < 1000; i++) expect(await sync.isExpired()).toBe(true);
    expect(await replicaA.callsStarted()).toBe(callsBefore);
  });

  test("all synchronizers of a client share one Watch stream", async () => {
    const c = client();
    const syncs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => synchronizer(c, name(`shared-${i}`), { watch: true })),
    );
    await Promise.all(syncs.map((s) => whenLive(s)));
    // Replica A serves this client alone: one stream, every synchronizer's key on it.
    await expect.poll(() => replicaA.metric("syncgen_watch_streams")).toBe(1);
    expect(await replicaA.metric("syncgen_watched_keys")).toBe(20);
    // A late joiner restarts the one stream with one more key; the old stream goes away.
    const late = await synchronizer(c, name("late-joiner"), { watch: true });
    await whenLive(late);
    await expect.poll(() => replicaA.metric("syncgen_watched_keys")).toBe(21);
    await expect.poll(() => replicaA.metric("syncgen_watch_streams")).toBe(1);
  });

  test("after markUpdated or refresh it reads as current at once", async () => {
    const key = name("current-at-once");
    const sync = await synchronizer(client(), key, { watch: true });
    await whenLive(sync);
    const calls = await replicaA.callsStarted();
    await sync.markUpdated();
    expect(await sync.isExpired()).toBe(false);
    await client(replicaB).bump(sync.cacheKey);
    await sync.refresh();
    expect(await sync.isExpired()).toBe(false);
    // markUpdated and refresh are the only calls: the checks were answered from memory.
    expect(await replicaA.callsStarted()).toBe(calls + 2);
  });

  test("synchronizers of one key on one client are told of each other's writes, and of a Clear", async () => {
    const c = client();
    const key = name("one-key-two-synchronizers");
    const writer = await synchronizer(c, key, { watch: true });
    const reader = await synchronizer(c, key, { watch: true });
    await Promise.all([whenLive(writer), whenLive(reader)]);
    for (let i = 0; i < 3; i++) {
      // The Bump's reply may come before the stream's report of it: the reader is told anyway.
      const told = nextExpiry(reader, 30_000);
      await writer.markUpdated();
      expect(await told).toBe(writer.syncGen);
      await reader.refresh();
    }
    const toldWriter = nextExpiry(writer, 30_000);
    const toldReader = nextExpiry(reader, 30_000);
    await writer.clear();
    expect([await toldWriter, await toldReader]).toEqual([0n, 0n]);
  });

  test("update() writes before bumping; load() notes the generation before loading", async () => {
    const key = name("order");
    const writer = await synchronizer(client(), key, { watch: true });
    const reader = await synchronizer(client(replicaB), key, { watch: true });
    await whenLive(reader);
    const atWrite = await writer.update(async () => client().get(writer.cacheKey, { peek: true }));
    expect(atWrite).toBe(reader.syncGen); // nobody had been told yet while writing
    expect(writer.syncGen).not.toBe(atWrite);
    // A change during load: the generation noted is the one before it, so the reader expires.
    const loaded = await reader.load(async () => {
      await client().bump(reader.cacheKey);
      return "data";
    });
    expect(loaded).toBe("data");
    await expect.poll(() => reader.isExpired()).toBe(true);
  });
});

describe("GenerationSynchronizer across a server restart", () => {
  test("reconnects and notices a Bump made while it was away", async () => {
    const port = await freePort();
    const settings = { redis: redis.target, prefix, listen: { host: "127.0.0.1", port: port } };
    let server = await startTestServer(settings);
    // The server in place when the test ends, whichever that is.
    cleanups.push(() => server.close());
    const c = isolatedClient(cleanups, `127.0.0.1:${port}`);
    const sync = await synchronizer(c, name("restart"), { watch: true });
    await whenLive(sync);
    await server.close();
    await expect.poll(() => sync.live).toBe(false);
    const bumped = await client(replicaB).bump(sync.cacheKey);
    const expiry = nextExpiry(sync, 10_000);
    server = await startTestServer(settings);
    expect(await expiry).toBe(bumped);
    await whenLive(sync);
    expect(await sync.isExpired()).toBe(true);
  });
});

describe("the write helpers when the service goes away", () => {
  test("update() rejects when its bump fails after the write, saying readers were not told", async () => {
    const ts = await startTestServer({}, { cleanups });
    const sync = await synchronizer(isolatedClient(cleanups, ts.address), name("update-fails"));
    let written = false;
    const update = sync.update(async () => {
      // The service goes away between the write and the bump.
      await ts.close();
      written = true;
    });
    await expectCode(
      update,
      Code.UNAVAILABLE,
      /^UNAVAILABLE: the data was written, but bumping the generation of cache key "example\.com:update-fails-\d+" failed, so readers were not told: cannot reach 127\.0\.0\.1:\d+: connection refused/,
    );
    expect(written).toBe(true);
  });

  test("markUpdated() stays fail-safe, but every failure reaches onError, and a failed check does not hide it in the log", async () => {
    const logger = new MemoryLogger();
    const errors: string[] = [];
    const ts = await startTestServer({}, { cleanups });
    const key = name("mark-fails");
    const sync = await synchronizer(isolatedClient(cleanups, ts.address), key, {
      logger,
      onError: (error, action) => errors.push(`${action}: ${Code[error.code]}`),
    });
    await ts.close();
    expect(await sync.isExpired()).toBe(true);
    await sync.markUpdated();
    await sync.markUpdated();
    expect(errors).toEqual([
      "checking: UNAVAILABLE",
      "marking as updated: UNAVAILABLE",
      "marking as updated: UNAVAILABLE",
    ]);
    expect(logger.lines.map((line) => line.split(" generation")[0])).toEqual([
      "syncgen: checking",
      "syncgen: marking as updated",
    ]);
  });
});

describe("watch mode when the server refuses the stream", () => {
  test('the refusal reaches onError as "watching", checks fall back to calls, and the stream is tried again', async () => {
    const ts = await startTestServer({ maxWatchStreams: 1 }, { cleanups });
    // The server's one stream is taken.
    const taken = recordWatch(cleanups, isolatedClient(cleanups, ts.address), ["taken"]);
    await taken.live();
    const errors: string[] = [];
    const failed = new Condition();
    const sync = await synchronizer(isolatedClient(cleanups, ts.address), name("refused-watch"), {
      watch: true,
      onError: (error, action) => {
        errors.push(`${action}: ${Code[error.code]}`);
        failed.notify();
      },
    });
    await failed.until(() => (errors.length > 0 ? true : undefined), 10_000, "onError");
    expect(errors).toEqual(["watching: RESOURCE_EXHAUSTED"]);
    expect(sync.live).toBe(false);
    expect(await sync.isExpired()).toBe(false);
    // The quota frees up: the stream is tried again (after about a second) and goes live.
    await taken.close();
    await whenLive(sync, 30_000);
  });
});

describe("GenerationClient retries", () => {
  test("Get and Clear retry through a Redis outage; Bump does not", async () => {
    const own = await RedisProcess.start();
    cleanups.push(() => own.stop());
    const ts = await startTestServer({ redis: own.target, prefix: uniquePrefix() }, { cleanups });
    const c = ts.newClient({ backoff: { initialMs: 20, maxMs: 100 } });
    await own.kill();
    await expect.poll(() => ts.store.feed.state).toBe("unavailable");
    await expectCode(c.bump("k"), Code.UNAVAILABLE);
    const get = c.get("k", { deadlineMs: 10_000 });
    const clear = c.clear("k", { deadlineMs: 10_000 });
    await own.restart();
    expect(await get).toBeGreaterThan(0n);
    await clear;
  });
});
