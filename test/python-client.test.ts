/**
 * The contract is language-neutral. A Python client generated from proto/ alone works against
 * the Node server, and the Python client library (clients/python) installs with pip and passes
 * djblets' cases against it (cross-language.test.ts has it work with Go and TypeScript).
 * Debian's protoc, grpc_python_plugin and python3-grpcio (.ci/run installs them).
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
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
  test("installs with the README's offline pip line, and works from outside the repository", async () => {
    // A copy, laid out as the README has it: building writes build/ next to pyproject.toml.
    const dir = await mkdtemp(join(tmpdir(), "syncgen-pip-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await cp(pythonClient, join(dir, "clients", "python"), { recursive: true });
    // The README's line, with Debian's python3 (where apt puts grpcio, setuptools and pip).
    const install = /^python3 -m venv .*$/m.exec(readmeSection("## The Python client", "### Django"))?.[0];
    expect(install).toContain("pip install --no-index --no-build-isolation ./clients/python");
    await run("/bin/sh", ["-c", (install as string).replace(/^python3 /, `${PYTHON} `)], {
      cwd: dir,
      env: PYTHON_ENV,
      timeout: 180_000,
    });
    const script = [
      "import importlib.resources, syncgen, syncgen.aio, syncgen.djblets",
      "assert importlib.resources.files('syncgen').joinpath('py.typed').is_file()",
      `client = syncgen.SyncgenClient(${JSON.stringify(ts.address)})`,
      "print(client.bump('pip/installed'))",
    ].join("\n");
    // From a directory with no syncgen in it: the installed package is what is imported.
    const { stdout } = await run(join(dir, "venv", "bin", "python"), ["-c", script], {
      cwd: tmpdir(),
      env: PYTHON_ENV,
      timeout: 30_000,
    });
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

describe("the README's Python and Django sections", () => {
  /** Runs a README example as a script, with the package importable and the server's address in it. */
  async function runExample(code: string, dir: string): Promise<string[]> {
    await writeFile(join(dir, "example.py"), code.replaceAll("127.0.0.1:50051", ts.address));
    const { stdout } = await run(PYTHON, ["example.py"], {
      cwd: dir,
      env: pythonEnv({ PYTHONPATH: `${pythonClient}${delimiter}${dir}` }),
      timeout: 60_000,
    });
    return stdout.trim().split("\n");
  }

  async function scratch(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "syncgen-readme-python-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  test("its Python examples run as pasted into a script", async () => {
    const [sync, asyncio, ...rest] = pythonBlocks(readmeSection("## The Python client", "### Django"));
    expect(rest).toEqual([]);
    expect(await runExample(sync as string, await scratch())).toEqual(["example.com:users:42 False", "{}"]);
    expect(await runExample(asyncio as string, await scratch())).toEqual(["{}"]);
  });

  test("its Django example runs in a Django project with its settings", async () => {
    const [example, settings, ...rest] = pythonBlocks(readmeSection("### Django", "## The Go client"));
    expect(rest).toEqual([]);
    const dir = await scratch();
    // The README's settings, pointed at the test server, in a project with nothing else.
    const project = `${(settings as string).replaceAll("syncgen.internal:50051", ts.address)}\nSECRET_KEY = "readme"\nINSTALLED_APPS = []\n`;
    await writeFile(join(dir, "readme_settings.py"), project);
    const setup = [
      "import os, django",
      'os.environ["DJANGO_SETTINGS_MODULE"] = "readme_settings"',
      "django.setup()",
      'def reload(): print("reloaded")',
    ].join("\n");
    const lines = await runExample(`${setup}\n${example}\nprint(sync.cache_key, sync.is_expired())\n`, dir);
    expect(lines).toEqual(["my-cache-key False"]);
  });
});

/** A part of the README: from the heading `from` to the heading `to`. */
function readmeSection(from: string, to: string): string {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const start = readme.indexOf(from);
  return readme.slice(start, readme.indexOf(to, start));
}

/** The ```python blocks of a README section. */
function pythonBlocks(section: string): string[] {
  return [...section.matchAll(/```python\n([\s\S]*?)\n```/g)].map((match) => match[1] as string);
}

/** Where `command` is on PATH: protoc takes a plugin by its path. */
function onPath(command: string): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (existsSync(join(dir, command))) return join(dir, command);
  }
  throw new Error(`${command} is not on PATH (Debian: protobuf-compiler-grpc)`);
}
