/**
 * Handlers as syncgen's services are written: functions of a request and a call context, in
 * the manner of connect-es, that know nothing of the wire. A transport adapter (grpc-service.ts
 * for grpc-js) decodes requests, builds the context, encodes responses and turns what a
 * handler throws into a status.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { Code, GenerationServiceError } from "../rpc/generation-service-error.js";
import type { RequestOf, ResponseOf } from "../rpc/service-definition.js";

/** What a handler knows of its call. */
export interface CallContext {
  /** Aborted when the call ends for any reason: cancelled, past its deadline, or answered. */
  readonly signal: AbortSignal;
  /** When the caller stops waiting, in milliseconds since the epoch; Infinity without a deadline. */
  readonly deadline: number;
  /** The client's connection ("IP:PORT"): calls on one connection share it. */
  readonly peer: string;
  /**
   * Calls `listener` once when the call ends, when `signal` aborts (at once if it has ended).
   * For a stream that lives until its client goes: a signal costs ~700 bytes of memory for
   * as long as the call lasts, a listener a few dozen.
   */
  onEnd(listener: () => void): void;
}

/** Where a streaming handler writes its responses. */
export interface ResponseSink<R> {
  /**
   * Sends one response; false when the transport wants the sender to wait for `onDrain`.
   * One response object sent to many sinks is encoded once.
   */
  send(response: R): boolean;
  /** Calls `listener` once, when the transport can take more. */
  onDrain(listener: () => void): void;
}

/** Answers one request: resolves with the response or throws (GenerationServiceError for a status). */
export type UnaryHandler<I, O> = (request: I, context: CallContext) => Promise<O>;

/**
 * Serves one request with a stream of responses. The stream ends when the returned promise
 * settles: with OK when it resolves, with the error's status when it rejects (or when the
 * handler throws before returning it). Nothing is sent once `context.signal` has aborted.
 */
export type ServerStreamHandler<I, O> = (request: I, context: CallContext, sink: ResponseSink<O>) => Promise<void>;

/**
 * Serves a stream of requests with a stream of responses; ends as a ServerStreamHandler does.
 * Requests are read only as the handler iterates, so a handler that waits for `onDrain`
 * before reading on pushes backpressure back to the client.
 */
export type BidiStreamHandler<I, O> = (
  requests: AsyncIterable<I>,
  context: CallContext,
  sink: ResponseSink<O>,
) => Promise<void>;

/** One handler per method of a generated service, typed by the method's kind. */
export type ServiceHandlers<T extends GenServiceMethods> = {
  [K in keyof T]: T[K]["methodKind"] extends "unary"
    ? UnaryHandler<RequestOf<T[K]>, ResponseOf<T[K]>>
    : T[K]["methodKind"] extends "server_streaming"
      ? ServerStreamHandler<RequestOf<T[K]>, ResponseOf<T[K]>>
      : T[K]["methodKind"] extends "bidi_streaming"
        ? BidiStreamHandler<RequestOf<T[K]>, ResponseOf<T[K]>>
        : never;
};

/** One method's handler with its kind, untyped by message: what an adapter serves. */
export type MethodHandler =
  | { readonly kind: "unary"; readonly handle: UnaryHandler<unknown, unknown> }
  | { readonly kind: "server_streaming"; readonly handle: ServerStreamHandler<unknown, unknown> }
  | { readonly kind: "bidi_streaming"; readonly handle: BidiStreamHandler<unknown, unknown> };

/**
 * The handler of `method` in `handlers`, with its kind. The map is typed by method kind; an
 * adapter serves every method in one loop, switching on the kind.
 */
export function methodHandler<T extends GenServiceMethods>(
  handlers: ServiceHandlers<T>,
  method: DescMethod,
): MethodHandler {
  const handle = (handlers as Record<string, unknown>)[method.localName];
  switch (method.methodKind) {
    case "unary":
      return { kind: "unary", handle: handle as UnaryHandler<unknown, unknown> };
    case "server_streaming":
      return { kind: "server_streaming", handle: handle as ServerStreamHandler<unknown, unknown> };
    case "bidi_streaming":
      return { kind: "bidi_streaming", handle: handle as BidiStreamHandler<unknown, unknown> };
    default:
      throw new Error(`${method.parent.typeName}.${method.name}: ${method.methodKind} methods are not supported`);
  }
}

/** The handlers of a generated service object, e.g. `HandlersOf<typeof GenerationService>`. */
export type HandlersOf<S> = S extends GenService<infer T> ? ServiceHandlers<T> : never;

/** How one method's requests are read: how large one may be, and how it is decoded. */
export interface RequestReading<I> {
  /** Largest request, in bytes. */
  readonly bytes: number;
  /** What raises the limit, for the message a refused client gets (e.g. "server setting --max-key-bytes"). */
  readonly setting: string;
  /** Decodes a request of at most `bytes` bytes; throws GenerationServiceError to refuse it. Default: protobuf-es. */
  readonly decode?: (bytes: Uint8Array) => I;
  /** Decodes a JSON request (on the HTTP port) as `decode` does a binary one. Default: the protocol's own. */
  readonly decodeJson?: (bytes: Uint8Array) => I;
}

/** How the requests of every method of a service are read. */
export type ServiceReadings<T extends GenServiceMethods> = { [K in keyof T]: RequestReading<RequestOf<T[K]>> };

/** How the requests of a generated service object are read, e.g. `ReadingsOf<typeof Health>`. */
export type ReadingsOf<S> = S extends GenService<infer T> ? ServiceReadings<T> : never;

/**
 * Resolves once `sink` can take more, or once `signal` aborts (the caller then stops: nothing
 * more will be read).
 */
export function drained(sink: ResponseSink<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    sink.onDrain(done);
  });
}

/**
 * Serves a stream that lives until the client goes: `open` starts it, and returns what is
 * closed once the call has ended, however it ended; its `end` ends the stream early with an
 * error status. Resolves when the client has gone, rejects with what `end` was given.
 */
export function untilCancelled(
  context: CallContext,
  open: (end: (error: GenerationServiceError) => void) => { close(): void },
): Promise<void> {
  // Written without closures over `context` and `open`: what a stream keeps for its life is
  // the promise, its resolving functions and what was opened.
  let resolveEnded!: () => void;
  let rejectEnded!: (error: GenerationServiceError) => void;
  const ended = new Promise<void>((resolve, reject) => {
    resolveEnded = resolve;
    rejectEnded = reject;
  });
  const opened = open(rejectEnded);
  context.onEnd(() => {
    opened.close();
    resolveEnded();
  });
  return ended;
}

/**
 * Time kept back from a call's deadline so an UNAVAILABLE answer still reaches the caller
 * first: a tenth of the time the call had left, within these bounds (the answer's trip, and
 * the caller's own timer, run late on a busy host).
 */
const DEADLINE_MARGIN_MS = { min: 20, max: 1000 };

/**
 * Answers UNAVAILABLE just before the caller's deadline when the handler has not finished:
 * a store that hangs yields an actionable status, not DEADLINE_EXCEEDED from the client's
 * own timer. (The handler's work may still complete; for a Bump that is the usual
 * "a failed Bump may have happened" of any RPC.)
 */
export function withinDeadline<T>(work: Promise<T>, deadline: number): Promise<T> {
  if (!Number.isFinite(deadline)) return work;
  const left = deadline - Date.now();
  const margin = Math.min(DEADLINE_MARGIN_MS.max, Math.max(DEADLINE_MARGIN_MS.min, left / 10));
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new GenerationServiceError("the store did not answer within the call's deadline", Code.UNAVAILABLE)),
      Math.max(0, left - margin),
    );
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
