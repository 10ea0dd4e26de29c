/**
 * gRPC server reflection, v1 and v1alpha, describing every service the server serves (health
 * and reflection included), so grpcurl, `buf curl` and Postman need no local proto files.
 *
 * Written here rather than taken from @grpc/reflection 1.0.4, which answers a stream without
 * backpressure (a client that never reads its replies grows the server's memory without
 * bound), describes only what it is handed in proto-loader's shape, and decodes with a second
 * protobuf library. Here the descriptors come from protobuf-es's generated files; each
 * request is at most 8 KiB; the next request is read only once the reply before it could be
 * written; and v1alpha is v1 on the wire, so its messages are carried over as bytes.
 */
import { create, type DescFile, type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  ErrorResponseSchema,
  ExtensionNumberResponseSchema,
  FileDescriptorResponseSchema,
  ListServiceResponseSchema,
  type ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "../gen/grpc/reflection/v1/reflection_pb.js";
import type { ServerReflection as ServerReflectionV1alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import {
  ServerReflectionRequestSchema as RequestSchemaV1alpha,
  ServerReflectionResponseSchema as ResponseSchemaV1alpha,
} from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Code } from "./errors.js";
import { type CallContext, drained, type HandlersOf, type ReadingsOf, type ResponseSink } from "./handler.js";

/** A reflection request names one file or symbol; anything beyond this is not a lookup. */
const MAX_REQUEST_BYTES = 8 << 10;

/** The files of the services served, indexed for lookup. */
export class ReflectionService {
  /** Every file, by its name (e.g. "generation/v1/generation.proto"). */
  readonly #files = new Map<string, DescFile>();
  /** The file that declares each fully-qualified symbol. */
  readonly #symbols = new Map<string, DescFile>();
  /** Each file's encoded FileDescriptorProto, computed once. */
  readonly #encoded = new Map<DescFile, Uint8Array>();
  readonly #services: string[] = [];
  /** Every message type, for all_extension_numbers_of_type. */
  readonly #messageTypes = new Set<string>();

  /** Describes `files` (with their imports) and lists the services they declare. */
  constructor(files: readonly DescFile[]) {
    const add = (file: DescFile): void => {
      if (this.#encoded.has(file)) return;
      this.#encoded.set(file, toBinary(FileDescriptorProtoSchema, file.proto));
      this.#files.set(file.proto.name, file);
      for (const dependency of file.dependencies) add(dependency);
      this.#indexSymbols(file);
    };
    for (const file of files) add(file);
  }

  /** How large a reflection request may be (both versions). */
  readings(): ReadingsOf<typeof ServerReflection> & ReadingsOf<typeof ServerReflectionV1alpha> {
    return { serverReflectionInfo: { bytes: MAX_REQUEST_BYTES, setting: "fixed: a lookup names one file or symbol" } };
  }

  /** The handlers of grpc.reflection.v1.ServerReflection. */
  handlers(): HandlersOf<typeof ServerReflection> {
    return {
      serverReflectionInfo: (requests, context, sink) =>
        answerEach(requests, context, sink, (request) => this.answer(request)),
    };
  }

  /** The handlers of grpc.reflection.v1alpha.ServerReflection: v1's answers, carried over as bytes. */
  handlersV1alpha(): HandlersOf<typeof ServerReflectionV1alpha> {
    return {
      serverReflectionInfo: (requests, context, sink) =>
        answerEach(requests, context, sink, (request) =>
          convert(
            ResponseSchemaV1alpha,
            ServerReflectionResponseSchema,
            this.answer(convert(ServerReflectionRequestSchema, RequestSchemaV1alpha, request)),
          ),
        ),
    };
  }

  /** The answer to one request. */
  answer(request: ServerReflectionRequest): ServerReflectionResponse {
    const response = create(ServerReflectionResponseSchema, { validHost: request.host, originalRequest: request });
    const notFound = (what: string): ServerReflectionResponse["messageResponse"] => ({
      case: "errorResponse",
      value: create(ErrorResponseSchema, { errorCode: Code.NOT_FOUND, errorMessage: `${what} not found` }),
    });
    const fileOf = (file: DescFile | undefined, what: string): ServerReflectionResponse["messageResponse"] =>
      file
        ? {
            case: "fileDescriptorResponse",
            value: create(FileDescriptorResponseSchema, { fileDescriptorProto: this.#withImports(file) }),
          }
        : notFound(what);
    const lookup = request.messageRequest;
    switch (lookup.case) {
      case "listServices":
        response.messageResponse = {
          case: "listServicesResponse",
          value: create(ListServiceResponseSchema, { service: this.#services.map((name) => ({ name })) }),
        };
        break;
      case "fileByFilename":
        response.messageResponse = fileOf(this.#files.get(lookup.value), `file "${lookup.value}"`);
        break;
      case "fileContainingSymbol":
        response.messageResponse = fileOf(this.#symbols.get(lookup.value), `symbol "${lookup.value}"`);
        break;
      case "fileContainingExtension":
        // No served file declares extensions.
        response.messageResponse = notFound(
          `extension ${lookup.value.extensionNumber} of "${lookup.value.containingType}"`,
        );
        break;
      case "allExtensionNumbersOfType":
        response.messageResponse = this.#messageTypes.has(lookup.value)
          ? {
              case: "allExtensionNumbersResponse",
              value: create(ExtensionNumberResponseSchema, { baseTypeName: lookup.value }),
            }
          : notFound(`message type "${lookup.value}"`);
        break;
      default:
        response.messageResponse = {
          case: "errorResponse",
          value: create(ErrorResponseSchema, {
            errorCode: Code.INVALID_ARGUMENT,
            errorMessage: "the request names no lookup (list_services, file_by_filename, ...)",
          }),
        };
    }
    return response;
  }

  /** The encoded file and, after it, every file it imports, each once. */
  #withImports(file: DescFile): Uint8Array[] {
    const seen = new Set<DescFile>();
    const visit = (current: DescFile): void => {
      if (seen.has(current)) return;
      seen.add(current);
      for (const dependency of current.dependencies) visit(dependency);
    };
    visit(file);
    return [...seen].map((each) => this.#encoded.get(each) as Uint8Array);
  }

  /** Indexes every symbol `file` declares: services and their methods, messages, fields, enums and their values, extensions. */
  #indexSymbols(file: DescFile): void {
    const index = (name: string): void => void this.#symbols.set(name, file);
    const indexMessage = (message: DescMessage): void => {
      index(message.typeName);
      this.#messageTypes.add(message.typeName);
      for (const field of message.fields) index(`${message.typeName}.${field.name}`);
      for (const oneof of message.oneofs) index(`${message.typeName}.${oneof.name}`);
      for (const nested of message.nestedMessages) indexMessage(nested);
      for (const nested of message.nestedEnums) indexEnum(nested);
      for (const extension of message.nestedExtensions) index(extension.typeName);
    };
    const indexEnum = (descEnum: DescFile["enums"][number]): void => {
      index(descEnum.typeName);
      // Enum values are scoped beside their enum, as in C++.
      const scope = descEnum.typeName.slice(0, descEnum.typeName.lastIndexOf(".") + 1);
      for (const value of descEnum.values) index(`${scope}${value.name}`);
    };
    for (const service of file.services) {
      this.#services.push(service.typeName);
      index(service.typeName);
      for (const method of service.methods) index(`${service.typeName}.${method.name}`);
    }
    for (const message of file.messages) indexMessage(message);
    for (const descEnum of file.enums) indexEnum(descEnum);
    for (const extension of file.extensions) index(extension.typeName);
  }
}

/** Answers each request in turn, reading the next only once the reply before it could be written. */
async function answerEach<I, O>(
  requests: AsyncIterable<I>,
  context: CallContext,
  sink: ResponseSink<O>,
  answer: (request: I) => O,
): Promise<void> {
  for await (const request of requests) {
    if (!sink.send(answer(request))) await drained(sink, context.signal);
    if (context.signal.aborted) return;
  }
}

/** A message carried over to a wire-identical schema (v1 <-> v1alpha). */
function convert<To extends DescMessage, From extends DescMessage>(
  to: To,
  from: From,
  message: MessageShape<From>,
): MessageShape<To> {
  return fromBinary(to, toBinary(from, message));
}
