/**
 * Clients of the services syncgen serves beside its own: grpc.health.v1 and server
 * reflection, through grpc-js's generic clients.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";
import { withDeadline } from "./deadline.js";

/** The methods of the health client (grpc-js cannot type generic clients itself). */
export interface HealthStub extends grpc.Client {
  Watch(request: { service: string }): grpc.ClientReadableStream<{ status: string }>;
  Check(
    request: { service: string },
    callback: (error: grpc.ServiceError | null, response: { status: string }) => void,
  ): void;
}

interface ReflectionStub extends grpc.Client {
  ServerReflectionInfo(): grpc.ClientDuplexStream<object, Record<string, unknown>>;
}

const HealthClient = grpc.makeGenericClientConstructor(healthService, "Health") as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
) => HealthStub;

/** A health client; close it when done. */
export function healthClient(address: string, credentials = grpc.credentials.createInsecure()): HealthStub {
  return new HealthClient(address, credentials);
}

/** Asks `health.Check(service)` once; resolves with the status or rejects with the error. */
export function healthCheck(health: HealthStub, service: string): Promise<string> {
  return withDeadline(
    new Promise((resolve, reject) =>
      health.Check({ service }, (error, response) => (error ? reject(error) : resolve(response.status))),
    ),
    5000,
    "a health check",
  );
}

/** A server reflection client; close it when done. */
export function reflectionClient(address: string, credentials = grpc.credentials.createInsecure()): ReflectionStub {
  const require = createRequire(import.meta.url);
  const protoDir = join(dirname(require.resolve("@grpc/reflection/package.json")), "build", "proto");
  const definition = loadSync("grpc/reflection/v1/reflection.proto", { includeDirs: [protoDir] });
  const { grpc: root } = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: {
      reflection: {
        v1: { ServerReflection: new (address: string, credentials: grpc.ChannelCredentials) => ReflectionStub };
      };
    };
  };
  return new root.reflection.v1.ServerReflection(address, credentials);
}

/** Sends one reflection request and resolves with the answer. */
export function askReflection(reflection: ReflectionStub, request: object): Promise<Record<string, unknown>> {
  return withDeadline(
    new Promise((resolve, reject) => {
      const call = reflection.ServerReflectionInfo();
      call.on("data", (response: Record<string, unknown>) => {
        resolve(response);
        call.end();
      });
      call.on("error", reject);
      call.write(request);
    }),
    5000,
    "a reflection answer",
  );
}
