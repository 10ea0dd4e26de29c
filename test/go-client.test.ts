/**
 * The Go client (clients/go), built and tested offline with Debian's Go toolchain and
 * packages (scripts/system-packages.sh installs them): its own tests run against a real
 * server over Redis and against servers of their own that stop and come back.
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CLI } from "./helpers/cli.js";
import { GoWorkspace } from "./helpers/go.js";
import { sharedRedis } from "./helpers/redis-process.js";
import { startTestServer, type TestServer } from "./helpers/test-server.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const LIBRARY = join(ROOT, "clients", "go", "syncgen");

let redis: Awaited<ReturnType<typeof sharedRedis>>;
let ts: TestServer;
let workspace: GoWorkspace;

beforeAll(async () => {
  redis = await sharedRedis();
  ts = await startTestServer({ redis: redis.target, prefix: redis.prefix() });
  workspace = await GoWorkspace.create();
});

afterAll(async () => {
  await workspace?.close();
  await ts?.close();
  await redis?.close();
});

/** The names of the test functions declared in the library's _test.go files. */
function declaredTests(): string[] {
  return readdirSync(LIBRARY)
    .filter((file) => file.endsWith("_test.go"))
    .flatMap((file) => [...readFileSync(join(LIBRARY, file), "utf8").matchAll(/^func (Test\w+)\(t \*testing\.T\)/gm)])
    .map((match) => match[1] as string)
    .sort();
}

describe("the Go client library (clients/go)", () => {
  test("is gofmt-formatted and passes go vet", async () => {
    const copies = ["clients/go", "test/go"].map((dir) => join(workspace.dir, "src", "syncgen", dir));
    const { stdout } = await promisify(execFile)("gofmt", ["-l", ...copies]);
    expect(stdout).toBe("");
    await workspace.go(["vet", "syncgen/clients/go/...", "syncgen/test/go/..."]);
  }, 300_000); // a first build compiles grpc-go from source

  test("passes every one of its tests against real servers, with the race detector", async () => {
    const { stdout } = await workspace.go(["test", "-race", "-count=1", "-v", "syncgen/clients/go/..."], {
      env: { SYNCGEN_TEST_SERVER: ts.address, SYNCGEN_TEST_CLI: CLI, SYNCGEN_TEST_NODE: process.execPath },
    });
    expect(stdout).toMatch(/^ok\s+syncgen\/clients\/go\/syncgen\s/m);
    const passed = [...stdout.matchAll(/^--- PASS: (Test\w+)/gm)].map((match) => match[1]).sort();
    expect(passed).toEqual(declaredTests());
    expect(declaredTests().length).toBeGreaterThan(15);
  }, 400_000);
});
