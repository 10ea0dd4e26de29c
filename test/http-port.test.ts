/**
 * The HTTP port (--http-listen) as its users meet it: curl in JSON over HTTP/1.1 and HTTP/2
 * (each unary RPC and a Watch), gRPC-Web, tokens, CORS, limits, TLS, metrics, health and
 * shutdown — each against a real server. The full contract runs over Connect in
 * generation-service.contract.test.ts.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { request as http1Request } from "node:http";
import { connect as connectHttp2, constants as httpConstants } from "node:http2";
import { connect as connectTcp } from "node:net";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code as ConnectCode, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Code } from "../src/client/index.js";
import { GenerationService, WatchRequestSchema } from "../src/gen/generation/v1/generation_pb.js";
import { type Certificates, makeCertificates } from "./helpers/certificates.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { connectGenerationClient, type HttpProtocol } from "./helpers/connect-client.js";
import { Condition, withDeadline } from "./helpers/deadline.js";
import { expectCode, expectWatchCode } from "./helpers/expect-code.js";
import { ServeProcess } from "./helpers/serve-process.js";
import { stallingProxy } from "./helpers/stalling-proxy.js";
import { startTestServer, type TestServer } from "./helpers/test-server.js";
import { recordWatch } from "./helpers/watch-recorder.js";

const cleanups = cleanupsAfterEach();
const HTTP = { host: "127.0.0.1", port: 0 };
const SERVICE = "generation.v1.GenerationService";

/** An HTTP answer as curl printed it. */
interface CurlAnswer {
  status: number;
  body: string;
  headers: string;
}

/** Runs curl; `args` come after its defaults (silent, headers to stdout, status on the last line). */
async function curl(args: string[]): Promise<CurlAnswer> {
  const { stdout } = await promisify(execFile)("curl", ["-s", "-i", "-w", "\n%{http_code}", ...args], {
    timeout: 30_000,
  });
  const status = Number(stdout.slice(stdout.lastIndexOf("\n") + 1));
  const answer = stdout.slice(0, stdout.lastIndexOf("\n"));
  const split = answer.indexOf("\r\n\r\n");
  return { status, headers: answer.slice(0, split).toLowerCase(), body: answer.slice(split + 4) };
}

/** POSTs JSON to a method, as the README's curl examples do. */
function postJson(ts: TestServer, method: string, json: string, extra: string[] = []): Promise<CurlAnswer> {
  return curl(["-X", "POST", "-H", "content-type: application/json", "-d", json, ...extra, `${ts.httpUrl}/${method}`]);
}

/**
 * A Watch in Connect JSON through curl: the request is one enveloped message on stdin (5
 * bytes: flags, then the length), the answer a stream of enveloped JSON messages.
 */
class CurlWatch {
  readonly messages: { changes?: { key: string; generation: string }[]; error?: { code: string } }[] = [];
  readonly #child: ChildProcess;
  readonly #arrived = new Condition();
  #pending = Buffer.alloc(0);

  constructor(url: string, request: object, curlArgs: string[] = []) {
    const json = Buffer.from(JSON.stringify(request));
    const envelope = Buffer.alloc(5);
    envelope.writeUInt32BE(json.length, 1);
    this.#child = spawn(
      "curl",
      [
        "-s",
        "-N",
        "-X",
        "POST",
        "-H",
        "content-type: application/connect+json",
        "--data-binary",
        "@-",
        ...curlArgs,
        url,
      ],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    this.#child.stdin?.end(Buffer.concat([envelope, json]));
    this.#child.stdout?.on("data", (chunk: Buffer) => {
      this.#pending = Buffer.concat([this.#pending, chunk]);
      while (this.#pending.length >= 5 && this.#pending.length >= 5 + this.#pending.readUInt32BE(1)) {
        const length = this.#pending.readUInt32BE(1);
        this.messages.push(JSON.parse(this.#pending.subarray(5, 5 + length).toString()));
        this.#pending = this.#pending.subarray(5 + length);
      }
      this.#arrived.notify();
    });
    this.#child.on("exit", () => this.#arrived.notify());
    cleanups.push(() => this.close());
  }

  /** Waits until a message carries `key` at `generation` (as its JSON decimal string). */
  sees(key: string, generation: bigint | string): Promise<unknown> {
    return this.#arrived.until(
      () =>
        this.messages.some((message) =>
          message.changes?.some((change) => change.key === key && change.generation === String(generation)),
        ) || undefined,
      15_000,
      () => `${key} at ${generation}; got ${JSON.stringify(this.messages)}`,
    );
  }

  /** Waits for the first message. */
  first(): Promise<unknown> {
    return this.#arrived.until(() => this.messages[0], 15_000, "the first message");
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = once(this.#child, "exit");
    this.#child.kill();
    await exited;
  }
}

/** Envelopes `message` as Connect streaming and gRPC-Web frame a message: flags, 32-bit length, bytes. */
function envelope(flags: number, message: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(flags, 0);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** POSTs `body` to a Watch as `contentType` over HTTP/1.1, and resolves with the answer's text once it ends (or at `ms`). */
async function rawWatch(
  ts: TestServer,
  contentType: string,
  body: Buffer,
  headers: Record<string, string> = {},
): Promise<string> {
  const request = http1Request(new URL(`${ts.httpUrl}/${SERVICE}/Watch`), {
    method: "POST",
    headers: { "content-type": contentType, ...headers },
  });
  request.on("error", () => {});
  cleanups.push(() => request.destroy());
  request.end(body);
  const [response] = (await withDeadline(once(request, "response"), 15_000, "the answer")) as [
    import("node:http").IncomingMessage,
  ];
  let text = "";
  let ended = false;
  const arrived = new Condition();
  response.on("data", (chunk: Buffer) => {
    text += chunk.toString("latin1");
    arrived.notify();
  });
  response.on("end", () => {
    ended = true;
    arrived.notify();
  });
  // A refused Watch ends; an accepted one streams: its first message is enough.
  await arrived.until(() => ended || /"changes"|"error"/.test(text) || undefined, 15_000, "an answer");
  return text;
}

describe("curl, in JSON", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ httpListen: HTTP });
  });
  afterAll(() => ts.close());

  test.each([["--http1.1"], ["--http2-prior-knowledge"]])(
    "Get, Bump and Clear (%s): every field shown, generation 0 too",
    async (version) => {
      const key = `curl/unary${version}`;
      const absent = await postJson(ts, `${SERVICE}/Get`, JSON.stringify({ key, peek: true }), [version]);
      expect(absent.status).toBe(200);
      expect(absent.headers).toContain(version === "--http1.1" ? "http/1.1 200" : "http/2 200");
      expect(JSON.parse(absent.body)).toEqual({ generation: "0" });
      const bumped = JSON.parse((await postJson(ts, `${SERVICE}/Bump`, JSON.stringify({ key }), [version])).body);
      expect(BigInt(bumped.generation)).toBe(await ts.client.get(key, { peek: true }));
      expect(JSON.parse((await postJson(ts, `${SERVICE}/Get`, JSON.stringify({ key }), [version])).body)).toEqual(
        bumped,
      );
      expect(JSON.parse((await postJson(ts, `${SERVICE}/Clear`, JSON.stringify({ key }), [version])).body)).toEqual({});
      expect(await ts.client.get(key, { peek: true })).toBe(0n);
    },
  );

  test("bad input: an HTTP status, and the code and message a person can act on", async () => {
    const empty = await postJson(ts, `${SERVICE}/Bump`, '{"key":""}');
    expect(empty.status).toBe(400);
    expect(JSON.parse(empty.body)).toEqual({ code: "invalid_argument", message: "key must not be empty" });
    const notJson = await postJson(ts, `${SERVICE}/Get`, "{key:");
    expect(notJson.status).toBe(400);
    expect(JSON.parse(notJson.body).code).toBe("invalid_argument");
    const unknown = await postJson(ts, `${SERVICE}/Nothing`, "{}");
    expect(unknown.status).toBe(404);
  });

  test.each([["--http1.1"], ["--http2-prior-knowledge"]])(
    "Watch (%s): the first response, then a Bump made by the TS client",
    async (version) => {
      const key = `curl/watch${version}`;
      const watch = new CurlWatch(`${ts.httpUrl}/${SERVICE}/Watch`, { keys: [key] }, [version]);
      await watch.sees(key, 0n);
      const generation = await ts.client.bump(key);
      await watch.sees(key, generation);
    },
  );

  test("Watch: a known entry named __proto__ counts like any other", async () => {
    const generation = await ts.client.bump("__proto__");
    const watch = new CurlWatch(`${ts.httpUrl}/${SERVICE}/Watch`, {
      keys: ["__proto__", "curl/other"],
      // An own property named "__proto__" (an object literal would set the prototype instead).
      known: Object.fromEntries([
        ["__proto__", String(generation)],
        ["curl/other", "0"],
      ]),
    });
    expect(await watch.first()).toEqual({ changes: [], continued: false });
  });

  test("Watch: more entries than any Watch may hold is refused before the JSON is parsed", async () => {
    const keys = Array.from({ length: 30_100 }, (_, i) => String(i));
    const watch = new CurlWatch(`${ts.httpUrl}/${SERVICE}/Watch`, { keys });
    const answer = (await watch.first()) as { error?: { code: string; message: string } };
    expect(answer.error?.code).toBe("invalid_argument");
    expect(answer.error?.message).toMatch(/^the request holds more than 30016 JSON entries/);
  });

  test("Watch: JSON nested deeper than a WatchRequest is refused before it is parsed", async () => {
    const nested = `{"keys":${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
    const answer = await rawWatch(ts, "application/connect+json", envelope(0, Buffer.from(nested)));
    expect(answer).toContain('"code":"invalid_argument"');
    expect(answer).toContain("the request nests deeper than 4 levels");
  });
});

describe("gRPC-Web and Connect clients", () => {
  const protocols: HttpProtocol[] = [
    { name: "gRPC-Web binary over HTTP/1.1", protocol: "grpc-web", binary: true, httpVersion: "1.1" },
    { name: "gRPC-Web JSON over HTTP/2", protocol: "grpc-web", binary: false, httpVersion: "2" },
    { name: "Connect binary over HTTP/1.1", protocol: "connect", binary: true, httpVersion: "1.1" },
  ];

  test.each(protocols)("$name: Get, Bump, a Watch that sees a Bump, and an error status", async (protocol) => {
    const ts = await startTestServer({ httpListen: HTTP }, { cleanups });
    const client = connectGenerationClient(ts.httpUrl, protocol);
    const key = `web/${protocol.name}`;
    const watch = recordWatch(cleanups, client, [key]);
    await watch.live();
    const generation = await client.bump(key);
    expect(await client.get(key)).toBe(generation);
    await watch.sees(key, generation);
    await expectCode(client.get(""), Code.INVALID_ARGUMENT, /key must not be empty/);
  });
});

describe("tokens, as on the gRPC port", () => {
  let certs: Certificates;
  let authFile: string;
  beforeAll(() => {
    certs = makeCertificates();
    authFile = join(certs.dir, "http-tokens.json");
    writeFileSync(
      authFile,
      JSON.stringify({
        tokens: [{ name: "web", token: "web-token-0123456789abcdef", read: ["web/"], write: ["web/"] }],
      }),
    );
  });
  afterAll(() => certs.remove());

  test("no token: UNAUTHENTICATED (HTTP 401), even for a Watch; outside the prefixes: PERMISSION_DENIED; inside: served", async () => {
    const ts = await startTestServer({ httpListen: HTTP, authFile }, { cleanups });
    const noToken = await postJson(ts, `${SERVICE}/Get`, '{"key":"web/a"}');
    expect(noToken.status).toBe(401);
    expect(JSON.parse(noToken.body).code).toBe("unauthenticated");
    const protocol: HttpProtocol = { name: "Connect", protocol: "connect", binary: true, httpVersion: "2" };
    await expectWatchCode(
      recordWatch(cleanups, connectGenerationClient(ts.httpUrl, protocol), ["web/a"]),
      Code.UNAUTHENTICATED,
    );
    const client = connectGenerationClient(ts.httpUrl, protocol, "web-token-0123456789abcdef");
    await expectCode(client.bump("other/a"), Code.PERMISSION_DENIED, /"other\/a"/);
    await expectWatchCode(recordWatch(cleanups, client, ["web/a", "other/a"]), Code.PERMISSION_DENIED);
    expect(await client.bump("web/a")).toBeGreaterThan(0n);
    const bearer = await postJson(ts, `${SERVICE}/Get`, '{"key":"web/a"}', [
      "-H",
      "authorization: Bearer web-token-0123456789abcdef",
    ]);
    expect(bearer.status).toBe(200);
    expect(await ts.metric("grpc_server_handled_total", 'grpc_code="Unauthenticated"')).toBe(2);
  });

  test("a Watch without a token is refused before its body is read: a 10 MB body announced, 1 KB sent", async () => {
    const ts = await startTestServer({ httpListen: HTTP, authFile }, { cleanups });
    const request = http1Request(new URL(`${ts.httpUrl}/${SERVICE}/Watch`), {
      method: "POST",
      headers: { "content-type": "application/connect+json", "content-length": String(10_000_000) },
    });
    request.on("error", () => {});
    cleanups.push(() => request.destroy());
    request.write(Buffer.alloc(1024, 0x20));
    const [response] = (await withDeadline(once(request, "response"), 15_000, "the answer")) as [
      import("node:http").IncomingMessage,
    ];
    let body = "";
    response.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    await withDeadline(once(response, "end"), 15_000, "the end of the answer");
    expect(body).toContain('"code":"unauthenticated"');
  });

  test("a Watch is checked in what it is served: one plain message, decoded one way", async () => {
    const ts = await startTestServer({ httpListen: HTTP, authFile }, { cleanups });
    const bearer = { authorization: "Bearer web-token-0123456789abcdef" };
    const watchOf = (keys: string[]): Uint8Array => toBinary(WatchRequestSchema, create(WatchRequestSchema, { keys }));
    // A first envelope flagged (end of stream, trailers) is skipped by Connect but not by a reader.
    for (const [contentType, flag] of [
      ["application/connect+proto", 0x02],
      ["application/grpc-web+proto", 0x80],
    ] as const) {
      const twoMessages = Buffer.concat([envelope(flag, watchOf(["other/secret"])), envelope(0, watchOf(["web/a"]))]);
      const answer = await rawWatch(ts, contentType, twoMessages, bearer);
      // gRPC-Web percent-encodes its grpc-message.
      expect(answer.replaceAll("%20", " "), contentType).toMatch(/exactly one uncompressed message/);
      expect(answer, contentType).not.toContain("other/secret");
    }
    // `keys` with another wire type: protobuf-es reads other fields from those bytes.
    const secret = Buffer.from("other/secret");
    const wrongWireType = Buffer.concat([Buffer.from([0x10, 0x07, 0x0a, secret.length]), secret]);
    const answer = await rawWatch(ts, "application/connect+proto", envelope(0, wrongWireType), bearer);
    expect(answer).toMatch(/wrong wire type/);
  });
});

describe("CORS (--cors-origin)", () => {
  const origin = "https://app.example.com";

  test("an allowed origin's preflight and calls are answered for the browser; other origins get nothing to read", async () => {
    const ts = await startTestServer({ httpListen: HTTP, corsOrigins: [origin] }, { cleanups });
    const preflight = await curl([
      "-X",
      "OPTIONS",
      "-H",
      `origin: ${origin}`,
      "-H",
      "access-control-request-method: POST",
      "-H",
      "access-control-request-headers: content-type,authorization",
      `${ts.httpUrl}/${SERVICE}/Get`,
    ]);
    expect(preflight.status).toBe(204);
    expect(preflight.headers).toContain(`access-control-allow-origin: ${origin}`);
    expect(preflight.headers).toMatch(/access-control-allow-headers: .*authorization/);
    const call = await postJson(ts, `${SERVICE}/Get`, '{"key":"cors/a","peek":true}', ["-H", `origin: ${origin}`]);
    expect(call.headers).toContain(`access-control-allow-origin: ${origin}`);
    expect(call.headers).toMatch(/access-control-expose-headers: .*grpc-status/);

    const stranger = "https://evil.example";
    const refused = await curl(["-X", "OPTIONS", "-H", `origin: ${stranger}`, `${ts.httpUrl}/${SERVICE}/Get`]);
    expect(refused.status).toBe(403);
    expect(refused.body).toContain("--cors-origin");
    const strangerCall = await postJson(ts, `${SERVICE}/Get`, '{"key":"cors/a","peek":true}', [
      "-H",
      `origin: ${stranger}`,
    ]);
    expect(strangerCall.headers).not.toContain("access-control-allow-origin");
  });

  test("none by default", async () => {
    const ts = await startTestServer({ httpListen: HTTP }, { cleanups });
    const preflight = await curl(["-X", "OPTIONS", "-H", `origin: ${origin}`, `${ts.httpUrl}/${SERVICE}/Get`]);
    expect(preflight.status).toBe(403);
  });
});

describe("limits, as on the gRPC port", () => {
  test("a Get larger than its method's limit is RESOURCE_EXHAUSTED, naming the limit", async () => {
    const ts = await startTestServer({ httpListen: HTTP }, { cleanups });
    const answer = await postJson(ts, `${SERVICE}/Get`, JSON.stringify({ key: "k".repeat(4000) }));
    expect(answer.status).toBe(429);
    expect(JSON.parse(answer.body).message).toMatch(
      /a generation\.v1\.GenerationService\.Get request may be at most 2048 bytes/,
    );
    // Refused while it was read, before Connect's interceptors: still counted.
    expect(await ts.metric("grpc_server_handled_total", 'grpc_method="Get",grpc_code="ResourceExhausted"')).toBe(1);
  });

  test("large requests read at once draw on the budget the gRPC port uses; a call's share comes back when it ends", async () => {
    const ts = await startTestServer({ httpListen: HTTP, maxPendingRequestBytes: 150_000 }, { cleanups });
    const url = new URL(`${ts.httpUrl}/${SERVICE}/Watch`);
    // A Watch whose body is announced at 200 KB and sent as far as 100 KB, then held.
    const held = http1Request(url, { method: "POST", headers: { "content-type": "application/connect+proto" } });
    held.on("error", () => {});
    const header = Buffer.alloc(5);
    header.writeUInt32BE(200_000, 1);
    held.write(Buffer.concat([header, Buffer.alloc(100_000, 0x0a)]));
    await expect.poll(() => ts.callsInFlight("Watch"), { timeout: 10_000 }).toBe(1);
    const client = connectGenerationClient(ts.httpUrl, {
      name: "Connect",
      protocol: "connect",
      binary: true,
      httpVersion: "1.1",
    });
    const keys = Array.from({ length: 2_000 }, (_, i) => `budget/${i}`.padEnd(60, "."));
    await expectWatchCode(
      recordWatch(cleanups, client, keys),
      Code.RESOURCE_EXHAUSTED,
      /^RESOURCE_EXHAUSTED: the server is already reading \d+ bytes of large requests.*--max-pending-request-bytes/,
    );
    held.destroy();
    await expect.poll(() => ts.callsInFlight("Watch"), { timeout: 10_000 }).toBe(0);
    const watch = recordWatch(cleanups, client, keys);
    await watch.live(15_000);
  });
});

describe("the port itself", () => {
  test("health and reflection over Connect; its calls counted in the metrics", async () => {
    const ts = await startTestServer({ httpListen: HTTP }, { cleanups });
    const health = await postJson(ts, "grpc.health.v1.Health/Check", "{}");
    expect(JSON.parse(health.body)).toEqual({ status: "SERVING" });
    const { stdout } = await promisify(execFile)(
      join(import.meta.dirname, "../node_modules/.bin/buf"),
      ["curl", "--http2-prior-knowledge", "--list-services", ts.httpUrl],
      { timeout: 30_000 },
    );
    expect(stdout).toContain(SERVICE);
    expect(await ts.metric("grpc_server_handled_total", 'grpc_method="Check",grpc_code="OK"')).toBe(1);
  });

  test("keepalive: an HTTP/2 connection that stops answering pings is closed and its Watch released", async () => {
    const ts = await startTestServer({ httpListen: HTTP, keepaliveMs: 1000, keepaliveTimeoutMs: 500 }, { cleanups });
    const proxy = await stallingProxy(ts.httpUrl.replace("http://", ""));
    cleanups.push(() => proxy.close());
    const protocol: HttpProtocol = { name: "Connect", protocol: "connect", binary: true, httpVersion: "2" };
    const watch = recordWatch(cleanups, connectGenerationClient(`http://${proxy.address}`, protocol), ["stalled"]);
    await watch.live();
    expect(await ts.metric("syncgen_watch_streams")).toBe(1);
    proxy.stall();
    await expect.poll(() => ts.metric("syncgen_watch_streams"), { timeout: 15_000 }).toBe(0);
  });

  test("a connection reset before it says anything costs nothing; nor one with pings as slow as their timeout", async () => {
    // A real `syncgen serve`: an unhandled socket error would end its process.
    const served = await ServeProcess.start(
      ["--http-listen", "127.0.0.1:0", "--keepalive-ms", "1000", "--keepalive-timeout-ms", "1000"],
      { cleanups },
    );
    const httpAddress = served.httpAddress as string;
    const [host, port] = httpAddress.split(":") as [string, string];
    for (const sent of ["", "P", "PR"]) {
      const socket = connectTcp(Number(port), host);
      socket.on("error", () => {});
      await once(socket, "connect");
      if (sent) socket.write(sent);
      socket.resetAndDestroy();
      await once(socket, "close");
    }
    // Pings unanswered while the ping timer and the timeout fire together.
    const proxy = await stallingProxy(httpAddress);
    cleanups.push(() => proxy.close());
    const protocol: HttpProtocol = { name: "Connect", protocol: "connect", binary: true, httpVersion: "2" };
    const watch = recordWatch(cleanups, connectGenerationClient(`http://${proxy.address}`, protocol), ["reset"]);
    await watch.live();
    proxy.stall();
    await expect.poll(() => served.metric("syncgen_watch_streams"), { timeout: 15_000 }).toBe(0);
    const health = await curl([
      "-X",
      "POST",
      "-H",
      "content-type: application/json",
      "-d",
      "{}",
      `http://${httpAddress}/grpc.health.v1.Health/Check`,
    ]);
    expect(JSON.parse(health.body)).toEqual({ status: "SERVING" });
    expect(served.cli.child.exitCode).toBeNull();
  });

  test("a client that resets more streams than HTTP/2 allows is closed at once, not at keepalive", async () => {
    const ts = await startTestServer({ httpListen: HTTP }, { cleanups });
    const open = await ts.metric("syncgen_connections");
    const session = connectHttp2(ts.httpUrl);
    cleanups.push(() => session.destroy());
    session.on("error", () => {});
    await once(session, "connect");
    for (let i = 0; i < 1100 && !session.closed && !session.destroyed; i++) {
      const stream = session.request({
        ":method": "POST",
        ":path": `/${SERVICE}/Get`,
        "content-type": "application/json",
      });
      stream.on("error", () => {});
      stream.close(httpConstants.NGHTTP2_CANCEL);
    }
    await expect.poll(() => ts.metric("syncgen_connections_abandoned_total"), { timeout: 30_000 }).toBe(1);
    await expect.poll(() => ts.metric("syncgen_connections"), { timeout: 30_000 }).toBe(open);
  });

  test("max connection age: an HTTP/2 connection is asked to go, and its Watch ended, so clients rebalance", async () => {
    const ts = await startTestServer(
      { httpListen: HTTP, maxConnectionAgeMs: 1000, maxConnectionAgeGraceMs: 200 },
      { cleanups },
    );
    const protocol: HttpProtocol = { name: "Connect", protocol: "connect", binary: true, httpVersion: "2" };
    const watch = recordWatch(cleanups, connectGenerationClient(ts.httpUrl, protocol), ["aged"]);
    await watch.live();
    await withDeadline(watch.done, 15_000, "the aged connection's Watch to end");
    expect(watch.error).toBeDefined();
    expect(await ts.metric("syncgen_watch_streams")).toBe(0);
  });

  test("a Watch past its deadline ends with DEADLINE_EXCEEDED, one cancelled is counted as cancelled", async () => {
    const ts = await startTestServer({ httpListen: HTTP }, { cleanups });
    const protocol: HttpProtocol = { name: "Connect", protocol: "connect", binary: true, httpVersion: "2" };
    const raw = createClient(
      GenerationService,
      createConnectTransport({ baseUrl: ts.httpUrl, httpVersion: "2", useBinaryFormat: true }),
    );
    const ended = await (async () => {
      for await (const _ of raw.watch({ keys: ["deadline"] }, { timeoutMs: 3000 })) {
        // The first response, then nothing until the deadline.
      }
    })().then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    expect(ended?.code).toBe(ConnectCode.DeadlineExceeded);
    await expect
      .poll(() => ts.metric("grpc_server_handled_total", 'grpc_method="Watch",grpc_code="DeadlineExceeded"'), {
        timeout: 10_000,
      })
      .toBe(1);
    const watch = recordWatch(cleanups, connectGenerationClient(ts.httpUrl, protocol), ["cancelled"]);
    await watch.live();
    await watch.close();
    await expect
      .poll(() => ts.metric("grpc_server_handled_total", 'grpc_method="Watch",grpc_code="Canceled"'), {
        timeout: 10_000,
      })
      .toBe(1);
    expect(await ts.metric("grpc_server_handled_total", 'grpc_method="Watch",grpc_code="OK"')).toBe(0);
  });

  test("over TLS: HTTPS with HTTP/2 (ALPN) and HTTP/1.1", async () => {
    const certs = makeCertificates();
    cleanups.push(() => certs.remove());
    const ts = await startTestServer(
      { httpListen: HTTP, tlsCert: certs.serverCert, tlsKey: certs.serverKey },
      { cleanups },
    );
    const https = ts.httpUrl.replace("http://127.0.0.1", "https://localhost");
    for (const version of ["--http2", "--http1.1"]) {
      const answer = await curl([
        version,
        "--cacert",
        certs.caCert,
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        '{"key":"tls/a","peek":true}',
        `${https}/${SERVICE}/Get`,
      ]);
      expect(answer.headers).toContain(version === "--http2" ? "http/2 200" : "http/1.1 200");
      expect(JSON.parse(answer.body)).toEqual({ generation: "0" });
    }
  });

  test("shutdown ends its Watch streams with UNAVAILABLE and stops listening", async () => {
    const ts = await startTestServer({ httpListen: HTTP }, { cleanups });
    const client = connectGenerationClient(ts.httpUrl, {
      name: "Connect",
      protocol: "connect",
      binary: false,
      httpVersion: "1.1",
    });
    const watch = recordWatch(cleanups, client, ["drain/a"]);
    await watch.live();
    await withDeadline(ts.server.shutdown("test"), 10_000, "shutdown");
    await expectWatchCode(watch, Code.UNAVAILABLE, /shutting down/);
    const refused = await curl(["--max-time", "5", `${ts.httpUrl}/`]).then(
      () => undefined,
      (error: { code?: number }) => error.code,
    );
    expect(refused, "curl's exit code: 7, could not connect").toBe(7);
  });
});

describe("the README's HTTP recipes", () => {
  const ROOT = resolve(import.meta.dirname, "..");

  /** The commands of the shell block under `heading`, continuation lines joined, comment lines left out. */
  function readmeCommands(heading: string): string[] {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf(heading));
    const block = section.slice(section.indexOf("```sh\n") + 6, section.indexOf("\n```", section.indexOf("```sh")));
    return block
      .replace(/\\\n\s*/g, " ")
      .split("\n")
      .filter((line) => line.trim() !== "" && !line.startsWith("#"));
  }

  test("run as printed: each answer is what its comment says, and the Watch pipelines print changes as they happen", async () => {
    const ts = await startTestServer({ httpListen: HTTP }, { cleanups });
    const commands = readmeCommands("### Connect and JSON over HTTP");
    expect(commands[0]).toMatch(/^npx syncgen serve --http-listen 127\.0\.0\.1:8080/);
    const target = (command: string): string =>
      command.replaceAll("127.0.0.1:8080", ts.httpUrl.replace("http://", "")).replaceAll("127.0.0.1:50051", ts.address);
    let assignments = "";
    for (const command of commands.slice(1)) {
      if (/^\w+=/.test(command)) {
        assignments += `${command}\n`;
        continue;
      }
      const script = assignments + target(command);
      if (command.includes("/Watch")) {
        // Streams until interrupted: read its first answer, then a Bump made meanwhile.
        const watch = spawn("bash", ["-c", script], {
          cwd: ROOT,
          detached: true,
          stdio: ["ignore", "pipe", "inherit"],
        });
        // The whole pipeline (bash, curl, perl) is one process group.
        const stop = (): void => {
          try {
            process.kill(-(watch.pid as number), "SIGTERM");
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error; // already gone
          }
        };
        cleanups.push(stop);
        let output = "";
        const arrived = new Condition();
        watch.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString();
          arrived.notify();
        });
        const showing = (generation: bigint): Promise<unknown> =>
          arrived.until(
            () => output.replace(/\s/g, "").includes(`"generation":"${generation}"`) || undefined,
            30_000,
            () => `${command}: users/42 at ${generation}; got ${output}`,
          );
        await showing(await ts.client.get("users/42", { peek: true }));
        await showing(await ts.client.bump("users/42"));
        stop();
        continue;
      }
      const { stdout } = await promisify(execFile)("bash", ["-c", script], { cwd: ROOT, timeout: 30_000 });
      const answer = JSON.parse(stdout) as unknown;
      const promised = /# (\{.*\})/.exec(command)?.[1];
      if (promised && !promised.includes("...")) expect(answer, command).toEqual(JSON.parse(promised));
    }
  });
});
