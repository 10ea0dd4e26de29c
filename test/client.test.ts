/** The client's own behaviour: token, backoff, resuming Watch, close. */

import { createServer as createNetServer } from "node:net";
import { create } from "@bufbuild/protobuf";
import {
  type Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  status,
} from "@grpc/grpc-js";
import { describe, expect, test } from "vitest";
import {
  Backoff,
  Code,
  type ConnectionState,
  createGenerationClient,
  type GenerationClient,
  isRetryable,
  type WatchEvent,
} from "../src/client/index.js";
import {
  GenerationService,
  GetResponseSchema,
  type WatchRequest,
  WatchResponseSchema,
} from "../src/gen/generation/v1/generation_pb.js";
import { grpcServiceDefinition } from "../src/rpc/service-definition.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { Condition, withDeadline } from "./helpers/deadline.js";
import { expectCode } from "./helpers/expect-code.js";
import { freePort } from "./helpers/free-port.js";
import { sharedRedis } from "./helpers/redis-process.js";
import { isolatedClient } from "./helpers/test-client.js";
import { startTestServer } from "./helpers/test-server.js";
import { recordWatch } from "./helpers/watch-recorder.js";

const cleanups = cleanupsAfterEach();

describe("Backoff", () => {
  test("waits a random time below a cap that doubles up to the maximum, and resets", () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000 });
    const caps = [100, 200, 400, 800, 1000, 1000];
    for (const cap of caps) {
      const wait = backoff.next();
      expect(wait).toBeGreaterThanOrEqual(0);
      expect(wait).toBeLessThanOrEqual(cap);
    }
    backoff.reset();
    expect(backoff.next()).toBeLessThanOrEqual(100);
  });

  test("spreads waits out (full jitter), not all near the cap", () => {
    const waits = Array.from({ length: 1000 }, () => new Backoff({ initialMs: 1000 }).next());
    expect(Math.min(...waits)).toBeLessThan(100);
    expect(Math.max(...waits)).toBeGreaterThan(900);
  });
});

describe("the bearer token", () => {
  test("is sent as authorization metadata on every call, Watch included", async () => {
    const seen: (string | undefined)[] = [];
    const record = (metadata: Metadata): void => {
      seen.push(metadata.get("authorization")[0]?.toString());
    };
    const server = new Server();
    const definition = grpcServiceDefinition(GenerationService);
    server.addService(definition, {
      get: (call: ServerUnaryCall<unknown, unknown>, callback: (e: null, r: unknown) => void) => {
        record(call.metadata);
        callback(null, create(GetResponseSchema, { generation: 7n }));
      },
      watch: (call: ServerWritableStream<unknown, unknown>) => {
        record(call.metadata);
        call.write(create(WatchResponseSchema, { changes: [] }));
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    cleanups.push(() => server.forceShutdown());
    const withToken = createGenerationClient(`127.0.0.1:${port}`, { token: "s3cret" });
    const without = createGenerationClient(`127.0.0.1:${port}`);
    cleanups.push(
      () => withToken.close(),
      () => without.close(),
    );
    expect(await withToken.get("k")).toBe(7n);
    const stop = new AbortController();
    for await (const event of withToken.watch(["k"], { signal: stop.signal })) {
      expect(event.type).toBe("live");
      stop.abort();
    }
    expect(await without.get("k")).toBe(7n);
    expect(seen).toEqual(["Bearer s3cret", "Bearer s3cret", undefined]);
  });
});

describe("a resuming Watch", () => {
  test("survives a server restart: down, then live with only what changed meanwhile", async () => {
    const redis = await sharedRedis();
    cleanups.push(() => redis.close());
    const port = await freePort();
    const settings = { redis: redis.target, prefix: redis.prefix(), listen: { host: "127.0.0.1", port: port } };
    let server = await startTestServer(settings);
    cleanups.push(() => server.close());
    const client = isolatedClient(cleanups, `127.0.0.1:${port}`);
    const other = server.newClient();
    const same = await other.bump("same");
    const watch = recordWatch(cleanups, client, ["same", "changed"], { resume: true });
    const lives = () => watch.events.filter((e): e is Extract<WatchEvent, { type: "live" }> => e.type === "live");
    await watch.live(10_000);
    await server.close();
    await watch.until((w) => w.downs.length > 0, "down", 10_000);
    // The change is made while the watched server is down, through another replica, so it is
    // surely among what the resumed Watch's first response reports.
    const elsewhere = await startTestServer({ ...settings, listen: { host: "127.0.0.1", port: 0 } });
    const changed = await elsewhere.client.bump("changed");
    await elsewhere.close();
    server = await startTestServer(settings);
    await watch.until(() => lives().length === 2, "live again", 10_000);
    expect(lives()[0]?.changes.map((c) => [c.key, c.generation])).toEqual([
      ["same", same],
      ["changed", 0n],
    ]);
    // After the reconnect, only the key that changed (between its first report and now).
    expect(lives()[1]?.changes.map((c) => [c.key, c.generation])).toEqual([["changed", changed]]);
  });

  test("asks again for a batch a drop cut short: a part received is not sent as known", async () => {
    // A replica that sends the first part of a split batch, then shuts down (UNAVAILABLE);
    // later Watches are answered as syncgen answers them, from what they say they know.
    const current = new Map([
      ["a", 5n],
      ["b", 7n],
    ]);
    const knowns: Record<string, bigint>[] = [];
    const server = new Server();
    server.addService(grpcServiceDefinition(GenerationService), {
      watch: (call: ServerWritableStream<WatchRequest, unknown>) => {
        knowns.push({ ...call.request.known });
        if (knowns.length === 1) {
          call.write(create(WatchResponseSchema, { changes: [{ key: "a", generation: 5n }], continued: true }));
          call.emit("error", { code: status.UNAVAILABLE, details: "replica shutting down" });
          return;
        }
        const changes = call.request.keys
          .filter((key) => call.request.known[key] !== current.get(key))
          .map((key) => ({ key, generation: current.get(key) ?? 0n }));
        call.write(create(WatchResponseSchema, { changes }));
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    cleanups.push(() => server.forceShutdown());
    const client = createGenerationClient(`127.0.0.1:${port}`, { backoff: { initialMs: 1, maxMs: 10 } });
    cleanups.push(() => client.close());
    const watch = recordWatch(cleanups, client, ["a", "b"], { resume: true });
    await watch.live(30_000);
    expect(watch.events.map((event) => event.type)).toEqual(["down", "live"]);
    const live = watch.events[1] as Extract<WatchEvent, { type: "live" }>;
    expect(live.changes.map((c) => [c.key, c.generation])).toEqual([
      ["a", 5n],
      ["b", 7n],
    ]);
    expect(knowns).toEqual([{}, {}]);
  });

  test("ends when the client is closed", async () => {
    const client = createGenerationClient(`127.0.0.1:${await freePort()}`, { backoff: { initialMs: 10, maxMs: 20 } });
    const consumed = (async () => {
      const seen: string[] = [];
      for await (const event of client.watch(["k"])) seen.push(event.type);
      return seen;
    })();
    client.close();
    const seen = await withDeadline(consumed, 5000, "the watch to end");
    expect(seen.every((type) => type === "down")).toBe(true);
  });
});

describe("signals", () => {
  test.each([
    ["Get", (c: GenerationClient, signal: AbortSignal) => c.get("k", { signal })],
    ["Bump", (c: GenerationClient, signal: AbortSignal) => c.bump("k", { signal })],
    ["Clear", (c: GenerationClient, signal: AbortSignal) => c.clear("k", { signal })],
  ])("%s with an already-aborted signal rejects at once with CANCELLED and makes no call", async (_, call) => {
    const ts = await startTestServer({}, { cleanups });
    const signal = AbortSignal.abort();
    await expectCode(call(ts.client, signal), Code.CANCELLED, /signal was aborted before it started/);
    expect(await ts.callsStarted()).toBe(0);
    expect(await ts.client.get("k", { peek: true })).toBe(0n);
  });

  test("a signal aborted while a call waits to retry stops it: CANCELLED, no further attempt", async () => {
    const client = isolatedClient(cleanups, `127.0.0.1:${await freePort()}`, {
      backoff: { initialMs: 200, maxMs: 200 },
    });
    const abort = new AbortController();
    const call = client.get("k", { signal: abort.signal, deadlineMs: 30_000 });
    // The first attempt has failed (nothing listens there): the call now waits to retry.
    const changed = new Condition();
    cleanups.push(client.onConnectionStateChange(() => changed.notify()));
    await changed.until(
      () => (client.connectionState === "transient failure" ? true : undefined),
      10_000,
      "a failed attempt",
    );
    abort.abort();
    await expectCode(call, Code.CANCELLED, /signal was aborted (between attempts|before it started)|Cancelled/);
  });

  test("a Watch with an already-aborted signal ends at once, making no call", async () => {
    const ts = await startTestServer({}, { cleanups });
    const events: WatchEvent[] = [];
    for await (const event of ts.client.watch(["k"], { signal: AbortSignal.abort() })) events.push(event);
    expect(events).toEqual([]);
    expect(await ts.callsStarted()).toBe(0);
  });
});

describe("when the server cannot be reached", () => {
  test("the error names the address and says what to check, keeping the code", async () => {
    const port = await freePort();
    const client = isolatedClient(cleanups, `127.0.0.1:${port}`);
    const failure = await expectCode(
      client.get("k", { retry: false }),
      Code.UNAVAILABLE,
      new RegExp(
        `^UNAVAILABLE: cannot reach 127\\.0\\.0\\.1:${port}: connection refused; is \`syncgen serve\` running there\\?$`,
      ),
    );
    // The original error stays reachable, for whoever needs grpc-js's words.
    expect(String((failure.cause as { details?: string }).details)).toMatch(/ECONNREFUSED/);
    expect(isRetryable(failure)).toBe(true);
    const watch = recordWatch(cleanups, client, ["k"], { resume: true });
    await watch.until((w) => w.downs.length > 0, "the watch to go down");
    expect(watch.downs[0]?.error.message).toMatch(/^UNAVAILABLE: cannot reach 127\.0\.0\.1:\d+: connection refused/);
  });

  test("connectionState follows the connection: ready, transient failure while the server is gone, ready again", async () => {
    const port = await freePort();
    const settings = { listen: { host: "127.0.0.1", port } };
    let server = await startTestServer(settings);
    cleanups.push(() => server.close());
    const client = isolatedClient(cleanups, `127.0.0.1:${port}`, { backoff: { initialMs: 20, maxMs: 200 } });
    const states: ConnectionState[] = [];
    const changed = new Condition();
    const stop = client.onConnectionStateChange((state) => {
      states.push(state);
      changed.notify();
    });
    cleanups.push(stop);
    const reached = (state: ConnectionState) =>
      changed.until(() => (client.connectionState === state ? true : undefined), 10_000, `connection state ${state}`);
    expect(client.connectionState).toBe("idle");
    await client.get("k");
    expect(client.connectionState).toBe("ready");
    await server.close();
    await reached("transient failure");
    server = await startTestServer(settings);
    await reached("ready");
    expect(states).toContain("transient failure");
    expect(states.at(-1)).toBe("ready");
  });

  test("after an outage, calls and a Watch are back within backoff.maxMs of the server (grpc-js's own reconnects follow it)", async () => {
    const port = await freePort();
    const settings = { listen: { host: "127.0.0.1", port } };
    let server = await startTestServer(settings);
    cleanups.push(() => server.close());
    const maxMs = 500;
    const client = isolatedClient(cleanups, `127.0.0.1:${port}`, { backoff: { initialMs: 50, maxMs } });
    const watch = recordWatch(cleanups, client, ["k"], { resume: true });
    await watch.live();
    await server.close();
    // While the server is away, something on its port that accepts and drops every connection
    // counts grpc-js's reconnect attempts. By its default backoff (1 s growing by 1.6 to
    // 120 s) the fifth would come about 6.5 s after the fourth; by the client's, within maxMs.
    let attempts = 0;
    const attempted = new Condition();
    const dropper = createNetServer((socket) => {
      attempts++;
      attempted.notify();
      socket.destroy();
    });
    await new Promise<void>((resolve) => dropper.listen(port, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => dropper.close(resolve)));
    await attempted.until(() => (attempts >= 4 ? true : undefined), 60_000, "four reconnect attempts");
    await new Promise((resolve) => dropper.close(resolve));
    server = await startTestServer(settings);
    const back = performance.now();
    await client.get("k", { deadlineMs: 20_000 });
    const getMs = performance.now() - back;
    const lives = () => watch.events.filter((e) => e.type === "live").length;
    await watch.until(() => lives() === 2, "the watch to be live again", 20_000);
    const watchMs = performance.now() - back;
    // grpc-js's next attempt within maxMs (+20% jitter), a retry of ours within maxMs more;
    // the rest is room for a busy host. By grpc-js's defaults it took over 5 s.
    expect(getMs).toBeLessThan(2.2 * maxMs + 1500);
    expect(watchMs).toBeLessThan(2.2 * maxMs + 1500);
  });
});
