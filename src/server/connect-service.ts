/**
 * The Connect adapter (@connectrpc/connect): serves a generated service through the same
 * transport-neutral handlers as the grpc-js adapter (handler.ts), over the Connect protocol
 * (JSON and binary) and gRPC-Web. Each method gets its own read limit (`readMaxBytes`), a
 * method with its own bounded reader (Watch) is served from what that reader decoded (see
 * http-endpoint.ts, which runs it on the request's bytes before Connect decodes them), and
 * whatever a handler throws becomes a ConnectError with the same code and message.
 *
 * A streaming handler pushes into a sink; Connect pulls responses from an async iterable and
 * pulls the next one only once the previous is written (and the connection has drained). The
 * sink queues a few responses, as grpc-js buffers a few writes, and beyond that tells the
 * handler to wait (`onDrain`) until Connect has taken them all, so a slow reader holds back
 * the handler as HTTP/2 flow control does on gRPC.
 */
import type {
  DescMessage,
  DescMethodBiDiStreaming,
  DescMethodServerStreaming,
  DescMethodUnary,
  MessageInitShape,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { Code as ConnectCode, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { type GenerationServiceError, toServiceError } from "./errors.js";
import {
  type CallContext,
  methodHandler,
  type RequestReading,
  type ResponseSink,
  type ServiceHandlers,
  type ServiceReadings,
  withinDeadline,
} from "./handler.js";
import { httpCallOf } from "./http-call.js";

/** Called with every error a handler ends a call with, for logging. */
export type ConnectErrorObserver = (method: string, error: GenerationServiceError) => void;

/** Connect's streaming and gRPC-Web bodies carry each message in an envelope: a flags byte and a 32-bit length. */
export const ENVELOPE_HEADER_BYTES = 5;

/** Responses a stream queues before its handler is told to wait for the transport. */
const QUEUED_RESPONSES = 16;

/** syncgen's error as Connect's (the codes share gRPC's numbers). */
export function toConnectError(error: GenerationServiceError): ConnectError {
  return new ConnectError(error.message, error.code as number as ConnectCode, undefined, undefined, error);
}

/** Adds `service` to `router`, served by `handlers`, its requests read as `readings` say. */
export function addConnectService<T extends GenServiceMethods>(
  router: ConnectRouter,
  service: GenService<T>,
  handlers: ServiceHandlers<T>,
  readings: ServiceReadings<T>,
  onError: ConnectErrorObserver,
): void {
  for (const method of service.methods) {
    const name = method.localName;
    const reading = readings[name] as RequestReading<unknown>;
    const path = `/${service.typeName}/${method.name}`;
    const fail = (error: unknown): ConnectError => {
      const serviceError = toServiceError(error);
      onError(path, serviceError);
      return toConnectError(serviceError);
    };
    const served = methodHandler(handlers, method);
    // A compressed request would hide its bytes from a method's own reader.
    const ownReader = reading.decode !== undefined || reading.decodeJson !== undefined;
    // The HTTP port meters each body against the method's limit as it arrives, and says which
    // setting raises it; Connect's own limit sits just above, at the envelope's extra bytes.
    const options = {
      readMaxBytes: reading.bytes + ENVELOPE_HEADER_BYTES,
      ...(ownReader ? { acceptCompression: [] } : {}),
    };
    // A method with its own reader is served what that reader decoded (and access control
    // checked); Connect's own decoding of the same bytes is let go at once.
    const requestOf = (request: unknown, context: HandlerContext): unknown =>
      ownReader ? (httpCallOf(context.values).decodedRequest ?? request) : request;
    switch (served.kind) {
      case "unary": {
        const unary = served.handle;
        router.rpc(
          method as DescMethodUnary,
          async (request: unknown, handlerContext: HandlerContext) => {
            const { context, end } = callContext(handlerContext);
            try {
              const response = await withinDeadline(
                unary(requestOf(request, handlerContext), context),
                context.deadline,
              );
              return response as MessageInitShape<DescMessage>;
            } catch (error) {
              throw fail(error);
            } finally {
              end();
            }
          },
          options,
        );
        break;
      }
      case "server_streaming": {
        const streaming = served.handle;
        router.rpc(
          method as DescMethodServerStreaming,
          (request: unknown, handlerContext: HandlerContext) => {
            const served = requestOf(request, handlerContext);
            return streamResponses(handlerContext, (context, sink) => streaming(served, context, sink), fail);
          },
          options,
        );
        break;
      }
      case "bidi_streaming": {
        const bidi = served.handle;
        router.rpc(
          method as DescMethodBiDiStreaming,
          (requests: AsyncIterable<unknown>, handlerContext: HandlerContext) =>
            streamResponses(handlerContext, (context, sink) => bidi(requests, context, sink), fail),
          options,
        );
        break;
      }
    }
  }
}

/** The context of a call, and the function to call when it is answered (it aborts the signal). */
function callContext(handlerContext: HandlerContext): { context: CallContext; end: () => void } {
  const controller = new AbortController();
  const end = (): void => controller.abort();
  if (handlerContext.signal.aborted) end();
  else handlerContext.signal.addEventListener("abort", end, { once: true });
  const timeoutMs = handlerContext.timeoutMs();
  const { signal } = controller;
  return {
    context: {
      signal,
      deadline: timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs,
      peer: httpCallOf(handlerContext.values).peer,
      onEnd(listener) {
        // Connect makes a signal for every call anyway: listening costs no more.
        if (signal.aborted) listener();
        else signal.addEventListener("abort", listener, { once: true });
      },
    },
    end: () => {
      handlerContext.signal.removeEventListener("abort", end);
      end();
    },
  };
}

/**
 * Runs a streaming handler and yields what it sends, as Connect pulls. Ends when the handler
 * settles (throwing its error as a ConnectError), or when Connect stops pulling (the client
 * went away: the handler's signal aborts).
 */
async function* streamResponses(
  handlerContext: HandlerContext,
  run: (context: CallContext, sink: ResponseSink<unknown>) => Promise<void>,
  fail: (error: unknown) => ConnectError,
): AsyncGenerator<MessageInitShape<DescMessage>> {
  const { context, end } = callContext(handlerContext);
  // Handlers send the response messages of their method.
  const queue: MessageInitShape<DescMessage>[] = [];
  let drainListeners: (() => void)[] = [];
  let wake: (() => void) | undefined;
  let outcome: { error?: ConnectError } | undefined;
  const notify = (): void => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  const sink: ResponseSink<unknown> = {
    send(response) {
      if (context.signal.aborted) return false;
      queue.push(response as MessageInitShape<DescMessage>);
      notify();
      return queue.length < QUEUED_RESPONSES;
    },
    onDrain(listener) {
      drainListeners.push(listener);
    },
  };
  let running: Promise<void>;
  try {
    running = run(context, sink);
  } catch (error) {
    running = Promise.reject(error);
  }
  running
    .then(
      () => {
        // A stream ended by its client or its deadline ends with that, not OK (the handler
        // resolves when its signal aborts).
        outcome = handlerContext.signal.aborted ? { error: abortReason(handlerContext.signal) } : {};
      },
      (error: unknown) => {
        outcome = { error: fail(error) };
      },
    )
    .finally(notify);
  try {
    for (;;) {
      const next = queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (outcome) {
        if (outcome.error) throw outcome.error;
        return;
      }
      // Everything sent has been written: the handler may send more.
      const listeners = drainListeners;
      drainListeners = [];
      for (const listener of listeners) listener();
      if (queue.length > 0 || outcome) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    end();
  }
}

/** Why Connect aborted a call: its deadline (DEADLINE_EXCEEDED), or the client's going (CANCELLED). */
function abortReason(signal: AbortSignal): ConnectError {
  return signal.reason instanceof ConnectError
    ? signal.reason
    : new ConnectError("the client cancelled the call", ConnectCode.Canceled);
}
