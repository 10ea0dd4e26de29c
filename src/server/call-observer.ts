/**
 * What metrics see of every call, whichever transport serves it (grpc-js interceptors,
 * Connect interceptors): its start, its messages, and its end with a status, labelled as
 * go-grpc-prometheus labels them so existing dashboards work.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { Code } from "../rpc/code.js";

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
  [Code.OK]: "OK",
  [Code.CANCELLED]: "Canceled",
  [Code.UNKNOWN]: "Unknown",
  [Code.INVALID_ARGUMENT]: "InvalidArgument",
  [Code.DEADLINE_EXCEEDED]: "DeadlineExceeded",
  [Code.NOT_FOUND]: "NotFound",
  [Code.ALREADY_EXISTS]: "AlreadyExists",
  [Code.PERMISSION_DENIED]: "PermissionDenied",
  [Code.RESOURCE_EXHAUSTED]: "ResourceExhausted",
  [Code.FAILED_PRECONDITION]: "FailedPrecondition",
  [Code.ABORTED]: "Aborted",
  [Code.OUT_OF_RANGE]: "OutOfRange",
  [Code.UNIMPLEMENTED]: "Unimplemented",
  [Code.INTERNAL]: "Internal",
  [Code.UNAVAILABLE]: "Unavailable",
  [Code.DATA_LOSS]: "DataLoss",
  [Code.UNAUTHENTICATED]: "Unauthenticated",
};

/**
 * Whether a call cancelled now was ended by its deadline. The server's deadline counts from
 * when the request arrived, so the client's passes first (by the request's trip, longer on a
 * busy host) and its cancel can arrive just before the server's: a cancel in the last tenth of
 * the call's time (50 ms to 1 s) counts as the deadline.
 */
export function deadlinePassed(deadline: Date | number, startedAtMs: number): boolean {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return false;
  const tolerance = Math.min(1000, Math.max(50, (at - startedAtMs) / 10));
  return Date.now() >= at - tolerance;
}

/** A status code as go-grpc-prometheus labels it. */
export function goCodeName(code: number): string {
  return GO_CODE_NAMES[code] ?? String(code);
}

/** go-grpc-prometheus's grpc_type of each kind of method. */
const GRPC_TYPES: Record<DescMethod["methodKind"], MethodLabels["grpc_type"]> = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
};

const labelsByMethod = new WeakMap<DescMethod, MethodLabels>();

/** The labels of a method, from its descriptor (made once per method). */
export function labelsOf(method: DescMethod): MethodLabels {
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
}
