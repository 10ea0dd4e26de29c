/**
 * The README's "From any language" recipes, run as printed: `buf curl` (the Buf CLI this
 * repository already uses) against a real server, with nothing but server reflection to know
 * the services by: listing them, every unary RPC in JSON, the health check, and a Watch
 * stream.
 */
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { CliProcess } from "./helpers/cli.js";
import { startTestServer, type TestServer } from "./helpers/test-server.js";

const BUF = resolve(import.meta.dirname, "../node_modules/.bin/buf");
const cleanups = cleanupsAfterEach();

/** The README's flags: plaintext HTTP/2 with the gRPC protocol (buf curl's default is Connect). */
const GRPC = ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--emit-defaults"];

async function bufCurl(_ts: TestServer, args: string[]): Promise<unknown> {
  const { stdout } = await promisify(execFile)(BUF, [...GRPC, ...args], { timeout: 30_000 });
  return JSON.parse(stdout);
}

const url = (ts: TestServer, method: string): string => `http://${ts.address}/${method}`;

describe("buf curl, knowing the services by reflection only", () => {
  test("lists every service: GenerationService, health, and reflection v1 and v1alpha", async () => {
    const ts = await startTestServer({}, { cleanups });
    const { stdout } = await promisify(execFile)(BUF, [...GRPC, "--list-services", `http://${ts.address}`], {
      timeout: 30_000,
    });
    expect(stdout.trim().split("\n").sort()).toEqual([
      "generation.v1.GenerationService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
    ]);
  });

  test("calls Get, Bump and Clear in JSON, generation 0 shown for an absent key", async () => {
    const ts = await startTestServer({}, { cleanups });
    const bumped = (await bufCurl(ts, [
      "-d",
      '{"key":"users/42"}',
      url(ts, "generation.v1.GenerationService/Bump"),
    ])) as {
      generation: string;
    };
    expect(BigInt(bumped.generation)).toBe(await ts.client.get("users/42", { peek: true }));
    expect(await bufCurl(ts, ["-d", '{"key":"users/42"}', url(ts, "generation.v1.GenerationService/Get")])).toEqual(
      bumped,
    );
    expect(await bufCurl(ts, ["-d", '{"key":"users/42"}', url(ts, "generation.v1.GenerationService/Clear")])).toEqual(
      {},
    );
    expect(
      await bufCurl(ts, ["-d", '{"key":"users/42","peek":true}', url(ts, "generation.v1.GenerationService/Get")]),
    ).toEqual({ generation: "0" });
  });

  test("asks grpc.health.v1.Health", async () => {
    const ts = await startTestServer({}, { cleanups });
    expect(await bufCurl(ts, ["-d", "{}", url(ts, "grpc.health.v1.Health/Check")])).toEqual({ status: "SERVING" });
  });

  test("watches: the first response, then a Bump made by another client", async () => {
    const ts = await startTestServer({}, { cleanups });
    const watch = new CliProcess(
      [...GRPC, "-d", '{"keys":["users/42"]}', url(ts, "generation.v1.GenerationService/Watch")],
      {},
      {
        script: BUF,
        nodeArgs: [],
      },
    );
    cleanups.push(() => watch.stop("SIGINT"));
    await watch.line((line) => line.includes('"generation": "0"'), 30_000);
    const generation = await ts.client.bump("users/42");
    await watch.line((line) => line.includes(`"generation": "${generation}"`), 30_000);
  });
});
