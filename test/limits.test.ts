/**
 * Limits: each is a setting, and a client that goes past it gets RESOURCE_EXHAUSTED or
 * INVALID_ARGUMENT with a message naming it, while the server goes on serving. Transport
 * limits (HTTP/2 streams, keepalive, connection age) are seen on the wire.
 */
import { connect, type Settings } from "node:http2";
import { describe, expect, test } from "vitest";
import { Code } from "../src/client/index.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { withDeadline } from "./helpers/deadline.js";
import { expectCode, expectWatchCode } from "./helpers/expect-code.js";
import { stallingProxy } from "./helpers/stalling-proxy.js";
import { isolatedClient } from "./helpers/test-client.js";
import { startTestServer } from "./helpers/test-server.js";
import { recordWatch } from "./helpers/watch-recorder.js";

const cleanups = cleanupsAfterEach();

describe("Watch streams", () => {
  test("per connection: one more than --max-watch-streams-per-connection is RESOURCE_EXHAUSTED", async () => {
    const ts = await startTestServer({ maxWatchStreamsPerConnection: 2 }, { cleanups });
    const crowded = isolatedClient(cleanups, ts.address);
    const first = recordWatch(cleanups, crowded, ["a"]);
    await Promise.all([first.live(), recordWatch(cleanups, crowded, ["b"]).live()]);
    await expectWatchCode(
      recordWatch(cleanups, crowded, ["c"]),
      Code.RESOURCE_EXHAUSTED,
      /2 Watch streams open, the limit per connection \(server setting --max-watch-streams-per-connection\)/,
    );
    // Another connection is not affected; a closed stream gives its slot back.
    await recordWatch(cleanups, isolatedClient(cleanups, ts.address), ["c"]).live();
    await first.close();
    await expect.poll(() => ts.metric("syncgen_watch_streams"), { timeout: 5000 }).toBe(2);
    await recordWatch(cleanups, crowded, ["c"]).live();
  });

  test("per server: one more than --max-watch-streams is RESOURCE_EXHAUSTED", async () => {
    const ts = await startTestServer({ maxWatchStreams: 2 }, { cleanups });
    await Promise.all([
      recordWatch(cleanups, isolatedClient(cleanups, ts.address), ["a"]).live(),
      recordWatch(cleanups, isolatedClient(cleanups, ts.address), ["b"]).live(),
    ]);
    await expectWatchCode(
      recordWatch(cleanups, isolatedClient(cleanups, ts.address), ["c"]),
      Code.RESOURCE_EXHAUSTED,
      /its limit \(server setting --max-watch-streams\)/,
    );
    expect(await ts.metric("syncgen_watch_streams")).toBe(2);
  });

  test("more keys than --max-watch-keys is INVALID_ARGUMENT", async () => {
    const ts = await startTestServer({ maxWatchKeys: 3 }, { cleanups });
    await expectWatchCode(
      recordWatch(cleanups, isolatedClient(cleanups, ts.address), ["a", "b", "c", "d"]),
      Code.INVALID_ARGUMENT,
      /the limit is 3 keys per Watch \(server setting --max-watch-keys\)/,
    );
  });
});

describe("transport", () => {
  test("a request over --max-message-bytes is RESOURCE_EXHAUSTED, and the next call is served", async () => {
    const ts = await startTestServer({ maxMessageBytes: 4096, maxKeyBytes: 65536 }, { cleanups });
    const c = isolatedClient(cleanups, ts.address);
    await expectCode(
      c.get("k".repeat(8000)),
      Code.RESOURCE_EXHAUSTED,
      /^RESOURCE_EXHAUSTED: the request is \d+ bytes; a generation.v1.GenerationService.Get request may be at most 4096 bytes \(server setting --max-message-bytes\)$/,
    );
    expect(await c.bump("k")).toBeGreaterThan(0n);
  });

  test("--max-concurrent-streams is announced in the server's HTTP/2 SETTINGS", async () => {
    const ts = await startTestServer({ maxConcurrentStreams: 7, maxWatchStreamsPerConnection: 5 }, { cleanups });
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
    const ts = await startTestServer({ keepaliveMs: 1000, keepaliveTimeoutMs: 500 }, { cleanups });
    const proxy = await stallingProxy(ts.address);
    cleanups.push(() => proxy.close());
    const recorder = recordWatch(cleanups, isolatedClient(cleanups, proxy.address), ["stalled"]);
    await recorder.live();
    expect(await ts.metric("syncgen_watch_streams")).toBe(1);
    proxy.stall();
    await expect.poll(() => ts.metric("syncgen_watch_streams"), { timeout: 5000 }).toBe(0);
  });

  test("client keepalive: a Watch on a connection that stops answering goes down and resumes", async () => {
    const ts = await startTestServer({}, { cleanups });
    const proxy = await stallingProxy(ts.address);
    cleanups.push(() => proxy.close());
    const c = isolatedClient(cleanups, proxy.address, {
      channelOptions: { "grpc.keepalive_time_ms": 500, "grpc.keepalive_timeout_ms": 500 },
    });
    const recorder = recordWatch(cleanups, c, ["client-stalled"], { resume: true });
    await recorder.live();
    proxy.stall();
    await expect.poll(() => recorder.downs.length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(recorder.downs[0]?.error.code).toBe(Code.UNAVAILABLE);
  });

  test("max connection age: streams move to a new connection and miss nothing", async () => {
    const ts = await startTestServer({ maxConnectionAgeMs: 1000, maxConnectionAgeGraceMs: 200 }, { cleanups });
    const c = isolatedClient(cleanups, ts.address);
    const recorder = recordWatch(cleanups, c, ["aged"], { resume: true });
    await recorder.live();
    await expect.poll(() => recorder.downs.length > 0, { timeout: 5000 }).toBe(true);
    const generation = await isolatedClient(cleanups, ts.address).bump("aged");
    await recorder.sees("aged", generation);
    expect(recorder.error).toBeUndefined();
    expect(recorder.downs.every((down) => down.error.code === Code.UNAVAILABLE)).toBe(true);
  });
});
