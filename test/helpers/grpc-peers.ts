/**
 * Clients of the services syncgen serves beside its own: grpc.health.v1 and server
 * reflection (v1 and v1alpha), typed from the same generated descriptors the server uses.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  Health,
  HealthCheckRequestSchema,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
} from "../../src/gen/grpc/health/v1/health_pb.js";
import {
  ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
} from "../../src/gen/grpc/reflection/v1/reflection_pb.js";
import { grpcServiceDefinition } from "../../src/rpc/service-definition.js";
import { Condition, withDeadline } from "./deadline.js";

const health = grpcServiceDefinition(Health);
const reflection = grpcServiceDefinition(ServerReflection);

/** A health client. */
export interface HealthPeer {
  /** Health.Check: the status's name (e.g. "SERVING"), or the call's error. */
  check(service: string): Promise<string>;
  /** Health.Watch, recorded; cancel it when done. */
  watch(service: string): HealthWatch;
  close(): void;
}

/** A Health.Watch stream and the statuses it has sent, in order. */
export interface HealthWatch {
  readonly statuses: { readonly status: string; readonly at: number }[];
  /** Resolves with when (Date.now()) the latest status became `status`; rejects at the deadline. */
  until(status: string, ms: number): Promise<number>;
  cancel(): void;
}

/** The name of a health status, e.g. "NOT_SERVING". */
export function statusName(response: HealthCheckResponse): string {
  return HealthCheckResponse_ServingStatus[response.status];
}

/** A health client; close it when done. */
export function healthClient(
  address: string,
  credentials = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
): HealthPeer {
  const client = new grpc.Client(address, credentials, options);
  return {
    check: (service) =>
      withDeadline(
        new Promise((resolve, reject) =>
          client.makeUnaryRequest(
            health.check.path,
            health.check.requestSerialize,
            health.check.responseDeserialize,
            create(HealthCheckRequestSchema, { service }),
            (error, response) => (error || !response ? reject(error) : resolve(statusName(response))),
          ),
        ),
        10_000,
        "a health check",
      ),
    watch: (service) => {
      const call = client.makeServerStreamRequest(
        health.watch.path,
        health.watch.requestSerialize,
        health.watch.responseDeserialize,
        create(HealthCheckRequestSchema, { service }),
      );
      const statuses: { status: string; at: number }[] = [];
      const changed = new Condition();
      call.on("data", (response: HealthCheckResponse) => {
        statuses.push({ status: statusName(response), at: Date.now() });
        changed.notify();
      });
      call.on("error", () => {}); // cancelled when done
      return {
        statuses,
        until: (status, ms) =>
          changed.until(
            () => {
              const last = statuses.at(-1);
              return last?.status === status ? last.at : undefined;
            },
            ms,
            () => `health ${status}; statuses: ${statuses.map((s) => s.status).join(", ")}`,
          ),
        cancel: () => call.cancel(),
      };
    },
    close: () => client.close(),
  };
}

/** A server reflection client (v1). */
export interface ReflectionPeer {
  /** Sends one request on a stream of its own and resolves with the answer. */
  ask(request: MessageInitShape<typeof ServerReflectionRequestSchema>): Promise<ServerReflectionResponse>;
  /** Opens a reflection stream. */
  open(): grpc.ClientDuplexStream<ServerReflectionRequest, ServerReflectionResponse>;
  close(): void;
}

/** The service names of a list_services answer (none for any other answer). */
export function serviceNames(response: ServerReflectionResponse): string[] {
  const answer = response.messageResponse;
  return answer.case === "listServicesResponse" ? answer.value.service.map((service) => service.name) : [];
}

/** A reflection client; close it when done. */
export function reflectionClient(address: string, credentials = grpc.credentials.createInsecure()): ReflectionPeer {
  const client = new grpc.Client(address, credentials);
  const method = reflection.serverReflectionInfo;
  const open = () => client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize);
  return {
    ask: (request) =>
      withDeadline(
        new Promise((resolve, reject) => {
          const call = open();
          call.on("data", (response: ServerReflectionResponse) => {
            resolve(response);
            call.end();
          });
          call.on("error", reject);
          call.write(create(ServerReflectionRequestSchema, request));
        }),
        10_000,
        "a reflection answer",
      ),
    open,
    close: () => client.close(),
  };
}
