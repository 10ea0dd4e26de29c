/**
 * Go, TypeScript and Python services on one key, over a real server and Redis: each builds
 * the same cache key names, and each watching synchronizer sees the others' Bumps with the
 * same values. The Go and Python synchronizers are agents driven line by line
 * (test/go/interop-agent, clients/python/tests/interop_agent.py: the same commands).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { GenerationSynchronizer, makeCacheKey } from "../src/client/index.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { GoWorkspace } from "./helpers/go.js";
import { LineAgent } from "./helpers/line-agent.js";
import { PYTHON, pythonEnv } from "./helpers/python.js";
import { sharedRedis } from "./helpers/redis-process.js";
import { nextExpiry } from "./helpers/synchronizer.js";
import { isolatedClient } from "./helpers/test-client.js";
import { startTestServer, type TestServer } from "./helpers/test-server.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The site prefix every language is given, as djblets' site domain. */
const PREFIX = "example.com";
/** Each agent's answer to a command that waits: its own deadline is 30 s. */
const ANSWER_MS = 45_000;

let redis: Awaited<ReturnType<typeof sharedRedis>>;
let ts: TestServer;
let workspace: GoWorkspace;
let goAgentBinary: string;

const cleanups = cleanupsAfterEach();

beforeAll(async () => {
  redis = await sharedRedis();
  ts = await startTestServer({ redis: redis.target, prefix: redis.prefix() });
  workspace = await GoWorkspace.create();
  goAgentBinary = await workspace.build("syncgen/test/go/interop-agent");
}, 300_000); // a first build compiles grpc-go from source

afterAll(async () => {
  await workspace?.close();
  await ts?.close();
  await redis?.close();
});

/** The agents of the other two languages, on the test server, closed after the test. */
function agents(): { go: LineAgent; python: LineAgent } {
  const go = new LineAgent(goAgentBinary, [ts.address, PREFIX], ROOT);
  const python = new LineAgent(
    PYTHON,
    ["tests/interop_agent.py", ts.address, PREFIX],
    join(ROOT, "clients", "python"),
    pythonEnv(),
  );
  cleanups.push(
    () => go.close(),
    () => python.close(),
  );
  return { go, python };
}

describe("Go, TypeScript and Python", () => {
  test("build the same cache key names, whatever the key", async () => {
    const { go, python } = agents();
    const alphabet = ["a", "Z", "0", ":", "%", " ", "\t", "\0", "\x7f", "é", "€", "🎉", "\u0085", "/", "\\"];
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const keys: (string | string[])[] = [];
    for (let i = 0; i < 300; i++) {
      const part = (): string => Array.from({ length: random(300) }, () => alphabet[random(alphabet.length)]).join("");
      keys.push(i % 3 === 0 ? [part(), part()] : i % 3 === 1 ? [part()] : part());
    }
    const expected = keys.map((key) => makeCacheKey(key, { prefix: PREFIX }));
    const command = `make_cache_key ${JSON.stringify(keys)}`;
    expect((await python.ask(command)).keys).toEqual(expected);
    expect((await go.ask(command)).keys).toEqual(expected);
  });

  test("bump one key in turn, each watching it, and agree on every value", async () => {
    const { go, python } = agents();
    const key = ["tenant:7", `cross-language-${Date.now()}`];
    const client = isolatedClient(cleanups, ts.address);
    const typescript = await GenerationSynchronizer.create(client, key, { cacheKey: { prefix: PREFIX }, watch: true });
    cleanups.push(() => typescript.close());

    // One key name, and the generation the first of them created.
    for (const agent of [go, python]) {
      const created = await agent.ask(`watch ${JSON.stringify(key)}`);
      expect(created).toEqual({ cache_key: typescript.cacheKey, sync_gen: String(typescript.syncGen) });
      expect(await agent.ask("await_live", ANSWER_MS)).toEqual({ live: true });
    }
    expect(typescript.cacheKey).toBe(`example.com:tenant%3A7:${key[1]}`);

    let generation = typescript.syncGen as bigint;
    const writers = ["go", "typescript", "python", "go", "typescript", "python"] as const;
    for (const writer of writers) {
      const typescriptSees = writer === "typescript" ? undefined : nextExpiry(typescript, ANSWER_MS);
      let bumped: bigint;
      if (writer === "typescript") {
        await typescript.markUpdated();
        bumped = typescript.syncGen as bigint;
      } else {
        bumped = BigInt((await (writer === "go" ? go : python).ask("mark_updated")).sync_gen as string);
      }
      // djblets' scheme: while the key exists, every Bump, from any language, is exactly +1.
      expect(bumped, `${writer}'s bump`).toBe(generation + 1n);
      generation = bumped;

      // Each of the other two watchers is told this very value, and reads as expired.
      if (typescriptSees) expect(await typescriptSees).toBe(bumped);
      for (const [name, agent] of [
        ["go", go],
        ["python", python],
      ] as const) {
        if (name === writer) continue;
        expect(await agent.ask(`await_watched ${bumped}`, ANSWER_MS), `${name} after ${writer}'s bump`).toEqual({
          watched: String(bumped),
          is_expired: true,
        });
      }
      if (writer !== "typescript") expect(await typescript.isExpired()).toBe(true);

      // All three refresh to the same value, and are current.
      await typescript.refresh();
      expect(typescript.syncGen).toBe(bumped);
      expect(await typescript.isExpired()).toBe(false);
      for (const agent of [go, python]) {
        expect(await agent.ask("refresh")).toEqual({ sync_gen: String(bumped) });
        expect(await agent.ask("is_expired")).toEqual({ is_expired: false });
      }
    }
  }, 120_000);
});
