/**
 * Access control and metrics on the HTTP port, as the grpc-js interceptors give the gRPC port
 * (interceptors.ts). A call's token is checked before any of its body is read: for a unary
 * call by the routes as the body is about to be read (Connect reads it before interceptors
 * run), for a stream by the interceptor (Connect runs a stream's interceptors first). The keys
 * are checked in what the handler is served: for a method with its own bounded reader
 * (Watch), that reader's decoding.
 */
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import type { RequestOf } from "../rpc/service-definition.js";
import type { AccessControl, MethodAccess, Principal } from "./access-control.js";
import { type CallObserver, deadlinePassed, goCodeName, labelsOf } from "./call-observer.js";
import { toConnectError } from "./connect-service.js";
import { Code, GenerationServiceError } from "./errors.js";
import { type HttpCall, httpCallOf } from "./http-call.js";
import type { DenialObserver } from "./interceptors.js";

/**
 * Refuses calls of `service` without a valid bearer token (UNAUTHENTICATED) and calls naming a
 * key outside the token's prefixes (PERMISSION_DENIED). Other services (health, reflection)
 * pass untouched.
 */
export class ConnectAccess<T extends GenServiceMethods> {
  readonly #rules = new Map<string, MethodAccess<unknown>>();

  constructor(
    /** The current tokens (the file can be reloaded). */
    private readonly tokens: () => AccessControl,
    private readonly service: GenService<T>,
    rules: { [K in keyof T]: MethodAccess<RequestOf<T[K]>> },
    private readonly onDenied: DenialObserver,
  ) {
    for (const method of service.methods) {
      const rule = rules[method.localName] as MethodAccess<unknown> | undefined;
      // Fail closed: a method without a rule must not pass unchecked.
      if (!rule) throw new Error(`${service.typeName}.${method.name} has no access rule`);
      this.#rules.set(`/${service.typeName}/${method.name}`, rule);
    }
  }

  /** For the routes' `beforeBody`: authenticates a call of `service` before its body is read. */
  readonly beforeBody = (path: string, header: Headers, call: HttpCall): void => {
    if (this.#rules.has(path)) this.#authenticate(path, header, call);
  };

  /** The interceptor: authenticates a stream before its body is read, and checks every call's keys. */
  interceptor(): Interceptor {
    return (next) => async (request) => {
      if (request.service.typeName !== this.service.typeName) return next(request);
      const path = `/${this.service.typeName}/${request.method.name}`;
      const rule = this.#rules.get(path) as MethodAccess<unknown>;
      const call = httpCallOf(request.contextValues);
      const principal = this.#authenticate(path, request.header, call);
      const authorize = (message: unknown): void => {
        try {
          // What the handler is served: its own reader's decoding when the method has one.
          this.tokens().authorize(principal, rule.permission, rule.keys(call.decodedRequest ?? message));
        } catch (error) {
          throw this.#refuse(path, error, principal, call);
        }
      };
      if (!request.stream) {
        authorize(request.message);
        return next(request);
      }
      return next({ ...request, message: each(request.message, authorize) });
    };
  }

  /** The call's principal, authenticated once per call. */
  #authenticate(path: string, header: Headers, call: HttpCall): Principal {
    if (call.principal) return call.principal;
    const authorization = header.get("authorization");
    try {
      // The table as of the call's start: a reload (SIGHUP) affects calls that start after it.
      call.principal = this.tokens().authenticate(authorization === null ? [] : [authorization]);
    } catch (error) {
      throw this.#refuse(path, error, undefined, call);
    }
    return call.principal;
  }

  #refuse(path: string, error: unknown, principal: Principal | undefined, call: HttpCall): ConnectError {
    const failure =
      error instanceof GenerationServiceError ? error : new GenerationServiceError(String(error), Code.INTERNAL);
    call.refusal = failure;
    this.onDenied(path, failure, principal?.name);
    return toConnectError(failure);
  }
}

/** Reports every call that reaches it to `observer`, as metricsInterceptor does on gRPC. */
export function connectMetricsInterceptor(observer: CallObserver): Interceptor {
  return (next) => async (request) => {
    httpCallOf(request.contextValues).observed = true;
    const method = labelsOf(request.method);
    const startedAt = process.hrtime.bigint();
    const startedAtMs = Date.now();
    const timeoutMs = requestedTimeoutMs(request.header);
    let finished = false;
    const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : startedAtMs + timeoutMs;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      // The client's own timer ends a call a trip before the server's: a cancel near the
      // deadline counts as the deadline, as on the gRPC port.
      const counted = code === Code.CANCELLED && deadlinePassed(deadline, startedAtMs) ? Code.DEADLINE_EXCEEDED : code;
      observer.handled(method, goCodeName(counted), Number(process.hrtime.bigint() - startedAt) / 1e9);
    };
    observer.started(method);
    // Connect has read a unary request before interceptors run; a stream's as it is iterated.
    if (!request.stream) observer.received(method);
    const counted = request.stream
      ? { ...request, message: each(request.message, () => observer.received(method)) }
      : request;
    /** The code a call ended with: a call its client reset (whatever HTTP/2 code it used) was cancelled. */
    const endedWith = (error: unknown): number => {
      // Connect's codes are gRPC's numbers.
      const code = ConnectError.from(error).code as number;
      return request.signal.aborted && code !== Code.DEADLINE_EXCEEDED ? Code.CANCELLED : code;
    };
    let response: Awaited<ReturnType<typeof next>>;
    try {
      response = await next(counted);
    } catch (error) {
      finish(endedWith(error));
      throw error;
    }
    if (!response.stream) {
      observer.sent(method);
      finish(Code.OK);
      return response;
    }
    const responses = response.message;
    return {
      ...response,
      message: (async function* () {
        try {
          for await (const message of responses) {
            observer.sent(method);
            yield message;
          }
          finish(Code.OK);
        } catch (error) {
          finish(endedWith(error));
          throw error;
        } finally {
          // Left unfinished: Connect stopped pulling, because the client went away.
          finish(Code.CANCELLED);
        }
      })(),
    };
  };
}

/** `messages`, with `visit` called on each as it is read. */
async function* each<M>(messages: AsyncIterable<M>, visit: (message: M) => void): AsyncGenerator<M> {
  for await (const message of messages) {
    visit(message);
    yield message;
  }
}

/** gRPC-Web's grpc-timeout units, in milliseconds. */
const GRPC_TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** The timeout a call asked for: Connect's connect-timeout-ms, or gRPC-Web's grpc-timeout. */
function requestedTimeoutMs(header: Headers): number | undefined {
  const connect = header.get("connect-timeout-ms");
  if (connect !== null && /^\d{1,10}$/.test(connect)) return Number(connect);
  const grpc = /^(\d{1,8})([HMSmun])$/.exec(header.get("grpc-timeout") ?? "");
  if (grpc) return Number(grpc[1]) * (GRPC_TIMEOUT_UNITS[grpc[2] as string] ?? 1);
  return undefined;
}
