/** The client's own behaviour: token, backoff, resuming Watch, close. */
import { create } from "@bufbuild/protobuf";
import {
  type Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
} from "@grpc/grpc-js";
import { describe, expect, test } from "vitest";
import { Backoff, createGenerationClient, type WatchEvent } from "../src/client/index.js";
import { GenerationService, GetResponseSchema, WatchResponseSchema } from "../src/gen/generation/v1/generation_pb.js";
import { grpcServiceDefinition } from "../src/rpc/service-definition.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { withDeadline } from "./helpers/deadline.js";
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
