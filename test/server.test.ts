/**
 * The server around the service: health, reflection, undecodable requests, graceful
 * shutdown, and the `syncgen serve` process itself.
 */
import { type AddressInfo, createConnection, createServer } from "node:net";
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { describe, expect, test } from "vitest";
import { Code } from "../src/client/index.js";
import { ServerReflectionRequestSchema } from "../src/gen/grpc/reflection/v1/reflection_pb.js";
import { defaultServerConfig } from "../src/server/config.js";
import { silentLogger } from "../src/server/logger.js";
import { SyncgenServer } from "../src/server/server.js";
import { ConfigError } from "../src/server/settings.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { CliProcess, runCli } from "./helpers/cli.js";
import { withDeadline } from "./helpers/deadline.js";
import { expectStatus, expectWatchCode } from "./helpers/expect-code.js";
import { freePort } from "./helpers/free-port.js";
import { healthClient, reflectionClient, serviceNames } from "./helpers/grpc-peers.js";
import { rawClient, rawUnary } from "./helpers/raw-grpc.js";
import { RedisProcess, uniquePrefix } from "./helpers/redis-process.js";
import { ServeProcess } from "./helpers/serve-process.js";
import { isolatedClient } from "./helpers/test-client.js";
import { startTestServer } from "./helpers/test-server.js";
import { recordWatch } from "./helpers/watch-recorder.js";

const cleanups = cleanupsAfterEach();

describe("grpc.health.v1", () => {
  test("reports NOT_SERVING while Redis is unreachable and SERVING once it is back", async () => {
    const redis = await RedisProcess.start();
    cleanups.push(() => redis.stop());
    await redis.kill();
    const ts = await startTestServer({ redis: redis.target, prefix: uniquePrefix() }, { waitReady: false, cleanups });
    const health = healthClient(ts.address);
    cleanups.push(() => health.close());
    const watch = health.watch("generation.v1.GenerationService");
    cleanups.push(() => watch.cancel());
    await watch.until("NOT_SERVING", 5000);
    expect(watch.statuses[0]?.status).toBe("NOT_SERVING");
    await redis.restart();
    await watch.until("SERVING", 10_000);
    expect(await health.check("")).toBe("SERVING");
  });
});

describe("server reflection", () => {
  test("lists GenerationService and serves its file descriptor", async () => {
    const ts = await startTestServer({}, { cleanups });
    const reflection = reflectionClient(ts.address);
    cleanups.push(() => reflection.close());
    const services = await reflection.ask({ messageRequest: { case: "listServices", value: "" } });
    expect(services.messageResponse.case).toBe("listServicesResponse");
    expect(serviceNames(services)).toContain("generation.v1.GenerationService");
    const file = await reflection.ask({
      messageRequest: { case: "fileContainingSymbol", value: "generation.v1.GenerationService" },
    });
    expect(file.messageResponse.case).toBe("fileDescriptorResponse");
    const descriptor = file.messageResponse.value as { fileDescriptorProto: Uint8Array[] };
    expect(Buffer.concat(descriptor.fileDescriptorProto).toString("latin1")).toContain(
      "generation/v1/generation.proto",
    );
  });
});

describe("server reflection streams", () => {
  /** The status a reflection stream ends with, after `send` wrote to it and half-closed it. */
  function statusOf<I, O>(call: grpc.ClientDuplexStream<I, O>, send: () => void): Promise<grpc.StatusObject> {
    call.on("data", () => {});
    call.on("error", () => {});
    const status = new Promise<grpc.StatusObject>((resolve) => call.once("status", resolve));
    send();
    call.end();
    return withDeadline(status, 10_000, "the reflection stream's status");
  }

  test("answer every request, then end with OK when the client half-closes (as grpcurl waits for)", async () => {
    const ts = await startTestServer({}, { cleanups });
    const reflection = reflectionClient(ts.address);
    cleanups.push(() => reflection.close());
    const call = reflection.open();
    const answers: unknown[] = [];
    call.on("data", (answer) => answers.push(answer));
    const status = await statusOf(call, () => {
      for (let i = 0; i < 3; i++) {
        call.write(create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }));
      }
    });
    expectStatus(status, Code.OK);
    expect(answers).toHaveLength(3);
  });

  test("end with INVALID_ARGUMENT at a request that does not decode", async () => {
    const ts = await startTestServer({}, { cleanups });
    const raw = rawClient(cleanups, ts.address);
    const call = raw.makeBidiStreamRequest(
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    // Field 4 (file_containing_symbol) with a length past the end.
    const status = await statusOf(call, () => call.write(Buffer.from([0x22, 0x7f, 0x61])));
    expectStatus(
      status,
      Code.INVALID_ARGUMENT,
      /^the request is not a valid grpc\.reflection\.v1\.ServerReflectionRequest/,
    );
  });
});

describe("undecodable requests", () => {
  test("invalid UTF-8 or broken protobuf is INVALID_ARGUMENT, and the server serves on", async () => {
    const ts = await startTestServer({}, { cleanups });
    const raw = rawClient(cleanups, ts.address);
    // Field 1 (key), length 2, bytes that are not UTF-8.
    const badUtf8 = await rawUnary(raw, "/generation.v1.GenerationService/Bump", Buffer.from([0x0a, 0x02, 0xff, 0xfe]));
    expectStatus(badUtf8, Code.INVALID_ARGUMENT, /not a valid generation\.v1\.BumpRequest/);
    // A length that runs past the end of the message.
    const truncated = await rawUnary(raw, "/generation.v1.GenerationService/Get", Buffer.from([0x0a, 0x7f, 0x61]));
    expectStatus(truncated, Code.INVALID_ARGUMENT);
    expect(await ts.client.bump("still-serving")).toBeGreaterThan(0n);
  });
});

describe("graceful shutdown", () => {
  test("ends Watch streams with UNAVAILABLE and lets unary calls in flight finish", async () => {
    const redis = await RedisProcess.start();
    cleanups.push(() => redis.stop());
    const ts = await startTestServer({ redis: redis.target, prefix: uniquePrefix(), redisTimeoutMs: 5000 });
    cleanups.push(() => ts.close());
    const w = recordWatch(cleanups, ts.client, ["k"]);
    await w.live();
    // Hold Redis so the Bumps are in flight when shutdown starts.
    redis.pause();
    const bumps = Promise.all(Array.from({ length: 20 }, () => ts.client.bump("k")));
    await expect.poll(() => ts.callsInFlight("Bump"), { timeout: 5000 }).toBe(20);
    const shutdown = ts.server.shutdown("test");
    await expectWatchCode(w, Code.UNAVAILABLE, /shutting down/);
    redis.resume();
    const generations = await withDeadline(bumps, 5000, "the bumps in flight");
    expect(new Set(generations).size).toBe(20);
    await withDeadline(shutdown, 5000, "shutdown");
  });
});

describe("startup and shutdown edges", () => {
  test("a taken --metrics-listen port stops startup with a ConfigError, and nothing is left listening", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => taken.close(resolve)));
    const metricsPort = (taken.address() as AddressInfo).port;
    const port = await freePort();
    const start = SyncgenServer.start(
      defaultServerConfig({
        listen: { host: "127.0.0.1", port: port },
        metricsListen: { host: "127.0.0.1", port: metricsPort },
      }),
      { logger: silentLogger() },
    );
    await expect(start).rejects.toThrow(ConfigError);
    await expect(start).rejects.toThrow(new RegExp(`--metrics-listen 127\\.0\\.0\\.1:${metricsPort}: .*EADDRINUSE`));
    const refused = await new Promise<boolean>((resolve) => {
      const socket = createConnection(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(false);
      });
      socket.once("error", () => resolve(true));
    });
    expect(refused).toBe(true);
  });

  test("a configuration built in code is checked too: mutual TLS without a certificate is refused", async () => {
    const start = SyncgenServer.start(
      defaultServerConfig({ listen: { host: "127.0.0.1", port: 0 }, tlsClientCa: "ca.pem" }),
      {
        logger: silentLogger(),
      },
    );
    await expect(start).rejects.toThrow(/--tls-client-ca needs TLS/);
  });

  test("shutdown closes a connection that never spoke HTTP/2", async () => {
    const ts = await startTestServer({ shutdownTimeoutMs: 200 });
    const socket = createConnection(ts.server.address.port, "127.0.0.1");
    await withDeadline(new Promise((resolve) => socket.once("connect", resolve)), 5000, "the raw connection");
    const closed = new Promise((resolve) => socket.once("close", resolve));
    socket.on("error", () => {});
    socket.resume(); // read what the server sends, so its close is seen
    await ts.close();
    await withDeadline(closed, 5000, "the server to close the silent connection");
  });
});

describe("syncgen serve", () => {
  test("says it uses the in-memory store, serves, and exits 0 on SIGTERM ending watches with UNAVAILABLE", async () => {
    // An empty REDIS_URL (CI sets one) means the in-memory store.
    const served = await ServeProcess.start([], { env: { REDIS_URL: "" }, cleanups });
    const first = JSON.parse(await served.cli.line((l) => l.startsWith("{"))) as Record<string, unknown>;
    expect(first.event).toBe("start");
    expect(first.msg).toMatch(/in-memory store/);
    expect(first.msg).toMatch(/OPEN: no --auth-file/);
    expect(first.auth).toBe("open");
    const client = isolatedClient(cleanups, served.address);
    const w = recordWatch(cleanups, client, ["k"]);
    await w.live();
    expect(await client.bump("k")).toBeGreaterThan(0n);
    expect(await served.stop("SIGTERM")).toBe(0);
    await expectWatchCode(w, Code.UNAVAILABLE);
    // Connections are logged only at debug level: a probe every few seconds would fill the log.
    const events = served.cli.lines
      .filter((l) => l.startsWith("{"))
      .map((l) => (JSON.parse(l) as { event: string }).event);
    expect(events).toEqual(["start", "store_state", "stopping", "store_state", "stop"]);
    // Says what happened, not "store closed: store closed".
    expect(served.cli.lines.find((l) => l.includes('"state":"closed"'))).toContain(
      '"msg":"store closed: what it held in memory is dropped"',
    );
  });

  test("refuses a bad setting with a message naming it, exit code 2", async () => {
    const serve = new CliProcess(["serve", "--listen", "nowhere"]);
    cleanups.push(() => serve.stop("SIGKILL").catch(() => {}));
    await serve.line((l) => l.includes("--listen must be HOST:PORT"), 10_000, "stderr");
    await withDeadline(new Promise((resolve) => serve.child.once("exit", resolve)), 5000, "exit");
    expect(serve.child.exitCode).toBe(2);
  });

  test("takes multi-word flags, e.g. --max-key-bytes and --metrics-listen", async () => {
    const { address, metricsAddress } = await ServeProcess.start(
      ["--max-key-bytes", "8", "--metrics-listen", "127.0.0.1:0"],
      { cleanups },
    );
    const tooLong = await runCli(["get", "--server", address, "nine-bytes"]);
    expect(tooLong.code).toBe(64 + Code.INVALID_ARGUMENT);
    expect(tooLong.stderr).toMatch(/key is 10 bytes long; the limit is 8 bytes/);
    const metrics = await fetch(`http://${metricsAddress}/metrics`);
    expect(await metrics.text()).toMatch(
      /grpc_server_handled_total\{.*grpc_method="Get".*grpc_code="InvalidArgument"\} 1/,
    );
  });

  test("reads its settings from the environment", async () => {
    const port = await freePort();
    const serve = new CliProcess(["serve"], {
      SYNCGEN_LISTEN: `127.0.0.1:${port}`,
      SYNCGEN_LOG_LEVEL: "warn",
      REDIS_URL: "",
    });
    cleanups.push(() => serve.stop("SIGKILL").catch(() => {}));
    // Nothing is logged at warn level on a clean start; the server answers on the env's port.
    await expect
      .poll(async () => (await runCli(["get", "--server", `127.0.0.1:${port}`, "env-key"])).code, { timeout: 10_000 })
      .toBe(0);
    expect(await serve.stop("SIGTERM")).toBe(0);
    expect(serve.lines.filter((l) => l.startsWith("{"))).toEqual([]);
  });
});
