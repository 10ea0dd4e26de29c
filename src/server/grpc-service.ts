/**
 * Serves a generated service on a grpc-js server through typed handlers. Handlers are async
 * functions that return the response (or, for server streams, take over the call); whatever
 * they throw becomes a status through toServiceError(). A request that fails to decode
 * (bad protobuf, invalid UTF-8) is answered with INVALID_ARGUMENT, not grpc-js's INTERNAL.
 */
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type {
  MethodDefinition,
  Server,
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
  UntypedHandleCall,
} from "@grpc/grpc-js";
import { grpcServiceDefinition, type RequestOf, type ResponseOf } from "../rpc/service-definition.js";
import { Code, GenerationServiceError, toServiceError } from "./errors.js";

/** A unary handler: resolves with the response or throws. */
export type UnaryHandler<M extends GenServiceMethods[string]> = (
  request: RequestOf<M>,
  call: ServerUnaryCall<RequestOf<M>, ResponseOf<M>>,
) => Promise<ResponseOf<M>>;

/** A server-streaming handler: owns the call; throwing before it writes ends the call with a status. */
export type ServerStreamingHandler<M extends GenServiceMethods[string]> = (
  request: RequestOf<M>,
  call: ServerWritableStream<RequestOf<M>, ResponseOf<M>>,
) => void;

/** One handler per method, typed by the method's kind. */
export type ServiceHandlers<T extends GenServiceMethods> = {
  [K in keyof T]: T[K]["methodKind"] extends "unary"
    ? UnaryHandler<T[K]>
    : T[K]["methodKind"] extends "server_streaming"
      ? ServerStreamingHandler<T[K]>
      : never;
};

/** The handlers of a generated service object, e.g. `HandlersOf<typeof GenerationService>`. */
export type HandlersOf<S> = S extends GenService<infer T> ? ServiceHandlers<T> : never;

/** Called with every error a handler ends a call with, for logging. */
export type ErrorObserver = (method: string, error: GenerationServiceError) => void;

/** Counts the unary calls a server has seen, for inspection and metrics. */
export class CallCounter {
  /** Calls dispatched to a handler. */
  started = 0;
  /** Calls dispatched and not yet answered. */
  inFlight = 0;
}

/** What addGeneratedService reports to. */
export interface ServeOptions {
  /** Counts unary calls. */
  calls: CallCounter;
  /** Sees every error a call ends with. */
  onError: ErrorObserver;
}

/**
 * A response already encoded: one message written to many streams is serialized once. The
 * serializers addGeneratedService installs pass its bytes through unchanged.
 */
export class EncodedResponse {
  readonly bytes: Buffer;
  constructor(bytes: Uint8Array) {
    this.bytes = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}

/** Writes a response, or an EncodedResponse, to a server stream of addGeneratedService. */
export function writeResponse<R>(call: ServerWritableStream<unknown, R>, response: R | EncodedResponse): boolean {
  // The stream's serializer (see addGeneratedService) accepts both.
  return call.write(response as R);
}

/** A request that could not be decoded; reaches no handler. */
export class MalformedRequest {
  constructor(readonly reason: string) {}
}

/** Adds `service` to `server`, served by `handlers`. */
export function addGeneratedService<T extends GenServiceMethods>(
  server: Server,
  service: GenService<T>,
  handlers: ServiceHandlers<T>,
  { calls, onError }: ServeOptions,
): void {
  const definition = grpcServiceDefinition(service);
  const lenient: Record<string, MethodDefinition<unknown, unknown>> = {};
  const implementation: Record<string, UntypedHandleCall> = {};
  for (const method of service.methods) {
    const name = method.localName;
    const methodDefinition = definition[name] as MethodDefinition<unknown, unknown>;
    const path = methodDefinition.path;
    lenient[name] = {
      ...methodDefinition,
      responseSerialize: (response) =>
        response instanceof EncodedResponse ? response.bytes : methodDefinition.responseSerialize(response),
      requestDeserialize: (bytes) => {
        try {
          return methodDefinition.requestDeserialize(bytes);
        } catch (error) {
          return new MalformedRequest(error instanceof Error ? error.message : String(error));
        }
      },
    };
    const fail = (error: unknown): GenerationServiceError => {
      const serviceError = toServiceError(error);
      onError(path, serviceError);
      return serviceError;
    };
    const malformed = (request: unknown): GenerationServiceError | undefined =>
      request instanceof MalformedRequest
        ? new GenerationServiceError(
            `the request is not a valid ${method.input.typeName}: ${request.reason}`,
            Code.INVALID_ARGUMENT,
          )
        : undefined;
    // The handler map is typed by method kind; here one loop serves them all.
    const handler = (handlers as Record<string, unknown>)[name];
    if (method.methodKind === "unary") {
      const unary = handler as (request: unknown, call: ServerUnaryCall<unknown, unknown>) => Promise<unknown>;
      implementation[name] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        const invalid = malformed(call.request);
        if (invalid) return callback(toStatus(fail(invalid)));
        calls.started++;
        calls.inFlight++;
        withinDeadline(unary(call.request, call), call.getDeadline())
          .then(
            (response) => callback(null, response),
            (error: unknown) => callback(toStatus(fail(error))),
          )
          .finally(() => calls.inFlight--);
      };
    } else if (method.methodKind === "server_streaming") {
      const streaming = handler as (request: unknown, call: ServerWritableStream<unknown, unknown>) => void;
      implementation[name] = (call: ServerWritableStream<unknown, unknown>) => {
        try {
          const invalid = malformed(call.request);
          if (invalid) throw invalid;
          streaming(call.request, call);
        } catch (error) {
          endStream(call, fail(error));
        }
      };
    } else {
      throw new Error(`${path}: ${method.methodKind} methods are not supported`);
    }
  }
  server.addService(lenient, implementation);
}

/** Time kept back from a call's deadline so an UNAVAILABLE answer still reaches the caller. */
const DEADLINE_MARGIN_MS = 20;

/**
 * Answers UNAVAILABLE just before the caller's deadline when the handler has not finished:
 * a store that hangs yields an actionable status, not DEADLINE_EXCEEDED from the client's
 * own timer. (The handler's work may still complete; for a Bump that is the usual
 * "a failed Bump may have happened" of any RPC.)
 */
function withinDeadline<T>(work: Promise<T>, deadline: Date | number): Promise<T> {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return work;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new GenerationServiceError("the store did not answer within the call's deadline", Code.UNAVAILABLE)),
      Math.max(0, at - Date.now() - DEADLINE_MARGIN_MS),
    );
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/** The grpc-js form of a status. */
export function toStatus(error: GenerationServiceError): { code: Code; details: string } {
  return { code: error.code, details: error.message };
}

/** Ends a server stream with an error status (grpc-js sends the status of an emitted error). */
export function endStream(call: ServerWritableStream<unknown, unknown>, error: GenerationServiceError): void {
  call.emit("error", toStatus(error));
}
