/**
 * The transport ceiling: a bare grpc-js server speaking GenerationService's wire format with
 * no work behind it. Get/Bump answer a constant at once; Watch streams are held, and a Clear
 * pushes one WatchResponse to every held stream (grpc-js serializing it per stream, as a
 * plain implementation would). Prints `ready PORT` when listening.
 */
import { create } from "@bufbuild/protobuf";
import { Server, ServerCredentials, type ServerWritableStream, type sendUnaryData } from "@grpc/grpc-js";
import {
  BumpResponseSchema,
  ClearResponseSchema,
  GenerationService,
  GetResponseSchema,
  KeyGenerationSchema,
  WatchResponseSchema,
} from "../../src/gen/generation/v1/generation_pb.js";
import { grpcServiceDefinition } from "../../src/rpc/service-definition.js";

const streams = new Set<ServerWritableStream<unknown, unknown>>();
const getResponse = create(GetResponseSchema, { generation: 1n });
const bumpResponse = create(BumpResponseSchema, { generation: 1n });
let pushed = 0n;

const server = new Server({ "grpc.max_receive_message_length": 64 << 20 });
server.addService(grpcServiceDefinition(GenerationService), {
  get: (_call: unknown, callback: sendUnaryData<unknown>) => callback(null, getResponse),
  bump: (_call: unknown, callback: sendUnaryData<unknown>) => callback(null, bumpResponse),
  clear: (_call: unknown, callback: sendUnaryData<unknown>) => {
    pushed++;
    const message = create(WatchResponseSchema, {
      changes: [create(KeyGenerationSchema, { key: "fanout", generation: pushed })],
    });
    for (const stream of streams) stream.write(message);
    callback(null, create(ClearResponseSchema));
  },
  watch: (call: ServerWritableStream<unknown, unknown>) => {
    streams.add(call);
    call.on("cancelled", () => streams.delete(call));
    call.write(
      create(WatchResponseSchema, { changes: [create(KeyGenerationSchema, { key: "fanout", generation: 0n })] }),
    );
  },
});
server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(`ready ${port}\n`);
});
process.on("SIGTERM", () => server.forceShutdown());
// As test/helpers/serve-with-gc.mjs does for syncgen: memory after a full GC, on request
// (started with --expose-gc).
process.on("SIGUSR2", () => {
  (globalThis as { gc?: () => void }).gc?.();
  const { heapUsed, external, arrayBuffers, rss } = process.memoryUsage();
  process.stderr.write(`${JSON.stringify({ memory: { heapUsed, external, arrayBuffers, rss } })}\n`);
});
