/**
 * A watcher process: opens `streams` Watch streams of one key, spread over connections of
 * `perConnection` streams each (as real clients are), with bare grpc-js calls so the client
 * costs the same against every server. Driven over stdin/stdout, one JSON line each way:
 *
 *   -> {"op":"arm"}     reset: the next message on every stream counts
 *   <- {"first":t,"last":t}  once every stream has received it (epoch ms, fractional)
 *
 * It prints {"live":true} once every stream has its first response.
 */
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { create } from "@bufbuild/protobuf";
import { Client, type ClientReadableStream, credentials } from "@grpc/grpc-js";
import {
  GenerationService,
  WatchRequestSchema,
  type WatchResponse,
} from "../../src/gen/generation/v1/generation_pb.js";
import { grpcServiceDefinition } from "../../src/rpc/service-definition.js";

interface WatchSpec {
  target: string;
  key: string;
  streams: number;
  perConnection: number;
}

const spec = JSON.parse(process.argv[2] ?? "{}") as WatchSpec;
const method = grpcServiceDefinition(GenerationService).watch;
const now = (): number => performance.timeOrigin + performance.now();

const clients: Client[] = [];
const calls: ClientReadableStream<WatchResponse>[] = [];
let live = 0;
let armed = false;
let received = 0;
let first = 0;
let last = 0;

for (let i = 0; i < spec.streams; i++) {
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
  let isLive = false;
  call.on("data", (response: WatchResponse) => {
    if (!isLive) {
      isLive = true;
      if (++live === spec.streams) process.stdout.write(`${JSON.stringify({ live: true })}\n`);
      return;
    }
    if (!armed || response.changes.length === 0) return;
    const t = now();
    if (received === 0) first = t;
    last = t;
    if (++received === spec.streams) {
      armed = false;
      process.stdout.write(`${JSON.stringify({ first, last })}\n`);
    }
  });
  call.on("error", () => {});
  calls.push(call);
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const { op } = JSON.parse(line) as { op: string };
  if (op === "arm") {
    received = 0;
    armed = true;
    process.stdout.write(`${JSON.stringify({ armed: true })}\n`);
  } else if (op === "close") {
    for (const call of calls) call.cancel();
    for (const client of clients) client.close();
    process.exit(0);
  }
});
