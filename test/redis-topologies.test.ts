/**
 * Redis's own distributed modes, on real processes: a Sentinel failover that loses
 * acknowledged writes, and a Cluster slot moved under watchers. (The whole contract suite
 * also runs on both: see generation-service.contract.test.ts.)
 */
import calculateSlot from "cluster-key-slot";
import { describe, expect, test } from "vitest";
import { Code } from "../src/client/index.js";
import { RedisKeys } from "../src/server/store/redis-keys.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { waitForEvent } from "./helpers/deadline.js";
import { expectCode } from "./helpers/expect-code.js";
import { bumpLoad, expectAllCurrent, expectNoRepeats } from "./helpers/load.js";
import { RedisCluster } from "./helpers/redis-cluster.js";
import { RedisProcess, uniquePrefix } from "./helpers/redis-process.js";
import { RedisSentinelGroup } from "./helpers/redis-sentinel.js";
import { isolatedClient } from "./helpers/test-client.js";
import { startTestServer } from "./helpers/test-server.js";
import { recordWatch } from "./helpers/watch-recorder.js";

const cleanups = cleanupsAfterEach();

describe("Redis Sentinel", () => {
  test("the master killed right after Bumps its replica never got: service resumes, nothing repeats, watchers end current", async () => {
    const group = await RedisSentinelGroup.start();
    cleanups.push(() => group.stop());
    const ts = await startTestServer(
      { redisTimeoutMs: 1000, redis: group.target, prefix: uniquePrefix() },
      { cleanups },
    );
    const c = isolatedClient(cleanups, ts.address);
    const loaded = Array.from({ length: 4 }, (_, i) => `sentinel/load/${i}`);
    const lostKeys = Array.from({ length: 4 }, (_, i) => `sentinel/lost/${i}`);
    const keys = [...loaded, ...lostKeys];
    const recorders = Array.from({ length: 3 }, () =>
      recordWatch(cleanups, isolatedClient(cleanups, ts.address), keys, { resume: true }),
    );
    await Promise.all(recorders.map((r) => r.live()));
    const replicated = new Map<string, bigint>();
    for (const key of lostKeys) replicated.set(key, await c.bump(key));
    const load = bumpLoad(c, loaded, 3);
    await load.each(5);

    // The replica has those (replication lags on a busy machine), then replication is cut,
    // so the next Bumps reach only the master: acknowledged, then lost.
    await group.replicaCaughtUp();
    const master = await group.master();
    group.stallReplication();
    const lost = new Map<string, bigint>();
    for (const key of lostKeys) lost.set(key, await c.bump(key));
    await master.kill();
    const killedAt = Date.now();
    await group.failedOver(master.port);

    // Service resumes within the failover time: Sentinels' 1 s down-after, election, reconnect.
    await expect
      .poll(
        () =>
          c.bump(loaded[0] as string).then(
            () => true,
            () => false,
          ),
        { timeout: 15_000 },
      )
      .toBe(true);
    const resumedIn = Date.now() - killedAt;
    expect(resumedIn).toBeLessThan(15_000);
    await load.each(10, 10_000);
    await load.stop();

    // The failover did lose the acknowledged Bumps: the new master holds the replicated ones...
    for (const key of lostKeys) expect(await c.get(key, { peek: true })).toBe(replicated.get(key));
    // ...and yet no generation is handed out twice: the next ones are above the lost ones.
    for (const key of lostKeys) expect(await c.bump(key)).toBeGreaterThan(lost.get(key) as bigint);
    expectNoRepeats(load.generations);
    for (const failure of load.failures) expect(Code[failure.code], failure.message).toBe("UNAVAILABLE");
    await expectAllCurrent(c, recorders, keys);
    expect(recorders.every((r) => r.error === undefined)).toBe(true);
  });
});

describe("--redis-wait-replicas", () => {
  test("with no replica, concurrent writes fail with the replicas message (none times out) while reads go on", async () => {
    const redis = await RedisProcess.start();
    cleanups.push(() => redis.stop());
    const ts = await startTestServer(
      { redis: redis.target, prefix: uniquePrefix(), redisWaitReplicas: 1, redisWaitMs: 1000, redisTimeoutMs: 3000 },
      { cleanups },
    );
    const c = isolatedClient(cleanups, ts.address);
    let settled = 0;
    const writes = Array.from({ length: 12 }, (_, i) =>
      c
        .bump(`nowait/${i % 3}`)
        .then(
          () => "written",
          (error: { message: string }) => error.message,
        )
        .finally(() => settled++),
    );
    // Reads are not queued behind the writes' WAIT (a connection of their own): one after
    // another, they are answered while every write still waits for a replica. (Queued, the
    // second would already wait behind the first WAIT, until its writes fail.)
    for (let i = 0; i < 3; i++) expect(await c.get("nowait/0", { peek: true })).toBeGreaterThanOrEqual(0n);
    expect(settled).toBe(0);
    for (const outcome of await Promise.all(writes)) {
      expect(outcome).toMatch(/the write reached 0 of 1 Redis replicas within 1000 ms/);
    }
    expect(ts.store.feed.state).toBe("ready");
  });
});

describe("Redis Sentinel with --redis-wait-replicas", () => {
  test("a Bump the replica has not acknowledged fails instead, so the failover loses nothing acknowledged", async () => {
    const group = await RedisSentinelGroup.start();
    cleanups.push(() => group.stop());
    const ts = await startTestServer(
      {
        redisTimeoutMs: 1000,
        ...{ redis: group.target, prefix: uniquePrefix(), redisWaitReplicas: 1, redisWaitMs: 300 },
      },
      { cleanups },
    );
    const c = isolatedClient(cleanups, ts.address);
    const acknowledged = await c.bump("wait/k");
    group.stallReplication();
    await expectCode(
      c.bump("wait/k"),
      Code.UNAVAILABLE,
      /the write reached 0 of 1 Redis replicas within 300 ms \(--redis-wait-replicas\)/,
    );

    const master = await group.master();
    await master.kill();
    await group.failedOver(master.port);
    await expect
      .poll(() => c.get("wait/k", { peek: true }).then(String, () => "unavailable"), { timeout: 15_000 })
      .toBe(String(acknowledged));
    // The promoted replica has no replica of its own: writes fail rather than risk loss.
    await expectCode(c.bump("wait/k"), Code.UNAVAILABLE, /reached 0 of 1 Redis replicas/);
  });
});

describe("Redis Cluster", () => {
  test("Watch spans every shard, and a slot moved under watchers and Bumps loses nothing", async () => {
    const cluster = await RedisCluster.start();
    cleanups.push(() => cluster.stop());
    const prefix = uniquePrefix();
    const ts = await startTestServer({ redisTimeoutMs: 1000, redis: cluster.target, prefix }, { cleanups });
    const names = new RedisKeys(prefix);
    const keys = Array.from({ length: 24 }, (_, i) => `cluster/${i}`);
    // The keys live on every master.
    const owners = new Set<number>();
    for (const key of keys) owners.add((await cluster.ownerOf(calculateSlot(names.record(key)))).node.port);
    expect(owners.size).toBe(3);

    const c = isolatedClient(cleanups, ts.address);
    const recorders = Array.from({ length: 3 }, () =>
      recordWatch(cleanups, isolatedClient(cleanups, ts.address), keys, { resume: true }),
    );
    await Promise.all(recorders.map((r) => r.live()));
    // The load runs on every key but the one whose slot moves: that one is bumped only while
    // it moves, so only the resync after the move can bring watchers its last generation.
    const moving = keys[0] as string;
    const load = bumpLoad(c, keys.slice(1), 4);
    await load.each(3);

    const slot = calculateSlot(names.record(moving));
    const from = (await cluster.ownerOf(slot)).node;
    const resynced = waitForEvent(ts.store.feed, "resync", () => true, 20_000);
    const duringMove: bigint[] = [];
    const to = await cluster.moveSlot(slot, async () => {
      // The record has moved, ownership not yet: these Bumps run on the new node (ASK), and
      // publish there, where nobody is subscribed yet.
      for (let i = 0; i < 3; i++) duringMove.push(await c.bump(moving));
    });
    expect(to.port).not.toBe(from.port);
    expect((await cluster.ownerOf(slot)).node.port).toBe(to.port);
    await resynced;
    const lastDuringMove = duringMove.at(-1) as bigint;
    for (const recorder of recorders) await recorder.sees(moving, lastDuringMove, 10_000);
    await load.each(10, 10_000);
    await load.stop();

    expect(load.failures).toEqual([]);
    expectNoRepeats(new Map([...load.generations, [moving, duringMove.map((generation) => ({ generation }))]]));
    await expectAllCurrent(c, recorders, keys);
    expect(recorders.every((r) => r.error === undefined)).toBe(true);
  });

  test("a master killed in a Cluster with replicas: its shard fails over, the other shards serve on, nothing is lost", async () => {
    const cluster = await RedisCluster.start({ replicas: 1 });
    cleanups.push(() => cluster.stop());
    const prefix = uniquePrefix();
    const ts = await startTestServer({ redisTimeoutMs: 1000, redis: cluster.target, prefix }, { cleanups });
    const names = new RedisKeys(prefix);
    const keys = Array.from({ length: 24 }, (_, i) => `cluster-failover/${i}`);
    const c = isolatedClient(cleanups, ts.address);
    const recorders = Array.from({ length: 3 }, () =>
      recordWatch(cleanups, isolatedClient(cleanups, ts.address), keys, { resume: true }),
    );
    await Promise.all(recorders.map((r) => r.live()));

    const slotOf = (key: string): number => calculateSlot(names.record(key));
    const victimKey = keys[0] as string;
    const victim = (await cluster.ownerOf(slotOf(victimKey))).node;
    const survivor = cluster.nodes.find((node) => node !== victim) as (typeof cluster.nodes)[number];
    const onVictim: string[] = [];
    for (const key of keys) if ((await cluster.ownerOf(slotOf(key))).node === victim) onVictim.push(key);
    const others = bumpLoad(
      c,
      keys.filter((key) => !onVictim.includes(key)),
      3,
    );
    const victims = bumpLoad(c, onVictim, 1);
    await others.each(3);
    await victims.each(3);

    await victim.kill();
    const killedAt = Date.now();
    // The replica takes over (node timeout 1 s, then an election); the store finds it by itself.
    await expect
      .poll(async () => (await cluster.ownerOf(slotOf(victimKey), survivor)).node !== victim, { timeout: 20_000 })
      .toBe(true);
    await victims.each(10, 20_000);
    await others.stop();
    await victims.stop();

    // Keys on the other shards were served throughout.
    expect(others.failures).toEqual([]);
    for (const failure of victims.failures) {
      expect(Code[failure.code], failure.message).toBe("UNAVAILABLE");
      expect(failure.at).toBeGreaterThanOrEqual(killedAt);
    }
    expectNoRepeats(new Map([...others.generations, ...victims.generations]));
    await expectAllCurrent(c, recorders, keys);
    expect(recorders.every((r) => r.error === undefined)).toBe(true);
  });
});
