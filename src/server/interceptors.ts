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

/** Receives what the metrics interceptor sees of each call. */
export interface CallObserver {
  started(method: MethodLabels): void;
  received(method: MethodLabels): void;
  sent(method: MethodLabels): void;
  handled(method: MethodLabels, code: string, seconds: number): void;
}

/** The labels go-grpc-prometheus puts on every grpc_server_* metric. */
export interface MethodLabels {
  readonly grpc_type: "unary" | "server_stream" | "client_stream" | "bidi_stream";
  readonly grpc_service: string;
  readonly grpc_method: string;
}

/** go-grpc-prometheus labels codes as Go's codes.Code.String() spells them. */
const GO_CODE_NAMES: Record<number, string> = {
  [grpcStatus.OK]: "OK",
  [grpcStatus.CANCELLED]: "Canceled",
  [grpcStatus.UNKNOWN]: "Unknown",
  [grpcStatus.INVALID_ARGUMENT]: "InvalidArgument",
  [grpcStatus.DEADLINE_EXCEEDED]: "DeadlineExceeded",
  [grpcStatus.NOT_FOUND]: "NotFound",
  [grpcStatus.ALREADY_EXISTS]: "AlreadyExists",
  [grpcStatus.PERMISSION_DENIED]: "PermissionDenied",
  [grpcStatus.RESOURCE_EXHAUSTED]: "ResourceExhausted",
  [grpcStatus.FAILED_PRECONDITION]: "FailedPrecondition",
  [grpcStatus.ABORTED]: "Aborted",
  [grpcStatus.OUT_OF_RANGE]: "OutOfRange",
  [grpcStatus.UNIMPLEMENTED]: "Unimplemented",
  [grpcStatus.INTERNAL]: "Internal",
  [grpcStatus.UNAVAILABLE]: "Unavailable",
  [grpcStatus.DATA_LOSS]: "DataLoss",
  [grpcStatus.UNAUTHENTICATED]: "Unauthenticated",
};

/**
 * Whether a call cancelled now was ended by its deadline. The server's deadline counts from
 * when the request arrived, so the client's passes first (by the request's trip, longer on a
 * busy host) and its cancel can arrive just before the server's: a cancel in the last tenth of
 * the call's time (50 ms to 1 s) counts as the deadline.
 */
function deadlinePassed(deadline: Date | number, startedAtMs: number): boolean {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return false;
  const tolerance = Math.min(1000, Math.max(50, (at - startedAtMs) / 10));
  return Date.now() >= at - tolerance;
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
      observer.handled(method, GO_CODE_NAMES[code] ?? String(code), Number(process.hrtime.bigint() - startedAt) / 1e9);
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
