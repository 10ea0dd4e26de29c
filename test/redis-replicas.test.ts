/**
 * Many replicas, one Redis: changes cross replicas, Bumps never collide, one subscription
 * per key per process; and Redis faults: down, hung, restarted empty under live watches.
 */
import { Redis } from "ioredis";
import { beforeEach, describe, expect, test } from "vitest";
import { Code, type GenerationServiceError } from "../src/client/index.js";
import { decodeRecord } from "../src/server/store/generation-scheme.js";
import { RedisKeys } from "../src/server/store/redis-keys.js";
import { WRITE_SCRIPT } from "../src/server/store/redis-scripts.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { waitForEvent } from "./helpers/deadline.js";
import { expectCode, expectWatchCode } from "./helpers/expect-code.js";
import { healthClient } from "./helpers/grpc-peers.js";
import { RedisProcess, uniquePrefix } from "./helpers/redis-process.js";
import { startTestServer, type TestServer } from "./helpers/test-server.js";
import { recordWatch } from "./helpers/watch-recorder.js";

const cleanups = cleanupsAfterEach();

describe("two replicas sharing one Redis", () => {
  let redis: RedisProcess;
  let a: TestServer;
  let b: TestServer;
  let prefix: string;

  beforeEach(async () => {
    redis = await RedisProcess.start();
    cleanups.push(() => redis.stop());
    prefix = uniquePrefix();
    [a, b] = await Promise.all([
      startTestServer({ redis: redis.target, prefix }, { cleanups }),
      startTestServer({ redis: redis.target, prefix }, { cleanups }),
    ]);
  });

  test("a watcher on replica A sees Bump and Clear made on replica B", async () => {
    const w = recordWatch(cleanups, a.client, ["shared"]);
    await w.sees("shared", 0n);
    const bumped = await b.client.bump("shared");
    await w.sees("shared", bumped);
    await b.client.clear("shared");
    await w.sees("shared", 0n);
    const recreated = await b.client.get("shared");
    await w.sees("shared", recreated);
  });

  test("concurrent Bumps on both replicas never return the same generation", async () => {
    const bumps = (server: TestServer) =>
      // Uniqueness is the point, not speed: deadlines for a busy host.
      Promise.all(Array.from({ length: 500 }, () => server.client.bump("contended", { deadlineMs: 30_000 })));
    const [fromA, fromB] = await Promise.all([bumps(a), bumps(b)]);
    expect(new Set([...fromA, ...fromB]).size).toBe(1000);
  });

  test("a server with another prefix on the same Redis shares nothing with them", async () => {
    const other = await startTestServer({ redis: redis.target, prefix: uniquePrefix() }, { cleanups });
    const w = recordWatch(cleanups, other.client, ["isolated"]);
    await w.sees("isolated", 0n);
    await a.client.bump("isolated");
    expect(await other.client.get("isolated", { peek: true })).toBe(0n);
    const own = await other.client.bump("isolated");
    await w.sees("isolated", own);
    expect(w.responses.flatMap((r) => r.changes).map((c) => c.generation)).toEqual([0n, own]);
  });

  test("each replica holds one Redis subscription per key, however many watchers it has", async () => {
    const recorders = [
      ...Array.from({ length: 3 }, () => recordWatch(cleanups, a.client, ["popular"])),
      ...Array.from({ length: 2 }, () => recordWatch(cleanups, b.client, ["popular", "other"])),
    ];
    await Promise.all(recorders.map((r) => r.live()));
    const probe = new Redis(redis.url);
    try {
      const names = new RedisKeys(prefix);
      const [popular, other] = [names.channel("popular"), names.channel("other")];
      const counts = (await probe.pubsub("NUMSUB", popular, other)) as (string | number)[];
      expect(counts.map(String)).toEqual([popular, "2", other, "1"]);
    } finally {
      probe.disconnect();
    }
  });

  test("the CLI's bump, get and watch work against two replicas", async () => {
    const { CliProcess, runCli } = await import("./helpers/cli.js");
    const watch = new CliProcess(["watch", "--server", a.address, "cli-key"]);
    cleanups.push(() => watch.stop());
    await watch.line((l) => l === "cli-key\t0");
    const bumped = (await runCli(["bump", "--server", b.address, "cli-key"])).stdout.trim();
    expect(bumped).toMatch(/^\d+$/);
    await watch.line((l) => l === `cli-key\t${bumped}`);
    expect((await runCli(["get", "--server", a.address, "cli-key"])).stdout.trim()).toBe(bumped);
    await runCli(["clear", "--server", b.address, "cli-key"]);
    await watch.line((l) => l === "cli-key\t0");
    expect((await runCli(["get", "--peek", "--server", a.address, "cli-key"])).stdout.trim()).toBe("0");
  });
});

describe("Redis faults", () => {
  let redis: RedisProcess;
  let ts: TestServer;
  let prefix: string;

  beforeEach(async () => {
    redis = await RedisProcess.start();
    cleanups.push(() => redis.stop());
    prefix = uniquePrefix();
    ts = await startTestServer({ redis: redis.target, prefix, redisTimeoutMs: 300 }, { cleanups });
  });

  test("Redis down: every RPC fails fast with UNAVAILABLE, and recovers by itself", async () => {
    const down = waitForEvent(ts.store.feed, "state", (s) => s === "unavailable", 5000);
    await redis.kill();
    await down;
    const started = Date.now();
    // retry: false shows the server's own answer (the client would retry Get and Clear).
    await expectCode(ts.client.get("k", { retry: false }), Code.UNAVAILABLE);
    await expectCode(ts.client.get("k", { peek: true, retry: false }), Code.UNAVAILABLE);
    await expectCode(ts.client.bump("k"), Code.UNAVAILABLE);
    await expectCode(ts.client.clear("k", { retry: false }), Code.UNAVAILABLE);
    await expectWatchCode(
      recordWatch(cleanups, ts.client, ["k"]),
      Code.UNAVAILABLE,
      /the store \(redis 127\.0\.0\.1:\d+\) is unavailable; retry/,
    );
    expect(Date.now() - started).toBeLessThan(1000);

    const up = waitForEvent(ts.store.feed, "state", (s) => s === "ready", 10_000);
    await redis.restart();
    await up;
    expect(await ts.client.bump("k")).toBeGreaterThan(0n);
  });

  test("Redis hung: calls fail with UNAVAILABLE within the call's deadline", async () => {
    redis.pause();
    try {
      const started = Date.now();
      await expectCode(ts.client.bump("k", { deadlineMs: 2000 }), Code.UNAVAILABLE);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      redis.resume();
    }
  });

  test("Redis hung with a long Redis timeout: UNAVAILABLE still comes before the caller's deadline", async () => {
    const patient = await startTestServer({ redis: redis.target, prefix, redisTimeoutMs: 10_000 }, { cleanups });
    redis.pause();
    cleanups.push(() => redis.resume());
    // The server answers a tenth of the call's time before its deadline: room for a busy host.
    await expectCode(patient.client.bump("k", { deadlineMs: 3000 }), Code.UNAVAILABLE);
  });

  test("Redis hung: the store and health say unavailable, and recover when it answers again", async () => {
    const down = waitForEvent(ts.store.feed, "state", (s) => s === "unavailable", 5000);
    redis.pause();
    try {
      // The store's own liveness ping times out (redisTimeoutMs 300) even with no calls.
      await down;
    } finally {
      redis.resume();
    }
    await waitForEvent(ts.store.feed, "state", (s) => s === "ready", 10_000);
    expect(await ts.client.bump("k")).toBeGreaterThan(0n);
  });

  test("Redis hung: health says NOT_SERVING by the first UNAVAILABLE, and calls queued behind it fail with it", async () => {
    // A long command timeout: the four calls must all be in flight before the first times out.
    const patient = await startTestServer({ redis: redis.target, prefix, redisTimeoutMs: 5000 }, { cleanups });
    const health = healthClient(patient.address);
    cleanups.push(() => health.close());
    const events: string[] = [];
    patient.store.feed.on("state", (state) => events.push(`store ${state}`));
    const outcome = (name: string, call: Promise<unknown>): Promise<GenerationServiceError | undefined> =>
      call.then(
        () => {
          events.push(`${name} ok`);
          return undefined;
        },
        (error: GenerationServiceError) => {
          events.push(`${name} ${Code[error.code]}`);
          return error;
        },
      );
    try {
      expect(await health.check("")).toBe("SERVING");
      await patient.client.get("k", { retry: false });
      redis.pause();
      // A is on the wire to the hung Redis once the server counts it in flight; B..D queue behind it.
      const a = outcome("A", patient.client.get("k", { retry: false, deadlineMs: 20_000 }));
      await expect.poll(() => patient.callsInFlight("Get"), { timeout: 10_000 }).toBe(1);
      const queued = ["B", "C", "D"].map((name) =>
        outcome(name, patient.client.get("k", { retry: false, deadlineMs: 20_000 })),
      );
      await expect.poll(() => patient.callsInFlight("Get"), { timeout: 10_000 }).toBe(4);
      expect((await a)?.code).toBe(Code.UNAVAILABLE);
      // Asked after the caller heard UNAVAILABLE: health already says so.
      expect(await health.check("")).toBe("NOT_SERVING");
      expect(events.indexOf("store unavailable")).toBeGreaterThanOrEqual(0);
      expect(events.indexOf("store unavailable")).toBeLessThan(events.indexOf("A UNAVAILABLE"));
      // The queued calls fail because the hung connection was dropped, not each after a timeout of its own.
      for (const error of await Promise.all(queued)) {
        expect(error?.code).toBe(Code.UNAVAILABLE);
        expect(error?.message).not.toMatch(/timed out/);
      }
    } finally {
      redis.resume();
    }
  });

  test.each([
    ["", {}],
    [", and an idle write connection is not taken for hung either", { redisWaitReplicas: 1, redisWaitMs: 100 }],
  ])("a process too busy to read Redis's reply in time does not take Redis for hung%s", async (_, settings) => {
    const busy = await startTestServer({ redis: redis.target, prefix, redisTimeoutMs: 300, ...settings }, { cleanups });
    const states: string[] = [];
    busy.store.feed.on("state", (state) => states.push(state));
    await busy.client.get("k");
    // The store's command goes out and Redis answers at once, but this process (the
    // server's too) is then blocked past the 300 ms command timeout: the timeout fires
    // before the reply is read.
    const read = busy.store.records.read(["k"]).then(
      () => "ok",
      (error: Error) => error.message,
    );
    await new Promise((resolve) => setImmediate(resolve));
    const until = performance.now() + 600;
    while (performance.now() < until) {
      // Busy: no timers, no I/O.
    }
    expect(await read).toMatch(/^(ok|Redis did not serve the request: Command timed out)$/);
    expect(await busy.client.get("k")).toBeGreaterThan(0n);
    expect(states).toEqual([]);
  });

  test("a Watch opened while Redis is down fails, even on a key another stream watches", async () => {
    const first = recordWatch(cleanups, ts.client, ["k"]);
    await first.live();
    const down = waitForEvent(ts.store.feed, "state", (s) => s === "unavailable", 5000);
    await redis.kill();
    await down;
    await expectWatchCode(recordWatch(cleanups, ts.client, ["k"]), Code.UNAVAILABLE);
    expect(first.ended).toBe(false);
  });

  test("garbage published on a change channel or stored in a record crashes nothing", async () => {
    const w = recordWatch(cleanups, ts.client, ["k"]);
    const generation = await ts.client.bump("k");
    await w.sees("k", generation);
    const admin = new Redis(redis.url);
    try {
      const names = new RedisKeys(prefix);
      await admin.publish(names.channel("k"), "garbage");
      await admin.publish(names.channel("k"), "99999999999999999999999999");
      await admin.set(names.record("corrupt"), "not a number");
    } finally {
      admin.disconnect();
    }
    // A corrupt record reads as absent, and the next write replaces it.
    expect(await ts.client.get("corrupt", { peek: true })).toBe(0n);
    expect(await ts.client.bump("corrupt")).toBeGreaterThan(0n);
    const next = await ts.client.bump("k");
    await w.sees("k", next);
    expect(w.responses.flatMap((r) => r.changes).map((c) => c.generation)).toEqual([generation, next]);
  });

  test("a record from another epoch (a failover that lost Bumps) is bumped to the clock, not + 1; one of this epoch by + 1", async () => {
    const admin = new Redis(redis.url);
    const record = new RedisKeys(prefix).record("epoch");
    try {
      const epoch = /master_replid:([0-9a-f]{12})/.exec(await admin.info("replication"))?.[1];
      const [seconds] = (await admin.time()) as [string | number, string | number];
      const hourAgo = (BigInt(seconds) - 3600n) * 1_000_000n;
      // What a promoted replica holds: an older generation, written under the old master.
      await admin.set(record, `${hourAgo}:000000000000`);
      const bumped = await ts.client.bump("epoch");
      expect(bumped).toBeGreaterThan(hourAgo + 3_000_000_000n); // the clock, not hourAgo + 1
      expect(await admin.get(record)).toBe(`${bumped}:${epoch}`);
      expect(await ts.client.bump("epoch")).toBe(bumped + 1n);
    } finally {
      admin.disconnect();
    }
  });

  test("a key re-created right after Clear gets a generation above its last, even one ahead of the clock", async () => {
    const admin = new Redis(redis.url);
    const record = new RedisKeys(prefix).record("ahead");
    try {
      // A generation a minute ahead of Redis's clock (as after a clock step back).
      const [seconds] = (await admin.time()) as [string | number, string | number];
      const ahead = (BigInt(seconds) + 60n) * 1_000_000n;
      await admin.set(record, String(ahead));
      expect(await ts.client.get("ahead")).toBe(ahead);
      await ts.client.clear("ahead");
      // The tombstone outlives the minute its revision is ahead of the clock, plus 10 s.
      expect(await admin.pttl(record)).toBeGreaterThan(65_000);
      const recreated = await ts.client.get("ahead");
      expect(recreated).toBeGreaterThan(ahead);
    } finally {
      admin.disconnect();
    }
  });

  test("Redis restarted empty under a live Watch: the watcher ends on the latest value, nothing repeats", async () => {
    const w = recordWatch(cleanups, ts.client, ["k", "untouched"]);
    const before = await ts.client.bump("k");
    await w.sees("k", before);

    const down = waitForEvent(ts.store.feed, "state", (s) => s === "unavailable", 5000);
    await redis.kill();
    await down;
    await expectCode(ts.client.bump("k"), Code.UNAVAILABLE);

    const resynced = waitForEvent(ts.store.feed, "resync", () => true, 10_000);
    await redis.restart();
    await resynced;
    // The data is gone: the watcher learns the key is absent.
    await w.sees("k", 0n);
    const after = await ts.client.bump("k");
    expect(after).toBeGreaterThan(before);
    await w.sees("k", after);
    expect(w.latest.get("untouched")).toBe(0n);
    expect(w.ended).toBe(false);
  });

  test("a change published while the subscriber was cut off still reaches the watchers", async () => {
    const w = recordWatch(cleanups, ts.client, ["k"]);
    await w.sees("k", 0n);
    const admin = new Redis(redis.url);
    try {
      const clients = (await admin.client("LIST")) as string;
      const subscriberId = /id=(\d+) [^\n]*name=syncgen-subscriber/.exec(clients)?.[1];
      expect(subscriberId).toBeDefined();
      const resynced = waitForEvent(ts.store.feed, "resync", () => true, 10_000);
      // In one transaction: drop the subscriber, then bump (as another replica would), so
      // the change's message is published to nobody and only the resync can deliver it.
      const results = await admin
        .multi()
        .client("KILL", "ID", subscriberId as string)
        .eval(
          WRITE_SCRIPT,
          1,
          new RedisKeys(prefix).record("k"),
          "bump",
          new RedisKeys(prefix).channel("k"),
          "10000",
          "PUBLISH",
        )
        .exec();
      const bumped = decodeRecord(String(results?.[1]?.[1])).generation;
      await resynced;
      await w.sees("k", bumped);
    } finally {
      admin.disconnect();
    }
  });
});
