/**
 * What the HTTP port answers: the services added here, over Connect (JSON and binary) and
 * gRPC-Web, with CORS for the configured origins. Before Connect reads a request body, this
 * meters it: each method's size limit applies as bytes arrive, bytes beyond 64 KiB draw from
 * the budget for large requests the gRPC port uses too (RequestSizeLimits), and a method
 * with its own bounded reader (Watch) has its request checked by that reader before Connect
 * decodes it, so a request that weighs more than it asks is refused as cheaply as on gRPC.
 */
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import {
  type ConnectRouter,
  type ContextValues,
  cors,
  createConnectRouter,
  type Interceptor,
} from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import {
  addConnectService,
  type ConnectErrorObserver,
  ENVELOPE_HEADER_BYTES,
  requestValues,
  setDecodedRequest,
  toConnectError,
} from "./connect-service.js";
import { Code, GenerationServiceError, toServiceError } from "./errors.js";
import type { RequestReading, ServiceHandlers, ServiceReadings } from "./handler.js";
import { formatHostPort } from "./host-port.js";
import type { HttpRequest, HttpResponse } from "./http-endpoint.js";
import { LARGE_REQUEST_BYTES, type RequestSizeLimits } from "./request-limits.js";

/** How the routes serve. */
export interface ConnectRoutesOptions {
  /** Each method's size limit, and the budget for large requests being read (shared with the gRPC port). */
  limits: RequestSizeLimits;
  interceptors: Interceptor[];
  onError: ConnectErrorObserver;
  /** Origins browsers may call from ("*" for any); none by default. */
  corsOrigins: readonly string[];
  /** Answers requests for paths that are not methods (the status page). */
  fallback?: (request: HttpRequest, response: HttpResponse) => void;
}

/** How long a browser may cache a CORS preflight's answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 7200;

const ALLOWED_HEADERS = [...cors.allowedHeaders, "Authorization"].join(", ");
const EXPOSED_HEADERS = cors.exposedHeaders.join(", ");

/** The HTTP port's services and the handler that serves them. */
export class ConnectRoutes {
  readonly #router: ConnectRouter;
  readonly #options: ConnectRoutesOptions;
  readonly #readings = new Map<string, RequestReading<unknown>>();
  #handlers: Map<string, UniversalHandler> | undefined;

  constructor(options: ConnectRoutesOptions) {
    this.#options = options;
    this.#router = createConnectRouter({
      connect: true,
      grpcWeb: true,
      // gRPC has its own port, whose limits reach into grpc-js's reader.
      grpc: false,
      // JSON shows every field, so generation 0 (absent) and an empty change list read as such.
      jsonOptions: { alwaysEmitImplicit: true },
      interceptors: options.interceptors,
    });
  }

  /** Adds `service`, served by `handlers`, its requests read as `readings` say. */
  add<T extends GenServiceMethods>(
    service: GenService<T>,
    handlers: ServiceHandlers<T>,
    readings: ServiceReadings<T>,
  ): void {
    addConnectService(this.#router, service, handlers, readings, this.#options.onError);
    for (const method of service.methods) {
      this.#readings.set(`/${service.typeName}/${method.name}`, readings[method.localName] as RequestReading<unknown>);
    }
  }

  /** Answers one HTTP request. */
  readonly handle = (request: HttpRequest, response: HttpResponse): void => {
    this.#handlers ??= new Map(this.#router.handlers.map((handler) => [handler.requestPath, handler]));
    const path = (request.url ?? "").split("?", 1)[0] ?? "";
    const handler = this.#handlers.get(path);
    if (!this.#cors(request, response, handler !== undefined)) return;
    if (handler === undefined) {
      if (this.#options.fallback) this.#options.fallback(request, response);
      else notFound(response);
      return;
    }
    const peer = formatHostPort({ host: request.socket.remoteAddress ?? "", port: request.socket.remotePort ?? 0 });
    const values = requestValues(peer);
    let universal: ReturnType<typeof universalRequestFromNodeRequest>;
    try {
      universal = universalRequestFromNodeRequest(request, response, undefined, values);
    } catch (error) {
      response.writeHead(400, { "content-type": "text/plain" }).end(`${(error as Error).message}\n`);
      return;
    }
    const meter = new BodyMeter(path, this.#options.limits);
    response.once("close", () => meter.release());
    const reading = this.#readings.get(path);
    const body = universal.body as AsyncIterable<Uint8Array>;
    // The meter refuses a declared length over the limit before reading, with the message
    // that names the setting (Connect would refuse it with its own).
    const declared = Number(universal.header.get("content-length") ?? Number.NaN);
    universal.header.delete("content-length");
    universal.body = meter.read(
      body,
      declared,
      reading?.decode || reading?.decodeJson ? readWith(reading, request, values) : undefined,
    );
    handler(universal)
      .then((answer) => universalResponseToNodeResponse(answer, response))
      // A response that could not be written had lost its client: nothing is left to tell.
      .catch(() => {});
  };

  /**
   * Answers a CORS preflight, and marks a browser's request from an allowed origin as
   * readable by it. Returns false when the request has been answered here (a preflight).
   */
  #cors(request: HttpRequest, response: HttpResponse, isMethod: boolean): boolean {
    const origin = request.headers.origin;
    const corsOrigins = this.#options.corsOrigins;
    const allowed =
      typeof origin === "string" && isMethod && (corsOrigins.includes("*") || corsOrigins.includes(origin));
    if (allowed) {
      response.setHeader("Access-Control-Allow-Origin", origin);
      response.setHeader("Vary", "Origin");
    }
    if (request.method !== "OPTIONS") {
      if (allowed) response.setHeader("Access-Control-Expose-Headers", EXPOSED_HEADERS);
      return true;
    }
    if (!allowed) {
      response
        .writeHead(isMethod ? 403 : 404, { "content-type": "text/plain" })
        .end(
          isMethod
            ? `origin ${String(origin)} may not call this server from a browser (server setting --cors-origin)\n`
            : "not found\n",
        );
      return false;
    }
    response
      .writeHead(204, {
        "Access-Control-Allow-Methods": cors.allowedMethods.join(", "),
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": String(PREFLIGHT_MAX_AGE_SECONDS),
      })
      .end();
    return false;
  }
}

function notFound(response: HttpResponse): void {
  response
    .writeHead(404, { "content-type": "text/plain" })
    .end("not found: syncgen serves its RPCs at /PACKAGE.SERVICE/METHOD\n");
}

/** Counts a request's bytes as they arrive, against its method's limit and the budget for large requests. */
class BodyMeter {
  #bytes = 0;
  #reserved = 0;

  constructor(
    readonly path: string,
    readonly limits: RequestSizeLimits,
  ) {}

  /** Gives back what this request drew from the budget (once it is read, or its call ends). */
  release(): void {
    this.limits.release(this.#reserved);
    this.#reserved = 0;
  }

  /**
   * `body`, metered; refused at once if its declared length (Content-Length) is over the
   * limit. With `check`, the whole body is gathered and checked before any of it
   * goes on (a server-streaming request is one message, then the end of the body).
   */
  async *read(
    body: AsyncIterable<Uint8Array>,
    declaredBytes: number,
    check?: (bytes: Uint8Array) => void,
  ): AsyncGenerator<Uint8Array> {
    const gathered: Uint8Array[] = [];
    try {
      const tooLarge = Number.isFinite(declaredBytes) ? this.limits.check(this.path, declaredBytes) : undefined;
      if (tooLarge) throw tooLarge;
      for await (const chunk of body) {
        this.#count(chunk.byteLength);
        if (check) gathered.push(chunk);
        else yield chunk;
      }
      if (check) {
        const whole = Buffer.concat(gathered);
        gathered.length = 0;
        check(whole);
        yield whole;
      }
    } catch (error) {
      throw toConnectError(toServiceError(error));
    } finally {
      this.release();
    }
  }

  #count(bytes: number): void {
    this.#bytes += bytes;
    const tooLarge = this.limits.check(this.path, this.#bytes);
    if (tooLarge) throw tooLarge;
    if (this.#bytes > LARGE_REQUEST_BYTES) {
      this.limits.reserve(this.#bytes - this.#reserved);
      this.#reserved = this.#bytes;
    }
  }
}

const COMPRESSED_FLAG = 0b1;

/**
 * The check of a method with its own bounded readers: its request is read by the reader for
 * its codec, and the handler is given what it decoded.
 */
function readWith(
  reading: RequestReading<unknown>,
  request: HttpRequest,
  values: ContextValues,
): (body: Uint8Array) => void {
  const contentType = String(request.headers["content-type"] ?? "").toLowerCase();
  const decode = contentType.includes("json") ? reading.decodeJson : reading.decode;
  const refuse = (problem: string): never => {
    throw new GenerationServiceError(problem, Code.INVALID_ARGUMENT);
  };
  return (body) => {
    if (contentType.startsWith("application/grpc-web-text")) {
      refuse(
        "send this request as application/grpc-web+proto or application/connect+proto; base64 (grpc-web-text) is not accepted for it",
      );
    }
    if (decode === undefined || body.length < ENVELOPE_HEADER_BYTES) return; // the protocol's own reading answers
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    if ((view.getUint8(0) & COMPRESSED_FLAG) !== 0) refuse("this request must not be compressed");
    setDecodedRequest(values, decode(body.subarray(ENVELOPE_HEADER_BYTES, ENVELOPE_HEADER_BYTES + view.getUint32(1))));
  };
}
