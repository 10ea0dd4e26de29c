/**
 * gRPC below the client library: raw message frames and raw calls, for what the client would
 * never send (undecodable bytes, lying length prefixes, compressed flags).
 */
import * as grpc from "@grpc/grpc-js";
import type { Cleanups } from "./cleanups.js";

/** The 5-byte gRPC message header: the compressed flag, and the length announced. */
export function messageHeader(length: number, compressed = false): Buffer {
  const header = Buffer.alloc(5);
  header[0] = compressed ? 1 : 0;
  header.writeUInt32BE(length, 1);
  return header;
}

/** `message` as one gRPC message frame; `length` and `compressed` may lie. */
export function framed(message: Uint8Array, { compressed = false, length = message.length } = {}): Buffer {
  return Buffer.concat([messageHeader(length, compressed), message]);
}

/** A grpc-js client of no service, for raw calls; closed by the test's teardown. */
export function rawClient(cleanups: Cleanups, address: string): grpc.Client {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  return client;
}

/** The status a call ended with. */
export interface CallStatus {
  code: number;
  details: string;
}

/** Sends `bytes` as a unary request to `path` (with a 5 s deadline) and resolves with the status. */
export function rawUnary(
  client: grpc.Client,
  path: string,
  bytes: Buffer,
  metadata = new grpc.Metadata(),
): Promise<CallStatus> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      metadata,
      { deadline: Date.now() + 5000 },
      (error) => resolve(error ? { code: error.code, details: error.details } : { code: grpc.status.OK, details: "" }),
    );
  });
}
