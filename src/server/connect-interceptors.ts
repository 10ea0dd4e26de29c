/**
 * Connect interceptors: on the HTTP port, the same access control and metrics as the grpc-js
 * interceptors give the gRPC port (interceptors.ts). Connect runs interceptors of a streaming
 * call before it reads the request body, so a Watch without a valid token is refused before
 * any of its (possibly large) request is read.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { Code as ConnectCode, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { RequestOf } from "../rpc/service-definition.js";
import type { AccessControl, MethodAccess, Principal } from "./access-control.js";
import { type CallObserver, goCodeName, type MethodLabels } from "./call-observer.js";
import { toConnectError } from "./connect-service.js";
import { Code, GenerationServiceError } from "./errors.js";
import type { DenialObserver } from "./interceptors.js";

/**
 * Refuses calls of `service` without a valid bearer token (UNAUTHENTICATED) and calls naming a
 * key outside the token's prefixes (PERMISSION_DENIED), as accessInterceptor does on gRPC.
 * Other services (health, reflection) pass untouched.
 */
export function connectAccessInterceptor<T extends GenServiceMethods>(
  tokens: () => AccessControl,
  service: GenService<T>,
  rules: { [K in keyof T]: MethodAccess<RequestOf<T[K]>> },
  onDenied: DenialObserver,
): Interceptor {
  const byName = new Map<string, MethodAccess<unknown>>();
  for (const method of service.methods) {
    const rule = rules[method.localName] as MethodAccess<unknown> | undefined;
    // Fail closed: a method without a rule must not pass unchecked.
    if (!rule) throw new Error(`${service.typeName}.${method.name} has no access rule`);
    byName.set(method.name, rule);
  }
  return (next) => async (request) => {
    const rule = request.service.typeName === service.typeName ? byName.get(request.method.name) : undefined;
    if (!rule) return next(request);
    const path = `/${service.typeName}/${request.method.name}`;
    // The table as of the call's start: a reload (SIGHUP) affects calls that start after it.
    const control = tokens();
    let principal: Principal | undefined;
    const refuse = (error: unknown): ConnectError => {
      const failure =
        error instanceof GenerationServiceError ? error : new GenerationServiceError(String(error), Code.INTERNAL);
      onDenied(path, failure, principal?.name);
      return toConnectError(failure);
    };
    const authorization = request.header.get("authorization");
    try {
      principal = control.authenticate(authorization === null ? [] : [authorization]);
    } catch (error) {
      throw refuse(error);
    }
    const authorize = (message: unknown): void => {
      try {
        control.authorize(principal as Principal, rule.permission, rule.keys(message));
      } catch (error) {
        throw refuse(error);
      }
    };
    if (!request.stream) {
      authorize(request.message);
      return next(request);
    }
    return next({ ...request, message: each(request.message, authorize) });
  };
}

/** Reports every call to `observer`, as metricsInterceptor does on gRPC. */
export function connectMetricsInterceptor(observer: CallObserver): Interceptor {
  const labelsByMethod = new Map<DescMethod, MethodLabels>();
  const labelsOf = (method: DescMethod): MethodLabels => {
    let labels = labelsByMethod.get(method);
    if (!labels) {
      labels = {
        grpc_type: GRPC_TYPES[method.methodKind],
        grpc_service: method.parent.typeName,
        grpc_method: method.name,
      };
      labelsByMethod.set(method, labels);
    }
    return labels;
  };
  return (next) => async (request) => {
    const method = labelsOf(request.method);
    const startedAt = process.hrtime.bigint();
    let finished = false;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      observer.handled(method, goCodeName(code), Number(process.hrtime.bigint() - startedAt) / 1e9);
    };
    // A call that ends without a status of its own was cancelled, by the client or its deadline.
    const abandoned = (): number =>
      ConnectError.from(request.signal.reason).code === ConnectCode.DeadlineExceeded
        ? Code.DEADLINE_EXCEEDED
        : Code.CANCELLED;
    observer.started(method);
    // Connect has read a unary request before interceptors run; a stream's as it is iterated.
    if (!request.stream) observer.received(method);
    const counted = request.stream
      ? { ...request, message: each(request.message, () => observer.received(method)) }
      : request;
    let response: Awaited<ReturnType<typeof next>>;
    try {
      response = await next(counted);
    } catch (error) {
      finish(ConnectError.from(error).code);
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
          finish(ConnectError.from(error).code);
          throw error;
        } finally {
          finish(abandoned());
        }
      })(),
    };
  };
}

/** go-grpc-prometheus's grpc_type of each kind of method. */
const GRPC_TYPES: Record<DescMethod["methodKind"], MethodLabels["grpc_type"]> = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
};

/** `messages`, with `visit` called on each as it is read. */
async function* each<M>(messages: AsyncIterable<M>, visit: (message: M) => void): AsyncGenerator<M> {
  for await (const message of messages) {
    visit(message);
    yield message;
  }
}
