/**
 * Limits: each is a setting, and a client that goes past it gets RESOURCE_EXHAUSTED or
 * INVALID_ARGUMENT with a message naming it, while the server goes on serving. Transport
 * limits (HTTP/2 streams, keepalive, connection age) are seen on the wire.
 */
import { connect, type Settings } from "node:http2";
import { describe, expect, test } from "vitest";
import { Code, type GenerationClient, type GenerationServiceError } from "../src/client/index.js";
import type { ServerConfig } from "../src/server/config.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { withDeadline } from "./helpers/deadline.js";
import { expectCode } from "./helpers/expect-code.js";
import { isolatedClient } from "./helpers/load.js";
import { stallingProxy } from "./helpers/stalling-proxy.js";
import { startTestServer, type TestServer } from "./helpers/test-server.js";
import { WatchRecorder } from "./helpers/watch-recorder.js";

const cleanups = cleanupsAfterEach();

async function started(overrides: Partial<ServerConfig>): Promise<TestServer> {
  const ts = await startTestServer(overrides);
  cleanups.push(() => ts.close());
  return ts;
}

const client = (address: string): GenerationClient => isolatedClient(cleanups, address);

function watch(c: GenerationClient, keys: string[], resume = false): WatchRecorder {
  const recorder = new WatchRecorder(c, keys, undefined, resume);
  cleanups.push(() => recorder.close());
  return recorder;
}

async function refusal(recorder: WatchRecorder): Promise<GenerationServiceError | undefined> {
  await withDeadline(recorder.done, 5000, "the watch to end");
  return recorder.error;
}

describe("Watch streams", () => {
  test("per connection: one more than --max-watch-streams-per-connection is RESOURCE_EXHAUSTED", async () => {
    const ts = await started({ maxWatchStreamsPerConnection: 2 });
    const crowded = client(ts.address);
    const first = watch(crowded, ["a"]);
    await Promise.all([first.live(), watch(crowded, ["b"]).live()]);
    const error = await refusal(watch(crowded, ["c"]));
    expect(error?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(error?.message).toMatch(
      /2 Watch streams open, the limit per connection \(server setting --max-watch-streams-per-connection\)/,
    );
    // Another connection is not affected; a closed stream gives its slot back.
    await watch(client(ts.address), ["c"]).live();
    await first.close();
    await expect.poll(() => ts.metric("syncgen_watch_streams"), { timeout: 5000 }).toBe(2);
    await watch(crowded, ["c"]).live();
  });

  test("per server: one more than --max-watch-streams is RESOURCE_EXHAUSTED", async () => {
    const ts = await started({ maxWatchStreams: 2 });
    await Promise.all([watch(client(ts.address), ["a"]).live(), watch(client(ts.address), ["b"]).live()]);
    const error = await refusal(watch(client(ts.address), ["c"]));
    expect(error?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(error?.message).toMatch(/its limit \(server setting --max-watch-streams\)/);
    expect(await ts.metric("syncgen_watch_streams")).toBe(2);
  });

  test("more keys than --max-watch-keys is INVALID_ARGUMENT", async () => {
    const ts = await started({ maxWatchKeys: 3 });
    const error = await refusal(watch(client(ts.address), ["a", "b", "c", "d"]));
    expect(error?.code).toBe(Code.INVALID_ARGUMENT);
    expect(error?.message).toMatch(/the limit is 3 keys per Watch \(server setting --max-watch-keys\)/);
  });
});

describe("transport", () => {
  test("a request over --max-message-bytes is RESOURCE_EXHAUSTED, and the next call is served", async () => {
    const ts = await started({ maxMessageBytes: 4096, maxKeyBytes: 65536 });
    const c = client(ts.address);
    await expectCode(
      c.get("k".repeat(8000)),
      Code.RESOURCE_EXHAUSTED,
      /^RESOURCE_EXHAUSTED: the request is \d+ bytes; a generation.v1.GenerationService.Get request may be at most 4096 bytes \(server setting --max-message-bytes\)$/,
    );
    expect(await c.bump("k")).toBeGreaterThan(0n);
  });

  test("--max-concurrent-streams is announced in the server's HTTP/2 SETTINGS", async () => {
    const ts = await started({ maxConcurrentStreams: 7, maxWatchStreamsPerConnection: 5 });
    const session = connect(`http://${ts.address}`);
    cleanups.push(() => session.destroy());
    const [settings] = await withDeadline(
      new Promise<[Settings]>((resolve) => session.once("remoteSettings", (s: Settings) => resolve([s]))),
      5000,
      "the server's SETTINGS",
    );
    expect(settings.maxConcurrentStreams).toBe(7);
  });

  test("keepalive: a connection that stops answering is closed and its Watch streams released", async () => {
    const ts = await started({ keepaliveMs: 1000, keepaliveTimeoutMs: 500 });
    const proxy = await stallingProxy(ts.address);
    cleanups.push(() => proxy.close());
    const recorder = watch(client(proxy.address), ["stalled"]);
    await recorder.live();
    expect(await ts.metric("syncgen_watch_streams")).toBe(1);
    proxy.stall();
    await expect.poll(() => ts.metric("syncgen_watch_streams"), { timeout: 5000 }).toBe(0);
  });

  test("client keepalive: a Watch on a connection that stops answering goes down and resumes", async () => {
    const ts = await started({});
    const proxy = await stallingProxy(ts.address);
    cleanups.push(() => proxy.close());
    const c = isolatedClient(cleanups, proxy.address, {
      "grpc.keepalive_time_ms": 500,
      "grpc.keepalive_timeout_ms": 500,
    });
    const recorder = watch(c, ["client-stalled"], true);
    await recorder.live();
    proxy.stall();
    await expect.poll(() => recorder.downs.length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(recorder.downs[0]?.error.code).toBe(Code.UNAVAILABLE);
  });

  test("max connection age: streams move to a new connection and miss nothing", async () => {
    const ts = await started({ maxConnectionAgeMs: 1000, maxConnectionAgeGraceMs: 200 });
    const c = client(ts.address);
    const recorder = watch(c, ["aged"], true);
    await recorder.live();
    await expect.poll(() => recorder.downs.length > 0, { timeout: 5000 }).toBe(true);
    const generation = await client(ts.address).bump("aged");
    await recorder.sees("aged", generation);
    expect(recorder.error).toBeUndefined();
    expect(recorder.downs.every((down) => down.error.code === Code.UNAVAILABLE)).toBe(true);
  });
});
