/**
 * grpc-js server interceptors: the one place every call passes before any handler runs.
 * Access control checks the token and the keys a call names; metrics count every call of
 * every service, health and reflection included. A server without --auth-file and without
 * --metrics-listen installs neither, so their cost is only paid when asked for.
 */
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import {
  status as grpcStatus,
  type Metadata,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  ServerListenerBuilder,
} from "@grpc/grpc-js";
import type { RequestOf } from "../rpc/service-definition.js";
import type { AccessControl, MethodAccess, Principal } from "./access-control.js";
import { type CallObserver, deadlinePassed, goCodeName, type MethodLabels } from "./call-observer.js";
import { Code, GenerationServiceError } from "./errors.js";
import { RefusedRequest, toStatus } from "./grpc-service.js";

/** Sees every call access control refuses, for logging (the token itself is never passed). */
export type DenialObserver = (path: string, error: GenerationServiceError, principal: string | undefined) => void;

/**
 * Refuses calls of `service` without a valid token (UNAUTHENTICATED) and calls naming a key
 * outside the token's prefixes (PERMISSION_DENIED; a Watch is refused whole, so nothing of a
 * key it may not read is sent). `tokens` gives the current table (it can be reloaded). Other services (health, reflection) pass untouched, and a
 * request that cannot be decoded passes on to be answered with INVALID_ARGUMENT.
 */
export function accessInterceptor<T extends GenServiceMethods>(
  tokens: () => AccessControl,
  service: GenService<T>,
  rules: { [K in keyof T]: MethodAccess<RequestOf<T[K]>> },
  onDenied: DenialObserver,
): ServerInterceptor {
  const byPath = new Map<string, MethodAccess<unknown>>();
  for (const method of service.methods) {
    const rule = rules[method.localName] as MethodAccess<unknown> | undefined;
    // Fail closed: a method without a rule must not pass unchecked.
    if (!rule) throw new Error(`${service.typeName}.${method.name} has no access rule`);
    byPath.set(`/${service.typeName}/${method.name}`, rule);
  }
  return (descriptor, call) => {
    const rule = byPath.get(descriptor.path);
    if (!rule) return new ServerInterceptingCall(call);
    // The table as of the call's start: a reload (SIGHUP) affects calls that start after it.
    const control = tokens();
    let principal: Principal | undefined;
    let refused = false;
    const refuse = (error: unknown): void => {
      refused = true;
      const failure =
        error instanceof GenerationServiceError ? error : new GenerationServiceError(String(error), Code.INTERNAL);
      onDenied(descriptor.path, failure, principal?.name);
      call.sendStatus(toStatus(failure));
    };
    const listener = new ServerListenerBuilder()
      .withOnReceiveMetadata((metadata: Metadata, next) => {
        try {
          principal = control.authenticate(metadata.get("authorization"));
        } catch (error) {
          return refuse(error);
        }
        next(metadata);
      })
      // Typed `any` by grpc-js: our deserializer yields a message or a RefusedRequest.
      .withOnReceiveMessage((message: unknown, next) => {
        if (principal && !(message instanceof RefusedRequest)) {
          try {
            control.authorize(principal, rule.permission, rule.keys(message));
          } catch (error) {
            return refuse(error);
          }
        }
        next(message);
      })
      .withOnReceiveHalfClose((next) => {
        if (!refused) next();
      })
      .build();
    return new ServerInterceptingCall(call, { start: (next) => next(listener) });
  };
}

/** Reports every call of every service to `observer`: start, messages, final status and duration. */
export function metricsInterceptor(observer: CallObserver): ServerInterceptor {
  const labelsByPath = new Map<string, MethodLabels>();
  return (descriptor, call: ServerInterceptingCallInterface) => {
    let labels = labelsByPath.get(descriptor.path);
    if (!labels) {
      const [, serviceName = "", methodName = ""] = descriptor.path.split("/");
      const grpc_type = descriptor.requestStream
        ? descriptor.responseStream
          ? "bidi_stream"
          : "client_stream"
        : descriptor.responseStream
          ? "server_stream"
          : "unary";
      labels = { grpc_type, grpc_service: serviceName, grpc_method: methodName };
      labelsByPath.set(descriptor.path, labels);
    }
    const method = labels;
    const startedAt = process.hrtime.bigint();
    const startedAtMs = Date.now();
    let finished = false;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      observer.handled(method, goCodeName(code), Number(process.hrtime.bigint() - startedAt) / 1e9);
    };
    observer.started(method);
    const listener = new ServerListenerBuilder()
      .withOnReceiveMessage((message: unknown, next) => {
        observer.received(method);
        next(message);
      })
      // grpc-js ends a call past its deadline itself, below the interceptors: tell it apart
      // from a cancellation by the client.
      .withOnCancel(() =>
        finish(deadlinePassed(call.getDeadline(), startedAtMs) ? grpcStatus.DEADLINE_EXCEEDED : grpcStatus.CANCELLED),
      )
      .build();
    return new ServerInterceptingCall(call, {
      start: (next) => next(listener),
      sendMessage: (message: unknown, next) => {
        observer.sent(method);
        next(message);
      },
      sendStatus: (status, next) => {
        finish(status.code);
        next(status);
      },
    });
  };
}
