/**
 * The contract: every semantic of GenerationService, against every store (memory, Redis,
 * Sentinel, Cluster), over a transport. A store, or a transport, passes only if it passes all
 * of this. Each transport's test file calls describeGenerationServiceContract(), so vitest runs
 * the transports side by side.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Code } from "../../src/client/index.js";
import { cleanupsAfterEach } from "./cleanups.js";
import type { ContractClient } from "./connect-client.js";
import { expectCode, expectWatchCode } from "./expect-code.js";
import { pausedWatch } from "./paused-watch.js";
import { STORE_KINDS } from "./store-kinds.js";
import { startTestServer, type TestServer } from "./test-server.js";
import { recordWatch, type WatchRecorder } from "./watch-recorder.js";

let unique = 0;
/** A key no other test uses. */
function key(name: string): string {
  return `${name}/${++unique}`;
}

/** The largest of some generations (Math.max takes no bigints). */
function maxOf(values: bigint[]): bigint {
  let max = 0n;
  for (const value of values) if (value > max) max = value;
  return max;
}

function nowMicros(): bigint {
  return BigInt(Date.now()) * 1000n;
}

/** How the suite reaches the server. */
export interface ContractTransport {
  name: string;
  /** A new client of `ts` (closed with the server). */
  client(ts: TestServer): ContractClient;
  /** The stores it runs against (default: every store). */
  stores?: readonly string[];
  /**
   * Whether its client writes JSON with protobuf-es, which cannot write a map entry named
   * "__proto__" (the server reads one: see the HTTP port's tests, which send such JSON).
   */
  jsonClient?: boolean;
}

/** Describes the whole contract over each of `transports`, on the stores each names. */
export function describeGenerationServiceContract(transports: readonly ContractTransport[]): void {
  const cleanups = cleanupsAfterEach();
  const cases = transports.flatMap((transport) =>
    STORE_KINDS.filter((kind) => transport.stores?.includes(kind.name) ?? true).map((kind) => ({ transport, kind })),
  );

  describe.each(cases)("GenerationService on the $kind.name store over $transport.name", ({ transport, kind }) => {
    let backing: Awaited<ReturnType<typeof kind.start>>;
    let ts: TestServer;
    let client: ContractClient;

    const watch = (keys: string[], known?: Record<string, bigint>, on: ContractClient = client): WatchRecorder =>
      recordWatch(cleanups, on, keys, known ? { known } : {});

    beforeAll(async () => {
      backing = await kind.start();
      ts = await startTestServer({
        ...backing.settings,
        heartbeatMs: 200,
        httpListen: { host: "127.0.0.1", port: 0 },
      });
      client = transport.client(ts);
    });

    afterAll(async () => {
      await ts?.close();
      await backing?.close();
    });

    describe("Get", () => {
      test("creates an absent key once, then returns the same generation (fetch or create)", async () => {
        const k = key("get");
        const before = nowMicros();
        const first = await client.get(k);
        expect(first).toBeGreaterThanOrEqual(before - 5_000_000n); // the store's clock, in µs
        expect(first).toBeLessThanOrEqual(nowMicros() + 5_000_000n);
        expect(await client.get(k)).toBe(first);
        expect(await client.get(k, { peek: true })).toBe(first);
      });

      test("with peek, answers 0 for an absent key and creates nothing", async () => {
        const k = key("peek");
        expect(await client.get(k, { peek: true })).toBe(0n);
        expect(await client.get(k, { peek: true })).toBe(0n);
      });

      test("concurrent creations of one key agree on one generation", async () => {
        const k = key("race");
        const results = await Promise.all(Array.from({ length: 50 }, () => client.get(k)));
        expect(new Set(results).size).toBe(1);
      });
    });

    describe("Bump", () => {
      test("creates an absent key and then advances it", async () => {
        const k = key("bump");
        const first = await client.bump(k);
        expect(first).toBeGreaterThan(0n);
        const second = await client.bump(k);
        expect(second).toBeGreaterThan(first);
        expect(await client.get(k)).toBe(second);
      });

      test("while the key exists, each Bump gives exactly the previous generation + 1 (djblets' increment)", async () => {
        const k = key("increment");
        const created = await client.get(k);
        expect(created).toBeGreaterThanOrEqual(nowMicros() - 5_000_000n); // creation takes the clock
        expect(await client.bump(k)).toBe(created + 1n);
        expect(await client.bump(k)).toBe(created + 2n);
        expect(await client.get(k, { peek: true })).toBe(created + 2n);
        // Re-creation after a Clear takes the clock again (still above every earlier value).
        await client.clear(k);
        const recreated = await client.bump(k);
        expect(recreated).toBeGreaterThan(created + 2n);
        expect(recreated).toBeGreaterThanOrEqual(nowMicros() - 5_000_000n);
        expect(await client.bump(k)).toBe(recreated + 1n);
      });

      test("1,000 concurrent Bumps of one key return 1,000 consecutive generations", async () => {
        const k = key("concurrent");
        const created = await client.get(k);
        // Uniqueness is the point, not speed: a deadline for a busy host.
        const results = await Promise.all(Array.from({ length: 1000 }, () => client.bump(k, { deadlineMs: 30_000 })));
        expect(new Set(results).size).toBe(1000);
        const max = maxOf(results);
        expect(max).toBe(created + 1000n);
        expect(await client.get(k, { peek: true })).toBe(max);
      });
    });

    describe("Clear", () => {
      test("forgets the key; the next Get creates a generation above every earlier one", async () => {
        const k = key("clear");
        const bumped = await client.bump(k);
        await client.clear(k);
        expect(await client.get(k, { peek: true })).toBe(0n);
        const recreated = await client.get(k);
        expect(recreated).toBeGreaterThan(bumped);
      });

      test("of an absent key succeeds and leaves it absent", async () => {
        const k = key("clear-absent");
        await client.clear(k);
        expect(await client.get(k, { peek: true })).toBe(0n);
      });

      // 20,000 calls: on a busy 2-core host this has taken up to a minute.
      test("Clear then Get, cycled 10,000 times, never repeats a generation", { timeout: 240_000 }, async ({
        signal,
      }) => {
        const lanes = 10;
        const cycles = 1000;
        // Generations are per key: two keys may share one (in a Cluster, two shards' clocks
        // can give the same microsecond), so each lane, on a key of its own, counts its own.
        const distinctPerLane = await Promise.all(
          Array.from({ length: lanes }, async (_, lane) => {
            const k = key(`cycle-${lane}`);
            const seen = new Set<bigint>();
            // Stops with the test if it times out, rather than loading the tests after it.
            for (let i = 0; i < cycles && !signal.aborted; i++) {
              await client.clear(k);
              seen.add(await client.get(k));
            }
            return seen.size;
          }),
        );
        expect(distinctPerLane).toEqual(Array.from({ length: lanes }, () => cycles));
      });
    });

    describe("Watch", () => {
      test("answers at once with every unknown key, absent ones as 0", async () => {
        const present = key("w-present");
        const absent = key("w-absent");
        const generation = await client.bump(present);
        const w = watch([present, absent]);
        await w.live();
        expect(w.responses[0]?.changes.map((c) => [c.key, c.generation])).toEqual([
          [present, generation],
          [absent, 0n],
        ]);
      });

      test("sends an empty first response when nothing differs from known", async () => {
        const k = key("w-known");
        const generation = await client.bump(k);
        const w = watch([k], { [k]: generation });
        await w.live();
        expect(w.responses[0]?.changes).toEqual([]);
      });

      test("reports Bump, Clear and re-creation as they happen", async () => {
        const k = key("w-changes");
        const w = watch([k]);
        await w.sees(k, 0n);
        const bumped = await client.bump(k);
        await w.sees(k, bumped);
        await client.clear(k);
        await w.sees(k, 0n);
        const recreated = await client.get(k);
        await w.sees(k, recreated);
        expect(recreated).toBeGreaterThan(bumped);
      });

      test("resuming with known sends only the keys that changed", async () => {
        const keys = Array.from({ length: 10 }, (_, i) => key(`w-resume-${i}`));
        const known: Record<string, bigint> = {};
        for (const k of keys) known[k] = await client.get(k);
        const changed = [keys[1], keys[4], keys[7]] as string[];
        const expected = new Map<string, bigint>();
        for (const k of changed) expected.set(k, await client.bump(k));
        await client.clear(keys[9] as string);
        expected.set(keys[9] as string, 0n);
        const w = watch(keys, known);
        await w.live();
        const first = w.responses[0]?.changes ?? [];
        expect(new Map(first.map((c) => [c.key, c.generation]))).toEqual(expected);
      });

      test("ignores duplicate keys and known entries for unwatched keys", async () => {
        const k = key("w-dup");
        const w = watch([k, k, k], { "not-watched": 5n });
        await w.live();
        expect(w.responses[0]?.changes.map((c) => c.key)).toEqual([k]);
      });

      test("handles keys that are special to JavaScript or long or not ASCII", async () => {
        const keys = ["__proto__", "constructor", "toString", `emoji 🎉 ${key("e")}`, "é".repeat(512)];
        await Promise.all(keys.map((k) => client.clear(k)));
        const w = watch(keys, { constructor: 0n, toString: 0n });
        await w.live();
        const generations = await Promise.all(keys.map((k) => client.bump(k)));
        for (const [i, k] of keys.entries()) await w.sees(k, generations[i] as bigint);
      });

      test.skipIf(transport.jsonClient)(
        "known counts for every key, __proto__ included: the first response holds only what differs",
        async () => {
          const keys = ["__proto__", "constructor", key("w-known-plain")];
          const generations = await Promise.all(keys.map((k) => client.bump(k)));
          // fromEntries: an object literal would set the prototype instead of a "__proto__" entry.
          const w = watch(keys, Object.fromEntries(keys.map((k, i) => [k, generations[i] as bigint])));
          await w.live();
          expect(w.responses[0]?.changes).toEqual([]);
          expect(await client.get("__proto__", { peek: true })).toBe(generations[0]);
        },
      );

      test("sends heartbeats: empty responses while nothing changes", async () => {
        const k = key("w-heartbeat");
        const w = watch([k]);
        await w.live();
        await w.until(
          (r) => r.responses.slice(1).filter((x) => x.changes.length === 0).length >= 2,
          "two heartbeats",
          5000,
        );
      });

      test("every one of 200 watchers of a key sees each change", async () => {
        const k = key("w-many");
        const recorders = Array.from({ length: 200 }, () => watch([k]));
        await Promise.all(recorders.map((w) => w.live()));
        const generation = await client.bump(k);
        await Promise.all(recorders.map((w) => w.sees(k, generation)));
        await Promise.all(recorders.map((w) => w.close()));
      });

      test("takes 10,000 keys of 1,024 bytes in one Watch, split into responses under 1 MiB", async () => {
        const keys = Array.from({ length: 10_000 }, (_, i) => key(`w-big-${i}`).padEnd(1024, "."));
        const w = watch(keys);
        await w.live(30_000);
        expect(w.responses[0]?.changes.length).toBe(10_000);
        const generation = await client.bump(keys[5_000] as string);
        await w.sees(keys[5_000] as string, generation);
        await w.close();
      });

      test("a slow watcher under thousands of bumps ends on the latest value with bounded state", async () => {
        // Long keys make every response ~1 KB, so HTTP/2 flow control engages quickly.
        const k = key("w-slow").padEnd(1000, ".");
        const other = key("w-slow-other");
        // A reader that pauses after the first response: the server's writes back up.
        const paused = pausedWatch(transport.client(ts), [k, other]);
        await paused.live;
        // A reading watcher of the same key: once it has a generation, the hub has taken in
        // every change before it (notifications are handled in order), the paused one's too.
        const fence = watch([k]);
        await fence.live();
        const bumpMany = async (count: number): Promise<bigint> => {
          let latest = 0n;
          for (let sent = 0; sent < count; sent += 100) {
            latest = maxOf([latest, ...(await Promise.all(Array.from({ length: 100 }, () => client.bump(k))))]);
          }
          await fence.sees(k, latest, 20_000);
          return latest;
        };
        // How many changes fill the transport's buffers depends on the transport (and on how
        // many changes the hub takes in together): bump until the stream is blocked.
        for (let round = 0; round < 8 && (await ts.metric("syncgen_watch_streams_blocked")) === 0; round++) {
          await bumpMany(2_500);
        }
        expect(await ts.metric("syncgen_watch_streams_blocked")).toBe(1);
        // Once blocked, it stays so; what waits is one entry per key at most.
        const last = await bumpMany(5_000);
        expect(await ts.metric("syncgen_watch_streams_blocked")).toBe(1);
        expect(await ts.metric("syncgen_watch_pending_keys")).toBe(1);
        await fence.close();
        paused.resume();
        await paused.sees(k, last);
        await paused.close();
      });

      test("a Watch of 2,500 keys closed, and its last key watched again at once, hears that key's changes", async () => {
        const keys = Array.from({ length: 2500 }, (_, i) => key(`w-rewatch-${i}`));
        const last = keys.at(-1) as string;
        const first = watch(keys);
        await first.live(30_000);
        const watched = await ts.metric("syncgen_watched_keys");
        // Releasing the first stream unsubscribes 2,500 keys (in paced batches on a Cluster); the
        // second's subscribe of the key they share must come out after that key's unsubscribe.
        await first.close();
        // Watch the last key again the moment the hub has released the first stream, while its
        // unsubscribes are still on their way.
        await expect
          .poll(() => ts.metric("syncgen_watched_keys"), { timeout: 10_000, interval: 1 })
          .toBe(watched - keys.length);
        const again = watch([last]);
        await again.live();
        const generation = await client.bump(last);
        await again.sees(last, generation);
        await again.close();
      });

      test("ends streams cancelled by the client and releases their keys", async () => {
        const k = key("w-release");
        const w = watch([k]);
        await w.live();
        const watched = await ts.metric("syncgen_watched_keys");
        await w.close();
        await expect.poll(() => ts.metric("syncgen_watched_keys"), { timeout: 5000 }).toBe(watched - 1);
      });
    });

    describe("bad input", () => {
      const tooLong = "k".repeat(1025);
      test.each([
        ["Get", (c: ContractClient, k: string) => c.get(k)],
        ["Get peek", (c: ContractClient, k: string) => c.get(k, { peek: true })],
        ["Bump", (c: ContractClient, k: string) => c.bump(k)],
        ["Clear", (c: ContractClient, k: string) => c.clear(k)],
      ])("%s: an empty or oversize key is INVALID_ARGUMENT naming the limit", async (_, call) => {
        await expectCode(call(client, ""), Code.INVALID_ARGUMENT, /key must not be empty/);
        await expectCode(
          call(client, tooLong),
          Code.INVALID_ARGUMENT,
          /key is 1025 bytes long; the limit is 1024 bytes/,
        );
        // A 1,024-byte key of multi-byte characters is fine.
        await call(client, `${"€".repeat(341)}k`);
      });

      test("Watch: no keys, too many keys, or a bad key is INVALID_ARGUMENT", async () => {
        await expectWatchCode(watch([]), Code.INVALID_ARGUMENT, /at least one key/);
        await expectWatchCode(
          watch(Array.from({ length: 10_001 }, (_, i) => `many-${i}`)),
          Code.INVALID_ARGUMENT,
          /keys has more than 10000 entries; the limit is 10000 keys per Watch/,
        );
        await expectWatchCode(watch(["fine", tooLong]), Code.INVALID_ARGUMENT, /keys\[1\] is 1025 bytes long/);
      });

      test("the server keeps serving after bad input", async () => {
        await expectCode(client.bump(""), Code.INVALID_ARGUMENT);
        expect(await client.bump(key("after-bad"))).toBeGreaterThan(0n);
      });
    });
  });
}
