/**
 * The grpc-js adapter: serves a generated service through transport-neutral handlers
 * (handler.ts). It reads each request within its method's size limit (request-limits.ts),
 * decodes it (protobuf-es, or a method's own bounded reader), builds the call context, encodes
 * responses — a response object written to many streams once — and turns whatever a handler
 * throws into a status through toServiceError(). A request that fails to decode (bad
 * protobuf, invalid UTF-8) is answered with INVALID_ARGUMENT, not grpc-js's INTERNAL.
 */
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type {
  MethodDefinition,
  Server,
  ServerDuplexStream,
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
  status,
  UntypedHandleCall,
} from "@grpc/grpc-js";
import { grpcServiceDefinition } from "../rpc/service-definition.js";
import { GenerationServiceError, toServiceError, undecodable } from "./errors.js";
import {
  type CallContext,
  methodHandler,
  type RequestReading,
  type ResponseSink,
  type ServiceHandlers,
  type ServiceReadings,
  withinDeadline,
} from "./handler.js";
import type { RequestSizeLimits } from "./request-limits.js";

/** Called with every error a handler ends a call with, for logging. */
export type ErrorObserver = (method: string, error: GenerationServiceError) => void;

/** What addService reports to and registers with. */
export interface ServeOptions {
  /** Where each method's size limit is registered (the interceptor enforces it while reading). */
  limits: RequestSizeLimits;
  /** Sees every error a call ends with. */
  onError: ErrorObserver;
}

/** A request refused before it reached a handler (too large, or not decodable). */
export class RefusedRequest {
  constructor(readonly error: GenerationServiceError) {}
}

/** Adds `service` to `server`, served by `handlers`, its requests read as `readings` say. */
export function addService<T extends GenServiceMethods>(
  server: Server,
  service: GenService<T>,
  handlers: ServiceHandlers<T>,
  readings: ServiceReadings<T>,
  { limits, onError }: ServeOptions,
): void {
  const definition = grpcServiceDefinition(service);
  const adapted: Record<string, MethodDefinition<unknown, unknown>> = {};
  const implementation: Record<string, UntypedHandleCall> = {};
  for (const method of service.methods) {
    const name = method.localName;
    const methodDefinition = definition[name] as MethodDefinition<unknown, unknown>;
    const path = methodDefinition.path;
    const reading = readings[name] as RequestReading<unknown>;
    limits.set(path, reading);
    const decode = reading.decode ?? ((bytes: Uint8Array) => fromBinary(method.input, bytes));
    adapted[name] = {
      ...methodDefinition,
      responseSerialize: methodDefinition.responseStream
        ? encodeOnce(method.output)
        : methodDefinition.responseSerialize,
      requestDeserialize: (bytes) => {
        const tooLarge = limits.check(path, bytes.length);
        if (tooLarge) return new RefusedRequest(tooLarge);
        try {
          return decode(bytes);
        } catch (error) {
          return new RefusedRequest(
            error instanceof GenerationServiceError ? error : undecodable(method.input.typeName, error),
          );
        }
      },
    };
    const fail = (error: unknown): GenerationServiceError => {
      const serviceError = toServiceError(error);
      onError(path, serviceError);
      return serviceError;
    };
    const served = methodHandler(handlers, method);
    switch (served.kind) {
      case "unary": {
        const unary = served.handle;
        implementation[name] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
          if (call.request instanceof RefusedRequest) return callback(toStatus(fail(call.request.error)));
          const context = new GrpcCallContext(call);
          withinDeadline(unary(call.request, context), context.deadline)
            .then(
              (response) => callback(null, response),
              (error: unknown) => callback(toStatus(fail(error))),
            )
            .finally(() => context.end());
        };
        break;
      }
      case "server_streaming": {
        const streaming = served.handle;
        implementation[name] = (call: ServerWritableStream<unknown, unknown>) => {
          const request = call.request;
          if (request instanceof RefusedRequest) return endStream(call, fail(request.error));
          serveStream(call, (context, sink) => streaming(request, context, sink), fail);
        };
        break;
      }
      case "bidi_streaming": {
        const bidi = served.handle;
        implementation[name] = (call: ServerDuplexStream<unknown, unknown>) => {
          serveStream(call, (context, sink) => bidi(readRequests(call), context, sink), fail);
        };
        break;
      }
    }
  }
  server.addService(adapted, implementation);
}

/** What every kind of grpc-js call tells of itself. */
interface CallInfo {
  readonly cancelled: boolean;
  on(event: "cancelled", listener: () => void): unknown;
  getDeadline(): Date | number;
  getPeer(): string;
}

/**
 * The context of a grpc-js call. The signal and the peer are made only if a handler asks: a
 * signal costs a listener on the call and ~10 µs to abort, a tenth of a Get's whole cost, and
 * unary handlers do not look. A class rather than an object of closures, as are the sink's:
 * a Watch keeps both for as long as it is open, on 10,000s of streams.
 */
class GrpcCallContext implements CallContext {
  readonly deadline: number;
  readonly #call: CallInfo;
  #controller: AbortController | undefined;
  #endListeners: (() => void)[] | undefined;
  #ended = false;

  constructor(call: CallInfo) {
    this.#call = call;
    const deadline = call.getDeadline();
    this.deadline = deadline instanceof Date ? deadline.getTime() : deadline;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      const controller = new AbortController();
      this.#controller = controller;
      this.onEnd(() => controller.abort());
    }
    return this.#controller.signal;
  }

  get peer(): string {
    return this.#call.getPeer();
  }

  onEnd(listener: () => void): void {
    if (this.#ended || this.#call.cancelled) {
      listener();
      return;
    }
    if (this.#endListeners === undefined) {
      this.#endListeners = [];
      this.#call.on("cancelled", () => this.end());
    }
    this.#endListeners.push(listener);
  }

  /** The call is answered or cancelled: tells the end listeners (the signal's among them). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const listeners = this.#endListeners;
    if (listeners === undefined) return; // A unary call, most often: nothing listens.
    this.#endListeners = undefined;
    for (const listener of listeners) listener();
  }
}

/** Where a streaming handler's responses go: the call, with its backpressure. */
class GrpcResponseSink implements ResponseSink<unknown> {
  readonly #call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

  constructor(call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>) {
    this.#call = call;
  }

  send(response: unknown): boolean {
    return this.#call.write(response);
  }

  onDrain(listener: () => void): void {
    this.#call.once("drain", listener);
  }
}

/**
 * Runs a streaming handler on `call`: its responses go out with backpressure; it ends the
 * call (unless the client has gone) when it settles.
 */
function serveStream(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  run: (context: CallContext, sink: ResponseSink<unknown>) => Promise<void>,
  fail: (error: unknown) => GenerationServiceError,
): void {
  const context = new GrpcCallContext(call);
  let running: Promise<void>;
  try {
    running = run(context, new GrpcResponseSink(call));
  } catch (error) {
    running = Promise.reject(error);
  }
  running.then(
    () => {
      if (!call.cancelled) call.end();
      context.end();
    },
    (error: unknown) => {
      if (!call.cancelled) endStream(call, fail(error));
      context.end();
    },
  );
}

/** The requests of a bidi call as the handler iterates them; a refused one ends the iteration with its error. */
async function* readRequests(call: ServerDuplexStream<unknown, unknown>): AsyncGenerator<unknown> {
  // Its items are what the deserializer returned. Not destroyed when the reading ends: the
  // response side is still open, and must still end with a status.
  for await (const request of call.iterator({ destroyOnReturn: false }) as AsyncIterable<unknown>) {
    if (request instanceof RefusedRequest) throw request.error;
    yield request;
  }
}

/**
 * A serializer that encodes each response object once, however many streams it is written
 * to (a change fanned out to thousands of watchers, the heartbeat).
 */
function encodeOnce(schema: DescMessage): (message: unknown) => Buffer {
  const encoded = new WeakMap<object, Buffer>();
  return (message) => {
    const key = message as object;
    let bytes = encoded.get(key);
    if (bytes === undefined) {
      const binary = toBinary(schema, message as MessageShape<DescMessage>);
      bytes = Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength);
      encoded.set(key, bytes);
    }
    return bytes;
  };
}

/** The grpc-js form of a status. */
export function toStatus(error: GenerationServiceError): { code: status; details: string } {
  // syncgen's Code has gRPC's numbers (src/rpc/code.ts).
  return { code: error.code as number as status, details: error.message };
}

/** Ends a server stream with an error status (grpc-js sends the status of an emitted error). */
function endStream(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  error: GenerationServiceError,
): void {
  call.emit("error", toStatus(error));
}
