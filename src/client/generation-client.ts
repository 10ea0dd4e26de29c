/**
 * A typed client of generation.v1.GenerationService over grpc-js, built from the generated
 * descriptors (rpc/service-definition.ts): no hand-written message types.
 */
import { create } from "@bufbuild/protobuf";
import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  type ClientReadableStream,
  credentials as grpcCredentials,
} from "@grpc/grpc-js";
import {
  BumpRequestSchema,
  ClearRequestSchema,
  GenerationService,
  GetRequestSchema,
  WatchRequestSchema,
  type WatchResponse,
} from "../gen/generation/v1/generation_pb.js";
import { grpcServiceDefinition } from "../rpc/service-definition.js";
import { GenerationServiceError } from "./client-error.js";

/** How the client connects. */
export interface GenerationClientOptions {
  /** Channel credentials; insecure (plaintext) by default. */
  credentials?: ChannelCredentials;
  /** Deadline of each unary call, in milliseconds (default 5000). */
  deadlineMs?: number;
  /** grpc-js channel options, e.g. reconnect backoff. */
  channelOptions?: ChannelOptions;
}

/** Per-call options. */
export interface CallOptions {
  /** Cancels the call. */
  signal?: AbortSignal;
  /** Overrides the client's deadline for this call, in milliseconds. */
  deadlineMs?: number;
}

/** Options of a Watch. */
export interface WatchOptions {
  /** Generations already held, by key: the first response then carries only what differs. */
  known?: Record<string, bigint>;
  /** Ends the watch (the iteration then simply stops). */
  signal?: AbortSignal;
}

/** A client of one syncgen server (or a load balancer in front of several). */
export interface GenerationClient {
  /** The key's generation, created if absent; with `peek`, 0n for an absent key and nothing created. */
  get(key: string, options?: CallOptions & { peek?: boolean }): Promise<bigint>;
  /** Advances the key's generation and returns the new one. Not retried: a retry could bump twice. */
  bump(key: string, options?: CallOptions): Promise<bigint>;
  /** Forgets the key: every generation handed out for it so far is stale. */
  clear(key: string, options?: CallOptions): Promise<void>;
  /**
   * Streams the keys' generations: first what differs from `known` (possibly nothing: that
   * response says the watch is live), then each change; empty responses are heartbeats.
   * Throws GenerationServiceError when the stream fails (UNAVAILABLE: reconnect with `known`).
   */
  watch(keys: readonly string[], options?: WatchOptions): AsyncIterable<WatchResponse>;
  /** Closes the channel. */
  close(): void;
}

const methods = grpcServiceDefinition(GenerationService);

/** Creates a client of the server at `address` (HOST:PORT). */
export function createGenerationClient(address: string, options: GenerationClientOptions = {}): GenerationClient {
  const client = new Client(address, options.credentials ?? grpcCredentials.createInsecure(), options.channelOptions);
  const defaultDeadlineMs = options.deadlineMs ?? 5000;

  function unary<I, O>(
    method: { path: string; requestSerialize: (value: I) => Buffer; responseDeserialize: (bytes: Buffer) => O },
    request: I,
    callOptions: CallOptions | undefined,
  ): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const deadline = Date.now() + (callOptions?.deadlineMs ?? defaultDeadlineMs);
      const call = client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        { deadline },
        (error, response) => {
          callOptions?.signal?.removeEventListener("abort", cancel);
          if (error || response === undefined) reject(GenerationServiceError.from(error ?? new Error("no response")));
          else resolve(response);
        },
      );
      const cancel = (): void => call.cancel();
      callOptions?.signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  return {
    async get(key, callOptions) {
      const response = await unary(
        methods.get,
        create(GetRequestSchema, { key, peek: callOptions?.peek ?? false }),
        callOptions,
      );
      return response.generation;
    },
    async bump(key, callOptions) {
      return (await unary(methods.bump, create(BumpRequestSchema, { key }), callOptions)).generation;
    },
    async clear(key, callOptions) {
      await unary(methods.clear, create(ClearRequestSchema, { key }), callOptions);
    },
    watch(keys, watchOptions = {}) {
      return {
        async *[Symbol.asyncIterator]() {
          const request = create(WatchRequestSchema, { keys: [...keys], known: { ...watchOptions.known } });
          const call: ClientReadableStream<WatchResponse> = client.makeServerStreamRequest(
            methods.watch.path,
            methods.watch.requestSerialize,
            methods.watch.responseDeserialize,
            request,
          );
          const { signal } = watchOptions;
          const cancel = (): void => call.cancel();
          signal?.addEventListener("abort", cancel, { once: true });
          try {
            for await (const response of call as AsyncIterable<WatchResponse>) yield response;
          } catch (error) {
            if (!signal?.aborted) throw GenerationServiceError.from(error);
          } finally {
            signal?.removeEventListener("abort", cancel);
            call.cancel();
          }
        },
      };
    },
    close() {
      client.close();
    },
  };
}
