/**
 * Bad bytes: seeded, reproducible fuzzing of every RPC of a real `syncgen serve` process with
 * random bytes, mutated valid requests, oversize keys and invalid UTF-8. The server must
 * answer every case with a status (never INTERNAL or UNKNOWN: bad input is the client's
 * problem, and says so), never crash, and serve the next well-formed call. Frame-level
 * garbage (bad gRPC length prefixes, the compressed flag without an encoding) goes in over
 * raw HTTP/2. Re-run one seed with SYNCGEN_FUZZ_SEED=<seed>.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  BumpRequestSchema,
  ClearRequestSchema,
  GetRequestSchema,
  WatchRequestSchema,
} from "../src/gen/generation/v1/generation_pb.js";
import { withDeadline } from "./helpers/deadline.js";
import { mulberry32 } from "./helpers/prng.js";
import { type CallStatus, framed, rawUnary } from "./helpers/raw-grpc.js";
import { type SharedRedis, sharedRedis } from "./helpers/redis-process.js";
import { ServeProcess } from "./helpers/serve-process.js";

const SEED = Number(process.env.SYNCGEN_FUZZ_SEED ?? 20261126);
const SERVICE = "/generation.v1.GenerationService";
const MAX_KEY_BYTES = 256;
/** Statuses a malformed or hostile request may get. */
const CLIENT_ERRORS = new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.RESOURCE_EXHAUSTED]);

type Method = "Get" | "Bump" | "Clear" | "Watch";
const METHODS: Method[] = ["Get", "Bump", "Clear", "Watch"];

/** Makes the cases: each a method and the bytes of its request message. */
class CaseMaker {
  readonly random: () => number;
  constructor(seed: number) {
    this.random = mulberry32(seed);
  }

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  key(): string {
    switch (this.int(6)) {
      case 0:
        return "";
      case 1:
        return "k".repeat(MAX_KEY_BYTES + 1 + this.int(2000)); // oversize
      case 2:
        return String.fromCodePoint(
          ...Array.from({ length: 1 + this.int(20) }, () => this.int(0x10ffff + 1)),
        ).toWellFormed();
      case 3:
        return this.pick(["__proto__", "constructor", "toString", "a\u0000b", "*", "?", "[x]", "\n"]);
      default:
        return `fuzz/${this.int(50)}`;
    }
  }

  valid(method: Method): Buffer {
    const key = this.key();
    switch (method) {
      case "Get":
        return Buffer.from(toBinary(GetRequestSchema, create(GetRequestSchema, { key, peek: this.random() < 0.5 })));
      case "Bump":
        return Buffer.from(toBinary(BumpRequestSchema, create(BumpRequestSchema, { key })));
      case "Clear":
        return Buffer.from(toBinary(ClearRequestSchema, create(ClearRequestSchema, { key })));
      case "Watch": {
        const keys = Array.from({ length: this.int(5) }, () => this.key());
        const known: Record<string, bigint> = {};
        for (const k of keys) if (this.random() < 0.5) known[k] = BigInt(this.int(2 ** 31)) - 5n;
        return Buffer.from(toBinary(WatchRequestSchema, create(WatchRequestSchema, { keys, known })));
      }
    }
  }

  /** A request: random bytes, a valid one mutated, a key of invalid UTF-8, or a valid one. */
  request(method: Method): Buffer {
    const valid = this.valid(method);
    switch (this.int(7)) {
      case 0:
        return this.bytes(this.int(64));
      case 1: {
        // Flip bits.
        const out = Buffer.from(valid);
        for (let i = 0, n = 1 + this.int(4); i < n && out.length > 0; i++) {
          const at = this.int(out.length);
          out[at] = (out[at] ?? 0) ^ (1 << this.int(8));
        }
        return out;
      }
      case 2:
        return valid.subarray(0, this.int(valid.length + 1)); // truncated
      case 3: {
        // Spliced: random bytes inserted somewhere.
        const at = this.int(valid.length + 1);
        return Buffer.concat([valid.subarray(0, at), this.bytes(1 + this.int(16)), valid.subarray(at)]);
      }
      case 4: {
        // A key (field 1, or a Watch key) that is not UTF-8.
        const junk = Buffer.from([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80].slice(0, 1 + this.int(7)));
        return Buffer.concat([Buffer.from([0x0a, junk.length]), junk]);
      }
      case 5: {
        // Unknown fields, wrong wire types, and a huge length prefix.
        return Buffer.concat([
          valid,
          this.pick([
            Buffer.from([0x78, 0x01]),
            Buffer.from([0x0d, 1, 2, 3, 4]),
            Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]),
          ]),
        ]);
      }
      default:
        return valid;
    }
  }
}

/** A Watch: its first response counts as OK (the stream is then cancelled), or its status. */
function watch(client: grpc.Client, bytes: Buffer, metadata: grpc.Metadata): Promise<CallStatus> {
  return new Promise((resolve) => {
    const call = client.makeServerStreamRequest(
      `${SERVICE}/Watch`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      metadata,
      { deadline: Date.now() + 5000 },
    );
    call.on("data", () => {
      resolve({ code: grpc.status.OK, details: "" });
      call.cancel();
    });
    call.on("error", (error: grpc.ServiceError) => resolve({ code: error.code, details: error.details }));
    call.on("status", (status: grpc.StatusObject) => resolve({ code: status.code, details: status.details }));
  });
}

/** Runs `count` cases against the server at `address`, 16 at a time, with `token` if given. */
async function fuzz(address: string, seed: number, count: number, token?: string): Promise<Map<string, number>> {
  const metadata = new grpc.Metadata();
  if (token) metadata.set("authorization", `Bearer ${token}`);
  const allowedCodes = new Set(CLIENT_ERRORS);
  if (token) allowedCodes.add(grpc.status.PERMISSION_DENIED);
  const maker = new CaseMaker(seed);
  const cases = Array.from({ length: count }, () => {
    const method = maker.pick(METHODS);
    return { method, bytes: maker.request(method) };
  });
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const tally = new Map<string, number>();
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < cases.length) {
        const index = next++;
        const { method, bytes } = cases[index] as { method: Method; bytes: Buffer };
        const outcome = await (method === "Watch"
          ? watch(client, bytes, metadata)
          : rawUnary(client, `${SERVICE}/${method}`, bytes, metadata));
        const label = `${method} ${grpc.status[outcome.code]}`;
        tally.set(label, (tally.get(label) ?? 0) + 1);
        const allowed =
          allowedCodes.has(outcome.code) || (method === "Watch" && outcome.code === grpc.status.CANCELLED);
        if (!allowed) {
          throw new Error(
            `case ${index} (seed ${seed}): ${method} ${bytes.toString("hex")} got ${grpc.status[outcome.code]}: ${outcome.details}`,
          );
        }
        if (outcome.code !== grpc.status.OK && outcome.details.length === 0) {
          throw new Error(`case ${index} (seed ${seed}): ${grpc.status[outcome.code]} without a message`);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    // The next well-formed call is served.
    const bumped = await rawUnary(
      client,
      `${SERVICE}/Bump`,
      Buffer.from(toBinary(BumpRequestSchema, create(BumpRequestSchema, { key: "fuzz/after" }))),
      metadata,
    );
    expect(bumped.code).toBe(grpc.status.OK);
  } finally {
    client.close();
  }
  return tally;
}

/** Sends one gRPC request over raw HTTP/2 with a hand-made body; resolves with grpc-status (or "reset"). */
function rawFrame(address: string, path: string, body: Buffer, headers: Record<string, string> = {}): Promise<string> {
  return withDeadline(
    new Promise((resolve) => {
      const session = connect(`http://${address}`);
      session.on("error", () => resolve("session error"));
      const stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        ...headers,
      });
      let status = "reset";
      const finish = (): void => {
        session.close();
        resolve(status);
      };
      stream.on("response", (h) => {
        if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
      });
      stream.on("trailers", (t) => {
        status = String(t["grpc-status"]);
      });
      stream.on("data", () => {});
      stream.on("error", finish);
      stream.on("close", finish);
      stream.end(body);
    }),
    5000,
    "an answer to a raw frame",
  );
}

const TOKEN = "fuzz-token-0123456789";

describe.each([
  { name: "the memory store", store: "memory", count: 10_000, seed: SEED, auth: false },
  { name: "the Redis store", store: "redis", count: 2_000, seed: SEED + 1, auth: false },
  { name: "the memory store with tokens", store: "memory", count: 2_000, seed: SEED + 2, auth: true },
] as const)("fuzzing a syncgen serve process on $name", ({ store, count, seed, auth }) => {
  let serve: ServeProcess;
  let address: string;
  let redis: SharedRedis | undefined;
  let dir: string | undefined;
  const token = auth ? TOKEN : undefined;
  const authorization: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};

  beforeAll(async () => {
    redis = store === "redis" ? await sharedRedis() : undefined;
    const args = ["--max-key-bytes", String(MAX_KEY_BYTES)];
    if (redis) args.push("--redis", redis.url, "--prefix", redis.prefix());
    if (auth) {
      // Half the generated keys are under fuzz/, so both sides of the check are reached.
      dir = mkdtempSync(join(tmpdir(), "syncgen-fuzz-"));
      const file = join(dir, "tokens.json");
      writeFileSync(
        file,
        JSON.stringify({ tokens: [{ name: "fuzz", token: TOKEN, read: ["fuzz/"], write: ["fuzz/"] }] }),
      );
      args.push("--auth-file", file);
    }
    serve = await ServeProcess.start(args);
    address = serve.address;
  });
  afterAll(async () => {
    await serve?.stop();
    await redis?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test(`${count} seeded cases: a status for every one, and the server serves on`, { timeout: 120_000 }, async () => {
    const tally = await fuzz(address, seed, count, token);
    if (process.env.SYNCGEN_FUZZ_VERBOSE) console.log(Object.fromEntries(tally));
    expect([...tally.values()].reduce((a, b) => a + b, 0)).toBe(count);
    // The generator reaches both sides: requests refused and requests served.
    for (const method of METHODS) {
      expect(tally.get(`${method} INVALID_ARGUMENT`) ?? 0).toBeGreaterThan(0);
      expect(tally.get(`${method} OK`) ?? 0).toBeGreaterThan(0);
      if (auth) expect(tally.get(`${method} PERMISSION_DENIED`) ?? 0).toBeGreaterThan(0);
    }
    expect(serve.cli.child.exitCode).toBeNull();
  });

  test("garbage gRPC frames get a status, and the server serves on", async () => {
    const message = Buffer.from(toBinary(GetRequestSchema, create(GetRequestSchema, { key: "fuzz/frames" })));
    const frame = (path: string, body: Buffer, headers: Record<string, string> = {}) =>
      rawFrame(address, path, body, { ...authorization, ...headers });
    const answers = [
      await frame(`${SERVICE}/Get`, framed(message, { compressed: true })),
      await frame(`${SERVICE}/Get`, framed(message, { length: message.length + 100 })),
      await frame(`${SERVICE}/Get`, Buffer.from([0, 0, 0])),
      await frame(`${SERVICE}/Get`, Buffer.concat([framed(message), framed(message)])),
      await frame(`${SERVICE}/Watch`, framed(Buffer.from([0x0a, 0x01, 0xff]))),
      await frame(`${SERVICE}/Nope`, framed(message)),
      await frame(`${SERVICE}/Get`, framed(message), { "grpc-encoding": "br0tli" }),
      await frame(`${SERVICE}/Get`, framed(message), { "grpc-timeout": "nonsense" }),
    ];
    if (process.env.SYNCGEN_FUZZ_VERBOSE) console.log(answers);
    for (const answer of answers) expect(answer).toMatch(/^\d+$/);
    // A well-formed request over the same raw path is OK.
    expect(await frame(`${SERVICE}/Get`, framed(message))).toBe(String(grpc.status.OK));
    expect(serve.cli.child.exitCode).toBeNull();
  });
});
