import { Redis } from "ioredis";
import { describe, expect, test } from "vitest";
import { Code } from "../src/client/index.js";
import { RedisKeys } from "../src/server/store/redis-keys.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { withDeadline } from "./helpers/deadline.js";
import { freePort } from "./helpers/free-port.js";
import { healthClient } from "./helpers/grpc-peers.js";
import { bumpLoad, expectAllCurrent, expectNoRepeats } from "./helpers/load.js";
import { pausedWatch } from "./helpers/paused-watch.js";
import { RedisProcess, uniquePrefix } from "./helpers/redis-process.js";
import { ServeProcess } from "./helpers/serve-process.js";
import { isolatedClient } from "./helpers/test-client.js";
import { recordWatch } from "./helpers/watch-recorder.js";

const cleanups = cleanupsAfterEach();

/** A `syncgen serve` replica on `redis` (on `address`, or a free port), ready to serve, stopped after the test. */
function replica(
  redis: RedisProcess,
  prefix: string,
  { address, flags = [] }: { address?: string; flags?: string[] } = {},
): Promise<ServeProcess> {
  return ServeProcess.start(
    [...(address ? ["--listen", address] : []), "--redis", redis.url, "--prefix", prefix, ...flags],
    { cleanups },
  );
}

/** Of two replicas, the one holding more of the Watch streams, then the other. */
async function busierFirst(a: ServeProcess, b: ServeProcess): Promise<[ServeProcess, number, ServeProcess]> {
  const [onA, onB] = [await a.metric("syncgen_watch_streams"), await b.metric("syncgen_watch_streams")];
  return onA >= onB ? [a, onA, b] : [b, onB, a];
}

describe("faults on real processes", () => {
  test("Redis killed and restarted under load: UNAVAILABLE and NOT_SERVING while down, back within 2 s, nothing repeated or lost", async () => {
    const redis = await RedisProcess.start();
    cleanups.push(() => redis.stop());
    const server = await replica(redis, uniquePrefix());
    const keys = Array.from({ length: 8 }, (_, i) => `fault/redis/${i}`);
    const c = isolatedClient(cleanups, server.address);
    const recorders = Array.from({ length: 6 }, () =>
      recordWatch(cleanups, isolatedClient(cleanups, server.address), keys, { resume: true }),
    );
    await Promise.all(recorders.map((r) => r.live()));

    const health = healthClient(server.address);
    cleanups.push(() => health.close());
    const healthWatch = health.watch("generation.v1.GenerationService");
    cleanups.push(() => healthWatch.cancel());
    await healthWatch.until("SERVING", 5000);

    const load = bumpLoad(c, keys, 4);
    await load.each(5);
    const killedAt = Date.now();
    await redis.kill();
    await healthWatch.until("NOT_SERVING", 5000);
    await expect.poll(() => load.failures.length, { timeout: 5000 }).toBeGreaterThan(5);
    await redis.restart();
    const restartedAt = Date.now();
    const servingAt = await healthWatch.until("SERVING", 2000);
    expect(servingAt - restartedAt).toBeLessThan(2000);
    await expect
      .poll(() => [...load.generations.values()].some((g) => g.some((h) => h.at > servingAt)), { timeout: 2000 })
      .toBe(true);
    await load.stop();

    // Every failure was UNAVAILABLE, and only while Redis was away.
    expect(load.failures.length).toBeGreaterThan(0);
    for (const failure of load.failures) {
      expect(Code[failure.code], failure.message).toBe("UNAVAILABLE");
      expect(failure.at).toBeGreaterThanOrEqual(killedAt);
    }
    expectNoRepeats(load.generations);
    // Redis came back empty; every generation after the outage is above every one before it.
    for (const handed of load.generations.values()) {
      const before = handed.filter((h) => h.at < killedAt).map((h) => h.generation);
      const after = handed.filter((h) => h.at > restartedAt).map((h) => h.generation);
      for (const generation of after) for (const earlier of before) expect(generation).toBeGreaterThan(earlier);
    }
    await expectAllCurrent(c, recorders, keys);
  });

  test("a replica SIGKILLed under its watchers: clients with an address list move to the other and miss nothing", async () => {
    const redis = await RedisProcess.start();
    cleanups.push(() => redis.stop());
    const prefix = uniquePrefix();
    const [a, b] = [await replica(redis, prefix), await replica(redis, prefix)];
    const keys = Array.from({ length: 5 }, (_, i) => `fault/kill/${i}`);
    // The clients balance round robin over both; the busier replica is killed.
    const target = `ipv4:${a.address},${b.address}`;
    const users = Array.from({ length: 4 }, () => isolatedClient(cleanups, target));
    const recorders = users.map((u) => recordWatch(cleanups, u, keys, { resume: true }));
    await Promise.all(recorders.map((r) => r.live()));
    const [victim, streamsOnVictim, survivor] = await busierFirst(a, b);
    expect(streamsOnVictim).toBeGreaterThanOrEqual(2);
    const writer = isolatedClient(cleanups, survivor.address);
    for (const key of keys) await writer.bump(key);
    await expectAllCurrent(writer, recorders, keys);

    await victim.stop("SIGKILL");
    // Changes made while the watchers are cut off or reconnecting.
    for (const key of keys) await writer.bump(key);
    await expect
      .poll(() => recorders.filter((r) => r.downs.length > 0).length, { timeout: 5000 })
      .toBe(streamsOnVictim);
    for (const key of keys) await writer.bump(key);
    await expectAllCurrent(writer, recorders, keys);
    expect(recorders.every((r) => r.error === undefined)).toBe(true);
    // The same clients' unary calls go to the survivor now.
    for (const u of users) expect(await u.bump(keys[0] as string)).toBeGreaterThan(0n);
    await expectAllCurrent(writer, recorders, keys);
  });

  test("SIGTERM under load: calls in flight complete, watchers resume on the other replica, the process exits in time", async () => {
    const redis = await RedisProcess.start();
    cleanups.push(() => redis.stop());
    const prefix = uniquePrefix();
    const [a, b] = [
      await replica(redis, prefix, { flags: ["--shutdown-timeout-ms", "3000"] }),
      await replica(redis, prefix, { flags: ["--shutdown-timeout-ms", "3000"] }),
    ];
    const keys = Array.from({ length: 4 }, (_, i) => `fault/term/${i}`);
    const target = `ipv4:${a.address},${b.address}`;
    const recorders = Array.from({ length: 4 }, () =>
      recordWatch(cleanups, isolatedClient(cleanups, target), keys, { resume: true }),
    );
    await Promise.all(recorders.map((r) => r.live()));
    const [victim, streamsOnVictim, survivor] = await busierFirst(a, b);
    expect(streamsOnVictim).toBeGreaterThanOrEqual(2);
    // A generous deadline: Redis is held below, and these Bumps must wait, not fail.
    const load = bumpLoad(isolatedClient(cleanups, target), keys, 4, 10_000);
    await load.each(3);

    // Hold Redis for a moment so Bumps on the victim are certainly in flight when SIGTERM
    // lands (its metrics count them in).
    const bumpsStarted = (): Promise<number> => victim.metric("grpc_server_started_total", 'grpc_method="Bump"');
    const direct = isolatedClient(cleanups, victim.address);
    redis.pause();
    cleanups.push(() => redis.resume());
    const startedBefore = await bumpsStarted();
    const inFlight = Array.from({ length: 10 }, (_, i) =>
      direct.bump(keys[i % keys.length] as string, { deadlineMs: 5000 }),
    );
    await expect.poll(bumpsStarted, { timeout: 5000 }).toBeGreaterThanOrEqual(startedBefore + 10);
    const stoppedAt = Date.now();
    const exited = victim.stop("SIGTERM");
    await victim.cli.line((line) => line.includes('"event":"stopping"'));
    redis.resume();
    const completed = await withDeadline(Promise.all(inFlight), 5000, "the Bumps in flight");
    expect(await exited).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(3000 + 1000);

    await expect
      .poll(() => recorders.filter((r) => r.downs.length > 0).length, { timeout: 5000 })
      .toBe(streamsOnVictim);
    for (const recorder of recorders.filter((r) => r.downs.length > 0)) {
      expect(recorder.downs[0]?.error.code).toBe(Code.UNAVAILABLE);
      expect(recorder.downs[0]?.error.message).toMatch(/shutting down/);
    }
    await expect
      .poll(() => [...load.generations.values()].some((g) => g.some((h) => h.at > stoppedAt + 500)), { timeout: 5000 })
      .toBe(true);
    await load.stop();
    expect(load.failures).toEqual([]);
    const all = new Map(load.generations);
    for (const [i, generation] of completed.entries()) {
      all.get(keys[i % keys.length] as string)?.push({ generation, at: stoppedAt });
    }
    expectNoRepeats(all);
    await expectAllCurrent(isolatedClient(cleanups, survivor.address), recorders, keys);
  });

  test("max connection age moves Watch streams onto a replica that joined later", async () => {
    const redis = await RedisProcess.start();
    cleanups.push(() => redis.stop());
    const prefix = uniquePrefix();
    const aged = ["--max-connection-age-ms", "1000", "--max-connection-age-grace-ms", "200"];
    const a = await replica(redis, prefix, { flags: aged });
    const later = `127.0.0.1:${await freePort()}`;
    const keys = ["fault/age/0", "fault/age/1"];
    const recorders = Array.from({ length: 4 }, () =>
      recordWatch(cleanups, isolatedClient(cleanups, `ipv4:${a.address},${later}`), keys, { resume: true }),
    );
    await Promise.all(recorders.map((r) => r.live()));
    expect(await a.metric("syncgen_watch_streams")).toBe(4);

    const b = await replica(redis, prefix, { address: later, flags: aged });
    await expect.poll(() => b.metric("syncgen_watch_streams"), { timeout: 15_000 }).toBeGreaterThan(0);
    const writer = isolatedClient(cleanups, a.address);
    for (const key of keys) await writer.bump(key);
    await expectAllCurrent(writer, recorders, keys);
    expect(recorders.every((r) => r.error === undefined)).toBe(true);
  });

  test("a stalled watcher under 200,000 changes: server memory stays bounded, and once it reads it gets the latest", async () => {
    const redis = await RedisProcess.start();
    cleanups.push(() => redis.stop());
    const prefix = uniquePrefix();
    const server = await replica(redis, prefix);
    // 1,000 keys of 1 KB: every change the watcher misses would be a 1 KB response if queued.
    const keys = Array.from({ length: 1000 }, (_, i) => `fault/stall/${i}/`.padEnd(1024, "."));
    const paused = pausedWatch(isolatedClient(cleanups, server.address), keys);
    await paused.live;
    const rssBefore = await server.cli.rssBytes();

    // 200,000 changes, as other replicas' Bumps arrive: straight into Redis pub/sub. The
    // generations are small, so the real Bumps below (clock-based) are newer still.
    const publisher = new Redis(redis.url);
    const names = new RedisKeys(prefix);
    cleanups.push(() => publisher.disconnect());
    for (let round = 1; round <= 200; round++) {
      const pipeline = publisher.pipeline();
      for (const key of keys) pipeline.publish(names.channel(key), String(round));
      await pipeline.exec();
    }
    // Fence: the server's subscriber gets messages in order, so once a live watcher of the
    // last key has a Bump made after the publishing, the server has taken in every change.
    const writer = isolatedClient(cleanups, server.address);
    const fence = recordWatch(cleanups, writer, [keys.at(-1) as string], { resume: true });
    await fence.live();
    const latest = new Map<string, bigint>();
    for (const key of [...keys.slice(0, 9), keys.at(-1) as string]) latest.set(key, await writer.bump(key));
    await fence.sees(keys.at(-1) as string, latest.get(keys.at(-1) as string) as bigint);
    const rssAfter = await server.cli.rssBytes();
    // Queued, the missed changes would be ~200 MB; held as "latest per key" they are 1,000
    // entries. What grows is garbage the collector has not yet taken.
    if (process.env.SYNCGEN_TEST_VERBOSE) console.log({ rssBefore, rssAfter });
    expect(rssAfter - rssBefore).toBeLessThan(64 * 1024 * 1024);

    paused.resume();
    for (const [key, generation] of latest) await paused.sees(key, generation);
    await paused.sees(keys[500] as string, 200n);
    await paused.close();
  });
});
