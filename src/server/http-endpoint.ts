/**
 * The HTTP port: one listener that speaks HTTP/1.1 and HTTP/2 to whoever connects — curl,
 * browsers, Connect and gRPC-Web clients. In plaintext a connection's first bytes tell the
 * two apart (HTTP/2 with prior knowledge opens with "PRI * HTTP/2.0"); over TLS, ALPN does.
 * Every connection is counted and logged as on the gRPC port (ConnectionListener); shutdown
 * drains (no new connections, HTTP/2 GOAWAY, idle HTTP/1.1 connections closed, requests in
 * flight finish) before what is left is cut off.
 */
import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from "node:http";
import {
  createServer as createHttp2Server,
  createSecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from "node:http2";
import { createServer as createNetServer, type Socket } from "node:net";
import { closeAbandonedSessions } from "./abandoned-sessions.js";
import { ConnectionListener, type ConnectionObserver } from "./connection-listener.js";
import type { HostPort } from "./host-port.js";
import type { Logger } from "./logger.js";

/** A request on either HTTP version. */
export type HttpRequest = IncomingMessage | Http2ServerRequest;
/** A response on either HTTP version. */
export type HttpResponse = ServerResponse | Http2ServerResponse;
/** What answers each request. */
export type HttpHandler = (request: HttpRequest, response: HttpResponse) => void;

/** The PEM files of a TLS listener. */
export interface HttpTls {
  cert: Buffer;
  key: Buffer;
  /** Clients must present a certificate this CA signed (mutual TLS). */
  clientCa: Buffer | null;
}

/** Where and how to listen. */
export interface HttpEndpointOptions {
  hostPort: HostPort;
  tls: HttpTls | undefined;
  handler: HttpHandler;
  /** Most concurrent requests on one HTTP/2 connection. */
  maxConcurrentStreams: number;
  /** How often an HTTP/2 connection is pinged, and how long a ping may go unanswered before it is closed. */
  keepalive: { intervalMs: number; timeoutMs: number };
  /**
   * After about `ageMs` (±10%) an HTTP/2 connection is asked to go (GOAWAY), so clients
   * rebalance over replicas; what is still open on it `graceMs` later is cut off. 0: never.
   */
  maxConnectionAge: { ageMs: number; graceMs: number };
  logger: Logger;
  observer?: ConnectionObserver | undefined;
}

/** An HTTP/2 connection opens with these bytes; no HTTP/1.1 request starts with "PRI". */
const HTTP2_PREFACE_START = Buffer.from("PRI");

/** A connection that has sent nothing after this long is closed. */
const FIRST_BYTES_TIMEOUT_MS = 10_000;

/** The HTTP port. */
export class HttpEndpoint {
  readonly #listener: ConnectionListener;
  readonly #http1;
  readonly #sessions = new Set<Http2Session>();
  /** Requests answered or being answered; shutdown waits until none is left. */
  #inFlight = 0;
  #idle: (() => void) | undefined;
  #draining = false;

  private constructor({
    tls,
    handler,
    maxConcurrentStreams,
    keepalive,
    maxConnectionAge,
    logger,
    observer,
  }: HttpEndpointOptions) {
    const counted: HttpHandler = (request, response) => {
      this.#inFlight++;
      // Both versions' responses emit "close" once, however the request ends.
      response.once("close", () => {
        if (--this.#inFlight === 0) this.#idle?.();
      });
      if (this.#draining && "shouldKeepAlive" in response) response.shouldKeepAlive = false;
      handler(request, response);
    };
    const settings = { maxConcurrentStreams };
    const http2 = tls
      ? createSecureServer(
          {
            cert: tls.cert,
            key: tls.key,
            ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
            allowHTTP1: true,
            settings,
          },
          counted,
        )
      : createHttp2Server({ settings }, counted);
    // As on the gRPC port: sessions Node stopped reading (a client past nghttp2's reset limit)
    // are closed at once, not left to keepalive.
    closeAbandonedSessions(http2, keepalive.timeoutMs, (reason) => {
      observer?.connectionAbandoned();
      logger.debug(
        { event: "connection_abandoned", reason },
        `closed a connection Node had stopped reading: ${reason}`,
      );
    });
    http2.on("session", (session: Http2Session) => {
      this.#sessions.add(session);
      const pinging = keepPinging(session, keepalive);
      const aging = maxConnectionAge.ageMs > 0 ? retireWhenOld(session, maxConnectionAge) : undefined;
      session.once("close", () => {
        clearInterval(pinging);
        clearTimeout(aging);
        this.#sessions.delete(session);
      });
      if (this.#draining) session.close();
    });
    this.#http1 = createHttp1Server(counted);
    this.#listener = new ConnectionListener(
      // TCP keepalive finds HTTP/1.1 clients that vanished with a Watch open.
      createNetServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: keepalive.intervalMs }, (socket) => {
        this.#listener.accepted(socket);
        if (tls) http2.emit("connection", socket);
        else routeByPreface(socket, (isHttp2) => (isHttp2 ? http2 : this.#http1).emit("connection", socket));
      }),
      logger,
      observer,
    );
  }

  /** Listens on `options.hostPort`; resolves once listening. */
  static async listen(options: HttpEndpointOptions): Promise<HttpEndpoint> {
    const endpoint = new HttpEndpoint(options);
    await endpoint.#listener.listen(options.hostPort);
    return endpoint;
  }

  /** Where it listens, with the port actually bound. */
  get address(): HostPort {
    return this.#listener.address;
  }

  /**
   * Stops accepting connections, asks clients to go (HTTP/2 GOAWAY; HTTP/1.1 connections close
   * after their current response, idle ones at once), and resolves once no request is in
   * flight. Streams are ended by their handlers (the server ends every Watch at shutdown).
   */
  drain(): Promise<void> {
    this.#draining = true;
    this.#listener.stopAccepting();
    for (const session of this.#sessions) session.close();
    this.#http1.closeIdleConnections();
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idle = resolve;
    });
  }

  /** Closes every connection still open. */
  close(): void {
    this.#draining = true;
    this.#listener.stopAccepting();
    this.#listener.closeAll();
  }
}

/**
 * Pings `session` every `intervalMs`, and destroys it when a ping goes unanswered for
 * `timeoutMs`: a client that vanished with Watch streams open would otherwise hold them (and
 * their quota) until TCP gives up. Returns the timer.
 */
function keepPinging(
  session: Http2Session,
  { intervalMs, timeoutMs }: HttpEndpointOptions["keepalive"],
): NodeJS.Timeout {
  const pinging = setInterval(() => {
    // A session destroyed a moment ago may not have emitted "close" yet; ping() would throw.
    if (session.destroyed || session.closed) {
      clearInterval(pinging);
      return;
    }
    const timer = setTimeout(() => session.destroy(), timeoutMs);
    const sent = session.ping((error) => {
      clearTimeout(timer);
      if (error) session.destroy();
    });
    if (!sent) clearTimeout(timer);
  }, intervalMs).unref();
  return pinging;
}

/** Asks `session` to go after about `ageMs` (±10%), and cuts it off `graceMs` later. Returns the first timer. */
function retireWhenOld(
  session: Http2Session,
  { ageMs, graceMs }: HttpEndpointOptions["maxConnectionAge"],
): NodeJS.Timeout {
  const jittered = ageMs * (0.9 + Math.random() * 0.2);
  return setTimeout(() => {
    if (session.destroyed || session.closed) return;
    session.close();
    setTimeout(() => session.destroy(), graceMs).unref();
  }, jittered).unref();
}

/**
 * Hands `socket` on once its first bytes say which HTTP it speaks. The bytes are read and put
 * back, so the HTTP server that takes the socket reads them again.
 */
function routeByPreface(socket: Socket, route: (isHttp2: boolean) => void): void {
  let seen = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), FIRST_BYTES_TIMEOUT_MS);
  const stop = (): void => {
    clearTimeout(timer);
    socket.off("readable", onReadable);
    socket.off("close", stop);
  };
  const onReadable = (): void => {
    for (let chunk: Buffer | null = socket.read(); chunk !== null; chunk = socket.read()) {
      seen = Buffer.concat([seen, chunk]);
    }
    const length = Math.min(seen.length, HTTP2_PREFACE_START.length);
    const isHttp2 = seen.subarray(0, length).equals(HTTP2_PREFACE_START.subarray(0, length));
    if (isHttp2 && seen.length < HTTP2_PREFACE_START.length) return;
    stop();
    socket.unshift(seen);
    route(isHttp2);
  };
  socket.on("readable", onReadable);
  socket.once("close", stop);
}
