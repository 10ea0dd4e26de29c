/**
 * The Go client (clients/go), built and tested offline with Debian's Go toolchain and
 * packages (scripts/system-packages.sh installs them): its own tests run against a real
 * server over Redis and against servers of their own that stop and come back; its go.mod
 * builds in module mode; the README's example builds as a user's module and runs.
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { cp, mkdir, writeFile } from "node:fs/promises";
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

  test("builds, vets and runs as a module from its go.mod, at the versions go.mod names", async () => {
    const module = join(workspace.dir, "module", "clients-go");
    await cp(join(ROOT, "clients", "go"), module, { recursive: true });
    await workspace.vendor(module);
    // Go refuses to build when vendor/modules.txt (apt's versions) and go.mod disagree.
    const env = workspace.moduleEnv();
    await workspace.go(["build", "./..."], { cwd: module, env });
    await workspace.go(["vet", "./..."], { cwd: module, env });
    const { stdout } = await workspace.go(["test", "-count=1", "-run", "TestMakeCacheKey", "./..."], {
      cwd: module,
      env,
    });
    expect(stdout).toMatch(/^ok\s+syncgen\/clients\/go\/syncgen\s/m);
  }, 300_000);
});

describe("the README's Go section", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## The Go client"), readme.indexOf("## Scaling out"));

  test("its example builds in a module that requires clients/go as it says, and runs against a server", async () => {
    const example = /```go\n([\s\S]*?)\n```/.exec(section)?.[1];
    const require = /^go mod edit .*$/m.exec(section)?.[0];
    expect(example).toContain("package main");
    expect(require).toBeDefined();
    // syncgen's repository checked out next to the user's module, as the README has it.
    const checkout = join(workspace.dir, "readme");
    await cp(join(ROOT, "clients", "go"), join(checkout, "syncgen", "clients", "go"), { recursive: true });
    const app = join(checkout, "app");
    await mkdir(app, { recursive: true });
    await writeFile(join(app, "main.go"), (example as string).replaceAll("127.0.0.1:50051", ts.address));
    await workspace.go(["mod", "init", "example.com/app"], { cwd: app, env: workspace.moduleEnv() });
    await promisify(execFile)("/bin/sh", ["-c", require as string], { cwd: app, env: workspace.moduleEnv() });
    // In place of `go mod tidy` (no proxy here): the same dependencies, vendored from Debian.
    await workspace.vendor(app);
    await workspace.go(["build", "-o", "app", "."], { cwd: app, env: workspace.moduleEnv() });
    const { stdout } = await promisify(execFile)(join(app, "app"), [], { timeout: 60_000 });
    const [cacheKey, marked, watched] = stdout.trim().split("\n");
    expect(cacheKey).toBe("example.com:users:42");
    expect(marked).toMatch(/^[1-9]\d* false$/);
    expect(watched).toBe("true 0 <nil>");
  }, 300_000);
});
