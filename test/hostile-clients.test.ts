/**
 * Attacks an anonymous client can make, tried on a real `syncgen serve` with a capped heap
 * (256 MB): each test shows the server survives, keeps answering other clients, and holds on
 * to nothing of the attack once the attacker is gone (its memory after a full GC stays near
 * where it started).
 */
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect as connectHttp2,
  constants as httpConstants,
} from "node:http2";
import { connect } from "node:net";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, test } from "vitest";
import { Code, type GenerationClient } from "../src/client/index.js";
import { type Cleanups, cleanupsAfterEach } from "./helpers/cleanups.js";
import { withDeadline } from "./helpers/deadline.js";
import { expectCode, expectStatus } from "./helpers/expect-code.js";
import { healthClient } from "./helpers/grpc-peers.js";

import { framed, messageHeader } from "./helpers/raw-grpc.js";
import { type MemoryReading, ServeProcess } from "./helpers/serve-process.js";
import { isolatedClient } from "./helpers/test-client.js";
import { recordWatch } from "./helpers/watch-recorder.js";

const cleanups = cleanupsAfterEach();

/** Each attack's own time limit: above the deadlines inside it, for a busy 2-core host. */
const ATTACK_TIMEOUT_MS = 240_000;

/** How far the heap may stay above where it started once an attack is over. */
const HEAP_SLACK_BYTES = 8 << 20;

/** A capped-heap server whose memory can be read, stopped after the test. */
const started = (flags: string[] = []): Promise<ServeProcess> =>
  ServeProcess.start(flags, { cappedHeap: true, cleanups });

/** Heap and off-heap memory after a full GC. */
function retained(reading: MemoryReading): number {
  return reading.heapUsed + reading.external;
}

/** A client of the raw gRPC method `path`: requests go out as the bytes given. */
function rawStream(cleanups: Cleanups, address: string, path: string, request: Uint8Array) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  cleanups.push(() => client.close());
  const call = client.makeServerStreamRequest(
    path,
    (bytes: Uint8Array) => Buffer.from(bytes),
    (bytes: Buffer) => bytes,
    request,
  );
  cleanups.push(() => call.cancel());
  const ended = new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve));
  const firstResponse = new Promise<Buffer>((resolve) => call.once("data", resolve));
  return { call, ended, firstResponse };
}

/** A gRPC call's HTTP/2 stream, opened by hand: what it sends is up to the test. */
function grpcStream(session: ClientHttp2Session, path: string): ClientHttp2Stream {
  return session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
}

/**
 * Writes `sent` on a new stream of `session` (half-closing unless `halfClose` is false), and
 * resolves with the status: the trailers, or the headers of a trailers-only answer.
 */
async function answered(
  session: ClientHttp2Session,
  path: string,
  sent: Uint8Array,
  halfClose = true,
): Promise<Record<string, unknown>> {
  const stream = grpcStream(session, path);
  stream.on("error", () => {});
  stream.resume();
  const status = new Promise<Record<string, unknown>>((resolve) => {
    stream.once("trailers", resolve);
    stream.once("response", (headers) => {
      if ("grpc-status" in headers) resolve(headers);
    });
  });
  stream.write(sent);
  if (halfClose) stream.end();
  return withDeadline(status, 20_000, `the status of ${path}`);
}

/** A WatchRequest for `keys` whose known map names `knownKeys`, written without building the message. */
function watchRequest(keys: string[], knownKeys: Iterable<string>): Uint8Array {
  const writer = new BinaryWriter();
  for (const key of keys) writer.tag(1, 2).string(key);
  for (const key of knownKeys) writer.tag(2, 2).fork().tag(1, 2).string(key).tag(2, 0).int64(1n).join();
  return writer.finish();
}

/** Get calls on a connection of their own, every few ms while `during` runs; resolves with the slowest. */
async function slowestGetDuring(client: GenerationClient, during: Promise<unknown>): Promise<number> {
  let slowest = 0;
  let done = false;
  const settled = during.finally(() => {
    done = true;
  });
  await client.get("probe");
  while (!done) {
    const started = performance.now();
    await client.get("probe", { deadlineMs: 30_000 });
    slowest = Math.max(slowest, performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await settled;
  return slowest;
}

describe("health", () => {
  test("a service name over 1 KiB is refused from its length, and watching unknown names keeps nothing", {
    timeout: ATTACK_TIMEOUT_MS,
  }, async () => {
    const server = await started();
    const before = await server.memory();
    const health = healthClient(server.address);
    cleanups.push(() => health.close());
    await expectCode(
      health.check("x".repeat(100_000)),
      Code.RESOURCE_EXHAUSTED,
      /a grpc\.health\.v1\.Health\.Check request may be at most 1024 bytes/,
    );
    // 10,000 distinct unknown names, each watched until it is answered SERVICE_UNKNOWN, then
    // cancelled: 250 at a time, 500 per connection (below Node's limit on streams a client may reset).
    const names = Array.from({ length: 10_000 }, (_, i) => `unknown-${i}-`.padEnd(1000, "n"));
    let watcher = health;
    for (let start = 0; start < names.length; start += 250) {
      if (start % 500 === 0) {
        const fresh = healthClient(server.address, undefined, { "grpc.use_local_subchannel_pool": 1 });
        cleanups.push(() => fresh.close());
        watcher = fresh;
      }
      const through = watcher;
      await Promise.all(
        names.slice(start, start + 250).map(async (name) => {
          const watch = through.watch(name);
          await watch.until("SERVICE_UNKNOWN", 20_000);
          watch.cancel();
        }),
      );
    }
    expect(await health.check("")).toBe("SERVING");
    const after = await server.memory();
    expect(retained(after)).toBeLessThan(retained(before) + HEAP_SLACK_BYTES);
  });
});

describe("request sizes", () => {
  test("a request over its method's limit is refused from its length prefix alone, before its body is sent", {
    timeout: ATTACK_TIMEOUT_MS,
  }, async () => {
    const server = await started();
    const session = connectHttp2(`http://${server.address}`);
    cleanups.push(() => session.destroy());
    // A message header announcing 10 MB, and nothing more: the server must not wait for it.
    const status = await answered(session, "/grpc.health.v1.Health/Check", messageHeader(10_000_000), false);
    expect(status["grpc-status"]).toBe(String(Code.RESOURCE_EXHAUSTED));
    expect(decodeURIComponent(String(status["grpc-message"]))).toBe(
      "the request is 10000000 bytes; a grpc.health.v1.Health.Check request may be at most 1024 bytes (fixed: a service name is short)",
    );
  });
  test("large requests read at once draw on one budget: past it RESOURCE_EXHAUSTED, and a call's share comes back when it ends", {
    timeout: ATTACK_TIMEOUT_MS,
  }, async () => {
    const server = await started(["--max-pending-request-bytes", "15000000"]);
    const session = connectHttp2(`http://${server.address}`);
    cleanups.push(() => session.destroy());
    session.on("error", () => {});
    // A announces a 12 MB Watch request, sends the start of it (within one flow-control
    // window, so it surely leaves), and stalls.
    const a = grpcStream(session, "/generation.v1.GenerationService/Watch");
    a.on("error", () => {});
    await new Promise<void>((resolve) =>
      a.write(Buffer.concat([messageHeader(12_000_000), Buffer.alloc(60_000)]), () => resolve()),
    );
    // A round trip on the same connection after it: the server has read what A sent.
    await answered(session, "/grpc.health.v1.Health/Check", framed(new Uint8Array()));
    // B's 10 MB do not fit beside A's 12 MB.
    const b = await answered(
      session,
      "/generation.v1.GenerationService/Watch",
      framed(new Uint8Array(10_000_000)),
      false,
    );
    expect(b["grpc-status"]).toBe(String(Code.RESOURCE_EXHAUSTED));
    expect(decodeURIComponent(String(b["grpc-message"]))).toMatch(
      /^the server is already reading 12000000 bytes of large requests and this one is 10000000 bytes; at most 15000000 are read at once \(server setting --max-pending-request-bytes\)/,
    );
    // A goes: its share comes back, and a real 10 MB Watch (10,000 keys of 1 KiB) fits.
    a.close(httpConstants.NGHTTP2_CANCEL);
    const keys = Array.from({ length: 10_000 }, (_, i) => `budget-${i}-`.padEnd(1024, "b"));
    const watch = rawStream(cleanups, server.address, "/generation.v1.GenerationService/Watch", watchRequest(keys, []));
    await withDeadline(watch.firstResponse, 30_000, "the 10 MB Watch's first response");
  });
});

describe("Watch requests", () => {
  test("20 MB of known entries for unwatched keys is refused at once, without holding up a Get", {
    timeout: ATTACK_TIMEOUT_MS,
  }, async () => {
    const server = await started();
    const knownKeys = Array.from({ length: 700_000 }, (_, i) => `unwatched-${i}`.padEnd(21, "-"));
    const request = watchRequest(["k"], knownKeys);
    expect(request.length).toBeGreaterThan(18_000_000);
    const attack = rawStream(cleanups, server.address, "/generation.v1.GenerationService/Watch", request);
    const slowest = await slowestGetDuring(isolatedClient(cleanups, server.address), attack.ended);
    expectStatus(await attack.ended, Code.INVALID_ARGUMENT, /^known has more than 10000 entries/);
    // Decoding such a request whole stalled every call for 2.3 to 4.6 s (idle host).
    expect(slowest).toBeLessThan(2000);
  });

  test("1.8 million duplicates of the watched key are refused at once", { timeout: ATTACK_TIMEOUT_MS }, async () => {
    const server = await started();
    const request = watchRequest(Array(1_800_000).fill("k"), []);
    const attack = rawStream(cleanups, server.address, "/generation.v1.GenerationService/Watch", request);
    expectStatus(await attack.ended, Code.INVALID_ARGUMENT, /^keys has more than 10000 entries/);
  });

  test("a held Watch costs its keys, not its request: 20 streams of one key with 10 MB of known each", {
    timeout: ATTACK_TIMEOUT_MS,
  }, async () => {
    const server = await started();
    const before = await server.memory();
    // 10,000 known entries of 1,000-byte keys nobody watches: within the limits, and dropped.
    const knownKeys = Array.from({ length: 10_000 }, (_, i) => `unwatched-${i}-`.padEnd(1000, "u"));
    const request = watchRequest(["k"], knownKeys);
    // Closed midway to see the memory come back, or by the teardown if the test fails first.
    const held: Cleanups = [];
    const release = (): void => {
      for (const close of held.splice(0)) close();
    };
    cleanups.push(release);
    // One after another, each live (its first response: the key, which it did not know) before
    // the next: read all at once, they would pass --max-pending-request-bytes.
    for (let i = 0; i < 20; i++) {
      const stream = rawStream(held, server.address, "/generation.v1.GenerationService/Watch", request);
      await withDeadline(stream.firstResponse, 30_000, `live watch ${i}`);
    }
    // Kept whole, the requests were 200 MB; what transport buffers remain is a fraction of that.
    expect(retained(await server.memory())).toBeLessThan(retained(before) + 40 * 2 ** 20);
    const client = isolatedClient(cleanups, server.address);
    expect(await client.bump("k")).toBeGreaterThan(0n);
    release();
    await expect
      .poll(async () => retained(await server.memory()), { timeout: 20_000, interval: 500 })
      .toBeLessThan(retained(before) + HEAP_SLACK_BYTES);
  });
});

describe("logging", () => {
  test("a stalled reader of the log does not stall serving; lines that do not fit are dropped and counted", {
    timeout: ATTACK_TIMEOUT_MS,
  }, async () => {
    const server = await started(["--log-level", "debug"]);
    const client = isolatedClient(cleanups, server.address);
    expect(await client.bump("k")).toBeGreaterThan(0n);
    // Nobody reads the server's stdout any more: the pipe fills.
    server.cli.child.stdout?.pause();
    cleanups.push(() => server.cli.child.stdout?.resume());
    // 400 connections opened and closed: two debug lines each, well past a pipe's 64 KiB.
    for (let i = 0; i < 400; i++) {
      await new Promise<void>((resolve, reject) => {
        const socket = connect(Number(server.address.split(":")[1]), "127.0.0.1", () => {
          socket.destroy();
          resolve();
        });
        socket.on("error", reject);
      });
    }
    // Refused health checks naming 1,000-byte services: a debug line of ~1.2 KB each, past the buffer.
    const health = healthClient(server.address);
    cleanups.push(() => health.close());
    for (let start = 0; start < 5000; start += 250) {
      await Promise.all(
        Array.from({ length: 250 }, (_, i) =>
          health.check(`missing-${start + i}-`.padEnd(1000, "m")).catch((error: grpc.ServiceError) => error.code),
        ),
      );
    }
    // A synchronous log blocked here until someone read the pipe.
    expect(await client.bump("k", { deadlineMs: 10_000 })).toBeGreaterThan(0n);
    expect(await server.metric("syncgen_log_lines_dropped_total")).toBeGreaterThan(0);
    expect(await server.metric("syncgen_connections_accepted_total")).toBeGreaterThanOrEqual(400);
  });
});

describe("reflection", () => {
  test("a client that never reads its answers is not answered further: the server stops reading", {
    timeout: ATTACK_TIMEOUT_MS,
  }, async () => {
    const server = await started();
    const before = await server.memory();
    // Each request names an 8,000-byte host, which the answer repeats twice (valid_host and
    // original_request) beside a file descriptor: ~20 KB of answer per request.
    const request = new BinaryWriter()
      .tag(1, 2)
      .string("h".repeat(8000))
      .tag(4, 2)
      .string("generation.v1.GenerationService")
      .finish();
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), request]);
    framed.writeUInt32BE(request.length, 1);
    const session = connectHttp2(`http://${server.address}`);
    cleanups.push(() => session.destroy());
    const stream = grpcStream(session, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
    // Never read: flow control stops the server's answers once the client's window is full.
    stream.pause();
    let sent = 0;
    const blocked = async (): Promise<boolean> => {
      for (; sent < 10_000; sent++) {
        if (!stream.write(framed)) {
          const drained = await Promise.race([
            new Promise<boolean>((resolve) => stream.once("drain", () => resolve(true))),
            new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000)),
          ]);
          if (!drained) return true;
        }
      }
      return false;
    };
    // Answered without backpressure, all 10,000 were read (and ~200 MB of answers queued).
    expect(await blocked()).toBe(true);
    expect(sent).toBeLessThan(2000);
    const after = await server.memory();
    expect(retained(after)).toBeLessThan(retained(before) + HEAP_SLACK_BYTES);
    const client = isolatedClient(cleanups, server.address);
    expect(await client.bump("k")).toBeGreaterThan(0n);
  });
});

describe("stream resets", () => {
  /** Opens `count` Get streams on one connection, resetting each at once; resolves when the session ends. */
  async function rapidReset(address: string, count: number): Promise<void> {
    const session = connectHttp2(`http://${address}`);
    cleanups.push(() => session.destroy());
    session.on("error", () => {});
    const ended = new Promise<void>((resolve) => {
      session.once("goaway", () => resolve());
      session.once("close", () => resolve());
    });
    await new Promise<void>((resolve) => session.once("connect", () => resolve()));
    for (let i = 0; i < count && !session.closed && !session.destroyed; i++) {
      const stream = grpcStream(session, "/generation.v1.GenerationService/Get");
      stream.on("error", () => {});
      stream.close(httpConstants.NGHTTP2_CANCEL);
    }
    await withDeadline(ended, 30_000, "the server's GOAWAY");
  }

  test("connections Node stops reading after a reset flood are closed at once, not at keepalive", {
    timeout: ATTACK_TIMEOUT_MS,
  }, async () => {
    const server = await started();
    const client = isolatedClient(cleanups, server.address);
    expect(await client.bump("k")).toBeGreaterThan(0n);
    const before = await server.memory();
    const open = await server.metric("syncgen_connections");
    // 20 clients each reset 1,100 streams: Node sends GOAWAY and stops reading their sockets.
    await Promise.all(Array.from({ length: 20 }, () => rapidReset(server.address, 1100)));
    // Left alone they stayed open until keepalive (80 s by default), each holding its state.
    await expect.poll(() => server.metric("syncgen_connections"), { timeout: 45_000, interval: 200 }).toBe(open);
    expect(await server.metric("syncgen_connections_abandoned_total")).toBeGreaterThanOrEqual(20);
    expect(await client.bump("k")).toBeGreaterThan(0n);
    const after = await server.memory();
    expect(retained(after)).toBeLessThan(retained(before) + HEAP_SLACK_BYTES);
  });

  test("a client that cancels 2,000 calls on one connection goes on: its Watch resumes, its Gets are retried", {
    timeout: ATTACK_TIMEOUT_MS,
  }, async () => {
    const server = await started();
    const client = isolatedClient(cleanups, server.address);
    const watcher = recordWatch(cleanups, client, ["k"], { resume: true });
    await watcher.live();
    const gets: Promise<bigint>[] = [];
    // Watch-mode synchronizers coming and going: each Watch is cancelled once live (100 at a
    // time, well within the Watch streams a connection may have while cancels are processed).
    // 2,000: past nghttp2's budget of 1,000 plus 33 a second even if this takes 30 s.
    for (let start = 0; start < 2000; start += 100) {
      await Promise.all(
        Array.from({ length: 100 }, async () => {
          const stop = new AbortController();
          for await (const event of client.watch(["churn"], { signal: stop.signal })) {
            if (event.type === "live") stop.abort();
          }
        }),
      );
      gets.push(client.get("k", { deadlineMs: 30_000 }));
    }
    await Promise.all(gets);
    expect(await server.metric("syncgen_connections_abandoned_total")).toBeGreaterThanOrEqual(1);
    const generation = await client.bump("k", { deadlineMs: 30_000 });
    await watcher.sees("k", generation, 30_000);
  });
});
