/**
 * A watcher process: opens `streams` Watch streams of one key, spread over connections of
 * `perConnection` streams each (as real clients are). With `protocol: "connect"` the streams
 * go to a syncgen HTTP port instead (`target` its http:// URL), as Connect streaming calls
 * (binary). Driven over stdin/stdout, one JSON line each way:
 *
 *   -> {"op":"arm"}     reset: the next message on every stream counts
 *   <- {"first":t,"last":t}  once every stream has received it (ms on the machine's monotonic clock: clock.ts)
 *
 * It prints {"live":true} once every stream has its first response. A stream that ends
 * before it is told to close (the server gone, or the Watch refused) ends the process, with
 * why on stderr: a trial waiting on it would otherwise wait out its deadline.
 *
 * The client is a minimal one over Node's HTTP/2, the same against every server: it reads
 * each response's 5-byte envelope header (gRPC's length prefix and Connect's streaming
 * envelope are laid out alike) and no further. A fan-out trial ends when the last watcher has
 * its message, so the watchers must take in a fan-out faster than a server sends it. They
 * did not with grpc-js's client: on the load core they spent 13 ms of CPU taking in 1,000
 * messages that the server sent in 6 (syncgen) to 9 (bare grpc-js), so the client set the
 * pace of every trial, and its own slow stretches and GCs (up to 39 ms for 1,000 messages,
 * seen with ftrace) made the p99 of both servers alike.
 */
import { type ClientHttp2Session, type ClientHttp2Stream, connect, constants } from "node:http2";
import { createInterface } from "node:readline";
import { create, toBinary } from "@bufbuild/protobuf";
import { GenerationService, WatchRequestSchema } from "../../src/gen/generation/v1/generation_pb.js";
import { framed } from "../../test/helpers/raw-grpc.js";
import { monotonicMs } from "../clock.js";

interface WatchSpec {
  /** gRPC HOST:PORT, or for Connect the HTTP port's http://HOST:PORT. */
  target: string;
  /** "grpc" (default) or "connect". */
  protocol?: "grpc" | "connect";
  key: string;
  streams: number;
  perConnection: number;
}

const spec = JSON.parse(process.argv[2] ?? "{}") as WatchSpec;
const overConnect = spec.protocol === "connect";
const path = `/${GenerationService.typeName}/${GenerationService.method.watch.name}`;
const headers = {
  [constants.HTTP2_HEADER_METHOD]: "POST",
  [constants.HTTP2_HEADER_PATH]: path,
  [constants.HTTP2_HEADER_CONTENT_TYPE]: overConnect ? "application/connect+proto" : "application/grpc",
  ...(overConnect ? {} : { [constants.HTTP2_HEADER_TE]: "trailers" }),
};
const request = framed(toBinary(WatchRequestSchema, create(WatchRequestSchema, { keys: [spec.key] })));
/** Flag of the Connect envelope that ends a stream (it carries the trailers, as JSON). */
const END_STREAM = 0b10;

const sessions: ClientHttp2Session[] = [];
const streams: ClientHttp2Stream[] = [];
let closing = false;
let live = 0;
let armed = false;
let received = 0;
let first = 0;
let last = 0;

/** A stream's handler of each response: a heartbeat is an empty WatchResponse, a change is not. */
function onResponses(): (isChange: boolean) => void {
  let isLive = false;
  return (isChange) => {
    if (!isLive) {
      isLive = true;
      if (++live === spec.streams) process.stdout.write(`${JSON.stringify({ live: true })}\n`);
      return;
    }
    if (!armed || !isChange) return;
    const t = monotonicMs();
    if (received === 0) first = t;
    last = t;
    if (++received === spec.streams) {
      armed = false;
      process.stdout.write(`${JSON.stringify({ first, last })}\n`);
    }
  };
}

/** Opens one Watch stream, on a new connection every `perConnection` streams. */
function watch(i: number): void {
  if (i % spec.perConnection === 0) {
    const session = connect(overConnect ? spec.target : `http://${spec.target}`);
    session.on("error", () => {});
    sessions.push(session);
  }
  const stream = (sessions[sessions.length - 1] as ClientHttp2Session).request(headers);
  /** What the server said of the stream's end: HTTP status, then gRPC status or Connect's end message. */
  const said: string[] = [];
  stream.on("response", (response) => said.push(`HTTP ${response[constants.HTTP2_HEADER_STATUS]}`));
  stream.on("trailers", (trailers) =>
    said.push(`grpc-status ${trailers["grpc-status"]}: ${decodeURIComponent(String(trailers["grpc-message"] ?? ""))}`),
  );
  stream.on("error", (error) => said.push(error.message));
  stream.on("close", () => {
    if (closing) return;
    process.stderr.write(`Watch stream ${i} of ${spec.target} ended: ${said.join("; ") || "no answer"}\n`);
    process.exit(1);
  });
  stream.end(request);
  const onResponse = onResponses();
  let pending: Buffer = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    let unread = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (unread.length >= 5) {
      const length = unread.readUInt32BE(1);
      if (unread.length < 5 + length) break;
      if (((unread[0] ?? 0) & END_STREAM) === 0) onResponse(length > 0);
      else said.push(unread.subarray(5, 5 + length).toString());
      unread = unread.subarray(5 + length);
    }
    pending = unread;
  });
  streams.push(stream);
}

for (let i = 0; i < spec.streams; i++) watch(i);

/** Ends every stream and the process. */
function close(): never {
  closing = true;
  for (const stream of streams) stream.close(constants.NGHTTP2_CANCEL);
  for (const session of sessions) session.close();
  process.exit(0);
}

createInterface({ input: process.stdin })
  // Without its orchestrator (stdin closed), a watcher has nobody to answer.
  .on("close", close)
  .on("line", (line) => {
    const { op } = JSON.parse(line) as { op: string };
    if (op === "arm") {
      received = 0;
      armed = true;
      process.stdout.write(`${JSON.stringify({ armed: true })}\n`);
    } else if (op === "close") {
      close();
    }
  });
