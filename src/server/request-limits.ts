/**
 * How large a request each method may be. grpc-js reads a request whole before decoding it
 * and knows one limit for the whole server (`grpc.max_receive_message_length`), which must fit
 * syncgen's largest legitimate request: a Watch of 10,000 keys of 1 KiB with their known
 * generations, ~21 MB. A health check, a reflection request or a Get needs a few hundred
 * bytes, and health and reflection answer anyone. So every method has a limit of its own:
 *
 * - as a call starts, the interceptor lowers grpc-js's read limit for that call to its
 *   method's, so an oversized request is refused from its 5-byte length prefix, before any of
 *   its body is buffered (this reaches into grpc-js: see `callDecoder`); it also makes
 *   grpc-js's reader let go of a request's bytes once the request is read (it would keep them
 *   until the next message, which for a Watch never comes: ~21 MB held per stream);
 * - the deserializer checks the size again before decoding, so the limit holds even where
 *   the interceptor cannot reach.
 *
 * One Watch request may be ~21 MB, and grpc-js reads a request whole before anything can look
 * at it, so many read at once (1,000 streams on one connection, each sending 21 MB slowly)
 * would add up without bound. Requests over 64 KiB therefore draw what their length prefix
 * announces from a budget for the whole server (--max-pending-request-bytes) while they are
 * read; one that does not fit is refused with RESOURCE_EXHAUSTED, and the budget is returned
 * when the request is read or its call ends.
 */
import type { ServerInterceptingCall, ServerInterceptor } from "@grpc/grpc-js";
import { Code, GenerationServiceError } from "./errors.js";
import type { RequestReading } from "./handler.js";

/** One method's limit. */
export type SizeLimit = Pick<RequestReading<unknown>, "bytes" | "setting">;

/** The part of grpc-js's per-call message reader (StreamDecoder) this module adjusts. */
interface CallDecoder {
  maxReadMessageLength: number;
  readMessageSize: number;
  /** 2 while a message's body is being read (ReadState.READING_MESSAGE). */
  readState: number;
  /** The chunks of the message being read. */
  readPartialMessage: Buffer[];
  /** The message's first byte: a slice of the chunk it came in, which it keeps alive. */
  readCompressFlag: Buffer;
  write(data: Buffer): Buffer[];
}

/** The call's HTTP/2 stream, as far as the limits need it. */
interface CallStream {
  once(event: "close", listener: () => void): unknown;
}

/** StreamDecoder's state while it reads a message's body. */
const READING_MESSAGE = 2;

/** Requests larger than this draw from the budget for large requests being read. */
export const LARGE_REQUEST_BYTES = 64 << 10;

/**
 * The message reader of the call grpc-js hands the first interceptor, if it has the shape of
 * grpc-js 1.14's BaseServerInterceptingCall (`decoder`, `maxReceiveMessageSize`). No public API
 * sets a limit per method or releases a read request; the exact pin of @grpc/grpc-js and
 * tests (an oversized length prefix alone is refused; held Watch streams keep no request
 * bytes) keep this honest across upgrades.
 */
function callDecoder(call: object):
  | {
      decoder: CallDecoder;
      call: { maxReceiveMessageSize: number };
      stream: CallStream;
    }
  | undefined {
  const base = call as {
    decoder?: Partial<CallDecoder>;
    maxReceiveMessageSize?: unknown;
    stream?: { once?: unknown };
  };
  const decoder = base.decoder;
  if (
    typeof base.maxReceiveMessageSize !== "number" ||
    typeof base.stream?.once !== "function" ||
    typeof decoder?.maxReadMessageLength !== "number" ||
    typeof decoder.readState !== "number" ||
    !Array.isArray(decoder.readPartialMessage) ||
    !Buffer.isBuffer(decoder.readCompressFlag) ||
    typeof decoder.write !== "function"
  ) {
    return undefined;
  }
  return {
    decoder: decoder as CallDecoder,
    call: base as { maxReceiveMessageSize: number },
    stream: base.stream as CallStream,
  };
}

/** The size limit of every method served, by path ("/package.Service/Method"), and the budget for large requests being read. */
export class RequestSizeLimits {
  readonly #byPath = new Map<string, SizeLimit & { method: string }>();
  readonly #pendingBudgetBytes: number;
  /** Bytes of large requests being read now. */
  #pendingBytes = 0;

  /** `pendingBudgetBytes`: how many bytes of large requests may be read at once. */
  constructor(pendingBudgetBytes: number) {
    this.#pendingBudgetBytes = pendingBudgetBytes;
  }

  /** Sets the limit of the method at `path`. */
  set(path: string, limit: SizeLimit): void {
    this.#byPath.set(path, { ...limit, method: path.slice(1).replace("/", ".") });
  }

  /** The request is acceptable; or the RESOURCE_EXHAUSTED error that refuses it. */
  check(path: string, bytes: number): GenerationServiceError | undefined {
    const limit = this.#byPath.get(path);
    if (limit === undefined || bytes <= limit.bytes) return undefined;
    return new GenerationServiceError(
      `the request is ${bytes} bytes; a ${limit.method} request may be at most ${limit.bytes} bytes (${limit.setting})`,
      Code.RESOURCE_EXHAUSTED,
    );
  }

  /**
   * Draws `bytes` from the budget for large requests being read, or throws the refusal
   * (RESOURCE_EXHAUSTED). What is drawn must be given back with `release`.
   */
  reserve(bytes: number): void {
    if (this.#pendingBytes + bytes > this.#pendingBudgetBytes) {
      throw new GenerationServiceError(
        `the server is already reading ${this.#pendingBytes} bytes of large requests and this one is ${bytes} bytes; at most ${this.#pendingBudgetBytes} are read at once (server setting --max-pending-request-bytes): try again shortly, or another replica`,
        Code.RESOURCE_EXHAUSTED,
      );
    }
    this.#pendingBytes += bytes;
  }

  /** Gives back `bytes` drawn with `reserve`. */
  release(bytes: number): void {
    this.#pendingBytes -= bytes;
  }

  /**
   * The reader's `write`, wrapped: large requests draw on the budget while they are read, an
   * oversized one is refused with a message naming the limit, and a request read lets go of
   * its bytes. Made apart from the interceptor so that what each call keeps (for as long as
   * it lasts: a Watch, for hours) is this function and its few variables, not the call's
   * descriptor and the interceptor's own.
   */
  #limitedWrite(path: string, decoder: CallDecoder, stream: CallStream): CallDecoder["write"] {
    const write = decoder.write;
    let reserved = 0;
    let release: (() => void) | undefined;
    return (data) => {
      let messages: Buffer[];
      try {
        messages = write.call(decoder, data);
      } catch {
        // grpc-js answers RESOURCE_EXHAUSTED with the message of what the reader throws.
        throw new Error(this.check(path, decoder.readMessageSize)?.message ?? "request too large");
      }
      if (decoder.readState === READING_MESSAGE) {
        if (reserved === 0 && decoder.readMessageSize > LARGE_REQUEST_BYTES) {
          this.reserve(decoder.readMessageSize);
          reserved = decoder.readMessageSize;
          // Returned however the call ends, should the request not be read whole.
          release ??= () => {
            this.release(reserved);
            reserved = 0;
          };
          stream.once("close", release);
        }
      } else {
        release?.();
        // What a message already read keeps until another message starts: its chunks,
        // and through a 1-byte slice, the whole chunk it started in.
        decoder.readPartialMessage = [];
        decoder.readCompressFlag = Buffer.from(decoder.readCompressFlag);
      }
      return messages;
    };
  }

  /**
   * The interceptor that applies each method's limit while its request is read. It must be
   * the first of the server's interceptors: only the first is handed grpc-js's own call.
   * `onUnreachable` is told once if grpc-js's call has an unexpected shape; the deserializer's
   * check still applies then, after the request is read.
   */
  interceptor(onUnreachable: () => void): ServerInterceptor {
    let warned = false;
    return (descriptor, call) => {
      const limit = this.#byPath.get(descriptor.path);
      const target = limit && callDecoder(call);
      if (limit && !target && !warned) {
        warned = true;
        onUnreachable();
      }
      if (limit && target) {
        target.decoder.maxReadMessageLength = limit.bytes;
        // grpc-js also bounds what a compressed request may inflate to by this.
        target.call.maxReceiveMessageSize = limit.bytes;
        target.decoder.write = this.#limitedWrite(descriptor.path, target.decoder, target.stream);
      }
      // grpc-js's own call, unwrapped: a wrapper would add a layer to every event of every call.
      // The interceptor chain takes any call of the interface; the type names only the wrapper.
      return call as ServerInterceptingCall;
    };
  }
}
