/**
 * grpc.health.v1 for the whole server ("") and the services it names, all moving together:
 * SERVING only while the store is ready. Kubernetes probes, load balancers and
 * grpc_health_probe call it without a token.
 *
 * Written here rather than taken from grpc-health-check 2.1.0, which keeps a map entry for
 * every service name ever watched (an anonymous client could grow the heap without bound),
 * ignores backpressure, and decodes with a second protobuf library. Here:
 * - requests are at most 1 KiB (a service name is a few dozen bytes);
 * - a Watch of an unknown name gets SERVICE_UNKNOWN and stays open, as the protocol asks,
 *   registering nothing (the stream keeps only its own request, at most 1 KiB): the set of
 *   services is fixed, so the name never becomes known;
 * - a Watch is level-triggered: a stream that cannot take more gets the latest status once
 *   it drains, never a queue of the ones in between.
 */
import { create } from "@bufbuild/protobuf";
import {
  type Health,
  type HealthCheckResponse,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/grpc/health/v1/health_pb.js";
import { Code, GenerationServiceError } from "./errors.js";
import { type HandlersOf, type ReadingsOf, type ResponseSink, untilCancelled } from "./handler.js";

/** A health request names a service; anything beyond this is not a health check. */
const MAX_REQUEST_BYTES = 1024;

/** The statuses this server reports: a service's own, and what a Watch of an unknown one gets. */
type ServiceStatus = ServingStatus.SERVING | ServingStatus.NOT_SERVING;
type ReportedStatus = ServiceStatus | ServingStatus.SERVICE_UNKNOWN;

/** One response object per status, so each is encoded once for every stream. */
const RESPONSES: Record<ReportedStatus, HealthCheckResponse> = {
  [ServingStatus.SERVING]: create(HealthCheckResponseSchema, { status: ServingStatus.SERVING }),
  [ServingStatus.NOT_SERVING]: create(HealthCheckResponseSchema, { status: ServingStatus.NOT_SERVING }),
  [ServingStatus.SERVICE_UNKNOWN]: create(HealthCheckResponseSchema, { status: ServingStatus.SERVICE_UNKNOWN }),
};

/** An open Watch stream. */
interface HealthWatch {
  /** The watched service, or undefined for a name this server does not serve. */
  readonly service: string | undefined;
  readonly sink: ResponseSink<HealthCheckResponse>;
  /** Ends the stream with an error status. */
  readonly end: (error: GenerationServiceError) => void;
  /** The status last sent. */
  sent: ServingStatus;
  /** Waiting for the transport to drain; the latest status goes out then. */
  blocked: boolean;
}

/** The health of the server and its services. */
export class HealthService {
  readonly #statuses: Map<string, ServiceStatus>;
  readonly #watches = new Set<HealthWatch>();
  /** Set by endWatches: new Watch streams are refused with it. */
  #endedWith: GenerationServiceError | undefined;

  /** Starts NOT_SERVING for "" and each of `services`. */
  constructor(services: readonly string[]) {
    this.#statuses = new Map(
      ["", ...services].map((name): [string, ServiceStatus] => [name, ServingStatus.NOT_SERVING]),
    );
  }

  /** Sets every service SERVING or NOT_SERVING and tells their watchers. */
  setServing(serving: boolean): void {
    const status = serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    for (const name of this.#statuses.keys()) this.#statuses.set(name, status);
    for (const watch of this.#watches) if (watch.service !== undefined) this.#update(watch);
  }

  /** Ends every Watch stream with UNAVAILABLE (the server is going away) and refuses new ones. */
  endWatches(reason: string): void {
    this.#endedWith = new GenerationServiceError(reason, Code.UNAVAILABLE);
    for (const watch of this.#watches) watch.end(this.#endedWith);
    this.#watches.clear();
  }

  /** How large a health request may be. */
  readings(): ReadingsOf<typeof Health> {
    const limit = { bytes: MAX_REQUEST_BYTES, setting: "fixed: a service name is short" };
    return { check: limit, watch: limit, list: limit };
  }

  /** The handlers of grpc.health.v1.Health. */
  handlers(): HandlersOf<typeof Health> {
    return {
      check: async (request) => {
        const status = this.#statuses.get(request.service);
        if (status === undefined) {
          throw new GenerationServiceError(`no health status for service "${request.service}"`, Code.NOT_FOUND);
        }
        return RESPONSES[status];
      },
      watch: async (request, context, sink) => {
        if (this.#endedWith) throw this.#endedWith;
        const service = this.#statuses.has(request.service) ? request.service : undefined;
        await untilCancelled(context, (end) => {
          const watch: HealthWatch = { service, sink, end, sent: ServingStatus.UNKNOWN, blocked: false };
          this.#watches.add(watch);
          this.#update(watch);
          return { close: () => this.#watches.delete(watch) };
        });
      },
      list: async () =>
        create(HealthListResponseSchema, {
          statuses: Object.fromEntries([...this.#statuses].map(([name, status]) => [name, RESPONSES[status]])),
        }),
    };
  }

  /** Sends the watched service's status if the stream lacks it and can take it. */
  #update(watch: HealthWatch): void {
    const status: ReportedStatus =
      (watch.service === undefined ? undefined : this.#statuses.get(watch.service)) ?? ServingStatus.SERVICE_UNKNOWN;
    if (watch.blocked || status === watch.sent) return;
    watch.sent = status;
    if (watch.sink.send(RESPONSES[status])) return;
    watch.blocked = true;
    watch.sink.onDrain(() => {
      watch.blocked = false;
      if (this.#watches.has(watch)) this.#update(watch);
    });
  }
}
