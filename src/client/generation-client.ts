/**
 * A typed client of generation.v1.GenerationService over grpc-js, built from the generated
 * descriptors (rpc/service-definition.ts): no hand-written message types.
 *
 * Retries: Get and Clear are retried on UNAVAILABLE (or a connection torn down under them,
 * see retryable.ts) within their deadline, with full-jitter backoff; Bump never is (a retried
 * Bump could advance the generation twice: the caller decides). Watch resumes by itself after
 * the same failures, sending what it already knows, so a reconnect costs what changed
 * meanwhile and no change is missed.
 */
import { create } from "@bufbuild/protobuf";
import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  type ClientReadableStream,
  connectivityState,
  credentials as grpcCredentials,
  Metadata,
} from "@grpc/grpc-js";
import {
  BumpRequestSchema,
  ClearRequestSchema,
  GenerationService,
  GetRequestSchema,
  type KeyGeneration,
  WatchRequestSchema,
  type WatchResponse,
} from "../gen/generation/v1/generation_pb.js";
import { Code, GenerationServiceError } from "../rpc/generation-service-error.js";
import { grpcServiceDefinition } from "../rpc/service-definition.js";
import { Backoff, type BackoffOptions, pause } from "./backoff.js";
import { isRetryable } from "./retryable.js";
import { explainUnreachable } from "./unreachable.js";

/** TLS settings, as PEM text or bytes. */
export interface TlsOptions {
  /** The CA that signed the server's certificate; the system's CAs when omitted. */
  ca?: string | Buffer;
  /** This client's certificate chain, for mutual TLS (with `key`). */
  cert?: string | Buffer;
  /** The private key of `cert`. */
  key?: string | Buffer;
}

/** How the client connects and behaves. */
export interface GenerationClientOptions {
  /** Connect with TLS (mutual TLS when `cert` and `key` are given); plaintext when omitted. */
  tls?: TlsOptions;
  /** Channel credentials for anything `tls` does not cover; wins over `tls`. */
  credentials?: ChannelCredentials;
  /** A bearer token, sent as `authorization: Bearer <token>` with every call. */
  token?: string;
  /** Deadline of each unary call, in milliseconds, retries included (default 5000). */
  deadlineMs?: number;
  /**
   * Backoff between retries of Get and Clear and between Watch reconnects (full jitter),
   * default 100 ms up to 5 s. grpc-js's own reconnects of the connection start at
   * `initialMs` and grow (×1.6, ±20%) up to `maxMs`: after an outage the client is back
   * within about twice `maxMs` of the server.
   */
  backoff?: BackoffOptions;
  /**
   * grpc-js channel options (reconnect backoff, ...). By default the client pings an idle
   * connection every 30 s and drops it after 10 s without an answer, so a Watch on a server
   * that vanished without closing the connection resumes elsewhere instead of hanging; and
   * it balances calls round robin over every address the target names or resolves to.
   */
  channelOptions?: ChannelOptions;
}

const DEFAULT_CHANNEL_OPTIONS: ChannelOptions = {
  // Keepalive: find a dead connection within about 40 s, even with no call in flight.
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  // Round robin over every replica the target names (ipv4:A,B or DNS with several records):
  // calls spread, and streams that a replica's connection age or shutdown ends resume on
  // the next replica, so streams rebalance when replicas come and go.
  "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
};

function channelCredentials(options: GenerationClientOptions): ChannelCredentials {
  if (options.credentials) return options.credentials;
  if (!options.tls) return grpcCredentials.createInsecure();
  const pem = (value: string | Buffer | undefined): Buffer | null =>
    value === undefined ? null : typeof value === "string" ? Buffer.from(value) : value;
  const { ca, cert, key } = options.tls;
  return grpcCredentials.createSsl(pem(ca), pem(key), pem(cert));
}

/** Per-call options. */
export interface CallOptions {
  /** Cancels the call: it then fails with CANCELLED (at once, making no call, if already aborted). */
  signal?: AbortSignal;
  /** Overrides the client's deadline for this call, in milliseconds. */
  deadlineMs?: number;
  /** Get and Clear only: false makes a single attempt, without retries. */
  retry?: boolean;
}

/** Options of a Watch. */
export interface WatchOptions {
  /** Generations already held, by key: the first response then carries only what differs. */
  known?: Readonly<Record<string, bigint>>;
  /** Ends the watch: the iteration then simply stops. */
  signal?: AbortSignal;
  /** Reconnect after UNAVAILABLE or a dropped connection (default true); false ends the iteration with the error instead. */
  resume?: boolean;
}

/** What a Watch reports, in order. */
export type WatchEvent =
  /**
   * The stream is (again) live. `changes` are the keys whose generation differs from what
   * this watch had reported (or from `known`): after a reconnect, exactly what was missed.
   */
  | { type: "live"; changes: KeyGeneration[] }
  /** Keys changed; generation 0 means absent or cleared. */
  | { type: "changes"; changes: KeyGeneration[] }
  /** Nothing changed; the server is still there. */
  | { type: "heartbeat" }
  /** The stream broke; it reconnects by itself after `retryInMs`. Until `live`, nothing is known. */
  | { type: "down"; error: GenerationServiceError; retryInMs: number };

/** A client of one syncgen server (or a load balancer in front of several). */
export interface GenerationClient {
  /** The key's generation, created if absent; with `peek`, 0n for an absent key and nothing created. */
  get(key: string, options?: CallOptions & { peek?: boolean }): Promise<bigint>;
  /** Advances the key's generation and returns the new one. Never retried. */
  bump(key: string, options?: Omit<CallOptions, "retry">): Promise<bigint>;
  /** Forgets the key: every generation handed out for it so far is stale. */
  clear(key: string, options?: CallOptions): Promise<void>;
  /**
   * Watches keys: a `live` event once the stream is up, then `changes` as they happen.
   * Level-triggered: after a slow stretch or a reconnect you get each key's latest value,
   * not every value in between. Throws GenerationServiceError on errors it cannot resume
   * from (INVALID_ARGUMENT, PERMISSION_DENIED, ...).
   */
  watch(keys: readonly string[], options?: WatchOptions): AsyncIterable<WatchEvent>;
  /**
   * The state of the client's connection to the server, for logs and health checks: "idle"
   * (nothing asked yet, or unused for a while), "connecting", "ready", "transient failure"
   * (the server cannot be reached now; calls fail with UNAVAILABLE, and it reconnects with
   * the client's backoff) or "shutdown" (closed).
   */
  readonly connectionState: ConnectionState;
  /** Calls `listener` with each new connection state; returns the function that stops it. */
  onConnectionStateChange(listener: (state: ConnectionState) => void): () => void;
  /** Closes the channel; calls in flight fail. */
  close(): void;
}

/** See GenerationClient.connectionState. */
export type ConnectionState = "idle" | "connecting" | "ready" | "transient failure" | "shutdown";

const CONNECTION_STATES: Record<connectivityState, ConnectionState> = {
  [connectivityState.IDLE]: "idle",
  [connectivityState.CONNECTING]: "connecting",
  [connectivityState.READY]: "ready",
  [connectivityState.TRANSIENT_FAILURE]: "transient failure",
  [connectivityState.SHUTDOWN]: "shutdown",
};

const methods = grpcServiceDefinition(GenerationService);

interface UnaryMethod<I, O> {
  path: string;
  requestSerialize: (value: I) => Buffer;
  responseDeserialize: (bytes: Buffer) => O;
}

/** Creates a client of the server at `address` (HOST:PORT, or any grpc-js target). */
export function createGenerationClient(address: string, options: GenerationClientOptions = {}): GenerationClient {
  const backoffOptions = new Backoff(options.backoff).options;
  const client = new Client(address, channelCredentials(options), {
    ...DEFAULT_CHANNEL_OPTIONS,
    // grpc-js reconnects a lost connection on a backoff of its own, 1 s growing to 120 s: after
    // a long outage every call failed with "No connection established" long after the server
    // was back. The client's backoff governs it too.
    "grpc.initial_reconnect_backoff_ms": backoffOptions.initialMs,
    "grpc.max_reconnect_backoff_ms": backoffOptions.maxMs,
    ...options.channelOptions,
  });
  const defaultDeadlineMs = options.deadlineMs ?? 5000;
  // Aborted by close(): ends every Watch instead of letting it reconnect to a closed channel.
  const closed = new AbortController();

  function metadata(): Metadata {
    const result = new Metadata();
    if (options.token !== undefined) result.set("authorization", `Bearer ${options.token}`);
    return result;
  }

  function attempt<I, O>(method: UnaryMethod<I, O>, request: I, deadline: number, signal?: AbortSignal): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const call = client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        metadata(),
        { deadline },
        (error, response) => {
          signal?.removeEventListener("abort", cancel);
          if (error || response === undefined) reject(GenerationServiceError.from(error ?? new Error("no response")));
          else resolve(response);
        },
      );
      const cancel = (): void => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  async function unary<I, O>(
    method: UnaryMethod<I, O>,
    request: I,
    callOptions: CallOptions | undefined,
    retryable: boolean,
  ): Promise<O> {
    const signal = callOptions?.signal;
    const deadline = Date.now() + (callOptions?.deadlineMs ?? defaultDeadlineMs);
    const backoff = new Backoff(options.backoff);
    for (let first = true; ; first = false) {
      // Before the call, and before each retry: an aborted call makes no further attempt.
      if (signal?.aborted) {
        const when = first ? "before it started" : "between attempts";
        throw new GenerationServiceError(`CANCELLED: the call's signal was aborted ${when}`, Code.CANCELLED, {
          cause: signal.reason,
        });
      }
      try {
        return await attempt(method, request, deadline, signal);
      } catch (error) {
        const failure = explainUnreachable(GenerationServiceError.from(error), address);
        const wait = backoff.next();
        const retry = retryable && callOptions?.retry !== false && isRetryable(failure);
        if (!retry || Date.now() + wait >= deadline) throw failure;
        await pause(wait, signal);
      }
    }
  }

  async function* watch(keys: readonly string[], watchOptions: WatchOptions): AsyncGenerator<WatchEvent> {
    const signal = watchOptions.signal ? AbortSignal.any([watchOptions.signal, closed.signal]) : closed.signal;
    const reported = new Map<string, bigint>(Object.entries(watchOptions.known ?? {}));
    const backoff = new Backoff(options.backoff);
    while (!signal.aborted) {
      // fromEntries defines own properties: a key named "__proto__" is sent like any other.
      const known = Object.fromEntries(
        keys.flatMap((key) => {
          const generation = reported.get(key);
          return generation === undefined ? [] : [[key, generation] as const];
        }),
      );
      const call: ClientReadableStream<WatchResponse> = client.makeServerStreamRequest(
        methods.watch.path,
        methods.watch.requestSerialize,
        methods.watch.responseDeserialize,
        create(WatchRequestSchema, { keys: [...keys], known }),
        metadata(),
      );
      const cancel = (): void => call.cancel();
      signal.addEventListener("abort", cancel, { once: true });
      let live = false;
      /** Changes of a batch the server split over several responses (`continued`). */
      let partial: KeyGeneration[] = [];
      try {
        // grpc-js streams are async-iterable; their items are untyped, the deserializer's type.
        for await (const response of call as AsyncIterable<WatchResponse>) {
          if (response.continued) {
            partial.push(...response.changes);
            continue;
          }
          const changes = partial.length > 0 ? [...partial, ...response.changes] : response.changes;
          partial = [];
          // Known only once reported: a batch cut short by a drop is asked for again.
          for (const change of changes) reported.set(change.key, change.generation);
          if (!live) {
            live = true;
            backoff.reset();
            yield { type: "live", changes };
          } else if (changes.length > 0) {
            yield { type: "changes", changes };
          } else {
            yield { type: "heartbeat" };
          }
        }
        // The server never ends a Watch with OK; treat it like a drop.
        throw new GenerationServiceError("the server ended the watch", Code.UNAVAILABLE);
      } catch (error) {
        if (signal.aborted) return;
        const failure = explainUnreachable(GenerationServiceError.from(error), address);
        if (watchOptions.resume === false || !isRetryable(failure)) throw failure;
        const retryInMs = backoff.next();
        yield { type: "down", error: failure, retryInMs };
        await pause(retryInMs, signal);
      } finally {
        signal.removeEventListener("abort", cancel);
        call.cancel();
      }
    }
  }

  return {
    async get(key, callOptions) {
      const request = create(GetRequestSchema, { key, peek: callOptions?.peek ?? false });
      return (await unary(methods.get, request, callOptions, true)).generation;
    },
    async bump(key, callOptions) {
      return (await unary(methods.bump, create(BumpRequestSchema, { key }), callOptions, false)).generation;
    },
    async clear(key, callOptions) {
      await unary(methods.clear, create(ClearRequestSchema, { key }), callOptions, true);
    },
    watch(keys, watchOptions = {}) {
      return { [Symbol.asyncIterator]: () => watch(keys, watchOptions) };
    },
    get connectionState() {
      return CONNECTION_STATES[client.getChannel().getConnectivityState(false)];
    },
    onConnectionStateChange(listener) {
      const channel = client.getChannel();
      let stopped = false;
      const follow = (from: connectivityState): void => {
        if (stopped || from === connectivityState.SHUTDOWN) return;
        // grpc-js tells of one change per watch; with no deadline it sets no timer. (A watch
        // outlives unsubscribing until the next change, then ends.)
        channel.watchConnectivityState(from, Number.POSITIVE_INFINITY, () => {
          const now = channel.getConnectivityState(false);
          follow(now);
          // Called from inside grpc-js's state update: told after it, so a listener that
          // throws cannot break grpc-js's notifying (the error then surfaces as uncaught).
          if (!stopped && now !== from) queueMicrotask(() => listener(CONNECTION_STATES[now]));
        });
      };
      follow(channel.getConnectivityState(false));
      return () => {
        stopped = true;
      };
    },
    close() {
      closed.abort();
      client.close();
    },
  };
}
