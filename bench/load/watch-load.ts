/**
 * A watcher process: opens `streams` Watch streams of one key, spread over connections of
 * `perConnection` streams each (as real clients are), with bare grpc-js calls so the client
 * costs the same against every server. With `protocol: "connect"` the streams go to a syncgen
 * HTTP port instead (`target` its http:// URL), with Connect's own Node client over HTTP/2
 * (binary, or JSON when `json`), one transport (so one connection) per `perConnection`
 * streams. Driven over stdin/stdout, one JSON line each way:
 *
 *   -> {"op":"arm"}     reset: the next message on every stream counts
 *   <- {"first":t,"last":t}  once every stream has received it (ms on the machine's monotonic clock: clock.ts)
 *
 * It prints {"live":true} once every stream has its first response.
 */
import { createInterface } from "node:readline";
import { create } from "@bufbuild/protobuf";
import { type Client as ConnectClient, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Client, credentials } from "@grpc/grpc-js";
import {
  GenerationService,
  WatchRequestSchema,
  type WatchResponse,
} from "../../src/gen/generation/v1/generation_pb.js";
import { grpcServiceDefinition } from "../../src/rpc/service-definition.js";
import { monotonicMs } from "../clock.js";

interface WatchSpec {
  /** gRPC HOST:PORT, or for Connect the HTTP port's http://HOST:PORT. */
  target: string;
  /** "grpc" (default) or "connect". */
  protocol?: "grpc" | "connect";
  /** Connect: JSON instead of binary. */
  json?: boolean;
  key: string;
  streams: number;
  perConnection: number;
}

const spec = JSON.parse(process.argv[2] ?? "{}") as WatchSpec;
const method = grpcServiceDefinition(GenerationService).watch;

const clients: Client[] = [];
/** Ends every stream. */
const cancels: (() => void)[] = [];
let live = 0;
let armed = false;
let received = 0;
let first = 0;
let last = 0;

/** A stream's handler of each response it receives. */
function onResponses(): (response: WatchResponse) => void {
  let isLive = false;
  return (response) => {
    if (!isLive) {
      isLive = true;
      if (++live === spec.streams) process.stdout.write(`${JSON.stringify({ live: true })}\n`);
      return;
    }
    if (!armed || response.changes.length === 0) return;
    const t = monotonicMs();
    if (received === 0) first = t;
    last = t;
    if (++received === spec.streams) {
      armed = false;
      process.stdout.write(`${JSON.stringify({ first, last })}\n`);
    }
  };
}

/** Opens one stream over bare grpc-js, on a new connection every `perConnection` streams. */
function watchOverGrpc(i: number): void {
  if (i % spec.perConnection === 0) {
    // A local subchannel pool gives each client its own connection.
    clients.push(new Client(spec.target, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }));
  }
  const client = clients[clients.length - 1] as Client;
  const call = client.makeServerStreamRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    create(WatchRequestSchema, { keys: [spec.key] }),
  );
  call.on("data", onResponses());
  call.on("error", () => {});
  cancels.push(() => call.cancel());
}

let connectClient: ConnectClient<typeof GenerationService> | undefined;

/** Opens one stream over Connect (HTTP/2), on a new transport (connection) every `perConnection` streams. */
function watchOverConnect(i: number): void {
  if (i % spec.perConnection === 0 || connectClient === undefined) {
    const transport = createConnectTransport({ baseUrl: spec.target, httpVersion: "2", useBinaryFormat: !spec.json });
    connectClient = createClient(GenerationService, transport);
  }
  const client = connectClient;
  const aborted = new AbortController();
  const onResponse = onResponses();
  void (async () => {
    for await (const response of client.watch({ keys: [spec.key] }, { signal: aborted.signal })) onResponse(response);
  })().catch(() => {});
  cancels.push(() => aborted.abort());
}

for (let i = 0; i < spec.streams; i++) {
  if (spec.protocol === "connect") watchOverConnect(i);
  else watchOverGrpc(i);
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const { op } = JSON.parse(line) as { op: string };
  if (op === "arm") {
    received = 0;
    armed = true;
    process.stdout.write(`${JSON.stringify({ armed: true })}\n`);
  } else if (op === "close") {
    for (const cancel of cancels) cancel();
    for (const client of clients) client.close();
    process.exit(0);
  }
});
