/**
 * grpc.health.v1 (grpc-health-check) for the server and for GenerationService: SERVING only
 * while the store is ready. Its Watch streams are tracked so shutdown can end them with
 * UNAVAILABLE; otherwise they would hold the server open until the shutdown deadline.
 */
import type { Server, ServerWritableStream, UntypedServiceImplementation } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { Code, GenerationServiceError } from "./errors.js";
import { endStream } from "./grpc-service.js";

/** Health of the whole server ("") and of the named services, all moving together. */
export class ServerHealth {
  readonly #health: HealthImplementation;
  readonly #services: readonly string[];
  readonly #watches = new Set<ServerWritableStream<unknown, unknown>>();

  constructor(services: readonly string[]) {
    this.#services = ["", ...services];
    this.#health = new HealthImplementation(Object.fromEntries(this.#services.map((name) => [name, "NOT_SERVING"])));
  }

  /** Sets every service SERVING or NOT_SERVING. */
  setServing(serving: boolean): void {
    for (const name of this.#services) this.#health.setStatus(name, serving ? "SERVING" : "NOT_SERVING");
  }

  /** Serves grpc.health.v1 on `server`. */
  addToServer(server: Server): void {
    this.#health.addToServer({
      addService: (definition, implementation) => {
        // grpc-health-check's handlers are untyped (any); we only wrap Watch to track its calls.
        const watch = implementation.watch as (call: ServerWritableStream<unknown, unknown>) => void;
        const tracked: UntypedServiceImplementation = {
          ...implementation,
          watch: (call: ServerWritableStream<unknown, unknown>) => {
            this.#watches.add(call);
            call.on("cancelled", () => this.#watches.delete(call));
            watch(call);
          },
        };
        server.addService(definition as Parameters<Server["addService"]>[0], tracked);
      },
    });
  }

  /** Ends every health Watch stream with UNAVAILABLE. */
  endWatches(reason: string): void {
    for (const call of this.#watches) endStream(call, new GenerationServiceError(reason, Code.UNAVAILABLE));
    this.#watches.clear();
  }
}
