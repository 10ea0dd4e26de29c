/**
 * The typed bridge between protoc-gen-es descriptors and @grpc/grpc-js.
 *
 * protoc-gen-es generates message schemas and a service descriptor but no grpc-js stubs, and
 * no maintained package bridges the two, so this module derives grpc-js's method definitions
 * (path, serializers) from the generated descriptor. Both the server and the client use it:
 * the wire format is defined once, by the generated code.
 */
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { MethodDefinition } from "@grpc/grpc-js";

/** The request message type of one method of a generated service. */
export type RequestOf<M extends GenServiceMethods[string]> = MessageShape<M["input"]>;
/** The response message type of one method of a generated service. */
export type ResponseOf<M extends GenServiceMethods[string]> = MessageShape<M["output"]>;

/** grpc-js method definitions for every method of a generated service, keyed by local name. */
export type GrpcServiceDefinition<T extends GenServiceMethods> = {
  [K in keyof T]: MethodDefinition<RequestOf<T[K]>, ResponseOf<T[K]>>;
};

/**
 * Builds the grpc-js definition of a generated service: method paths as
 * `/package.Service/Method`, messages encoded with protobuf-es's binary format.
 */
export function grpcServiceDefinition<T extends GenServiceMethods>(service: GenService<T>): GrpcServiceDefinition<T> {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      originalName: method.localName,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializer(method.input),
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
    };
  }
  // The loop above fills exactly the keys of T, with the types the mapped type names.
  return definition as GrpcServiceDefinition<T>;
}

function serializer(schema: DescMessage): (message: unknown) => Buffer {
  return (message) => {
    const bytes = toBinary(schema, message as MessageShape<DescMessage>);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(schema: DescMessage): (bytes: Buffer) => unknown {
  return (bytes) => fromBinary(schema, bytes);
}
