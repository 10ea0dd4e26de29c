/**
 * Prometheus metrics (prom-client): go-grpc-prometheus's grpc_server_* family for every call,
 * syncgen's own for the watch fan-out and the store, and Node's process metrics, served as
 * text at http://HOST:PORT/metrics.
 */
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { CallObserver, MethodLabels } from "./call-observer.js";
import type { ConnectionObserver } from "./connection-listener.js";
import { formatHostPort, type HostPort } from "./host-port.js";
import type { LogOutput } from "./logger.js";
import type { ChangeFeed } from "./store/generation-store.js";
import type { FanOutObserver, WatchHub, WatchHubStats } from "./watch-hub.js";

const METHOD_LABELS = ["grpc_type", "grpc_service", "grpc_method"] as const;

/** The server's metrics, fed by the metrics interceptor, the watch hub and the connection listener. */
export class ServerMetrics implements CallObserver, FanOutObserver, ConnectionObserver {
  readonly registry = new Registry();
  readonly #started = new Counter({
    name: "grpc_server_started_total",
    help: "Total number of RPCs started on the server.",
    labelNames: METHOD_LABELS,
    registers: [this.registry],
  });
  readonly #handled = new Counter({
    name: "grpc_server_handled_total",
    help: "Total number of RPCs completed on the server, regardless of success or failure.",
    labelNames: [...METHOD_LABELS, "grpc_code"],
    registers: [this.registry],
  });
  readonly #handling = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    labelNames: METHOD_LABELS,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly #received = new Counter({
    name: "grpc_server_msg_received_total",
    help: "Total number of RPC stream messages received on the server.",
    labelNames: METHOD_LABELS,
    registers: [this.registry],
  });
  readonly #sent = new Counter({
    name: "grpc_server_msg_sent_total",
    help: "Total number of gRPC stream messages sent by the server.",
    labelNames: METHOD_LABELS,
    registers: [this.registry],
  });
  readonly #bumps = new Counter({
    name: "syncgen_bumps_total",
    help: "Bumps this replica performed successfully.",
    registers: [this.registry],
  });
  readonly #fanOutMessages = new Counter({
    name: "syncgen_fanout_messages_total",
    help: "Watch responses carrying changes written to streams (heartbeats not counted).",
    registers: [this.registry],
  });
  readonly #fanOutLag = new Histogram({
    name: "syncgen_fanout_lag_seconds",
    help: "Time from a change notification reaching this replica to its last write to a watching stream.",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });

  readonly #connections = new Gauge({
    name: "syncgen_connections",
    help: "Client connections open on the gRPC port.",
    registers: [this.registry],
  });
  readonly #connectionsAccepted = new Counter({
    name: "syncgen_connections_accepted_total",
    help: "Client connections accepted on the gRPC port (with syncgen_connections, the churn).",
    registers: [this.registry],
  });

  readonly #connectionsAbandoned = new Counter({
    name: "syncgen_connections_abandoned_total",
    help: "Client connections closed because Node's HTTP/2 had stopped reading them (too many stream resets, or no answer to a PING).",
    registers: [this.registry],
  });

  /** `logOutput`: where the logs go, to count the lines it dropped. */
  constructor(feed: ChangeFeed, hub: WatchHub, logOutput?: LogOutput) {
    if (logOutput) {
      new Counter({
        name: "syncgen_log_lines_dropped_total",
        help: "Log lines dropped because the reader of the log fell too far behind.",
        registers: [this.registry],
        collect() {
          this.reset();
          this.inc(logOutput.dropped);
        },
      });
    }
    // The hub's figures, counted when scraped (never per change).
    const hubGauges: [name: string, help: string, figure: keyof WatchHubStats][] = [
      ["syncgen_watch_streams", "Watch streams open on this replica.", "streams"],
      ["syncgen_watched_keys", "Distinct keys watched on this replica (one store subscription each).", "keys"],
      [
        "syncgen_watch_streams_blocked",
        "Watch streams whose client does not read fast enough: nothing is written to them until they drain.",
        "blockedStreams",
      ],
      [
        "syncgen_watch_pending_keys",
        "Keys whose latest generation waits for a blocked Watch stream to drain (at most one entry per key and stream).",
        "pendingKeys",
      ],
    ];
    for (const [name, help, figure] of hubGauges) {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(hub.stats()[figure]);
        },
      });
    }
    new Gauge({
      name: "syncgen_redis_up",
      help: "1 while the store (Redis, or the in-memory store) is connected and ready, else 0.",
      labelNames: ["store"],
      registers: [this.registry],
      collect() {
        this.set({ store: feed.description }, feed.state === "ready" ? 1 : 0);
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  started(method: MethodLabels): void {
    this.#started.inc(method);
  }

  received(method: MethodLabels): void {
    this.#received.inc(method);
  }

  sent(method: MethodLabels): void {
    this.#sent.inc(method);
  }

  handled(method: MethodLabels, code: string, seconds: number): void {
    this.#handled.inc({ ...method, grpc_code: code });
    this.#handling.observe(method, seconds);
    if (code === "OK" && method.grpc_method === "Bump") this.#bumps.inc();
  }

  connectionOpened(): void {
    this.#connections.inc();
    this.#connectionsAccepted.inc();
  }

  connectionClosed(): void {
    this.#connections.dec();
  }

  connectionAbandoned(): void {
    this.#connectionsAbandoned.inc();
  }

  fannedOut(messages: number, lagSeconds: number): void {
    this.#fanOutMessages.inc(messages);
    this.#fanOutLag.observe(lagSeconds);
  }

  /** Serves `/metrics` on HOST:PORT; resolves once listening. */
  async listen({ host, port }: HostPort): Promise<MetricsEndpoint> {
    const http = createServer((request, response) => {
      if (request.method !== "GET" || request.url?.split("?")[0] !== "/metrics") {
        response.writeHead(404, { "content-type": "text/plain" }).end("syncgen serves metrics at GET /metrics\n");
        return;
      }
      this.registry.metrics().then(
        (text) => response.writeHead(200, { "content-type": this.registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500, { "content-type": "text/plain" }).end(`${String(error)}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(port, host, () => {
        http.off("error", reject);
        resolve();
      });
    });
    return new MetricsEndpoint(http, host);
  }
}

/** The metrics HTTP listener. */
export class MetricsEndpoint {
  /** Where it listens, with the port actually bound. */
  readonly address: HostPort;
  constructor(
    private readonly http: HttpServer,
    host: string,
  ) {
    this.address = { host, port: (http.address() as AddressInfo).port };
  }

  /** Its URL, for the log. */
  get url(): string {
    return `http://${formatHostPort(this.address)}/metrics`;
  }

  close(): Promise<void> {
    this.http.closeAllConnections();
    return new Promise((resolve) => this.http.close(() => resolve()));
  }
}
