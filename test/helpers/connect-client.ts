/**
 * GenerationService over the HTTP port, as the contract suite calls it: Get, Bump, Clear and
 * Watch of the TS client's shape, made with Connect's own Node clients (Connect JSON or
 * binary, or gRPC-Web; HTTP/1.1 or HTTP/2), so one suite checks both ports. A Watch reports
 * as the TS client's does (`live`, then `changes` or heartbeats; a split batch joined), but
 * never resumes: the suite watches with `resume: false` to see the server's statuses.
 */
import { type Client, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import {
  Code,
  type GenerationClient,
  GenerationServiceError,
  type KeyGeneration,
  type WatchEvent,
} from "../../src/client/index.js";
import { GenerationService } from "../../src/gen/generation/v1/generation_pb.js";

/** The calls the contract suite makes. */
export type ContractClient = Pick<GenerationClient, "get" | "bump" | "clear" | "watch">;

/** How a Connect client talks to the HTTP port. */
export interface HttpProtocol {
  /** For test names. */
  readonly name: string;
  readonly protocol: "connect" | "grpc-web";
  readonly binary: boolean;
  readonly httpVersion: "1.1" | "2";
}

/** The client's default deadline, as the TS client's. */
const DEADLINE_MS = 10_000;

/** A client of the HTTP port at `baseUrl` (e.g. "http://127.0.0.1:8080"); `token` is sent as a bearer token. */
export function connectGenerationClient(
  baseUrl: string,
  { protocol, binary, httpVersion }: HttpProtocol,
  token?: string,
): ContractClient {
  const bearer: Interceptor = (next) => async (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  const options = { baseUrl, httpVersion, useBinaryFormat: binary, interceptors: token ? [bearer] : [] };
  const transport: Transport =
    protocol === "connect" ? createConnectTransport(options) : createGrpcWebTransport(options);
  const client: Client<typeof GenerationService> = createClient(GenerationService, transport);
  const call = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      throw asServiceError(error);
    }
  };
  return {
    get: (key, options) =>
      call(async () => {
        const response = await client.get(
          { key, peek: options?.peek ?? false },
          { timeoutMs: options?.deadlineMs ?? DEADLINE_MS, signal: options?.signal },
        );
        return response.generation;
      }),
    bump: (key, options) =>
      call(async () => {
        const response = await client.bump(
          { key },
          { timeoutMs: options?.deadlineMs ?? DEADLINE_MS, signal: options?.signal },
        );
        return response.generation;
      }),
    clear: (key, options) =>
      call(async () => {
        await client.clear({ key }, { timeoutMs: options?.deadlineMs ?? DEADLINE_MS, signal: options?.signal });
      }),
    watch(keys, options = {}) {
      if (options.resume !== false) throw new Error("connectGenerationClient: watch with resume: false");
      return {
        async *[Symbol.asyncIterator](): AsyncGenerator<WatchEvent> {
          const signal = options.signal ?? new AbortController().signal;
          let live = false;
          let partial: KeyGeneration[] = [];
          try {
            for await (const response of client.watch({ keys: [...keys], known: options.known ?? {} }, { signal })) {
              if (response.continued) {
                partial.push(...response.changes);
                continue;
              }
              const changes = [...partial, ...response.changes];
              partial = [];
              if (!live) {
                live = true;
                yield { type: "live", changes };
              } else if (changes.length > 0) {
                yield { type: "changes", changes };
              } else {
                yield { type: "heartbeat" };
              }
            }
          } catch (error) {
            if (signal.aborted) return;
            throw asServiceError(error);
          }
          if (!signal.aborted) throw new GenerationServiceError("the server ended the watch", Code.UNAVAILABLE);
        },
      };
    },
  };
}

/** Connect's error as syncgen's (the codes share gRPC's numbers), its message as the server wrote it. */
function asServiceError(error: unknown): GenerationServiceError {
  const connectError = ConnectError.from(error);
  const code = connectError.code as number as Code;
  return new GenerationServiceError(`${Code[code]}: ${connectError.rawMessage}`, code, { cause: error });
}
