/**
 * The contract is language-neutral: a Python client generated from proto/ alone (Debian's
 * protoc and grpc_python_plugin; .ci/run installs them) works against the Node server.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startTestServer, type TestServer } from "./helpers/test-server.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const PYTHON = "/usr/bin/python3";

let generated: string;
let ts: TestServer;

beforeAll(async () => {
  generated = await mkdtemp(join(tmpdir(), "syncgen-python-"));
  await run("protoc", [
    "-I",
    join(root, "proto"),
    `--python_out=${generated}`,
    `--grpc_python_out=${generated}`,
    "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
    "generation/v1/generation.proto",
  ]);
  ts = await startTestServer();
});

afterAll(async () => {
  await ts?.close();
  if (generated) await rm(generated, { recursive: true, force: true });
});

test("a Python client generated from proto/ alone gets, bumps, clears and watches", async () => {
  const { stdout } = await run(
    PYTHON,
    [join(root, "test/python/generated_client_check.py"), generated, ts.address, "python-key"],
    { timeout: 30_000 },
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
