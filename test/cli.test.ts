/** The client commands as scripts use them: exit codes by gRPC status, and --json output. */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";
import { Code } from "../src/client/index.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { CLI, CliProcess, runCli } from "./helpers/cli.js";
import { freePort } from "./helpers/free-port.js";
import { startTestServer } from "./helpers/test-server.js";

const cleanups = cleanupsAfterEach();

describe("exit codes", () => {
  test.each([
    [
      "a key over the limit",
      async () => ["get", "--server", (await startTestServer({}, { cleanups })).address, ""],
      Code.INVALID_ARGUMENT,
    ],
    ["no server there", async () => ["bump", "--server", `127.0.0.1:${await freePort()}`, "k"], Code.UNAVAILABLE],
  ])("%s: 64 plus the gRPC code, as grpcurl exits", async (_, args, code) => {
    const result = await runCli(await args());
    expect(result.code).toBe(64 + code);
    expect(result.stderr).toMatch(new RegExp(`^syncgen: ${Code[code]}: `));
  });

  test("a usage error is 2, success 0", async () => {
    expect((await runCli(["get"])).code).toBe(2);
    expect((await runCli(["get", "--server", "127.0.0.1:1", "--redis-timeout-ms", "1", "k"])).code).toBe(2);
    const ts = await startTestServer({}, { cleanups });
    expect((await runCli(["get", "--server", ts.address, "k"])).code).toBe(0);
  });
});

test("--version prints the package's version", async () => {
  const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  const printed = await runCli(["--version"]);
  expect(printed.stdout.trim()).toBe(version);
  expect(printed.code).toBe(0);
});

describe("--json", () => {
  test("get, bump and clear print one JSON object, generations as decimal strings", async () => {
    const ts = await startTestServer({}, { cleanups });
    const server = ["--server", ts.address, "--json"];
    const bumped = JSON.parse((await runCli(["bump", ...server, "users/42"])).stdout) as { generation: string };
    expect(bumped).toEqual({ key: "users/42", generation: expect.stringMatching(/^\d+$/) });
    expect(BigInt(bumped.generation)).toBe(await ts.client.get("users/42", { peek: true }));
    expect(JSON.parse((await runCli(["get", ...server, "users/42"])).stdout)).toEqual(bumped);
    expect(JSON.parse((await runCli(["clear", ...server, "users/42"])).stdout)).toEqual({
      key: "users/42",
      cleared: true,
    });
    expect(JSON.parse((await runCli(["get", "--peek", ...server, "users/42"])).stdout)).toEqual({
      key: "users/42",
      generation: "0",
    });
  });

  test("a failure is a JSON error on stderr, with the exit code", async () => {
    // --deadline-ms: one short try, not five seconds of retries.
    const result = await runCli([
      "get",
      "--server",
      `127.0.0.1:${await freePort()}`,
      "--deadline-ms",
      "300",
      "--json",
      "k",
    ]);
    expect(result.code).toBe(64 + Code.UNAVAILABLE);
    expect(JSON.parse(result.stderr)).toEqual({
      error: { code: "UNAVAILABLE", message: expect.stringMatching(/^UNAVAILABLE: cannot reach 127\.0\.0\.1:\d+/) },
    });
  });

  test("watch prints every event as a JSON line", async () => {
    const ts = await startTestServer({}, { cleanups });
    const watch = new CliProcess(["watch", "--server", ts.address, "--json", "a", "b"]);
    cleanups.push(() => watch.stop());
    const live = JSON.parse(await watch.line((line) => line.includes('"event":"live"'))) as unknown;
    expect(live).toEqual({
      event: "live",
      changes: [
        { key: "a", generation: "0" },
        { key: "b", generation: "0" },
      ],
    });
    const generation = await ts.client.bump("b");
    const changed = JSON.parse(await watch.line((line) => line.includes('"event":"changes"'))) as unknown;
    expect(changed).toEqual({ event: "changes", changes: [{ key: "b", generation: String(generation) }] });
  });

  test("watch --json piped into a reader that stops early ends quietly", async () => {
    // Heartbeats often: the write after the reader left is what meets the closed pipe.
    const ts = await startTestServer({ heartbeatMs: 200 }, { cleanups });
    const { stdout, stderr } = await promisify(execFile)(
      "/bin/sh",
      ["-c", `node "${CLI}" watch --server ${ts.address} --json a | head -1`],
      { timeout: 20_000 },
    );
    expect(JSON.parse(stdout)).toEqual({ event: "live", changes: [{ key: "a", generation: "0" }] });
    expect(stderr).toBe("");
  });
});
