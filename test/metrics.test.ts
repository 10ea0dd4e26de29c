/**
 * Prometheus metrics at --metrics-listen: go-grpc-prometheus's names for every call, and
 * syncgen's own for watch streams, watched keys, Redis, bumps and fan-out. Scraped over HTTP
 * from a real server, with a real private Redis for the "Redis up" gauge.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, test } from "vitest";
import { Code } from "../src/client/index.js";
import { WatchRequestSchema } from "../src/gen/generation/v1/generation_pb.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { withDeadline } from "./helpers/deadline.js";
import { expectCode } from "./helpers/expect-code.js";
import { scrapeMetrics } from "./helpers/metrics.js";
import { RedisProcess, uniquePrefix } from "./helpers/redis-process.js";
import { isolatedClient } from "./helpers/test-client.js";
import { startTestServer } from "./helpers/test-server.js";
import { recordWatch } from "./helpers/watch-recorder.js";

const cleanups = cleanupsAfterEach();

const method = (name: string, type = "unary"): string =>
  `grpc_type="${type}",grpc_service="generation.v1.GenerationService",grpc_method="${name}"`;

describe("metrics", () => {
  test("counts calls with go-grpc-prometheus's names, and the fan-out with syncgen's", async () => {
    const ts = await startTestServer({}, { cleanups });
    const c = isolatedClient(cleanups, ts.address);
    const watcher = recordWatch(cleanups, c, ["m/a", "m/b"]);
    await watcher.live();
    const generation = await c.bump("m/a");
    await watcher.sees("m/a", generation);
    await c.get("m/a");
    await expectCode(c.get(""), Code.INVALID_ARGUMENT);
    const m = await scrapeMetrics(ts.metricsAddress);
    expect(m.get(`grpc_server_started_total{${method("Get")}}`)).toBe(2);
    expect(m.get(`grpc_server_handled_total{${method("Get")},grpc_code="OK"}`)).toBe(1);
    expect(m.get(`grpc_server_handled_total{${method("Get")},grpc_code="InvalidArgument"}`)).toBe(1);
    expect(m.get(`grpc_server_handling_seconds_count{${method("Get")}}`)).toBe(2);
    expect(m.get(`grpc_server_handling_seconds_bucket{le="+Inf",${method("Bump")}}`)).toBe(1);
    expect(m.get(`grpc_server_msg_received_total{${method("Watch", "server_stream")}}`)).toBe(1);
    // The first response, then the change.
    expect(m.get(`grpc_server_msg_sent_total{${method("Watch", "server_stream")}}`)).toBe(2);
    expect(m.get(`grpc_server_started_total{${method("Watch", "server_stream")}}`)).toBe(1);
    expect(m.get("syncgen_watch_streams")).toBe(1);
    expect(m.get("syncgen_watched_keys")).toBe(2);
    expect(m.get("syncgen_bumps_total")).toBe(1);
    expect(m.get("syncgen_fanout_messages_total")).toBe(1);
    expect(m.get("syncgen_fanout_lag_seconds_count")).toBe(1);
    expect(m.get('syncgen_redis_up{store="memory"}')).toBe(1);
    expect(m.get("process_cpu_seconds_total")).toBeGreaterThan(0);

    await watcher.close();
    await expect.poll(() => ts.metric("syncgen_watch_streams"), { timeout: 5000 }).toBe(0);
    const after = await scrapeMetrics(ts.metricsAddress);
    expect(after.get("syncgen_watch_streams")).toBe(0);
    expect(after.get("syncgen_watched_keys")).toBe(0);
    expect(after.get(`grpc_server_handled_total{${method("Watch", "server_stream")},grpc_code="Canceled"}`)).toBe(1);
  });

  test("counts refused calls too: UNAUTHENTICATED and PERMISSION_DENIED", async () => {
    const dir = mkdtempSync(join(tmpdir(), "syncgen-auth-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const authFile = join(dir, "tokens.json");
    const token = "metrics-token-0123456789";
    writeFileSync(authFile, JSON.stringify({ tokens: [{ name: "m", token, read: ["m/"], write: ["m/"] }] }));
    const ts = await startTestServer({ authFile }, { cleanups });
    await expectCode(isolatedClient(cleanups, ts.address).bump("m/a"), Code.UNAUTHENTICATED);
    await expectCode(isolatedClient(cleanups, ts.address, { token }).bump("other/a"), Code.PERMISSION_DENIED);
    await isolatedClient(cleanups, ts.address, { token }).bump("m/a");
    const m = await scrapeMetrics(ts.metricsAddress);
    expect(m.get(`grpc_server_handled_total{${method("Bump")},grpc_code="Unauthenticated"}`)).toBe(1);
    expect(m.get(`grpc_server_handled_total{${method("Bump")},grpc_code="PermissionDenied"}`)).toBe(1);
    expect(m.get(`grpc_server_handled_total{${method("Bump")},grpc_code="OK"}`)).toBe(1);
    expect(m.get("syncgen_bumps_total")).toBe(1);
  });

  test("syncgen_redis_up follows Redis: 0 while it is down, 1 once it is back", async () => {
    const redis = await RedisProcess.start();
    cleanups.push(() => redis.stop());
    const ts = await startTestServer({ redis: redis.target, prefix: uniquePrefix() }, { cleanups });
    const up = `syncgen_redis_up{store="${ts.store.feed.description}"}`;
    expect((await scrapeMetrics(ts.metricsAddress)).get(up)).toBe(1);
    await redis.kill();
    await expect.poll(() => ts.store.feed.state !== "ready", { timeout: 5000 }).toBe(true);
    expect((await scrapeMetrics(ts.metricsAddress)).get(up)).toBe(0);
    await expectCode(isolatedClient(cleanups, ts.address).bump("m/a"), Code.UNAVAILABLE);
    await redis.restart();
    await expect.poll(() => ts.store.feed.state === "ready", { timeout: 10_000 }).toBe(true);
    expect((await scrapeMetrics(ts.metricsAddress)).get(up)).toBe(1);
    expect(
      (await scrapeMetrics(ts.metricsAddress)).get(
        `grpc_server_handled_total{${method("Bump")},grpc_code="Unavailable"}`,
      ),
    ).toBe(1);
  });

  test("a call that runs past its deadline is counted DeadlineExceeded, not Canceled", async () => {
    const ts = await startTestServer({}, { cleanups });
    const raw = new grpc.Client(ts.address, grpc.credentials.createInsecure());
    cleanups.push(() => raw.close());
    const request = Buffer.from(toBinary(WatchRequestSchema, create(WatchRequestSchema, { keys: ["m/deadline"] })));
    const call = raw.makeServerStreamRequest(
      "/generation.v1.GenerationService/Watch",
      (b: Buffer) => b,
      (b: Buffer) => b,
      request,
      { deadline: Date.now() + 300 },
    );
    call.on("data", () => {});
    const code = await withDeadline(
      new Promise<number>((resolve) => call.on("error", (error: grpc.ServiceError) => resolve(error.code))),
      5000,
      "the Watch to pass its deadline",
    );
    expect(code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await expect
      .poll(
        async () =>
          (await scrapeMetrics(ts.metricsAddress)).get(
            `grpc_server_handled_total{${method("Watch", "server_stream")},grpc_code="DeadlineExceeded"}`,
          ),
        {
          timeout: 5000,
        },
      )
      .toBe(1);
  });

  test("GET /metrics answers in Prometheus's text format; anything else is 404", async () => {
    const ts = await startTestServer({}, { cleanups });
    const scraped = await fetch(`http://${ts.metricsAddress}/metrics`);
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    await scraped.body?.cancel();
    const response = await fetch(`http://${ts.metricsAddress}/`);
    expect(response.status).toBe(404);
    await response.body?.cancel();
  });
});
