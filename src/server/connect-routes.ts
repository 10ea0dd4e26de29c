/**
 * What the HTTP port answers: the services added here, over Connect (JSON and binary) and
 * gRPC-Web, with CORS for the configured origins. Before Connect reads a request body, this
 * meters it: each method's size limit applies as bytes arrive, bytes beyond 64 KiB draw from
 * the budget for large requests the gRPC port uses too (RequestSizeLimits), and a method
 * with its own bounded reader (Watch) has its request checked by that reader before Connect
 * decodes it, so a request that weighs more than it asks is refused as cheaply as on gRPC.
 * Access control may look at a call's headers before any of its body is read (`beforeBody`),
 * so a client without a valid token is refused without its body being read, as on gRPC.
 *
 * Connect reads a unary request before its interceptors run, so a request refused while it is
 * read never reaches the metrics interceptor: those are counted here.
 */
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { type ConnectRouter, cors, createConnectRouter, type Interceptor } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { type CallObserver, goCodeName, labelsOf } from "./call-observer.js";
import {
  addConnectService,
  type ConnectErrorObserver,
  ENVELOPE_HEADER_BYTES,
  toConnectError,
} from "./connect-service.js";
import { Code, GenerationServiceError } from "./errors.js";
import type { RequestReading, ServiceHandlers, ServiceReadings } from "./handler.js";
import { formatHostPort } from "./host-port.js";
import { type HttpCall, httpCallValues } from "./http-call.js";
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
  /**
   * Called before any of a call's body is read (access control authenticates here); what it
   * throws (a GenerationServiceError) answers the call, its body unread.
   */
  beforeBody?: (path: string, header: Headers, call: HttpCall) => void;
  /** Told of the calls refused while their body was read, which never reach the interceptors (metrics). */
  observer?: CallObserver | undefined;
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
    const { values, call } = httpCallValues(peer);
    let universal: ReturnType<typeof universalRequestFromNodeRequest>;
    try {
      universal = universalRequestFromNodeRequest(request, response, undefined, values);
    } catch {
      // Node's HTTP/1.0 without a Host header: nothing to build a URL from.
      response.writeHead(400, { "content-type": "text/plain" }).end("the request has no Host header\n");
      return;
    }
    const startedAt = process.hrtime.bigint();
    const meter = new BodyMeter(path, this.#options.limits, handler.method.methodKind);
    response.once("close", () => meter.release());
    const reading = this.#readings.get(path);
    const ownReader = reading?.decode !== undefined || reading?.decodeJson !== undefined;
    const body = universal.body as AsyncIterable<Uint8Array>;
    // The meter refuses a declared length over the limit before reading, with the message
    // that names the setting (Connect would refuse it with its own).
    const declared = Number(universal.header.get("content-length") ?? Number.NaN);
    universal.header.delete("content-length");
    const { beforeBody } = this.#options;
    const header = universal.header;
    universal.body = meter.read(body, {
      declaredBytes: declared,
      contentType: header.get("content-type") ?? "",
      ...(beforeBody ? { before: () => beforeBody(path, header, call) } : {}),
      ...(ownReader && reading ? { check: readWith(reading, header.get("content-type") ?? "", call) } : {}),
      onRefused: (error) => {
        call.refusal = error;
        this.#options.onError(path, error);
      },
    });
    handler(universal)
      .then((answer) => {
        if (!call.observed) this.#countUnobserved(handler, call, answer, startedAt);
        return universalResponseToNodeResponse(answer, response);
      })
      // A response that could not be written had lost its client: nothing is left to tell.
      .catch(() => {});
  };

  /** Counts a call refused before the interceptors saw it, with the code it was answered with. */
  #countUnobserved(
    handler: UniversalHandler,
    call: HttpCall,
    answer: { status: number; header?: Headers },
    startedAt: bigint,
  ): void {
    const observer = this.#options.observer;
    if (!observer) return;
    const labels = labelsOf(handler.method);
    // Refused here, the code is known; refused by Connect (a body it could not read), gRPC-Web
    // says it in its headers (trailers-only), Connect in its HTTP status.
    const grpcStatus = answer.header?.get("grpc-status");
    const code = call.refusal?.code ?? (grpcStatus ? Number(grpcStatus) : codeOfHttpStatus(answer.status));
    observer.started(labels);
    observer.handled(labels, goCodeName(code), Number(process.hrtime.bigint() - startedAt) / 1e9);
  }

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
    if (typeof origin !== "string") {
      response.writeHead(405, { allow: "POST, GET", "content-type": "text/plain" }).end("method not allowed\n");
      return false;
    }
    if (!allowed) {
      response
        .writeHead(isMethod ? 403 : 404, { "content-type": "text/plain" })
        .end(
          isMethod
            ? `origin ${origin} may not call this server from a browser (server setting --cors-origin)\n`
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

/** The code behind a Connect error's HTTP status (the inverse of Connect's own mapping). */
const CODES_BY_HTTP_STATUS: Record<number, Code> = {
  400: Code.INVALID_ARGUMENT,
  401: Code.UNAUTHENTICATED,
  403: Code.PERMISSION_DENIED,
  404: Code.UNIMPLEMENTED,
  408: Code.DEADLINE_EXCEEDED,
  409: Code.ABORTED,
  412: Code.FAILED_PRECONDITION,
  413: Code.RESOURCE_EXHAUSTED,
  415: Code.INTERNAL,
  429: Code.RESOURCE_EXHAUSTED,
  499: Code.CANCELLED,
  501: Code.UNIMPLEMENTED,
  503: Code.UNAVAILABLE,
  504: Code.DEADLINE_EXCEEDED,
};

function codeOfHttpStatus(status: number): Code {
  return status === 200 ? Code.OK : (CODES_BY_HTTP_STATUS[status] ?? Code.UNKNOWN);
}

function notFound(response: HttpResponse): void {
  response
    .writeHead(404, { "content-type": "text/plain" })
    .end("not found: syncgen serves its RPCs at /PACKAGE.SERVICE/METHOD\n");
}

/** How BodyMeter reads one body. */
interface MeterOptions {
  /** The body's Content-Length, NaN when it has none. */
  declaredBytes: number;
  contentType: string;
  /** Called before anything is read; throws to refuse the call. */
  before?: () => void;
  /** Checks the whole body before any of it goes on (a method with its own reader). */
  check?: (body: Uint8Array) => void;
  /** Told of every refusal, for the log. */
  onRefused: (error: GenerationServiceError) => void;
}

/**
 * Counts a request's bytes as they arrive, against its method's limit and the budget for large
 * requests. The limit is of one message, as on gRPC: a unary body, or the one message of a
 * method with its own reader (its envelope's 5 bytes not counted). A bidi stream's messages
 * are limited one by one by Connect (readMaxBytes).
 */
class BodyMeter {
  #bytes = 0;
  #reserved = 0;

  constructor(
    readonly path: string,
    readonly limits: RequestSizeLimits,
    readonly methodKind: string,
  ) {}

  /** Gives back what this request drew from the budget (once it is read, or its call ends). */
  release(): void {
    this.limits.release(this.#reserved);
    this.#reserved = 0;
  }

  /**
   * `body`, metered; refused at once if its declared length (Content-Length) is over the
   * limit. With `check`, the whole body is gathered and checked before any of it goes on (a
   * server-streaming request is one message, then the end of the body).
   */
  async *read(body: AsyncIterable<Uint8Array>, options: MeterOptions): AsyncGenerator<Uint8Array> {
    const gathered: Uint8Array[] = [];
    const metered = this.methodKind === "unary" || options.check !== undefined;
    const envelope = /^application\/(connect\+|grpc-web)/i.test(options.contentType) ? ENVELOPE_HEADER_BYTES : 0;
    try {
      options.before?.();
      if (metered && Number.isFinite(options.declaredBytes)) this.#check(options.declaredBytes - envelope);
      for await (const chunk of body) {
        this.#bytes += chunk.byteLength;
        if (metered) this.#count(envelope);
        if (options.check) gathered.push(chunk);
        else yield chunk;
      }
      if (options.check) {
        const whole = Buffer.concat(gathered);
        gathered.length = 0;
        options.check(whole);
        yield whole;
      }
    } catch (error) {
      // Access control's refusals are ConnectErrors it has logged; a failing connection's
      // errors are Connect's to answer (or to find nobody to answer).
      if (!(error instanceof GenerationServiceError)) throw error;
      options.onRefused(error);
      throw toConnectError(error);
    } finally {
      this.release();
    }
  }

  #check(messageBytes: number): void {
    const tooLarge = this.limits.check(this.path, messageBytes);
    if (tooLarge) throw tooLarge;
  }

  #count(envelope: number): void {
    this.#check(this.#bytes - envelope);
    if (this.#bytes > LARGE_REQUEST_BYTES) {
      this.limits.reserve(this.#bytes - this.#reserved);
      this.#reserved = this.#bytes;
    }
  }
}

/** Flags of an envelope: any set (compressed, end of stream, trailers) is not a plain message. */
const NO_FLAGS = 0;

/**
 * The check of a method with its own bounded readers: its body must be exactly one plain
 * message (an envelope without flags), which the reader for its codec decodes within the
 * method's limits. The handler is served what it decoded, and access control checks that, so
 * what is checked and what is served cannot differ.
 */
function readWith(reading: RequestReading<unknown>, contentType: string, call: HttpCall): (body: Uint8Array) => void {
  const type = contentType.toLowerCase();
  const decode = type.includes("json") ? reading.decodeJson : reading.decode;
  const refuse = (problem: string): never => {
    throw new GenerationServiceError(problem, Code.INVALID_ARGUMENT);
  };
  return (body) => {
    if (type.startsWith("application/grpc-web-text")) {
      refuse(
        "send this request as application/grpc-web+proto or application/connect+proto; base64 (grpc-web-text) is not accepted for it",
      );
    }
    if (decode === undefined) refuse(`send this request as binary protobuf, not ${contentType}`);
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    if (
      body.length < ENVELOPE_HEADER_BYTES ||
      view.getUint8(0) !== NO_FLAGS ||
      ENVELOPE_HEADER_BYTES + view.getUint32(1) !== body.length
    ) {
      refuse("the request must be exactly one uncompressed message");
    }
    call.decodedRequest = (decode as (bytes: Uint8Array) => unknown)(body.subarray(ENVELOPE_HEADER_BYTES));
  };
}
