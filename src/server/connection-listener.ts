/**
 * The TCP listener: accepts connections itself and hands each to grpc-js (a connection
 * injector), so that every connection is counted (metrics) and logged at debug level when it
 * opens and closes, and those Node's HTTP/2 has given up on are closed at once. grpc-js does
 * HTTP/2, TLS, keepalive and connection age on what it is given.
 */

import type { AddressInfo } from "node:net";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import type { Server, ServerCredentials } from "@grpc/grpc-js";
import { closeAbandonedSessions, injectorHttp2Server } from "./abandoned-sessions.js";
import { formatHostPort, type HostPort } from "./host-port.js";
import type { Logger } from "./logger.js";

/** Sees every connection open and close (metrics). */
export interface ConnectionObserver {
  connectionOpened(): void;
  connectionClosed(): void;
  /** A connection Node had stopped reading was closed (see abandoned-sessions.ts). */
  connectionAbandoned(): void;
}

/** Where and how to listen. */
export interface ListenOptions {
  /** Where to listen (port 0: a free one). */
  hostPort: HostPort;
  /** How long a PING may go unanswered before a connection counts as abandoned. */
  keepaliveTimeoutMs: number;
  logger: Logger;
  observer?: ConnectionObserver | undefined;
}

/** Listens on HOST:PORT for `server`; resolves once listening. */
export async function listenForConnections(
  server: Server,
  credentials: ServerCredentials,
  { hostPort, keepaliveTimeoutMs, logger, observer }: ListenOptions,
): Promise<ConnectionListener> {
  const injector = server.createConnectionInjector(credentials);
  const http2Server = injectorHttp2Server(server);
  if (http2Server) {
    closeAbandonedSessions(http2Server, keepaliveTimeoutMs, (reason) => {
      observer?.connectionAbandoned();
      logger.debug(
        { event: "connection_abandoned", reason },
        `closed a connection Node had stopped reading: ${reason}`,
      );
    });
  } else {
    logger.warn(
      { event: "abandoned_connections_unwatched" },
      "this grpc-js hides its HTTP/2 sessions: connections Node stops reading last until keepalive closes them",
    );
  }
  const listener = new ConnectionListener(
    createServer({ noDelay: true }, (socket) => {
      listener.accepted(socket);
      injector.injectConnection(socket);
    }),
    logger,
    observer,
  );
  await listener.listen(hostPort);
  return listener;
}

/** Accepts connections and logs each one's life. */
export class ConnectionListener {
  readonly #sockets = new Set<Socket>();
  constructor(
    private readonly net: NetServer,
    private readonly logger: Logger,
    private readonly observer: ConnectionObserver | undefined,
  ) {}

  /** Where it listens, with the port actually bound. */
  #address: HostPort | undefined;

  get address(): HostPort {
    if (this.#address === undefined) throw new Error("ConnectionListener: not listening yet");
    return this.#address;
  }

  listen({ host, port }: HostPort): Promise<void> {
    return new Promise((resolve, reject) => {
      this.net.once("error", reject);
      this.net.listen(port, host, () => {
        this.net.off("error", reject);
        this.#address = { host, port: (this.net.address() as AddressInfo).port };
        resolve();
      });
    });
  }

  accepted(socket: Socket): void {
    // A reset before an HTTP server has taken the socket (it listens for errors from then on)
    // must not be an unhandled 'error' event: the socket closes, and is logged as closed.
    socket.on("error", () => {});
    const peer = formatHostPort({ host: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 });
    const openedAt = Date.now();
    this.#sockets.add(socket);
    this.observer?.connectionOpened();
    // Debug only: a health probe every few seconds would otherwise fill the log.
    this.logger.debug({ event: "connection_open", peer, connections: this.#sockets.size }, `connection from ${peer}`);
    socket.once("close", (hadError) => {
      this.#sockets.delete(socket);
      this.observer?.connectionClosed();
      const seconds = (Date.now() - openedAt) / 1000;
      this.logger.debug(
        { event: "connection_close", peer, seconds, hadError, connections: this.#sockets.size },
        `connection from ${peer} closed after ${seconds} s`,
      );
    });
  }

  /** Stops accepting connections; those open stay up (grpc-js drains them). */
  stopAccepting(): void {
    this.net.close();
  }

  /** Destroys every connection still open. */
  closeAll(): void {
    for (const socket of this.#sockets) socket.destroy();
  }
}
