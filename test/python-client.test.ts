/**
 * The contract is language-neutral. A Python client generated from proto/ alone works against
 * the Node server, and the Python client library (clients/python) installs with pip and passes
 * djblets' cases against it (cross-language.test.ts has it work with Go and TypeScript).
 * Debian's protoc, grpc_python_plugin and python3-grpcio (.ci/run installs them).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { CLI } from "./helpers/cli.js";
import { PYTHON, pythonEnv } from "./helpers/python.js";
import { sharedRedis } from "./helpers/redis-process.js";
import { isolatedClient } from "./helpers/test-client.js";
import { startTestServer, type TestServer } from "./helpers/test-server.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const pythonClient = join(root, "clients/python");
/** Python's environment: no bytecode caches written into the work tree. */
const PYTHON_ENV = pythonEnv();

let redis: Awaited<ReturnType<typeof sharedRedis>>;
let ts: TestServer;

const cleanups = cleanupsAfterEach();

beforeAll(async () => {
  redis = await sharedRedis();
  ts = await startTestServer({ redis: redis.target, prefix: redis.prefix() });
});

afterAll(async () => {
  await ts?.close();
  await redis?.close();
});

describe("a Python client generated from proto/ alone", () => {
  let generated: string;

  beforeAll(async () => {
    generated = await mkdtemp(join(tmpdir(), "syncgen-python-"));
    await run("protoc", [
      "-I",
      join(root, "proto"),
      `--python_out=${generated}`,
      `--grpc_python_out=${generated}`,
      `--plugin=protoc-gen-grpc_python=${onPath("grpc_python_plugin")}`,
      "generation/v1/generation.proto",
    ]);
  });

  afterAll(async () => {
    if (generated) await rm(generated, { recursive: true, force: true });
  });

  test("gets, bumps, clears and watches", async () => {
    const { stdout } = await run(
      PYTHON,
      [join(root, "test/python/generated_client_check.py"), generated, ts.address, "python-key"],
      { timeout: 30_000, env: PYTHON_ENV },
    );
    const result = JSON.parse(stdout) as Record<string, unknown>;
    const created = result.created as number;
    expect(result.peek_absent).toBe(0);
    expect(created).toBeGreaterThan(0);
    expect(result.bumped).toBeGreaterThan(created);
    expect(result.watch_first).toEqual([["python-key", result.bumped]]);
    expect(result.watch_after_clear).toEqual([["python-key", 0]]);
    expect(result.empty_key).toBe("INVALID_ARGUMENT");
    expect(result.empty_key_details).toBe("key must not be empty");
    // The TypeScript client sees what Python did.
    expect(await ts.client.get("python-key", { peek: true })).toBe(0n);
  });
});

describe("the Python client library (clients/python)", () => {
  test("installs with pip, offline, from Debian's setuptools, and works from outside the repository", async () => {
    // A copy: building writes build/ and syncgen.egg-info next to pyproject.toml.
    const dir = await mkdtemp(join(tmpdir(), "syncgen-pip-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await cp(pythonClient, join(dir, "src"), { recursive: true });
    const venv = join(dir, "venv");
    // Debian's grpcio, protobuf, setuptools and pip, seen from the venv.
    await run(PYTHON, ["-m", "venv", "--system-site-packages", "--without-pip", venv], { timeout: 60_000 });
    const python = join(venv, "bin", "python");
    await run(
      python,
      ["-m", "pip", "install", "--no-index", "--no-build-isolation", "--disable-pip-version-check", join(dir, "src")],
      { env: PYTHON_ENV, timeout: 120_000 },
    );
    const script = [
      "import importlib.resources, syncgen, syncgen.aio, syncgen.djblets",
      "assert importlib.resources.files('syncgen').joinpath('py.typed').is_file()",
      `client = syncgen.SyncgenClient(${JSON.stringify(ts.address)})`,
      "print(client.bump('pip/installed'))",
    ].join("\n");
    // From a directory with no syncgen in it: the installed package is what is imported.
    const { stdout } = await run(python, ["-c", script], { cwd: dir, env: PYTHON_ENV, timeout: 30_000 });
    expect(BigInt(stdout.trim())).toBe(await isolatedClient(cleanups, ts.address).get("pip/installed", { peek: true }));
  });

  test("passes its unit tests (djblets' cases) against the Node server, none skipped", async () => {
    const { stderr } = await run(PYTHON, ["-m", "unittest", "discover", "-s", "tests", "-t", ".", "-v"], {
      cwd: pythonClient,
      // The CLI, for the tests that stop and restart servers of their own.
      env: {
        ...PYTHON_ENV,
        SYNCGEN_TEST_SERVER: ts.address,
        SYNCGEN_TEST_CLI: CLI,
        SYNCGEN_TEST_NODE: process.execPath,
      },
      timeout: 60_000,
    });
    expect(stderr).toMatch(/^Ran \d+ tests/m);
    expect(stderr).toMatch(/^OK$/m);
  });
});

/** Where `command` is on PATH: protoc takes a plugin by its path. */
function onPath(command: string): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (existsSync(join(dir, command))) return join(dir, command);
  }
  throw new Error(`${command} is not on PATH (Debian: protobuf-compiler-grpc)`);
}
